import assert from "node:assert/strict";
import { BufferPool, BufferPools, SentBufferPool } from "./buffer_pool.ts";

Deno.test("BufferPool hands back given buffers, for large lengths only, and stays bounded", () => {
  const pool = new BufferPool(1000, 2);
  const small = pool.take(100);
  assert.equal(small.buffer.byteLength, 100); // too small to pool: a new array
  const a = pool.take(900);
  const b = pool.take(1000);
  const c = pool.take(600);
  assert.equal(a.length, 900);
  assert.equal(a.buffer.byteLength, 1000);
  pool.give(small); // not from the pool: ignored
  pool.give(a.subarray(10, 20)); // a view of it will do
  pool.give(a); // twice: ignored
  pool.give(b);
  pool.give(c); // past maxFree: dropped
  assert.equal(pool.freeCount, 2);
  const again = pool.take(700);
  assert.ok(again.buffer === a.buffer || again.buffer === b.buffer);
  assert.equal(pool.take(1001).buffer.byteLength, 1001);
  assert.throws(() => new BufferPool(0, 1), RangeError);
});

Deno.test("SentBufferPool gives a buffer again only once its frame is written", () => {
  const stream = { written: 0, queued: 0 };
  const pool = new SentBufferPool(100, 3, () => stream);
  const a = pool.take();
  stream.queued += 60; // a frame of 60 bytes in a
  pool.queued(a);
  const b = pool.take();
  assert.notEqual(b, a); // a is not written yet
  stream.queued += 50;
  pool.queued(b);
  stream.written += 60; // a's frame is out
  stream.queued -= 60;
  assert.equal(pool.take(), a);
  const c = pool.take();
  assert.notEqual(c, b); // b is still queued
  pool.unused(c);
  assert.equal(pool.take(), c);
});

Deno.test("BufferPools serve each length from the smallest pool that holds it and take back what they gave", () => {
  const pools = new BufferPools([1024, 512], 4);
  const small = pools.take(400);
  const large = pools.take(900);
  assert.equal(small.buffer.byteLength, 512);
  assert.equal(large.buffer.byteLength, 1024);
  // Past the largest: a new array, not pooled.
  assert.equal(pools.take(2000).buffer.byteLength, 2000);
  pools.give(small);
  pools.give(large);
  assert.equal(pools.take(300).buffer, small.buffer);
  assert.equal(pools.take(1000).buffer, large.buffer);
});

Deno.test("SentBufferPool takes new buffers from its spares and gives back only the written ones", () => {
  const spares = new BufferPool(100, 8);
  const stream = { written: 0, queued: 0 };
  const pool = new SentBufferPool(100, 4, () => stream, spares);
  // Two spares, warm: taken before anything new is made.
  const warm = [spares.take(100), spares.take(100)];
  for (const buffer of warm) spares.give(buffer);
  assert.equal(spares.freeCount, 2);
  const a = pool.take();
  const b = pool.take();
  assert.ok(warm.some((w) => w.buffer === a.buffer) && warm.some((w) => w.buffer === b.buffer));
  assert.equal(spares.freeCount, 0);
  stream.queued += 100;
  pool.queued(a);
  stream.queued += 100;
  pool.queued(b);
  // The first frame is written, the second not: only the first goes back.
  stream.written += 100;
  stream.queued -= 100;
  pool.release();
  assert.equal(spares.freeCount, 1);
  assert.equal(pool.size, 1);
  stream.written += 100;
  stream.queued -= 100;
  pool.release();
  assert.equal(spares.freeCount, 2);
  assert.equal(pool.size, 0);
});
