/**
 * The buffers a server lays `file_data` frames out in come from the shared chunk pool and
 * go back to it once their reader has stopped reading: a new reading connection gets warm
 * memory, not fresh pages (on a virtual machine each new 4 KiB page costs a fault, ~15 µs
 * here: 12 frame buffers of 513 KiB were ~1,500 faults for every connection that read).
 */

import assert from "node:assert/strict";
import { CHUNK_PAYLOADS, DATA_FRAME_BYTES } from "../server/files.ts";
import { delay, Probe, withServer } from "./helpers/harness.ts";
import { bytesOf, chunkOk, offeredAndAccepted } from "./helpers/file_requests.ts";

async function read(bob: Probe, file: number, offset: number, length: number): Promise<void> {
  const reply = await bob.ok("file_read", { file, offset, length });
  assert.equal(reply.length, length);
}

Deno.test("a reader's frame buffers go back to the shared pool, and the next reader takes them", async () => {
  await withServer(async (server) => {
    await using alice = await Probe.login(server, "alice");
    await using bob = await Probe.login(server, "bob");
    const content = bytesOf(2 * DATA_FRAME_BYTES, 21);
    const file = await offeredAndAccepted(alice, bob, "bob", "frames", content);
    for (let at = 0; at < content.length; at += 100_000) {
      await chunkOk(alice, file, at, content.subarray(at, at + 100_000));
    }
    await read(bob, file, 0, content.length); // two frames
    const afterRead = CHUNK_PAYLOADS.freeCount;
    // Once bob's parked reader closes, the buffers his connection has written go back.
    const deadline = performance.now() + 20_000;
    while (CHUNK_PAYLOADS.freeCount <= afterRead && performance.now() < deadline) {
      await delay(50);
    }
    const released = CHUNK_PAYLOADS.freeCount;
    assert.ok(released >= afterRead + 2, `${released} free, ${afterRead} before the release`);
    // Another connection of bob's reads: its frames are laid out in those buffers.
    await using again = await Probe.login(server, "bob");
    await read(again, file, 0, content.length);
    assert.equal(CHUNK_PAYLOADS.freeCount, released - 2);
  });
});
