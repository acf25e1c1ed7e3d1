import assert from "node:assert/strict";
import type { ByteChannel } from "../transport/framed_connection.ts";
import { ByteReader, DEFAULT_READ_BUFFER_SIZE } from "./byte_reader.ts";
import { PeerError } from "./errors.ts";

/** A channel that returns the given chunks one read at a time, then ends. */
function chunked(chunks: number[][]): ByteChannel & { reads: number } {
  const queue = chunks.map((c) => new Uint8Array(c));
  return {
    reads: 0,
    read(p: Uint8Array): Promise<number | null> {
      this.reads++;
      const chunk = queue[0];
      if (chunk === undefined) return Promise.resolve(null);
      const n = Math.min(p.length, chunk.length);
      p.set(chunk.subarray(0, n));
      if (n === chunk.length) queue.shift();
      else queue[0] = chunk.subarray(n);
      return Promise.resolve(n);
    },
    write: (p) => Promise.resolve(p.length),
    close: () => {},
  };
}

Deno.test("ByteReader reads exact lengths across chunk boundaries and keeps read-ahead", async () => {
  const reader = new ByteReader(chunked([[1], [2, 3, 4, 5, 6], [7, 8]]));
  assert.deepEqual(await reader.readExact(2), new Uint8Array([1, 2]));
  assert.equal(reader.bufferedBytes, 4);
  assert.equal(reader.bytesRead, 6, "every byte read from the channel counts, buffered too");
  assert.deepEqual(await reader.readExact(5), new Uint8Array([3, 4, 5, 6, 7]));
  assert.deepEqual(await reader.readExact(1), new Uint8Array([8]));
  assert.equal(await reader.readExact(1), null);
});

Deno.test("ByteReader reads a length larger than its buffer straight into the result", async () => {
  const data = Array.from({ length: 100 }, (_, i) => i);
  const reader = new ByteReader(chunked([data.slice(0, 3), data.slice(3)]), 16);
  assert.deepEqual(await reader.readExact(2), new Uint8Array([0, 1]));
  assert.deepEqual(await reader.readExact(98), new Uint8Array(data.slice(2)));
  assert.equal(reader.bytesRead, 100, "bytes read straight into the result count too");
  assert.equal(await reader.readExact(4), null);
});

Deno.test("ByteReader reports a stream ending inside a read as connection_lost", async () => {
  const reader = new ByteReader(chunked([[1, 2, 3]]));
  await assert.rejects(
    reader.readExact(4),
    (err) => err instanceof PeerError && err.code === "connection_lost",
  );
});

Deno.test("ByteReader reads into a given buffer, and refuses one too short", async () => {
  const reader = new ByteReader(chunked([[1, 2, 3], [4, 5]]));
  const into = new Uint8Array(4);
  const got = await reader.readExact(3, into);
  assert.deepEqual(got, new Uint8Array([1, 2, 3]));
  assert.equal(got!.buffer, into.buffer);
  await assert.rejects(reader.readExact(5, into), RangeError);
  assert.deepEqual(await reader.readExact(2, into), new Uint8Array([4, 5]));
});

Deno.test("ByteReader peeks and takes only what is already buffered, without reading", async () => {
  const channel = chunked([[0, 0, 1, 2, 9, 8], [7, 6]]);
  const reader = new ByteReader(channel);
  assert.equal(reader.peekUint32(), null, "nothing buffered yet");
  assert.equal(reader.takeBuffered(1), null);
  assert.equal(channel.reads, 0);
  assert.deepEqual(await reader.readExact(1), new Uint8Array([0]));
  assert.equal(reader.peekUint32(), 0x00_01_02_09);
  assert.equal(reader.bufferedBytes, 5, "peeking takes nothing");
  assert.equal(reader.takeBuffered(6), null, "only 5 are buffered: nothing taken");
  assert.deepEqual(reader.takeBuffered(4), new Uint8Array([0, 1, 2, 9]));
  assert.equal(reader.peekUint32(), null, "one byte left");
  assert.deepEqual(await reader.readExact(3), new Uint8Array([8, 7, 6]));
  assert.equal(channel.reads, 2);
});

Deno.test("ByteReader reads most of a large record straight into its destination, little through its buffer", async () => {
  // A connection with two 1 MiB records (and their prefixes) waiting: every read
  // returns as much as its target takes, as a loopback socket with a full queue does.
  const record = 1024 * 1024;
  const stream = new Uint8Array(2 * (4 + record)).map((_, i) => i & 0xff);
  const into = new Uint8Array(record);
  let at = 0;
  let throughBuffer = 0;
  const channel: ByteChannel = {
    read(p: Uint8Array): Promise<number | null> {
      if (at === stream.length) return Promise.resolve(null);
      const n = Math.min(p.length, stream.length - at);
      p.set(stream.subarray(at, at + n));
      at += n;
      if (p.buffer !== into.buffer) throughBuffer += n;
      return Promise.resolve(n);
    },
    write: (p) => Promise.resolve(p.length),
    close: () => {},
  };
  const reader = new ByteReader(channel);
  for (let r = 0; r < 2; r++) {
    const start = r * (4 + record);
    assert.deepEqual(await reader.readExact(4), stream.subarray(start, start + 4));
    const got = await reader.readExact(record, into);
    assert.deepEqual(got, stream.subarray(start + 4, start + 4 + record));
  }
  assert.ok(
    throughBuffer <= 2 * DEFAULT_READ_BUFFER_SIZE && throughBuffer <= stream.length / 8,
    `${throughBuffer} of ${stream.length} bytes went through the reader's buffer (then copied)`,
  );
});
