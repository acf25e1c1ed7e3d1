/**
 * A cluster node dying in the middle of an upload (SIGKILL, at a chosen point through
 * `tests/helpers/killable_serve.ts`): as the upload's last byte is held (before it is
 * recorded complete), or once the offer is recorded (before the recipient's node is told
 * of it). The sender's client fails over to another node and carries on there, and a
 * recipient on that node is offered the file, gets it and checks it.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { ChatClient } from "../client/chat_client.ts";
import { FileTransfers } from "../client/file_transfer.ts";
import type { FileTransferEvent } from "../transport/file_transfer_events.ts";
import { CLUSTER_SKIP, type ClusterNode, startCluster } from "./helpers/cluster_nodes.ts";
import { sha256Of, writeRandomFile } from "./helpers/files.ts";
import { until } from "./helpers/harness.ts";
import type { KillPoint } from "./helpers/kill_switch.ts";

const KILLABLE = new URL("./helpers/killable_serve.ts", import.meta.url).pathname;
const MiB = 1024 * 1024;
/** Generous: the machine is shared and loaded. */
const WAIT_MS = 60_000;

function connect(nodes: ClusterNode[], nick: string): Promise<ChatClient> {
  return ChatClient.connect({
    servers: nodes.map((n) => ({ host: "127.0.0.1", port: n.port })),
    nick,
    password: "password123",
    reconnect: nodes.length > 1 ? { initialDelayMs: 50, maxDelayMs: 500 } : false,
    connectTimeoutMs: 30_000,
  });
}

/**
 * Alice, on node A (then B), sends a file to bob on node B; A kills itself at `at`.
 * The file reaches bob whole.
 */
async function nodeDiesDuringUpload(at: KillPoint): Promise<void> {
  await using cluster = await startCluster({ nodes: 0 });
  const a = await cluster.startNode([`--test-kill-at=${at}`], { main: KILLABLE });
  const b = await cluster.startNode();
  const tmp = await Deno.makeTempDir();
  const closing: { close(): Promise<void> }[] = [];
  try {
    const bobClient = await connect([b], "bob");
    closing.push(bobClient);
    const events: FileTransferEvent[] = [];
    const bob = new FileTransfers(bobClient, {
      acceptDir: join(tmp, "dl"),
      onEvent: (e) => events.push(e),
    });
    closing.push(bob);
    const aliceClient = await connect([a, b], "alice");
    closing.push(aliceClient);
    const alice = new FileTransfers(aliceClient, { onEvent: () => {} });
    closing.push(alice);
    const path = join(tmp, "across.bin");
    const sha = await writeRandomFile(path, 3 * MiB + 5, 31);
    const sending = alice.send("bob", path);
    sending.catch(() => {});
    const timer = setTimeout(() => a.kill("SIGTERM"), WAIT_MS);
    const status = await a.child.status;
    clearTimeout(timer);
    assert.equal(status.signal, "SIGKILL", `node A did not die at ${at}:\n${a.tail()}`);
    await sending;
    const saved = await until(
      () => events.find((e) => e.type === "file_saved" || e.type === "file_failed"),
      `bob's copy: ${JSON.stringify(events.filter((e) => e.type !== "file_progress"))}`,
      WAIT_MS,
    );
    assert.equal(saved.type === "file_saved" && await sha256Of(saved.path), sha);
  } finally {
    for (const c of closing.reverse()) await c.close().catch(() => {});
    await Deno.remove(tmp, { recursive: true });
  }
}

if (CLUSTER_SKIP !== null) console.log(`cluster_files_crash_test skips: ${CLUSTER_SKIP}`);
const options = { ignore: CLUSTER_SKIP !== null, sanitizeResources: false, sanitizeOps: false };

Deno.test({
  ...options,
  name: "cluster: a node dies as an upload's last byte is held: the sender fails over and " +
    "resends, the upload completes, the recipient on the other node gets it",
  fn: () => nodeDiesDuringUpload("complete:before"),
});

Deno.test({
  ...options,
  name: "cluster: a node dies once a file's offer is recorded, before it is told: the sender " +
    "fails over and offers again, the recipient on the other node is told and gets it",
  fn: () => nodeDiesDuringUpload("offer:created"),
});
