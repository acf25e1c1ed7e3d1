/**
 * Several real `chat serve` nodes (child processes) on one PostgreSQL and one
 * nats-server (tests/helpers/cluster_nodes.ts), with clients of the client library on
 * different nodes; and what `chat serve --postgres --nats` says when it cannot start.
 */

import assert from "node:assert/strict";
import denoJson from "../deno.json" with { type: "json" };
import { ChatClient, type ChatEvent } from "../client/chat_client.ts";
import type { ChatMessage } from "../protocol/messages.ts";
import { permissionFlags } from "../scripts/permissions.ts";
import { CLUSTER_SKIP, type ClusterNode, startCluster } from "./helpers/cluster_nodes.ts";
import { until } from "./helpers/harness.ts";
import { sha256Of, writeRandomFile } from "./helpers/files.ts";
import { FileTransfers } from "../client/file_transfer.ts";
import type { FileTransferEvent } from "../transport/file_transfer_events.ts";
import { join } from "node:path";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const SERVE_PERMISSIONS = permissionFlags((denoJson.tasks as Record<string, string>).serve);
const ignore = CLUSTER_SKIP !== null;

/** A client logged in on `node`, keeping every event it gets. */
export async function clientOn(
  node: ClusterNode,
  nick: string,
): Promise<{ client: ChatClient; events: ChatEvent[] }> {
  const client = await ChatClient.connect({
    port: node.port,
    nick,
    password: "password123",
    reconnect: false,
    connectTimeoutMs: 30_000,
  });
  const events: ChatEvent[] = [];
  client.onEvent((event) => events.push(event));
  return { client, events };
}

/** The room messages among `events`. */
function roomMessages(events: ChatEvent[]): ChatMessage[] {
  return events.filter((e): e is ChatMessage & ChatEvent => e.type === "msg");
}

Deno.test({
  name: "cluster nodes: room messages cross nodes once each, and sync after N misses nothing",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  await using cluster = await startCluster({ nodes: 2 });
  const [a, b] = cluster.nodes;
  const ann = await clientOn(a, "ann");
  const cat = await clientOn(b, "cat");
  const bob = await clientOn(b, "bob");
  try {
    // Two writers on two nodes at once, a reader polling sync after its last id.
    const acked: number[] = [];
    const write = async (who: ChatClient, name: string) => {
      for (let i = 0; i < 60; i++) acked.push((await who.say("lobby", `${name} ${i}`)).msg.id);
    };
    const polled: number[] = [];
    let writing = true;
    const poll = (async () => {
      let after = 0;
      for (let round = 0; writing || round < 2; round += writing ? 0 : 1) {
        const page = await bob.client.sync(after);
        for (const m of page.messages) polled.push(m.id);
        if (page.messages.length > 0) after = page.messages[page.messages.length - 1].id;
      }
    })();
    await Promise.all([write(ann.client, "ann"), write(cat.client, "cat")]);
    writing = false;
    await poll;
    const all = [...acked].sort((x, y) => x - y);
    assert.equal(new Set(acked).size, 120, "ids are unique across nodes");
    assert.deepEqual(polled, all, "sync after the last id seen missed or repeated a message");
    // Live: bob (node B) gets ann's (node A) and cat's (node B) messages once each.
    await until(() => roomMessages(bob.events).length >= 120 || undefined, "120 messages", 30_000);
    const live = roomMessages(bob.events).map((m) => m.id).sort((x, y) => x - y);
    assert.deepEqual(live, all);
    // ann's messages reach node B in the order ann sent them.
    const fromAnn = roomMessages(bob.events).filter((m) => m.from === "ann").map((m) => m.text);
    assert.deepEqual(fromAnn, Array.from({ length: 60 }, (_, i) => `ann ${i}`));
  } finally {
    await Promise.all([ann.client.close(), cat.client.close(), bob.client.close()]);
  }
});

/** Runs `chat serve ARGS` with the serve task's permissions to its end. */
async function serveOutput(args: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      ...SERVE_PERMISSIONS,
      MAIN,
      "serve",
      "--host",
      "127.0.0.1",
      "--port",
      "0",
      ...args,
    ],
    stdin: "null",
    env: { NO_COLOR: "1", ...env },
  }).output();
  return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
}

/** A loopback port nothing listens on (bound, then released). */
function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

Deno.test("chat serve --postgres: an engine out of reach fails the start after the wait, saying what to check", async () => {
  const pg = closedPort();
  const { code, stderr } = await serveOutput([
    "--postgres",
    `postgres://chat@127.0.0.1:${pg}/chat`,
    "--nats",
    `nats://127.0.0.1:${closedPort()}`,
    "--engine-wait",
    "2",
  ]);
  assert.equal(code, 1, stderr);
  assert.match(
    stderr,
    new RegExp(
      `cannot reach PostgreSQL at postgres://chat@127\\.0\\.0\\.1:${pg}/chat after \\d+ s`,
    ),
  );
  assert.match(stderr, /check that PostgreSQL runs there/);
});

Deno.test("chat serve: a password in --postgres or --nats is refused; half a cluster too", async () => {
  const secret = await serveOutput([
    "--postgres",
    "postgres://chat:hunter2@127.0.0.1:1/chat",
    "--nats",
    "nats://127.0.0.1:1",
  ]);
  assert.equal(secret.code, 2);
  assert.match(secret.stderr, /--postgres: the URL holds a password/);
  assert.ok(!secret.stderr.includes("hunter2"), "the error repeats the password");
  const half = await serveOutput(["--postgres", "postgres://chat@127.0.0.1:1/chat"]);
  assert.equal(half.code, 2);
  assert.match(half.stderr, /--postgres needs --nats too/);
});

Deno.test({
  name: "cluster nodes: a node configured from the environment; a file offered on one node " +
    "is downloaded from another",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  await using cluster = await startCluster({ nodes: 1 });
  const [a] = cluster.nodes;
  // Node B takes its engines from CHAT_POSTGRES_URL and CHAT_NATS_URL, no flags.
  const b = await cluster.startNode([], {
    engines: false,
    env: { CHAT_POSTGRES_URL: cluster.databaseUrl, CHAT_NATS_URL: cluster.nats.url },
  });
  const tmp = await Deno.makeTempDir({ prefix: "chat-cluster-files-" });
  const ann = await clientOn(a, "ann");
  const bob = await clientOn(b, "bob");
  const annFiles = new FileTransfers(ann.client, { onEvent: () => {} });
  const bobEvents: FileTransferEvent[] = [];
  const bobFiles = new FileTransfers(bob.client, {
    downloadDir: join(tmp, "dl"),
    onEvent: (e) => bobEvents.push(e),
  });
  try {
    const path = join(tmp, "notes.bin");
    const sha = await writeRandomFile(path, 700 * 1024 + 3, 5);
    const sent = await annFiles.send("bob", path);
    assert.equal(sent.online, true, "bob on node B is online for ann on node A");
    const offered = await until(
      () => bobEvents.find((e) => e.type === "file_offered"),
      "the offer at bob",
      30_000,
    ) as Extract<FileTransferEvent, { type: "file_offered" }>;
    const saved = await bobFiles.accept(offered.file);
    assert.equal(await sha256Of(saved), sha);
  } finally {
    await annFiles.close();
    await bobFiles.close();
    await Promise.all([ann.client.close(), bob.client.close()]);
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test({
  name: "chat serve --postgres: a refusal waiting cannot cure (no such user) fails at once",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  await using cluster = await startCluster({ nodes: 0 });
  const url = new URL(cluster.databaseUrl);
  url.username = "nobody";
  const { code, stderr } = await serveOutput([
    "--postgres",
    url.href,
    "--nats",
    cluster.nats.url,
    "--engine-wait",
    "20",
  ]);
  assert.equal(code, 1, stderr);
  // One try: no "after N s (N tries)".
  assert.match(stderr, /cannot reach PostgreSQL at postgres:\/\/nobody@[^ ]+: [^;]*nobody/);
});
