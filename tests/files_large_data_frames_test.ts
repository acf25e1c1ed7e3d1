/**
 * A reader may ask for large `file_data` frames (`file_read {frame}`, at most a large
 * chunk's 1 MiB less 4 KiB): half as many frames per file as the default 512 KiB, each
 * costing both sides its header and dispatch, and the recipient a write and a hash call.
 * A reader that does not ask gets 512 KiB frames as before; a reader whose frames must be
 * smaller gets those; a `frame` over a large chunk, or under 4 KiB, is refused.
 */

import assert from "node:assert/strict";
import {
  LARGE_FILE_CHUNK_BYTES,
  MAX_FILE_FRAME_BYTES,
  MIN_FILE_DATA_FRAME_BYTES,
} from "../protocol/file_chunks.ts";
import { Probe, withServer } from "./helpers/harness.ts";
import { bytesOf, chunkOk, offeredAndAccepted, sha256 } from "./helpers/file_requests.ts";

/** The bodies of the `file_data` frames answering one read of `length` bytes at `offset`. */
async function readFrames(
  bob: Probe,
  file: number,
  offset: number,
  length: number,
  frame?: number,
): Promise<Uint8Array[]> {
  const reply = await bob.ok("file_read", {
    file,
    offset,
    length,
    ...(frame !== undefined ? { frame } : {}),
  });
  assert.equal(reply.length, length);
  const bodies: Uint8Array[] = [];
  for (let at = offset; at < offset + length;) {
    const data = await bob.expect({ type: "file_data", file, offset: at });
    const body = data.frameBody as Uint8Array;
    bodies.push(body);
    at += body.length;
  }
  return bodies;
}

Deno.test("a reader asking for large file_data frames gets a large chunk's worth per frame", async () => {
  await withServer(async (server) => {
    await using alice = await Probe.login(server, "alice");
    await using bob = await Probe.login(server, "bob");
    const content = bytesOf(2 * LARGE_FILE_CHUNK_BYTES + 3 * MIN_FILE_DATA_FRAME_BYTES + 100, 31);
    const file = await offeredAndAccepted(alice, bob, "bob", "large", content);
    for (let at = 0; at < content.length; at += LARGE_FILE_CHUNK_BYTES) {
      await chunkOk(alice, file, at, content.subarray(at, at + LARGE_FILE_CHUNK_BYTES));
    }
    // Large frames: one per large chunk read.
    const large = await readFrames(bob, file, 0, LARGE_FILE_CHUNK_BYTES, LARGE_FILE_CHUNK_BYTES);
    assert.deepEqual(large.map((b) => b.length), [LARGE_FILE_CHUNK_BYTES]);
    // Without `frame`: 512 KiB frames, as before.
    const plain = await readFrames(bob, file, LARGE_FILE_CHUNK_BYTES, LARGE_FILE_CHUNK_BYTES);
    assert.deepEqual(plain.map((b) => b.length), [
      MAX_FILE_FRAME_BYTES,
      LARGE_FILE_CHUNK_BYTES - MAX_FILE_FRAME_BYTES,
    ]);
    // Smaller frames for a reader that takes only those.
    const rest = content.length - 2 * LARGE_FILE_CHUNK_BYTES;
    const small = await readFrames(
      bob,
      file,
      2 * LARGE_FILE_CHUNK_BYTES,
      rest,
      MIN_FILE_DATA_FRAME_BYTES,
    );
    const least = MIN_FILE_DATA_FRAME_BYTES;
    assert.deepEqual(small.map((b) => b.length), [least, least, least, 100]);
    const got = new Uint8Array(content.length);
    let at = 0;
    for (const body of [...large, ...plain, ...small]) {
      got.set(body, at);
      at += body.length;
    }
    assert.equal(sha256(got), sha256(content));
    // A frame larger than a large chunk is refused.
    await bob.fails(
      "file_read",
      { file, offset: 0, length: 10, frame: LARGE_FILE_CHUNK_BYTES + 1 },
      "bad_message",
    );
    // So is one under 4 KiB: a read of 1 MiB in frames of a byte would cost the server a
    // million frames (their headers, their writes) for one cheap request.
    for (const frame of [1, MIN_FILE_DATA_FRAME_BYTES - 1]) {
      await bob.fails("file_read", { file, offset: 0, length: 1024 * 1024, frame }, "bad_message");
    }
  });
});
