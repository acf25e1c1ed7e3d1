/**
 * Cut-through of a file being uploaded to a recipient reading it at the same time: the
 * chunks written while the recipient is between two reads (it has the last reply, and
 * writes what came before it asks again) are kept for its next read, not read back from
 * disk; once it stops reading they are let go.
 */

import assert from "node:assert/strict";
import { concatBytes } from "../protocol/bytes.ts";
import { fileServiceOf } from "../server/files.ts";
import { delay, Probe, withServer } from "./helpers/harness.ts";
import { bytesOf, chunkOk, offeredAndAccepted } from "./helpers/file_requests.ts";

const CHUNK = 100_000;

/** Reads `[offset, offset + length)` of `file` as bob, once it is all uploaded. */
async function readAll(bob: Probe, file: number, offset: number, length: number) {
  const id = crypto.randomUUID();
  bob.send({ type: "file_read", id, file, offset, length });
  const reply = await bob.expect({ type: "ok", re: id });
  assert.equal(reply.length, length);
  const data: Uint8Array[] = [];
  for (let at = offset; at < offset + length; at += CHUNK) {
    data.push((await bob.expect({ type: "file_data", file, offset: at })).frameBody as Uint8Array);
  }
  return concatBytes(data);
}

Deno.test("chunks uploaded while the reader is between two reads are sent from memory", async () => {
  await withServer(async (server) => {
    await using alice = await Probe.login(server, "alice");
    await using bob = await Probe.login(server, "bob");
    const counters = server.hub.metrics.counters;
    const content = bytesOf(4 * CHUNK, 11);
    const file = await offeredAndAccepted(alice, bob, "bob", "between", content);
    const received: Uint8Array[] = [];
    for (let at = 0; at < content.length; at += CHUNK) {
      // Each chunk is uploaded while bob has no read in flight (he has the last reply),
      // then read: as a recipient writing what came before it asks for more.
      await chunkOk(alice, file, at, content.subarray(at, at + CHUNK));
      received.push(await readAll(bob, file, at, CHUNK));
    }
    assert.deepEqual(concatBytes(received), content);
    // The first chunk came before bob had read anything: from disk. Every later one was
    // written while bob's reader was open (parked between his reads): from memory.
    assert.equal(counters.fileBytesSentFromDisk, CHUNK);
    assert.equal(counters.fileBytesSentFromMemory, content.length - CHUNK);
  });
});

Deno.test("the chunks kept for a reader between its reads are let go once it stops reading", async () => {
  await withServer(async (server) => {
    await using alice = await Probe.login(server, "alice");
    await using bob = await Probe.login(server, "bob");
    const service = fileServiceOf(server.hub);
    const content = bytesOf(3 * CHUNK, 12);
    const file = await offeredAndAccepted(alice, bob, "bob", "stops", content);
    await chunkOk(alice, file, 0, content.subarray(0, CHUNK));
    await readAll(bob, file, 0, CHUNK);
    // Bob has no read in flight; his reader is parked: the next chunk is kept for him.
    await chunkOk(alice, file, CHUNK, content.subarray(CHUNK, 2 * CHUNK));
    assert.equal(service.keptChunks, 1);
    // He reads no more: once his parked reader is closed, the chunk is let go.
    const deadline = performance.now() + 20_000;
    while (service.keptChunks > 0 && performance.now() < deadline) await delay(50);
    assert.equal(service.keptChunks, 0);
    // A chunk uploaded now is not kept (nobody reads), and is read from disk later.
    await chunkOk(alice, file, 2 * CHUNK, content.subarray(2 * CHUNK));
    assert.equal(service.keptChunks, 0);
  });
});
