import assert from "node:assert/strict";
import { MAX_POOLED_BYTES, WriteBuffers } from "./write_buffers.ts";

Deno.test("WriteBuffers: a buffer given back is taken again for a length of its size class", () => {
  const pool = new WriteBuffers(1024 * 1024);
  const first = pool.take(300)!;
  assert.equal(first.length, 512);
  pool.give(first);
  assert.equal(pool.freeBytes, 512);
  assert.equal(pool.take(257), first);
  assert.equal(pool.freeBytes, 0);
  assert.notEqual(pool.take(300), first, "a buffer out is not handed out twice");
  assert.equal(pool.take(10)!.length, 256);
});

Deno.test("WriteBuffers: over the largest size, none; free bytes stay under the bound", () => {
  assert.equal(new WriteBuffers(1 << 20).take(MAX_POOLED_BYTES + 1), null);
  const pool = new WriteBuffers(1024);
  const [a, b, c] = [pool.take(1024)!, pool.take(1024)!, pool.take(256)!];
  pool.give(a);
  pool.give(b);
  pool.give(c);
  assert.equal(pool.freeBytes, 1024);
});

Deno.test("WriteBuffers: trim drops the free buffers once none was taken since the last trim", () => {
  const pool = new WriteBuffers(1 << 20);
  const buffer = pool.take(4000)!;
  pool.give(buffer);
  pool.trim(); // taken since the last trim: kept
  assert.equal(pool.freeBytes, 4096);
  pool.trim();
  assert.equal(pool.freeBytes, 0);
  assert.notEqual(pool.take(4000), buffer);
});
