/**
 * A sender that stayed online hears how its file ended once. The recipient receives the
 * file (`file_done`), declines it or cancels it while its sender is connected: the sender
 * is told live (`file_completed`, `file_declined`, `file_cancelled`). Its client then
 * resends the last chunk (its acknowledgement was late) and offers the file again naming
 * it (as after a retryable refusal): the server answers from its record of ended files,
 * and must not tell that session the end a second time; a session that logs in later
 * (which was not told) still is, once. On one server (files in memory) and across the
 * nodes of a cluster (the sender on one node, the recipient on another: PostgreSQL and
 * NATS, real engines; skipped when they are not installed).
 */

import assert from "node:assert/strict";
import type { ChatServer } from "../server/server.ts";
import { startCluster, startClusterEngines } from "./helpers/cluster.ts";
import { bytesOf, chunkOk, offeredAndAccepted, sha256 } from "./helpers/file_requests.ts";
import { Probe, testServer } from "./helpers/harness.ts";

/** This file's PostgreSQL and nats-server; null when one is not installed (reason printed). */
const engines = await startClusterEngines();

/** Generous: the machine is shared and loaded. */
const WAIT_MS = 30_000;

type End = "received" | "declined" | "cancelled";

const EVENT: Record<End, string> = {
  received: "file_completed",
  declined: "file_declined",
  cancelled: "file_cancelled",
};

/** The events of `type` about `file` that `probe` has received and not taken. */
function heard(probe: Probe, type: string, file: number): unknown[] {
  return probe.received.filter((m) => m.type === type && m.file === file);
}

/**
 * Alice (on `senderNode`) sends a file to bob (on `recipientNode`), who ends it as `end`;
 * alice resends her last chunk and offers the file again: told once.
 */
async function toldOnce(
  senderNode: ChatServer,
  recipientNode: ChatServer,
  end: End,
  known: () => Promise<void>,
): Promise<void> {
  await using alice = await Probe.login(senderNode, "alice");
  await using bob = await Probe.login(recipientNode, "bob");
  await known();
  const content = bytesOf(96 * 1024, 7);
  const name = `${end}.bin`;
  const file = await offeredAndAccepted(alice, bob, "bob", name, content);
  const half = 64 * 1024;
  await chunkOk(alice, file, 0, content.subarray(0, half), WAIT_MS);
  if (end === "declined") {
    await bob.ok("file_decline", { file });
  } else {
    await chunkOk(alice, file, half, content.subarray(half), WAIT_MS);
    if (end === "received") await bob.ok("file_done", { file });
    else await bob.ok("file_cancel", { file });
  }
  const type = EVENT[end];
  await alice.expect({ type, file }, WAIT_MS); // live

  // The last chunk again, then the offer naming the file: answered from the record of
  // ended files. Their replies come after any event their handling sends.
  const resend = crypto.randomUUID();
  const at = half; // the last chunk: sent again, or (declined) in flight
  alice.send({ type: "file_chunk", id: resend, file, offset: at }, content.subarray(at));
  const chunkReply = await alice.expect((m) => m.re === resend, WAIT_MS);
  const offerReply = await alice.request("file_offer", {
    to: "bob",
    name,
    size: content.length,
    sha256: sha256(content),
    file,
  });
  if (end === "received") {
    assert.equal(chunkReply.type, "ok", JSON.stringify(chunkReply));
    assert.equal(chunkReply.complete, true);
    assert.equal(offerReply.type, "ok", JSON.stringify(offerReply));
    assert.equal(offerReply.file, file);
  } else {
    assert.equal(chunkReply.code, "file_gone", JSON.stringify(chunkReply));
    assert.equal(offerReply.code, "file_gone", JSON.stringify(offerReply));
  }
  assert.deepEqual(heard(alice, type, file), [], `alice heard ${type} again`);

  // Another session of alice's, logged in after the end, was not told: it is, once.
  await using later = await Probe.login(senderNode, "alice");
  const again = crypto.randomUUID();
  later.send({ type: "file_chunk", id: again, file, offset: at }, content.subarray(at));
  await later.expect((m) => m.re === again, WAIT_MS);
  await later.request("file_offer", {
    to: "bob",
    name,
    size: content.length,
    sha256: sha256(content),
    file,
  });
  assert.equal(heard(later, type, file).length, 1, JSON.stringify(later.received));
  assert.deepEqual(heard(alice, type, file), [], `alice heard ${type} again`);
}

for (const end of ["received", "declined", "cancelled"] as const) {
  Deno.test(`a sender online when its file was ${end} hears ${EVENT[end]} once, not again when it resends a chunk or offers it again`, async () => {
    const server = await testServer();
    try {
      await toldOnce(server, server, end, () => Promise.resolve());
    } finally {
      await server.shutdown();
    }
  });

  Deno.test({
    name: `cluster: a sender on one node, its file ${end} on another, hears ${
      EVENT[end]
    } once, not again when it resends a chunk or offers it again`,
    ignore: engines === null,
  }, async () => {
    await using cluster = await startCluster(2);
    const [a, b] = cluster.nodes;
    await toldOnce(a, b, end, () => cluster.known("alice", "bob"));
  });
}
