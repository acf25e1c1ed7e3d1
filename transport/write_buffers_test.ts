import assert from "node:assert/strict";
import { MAX_WRITE_BUFFER, MIN_WRITE_BUFFER, WriteBufferPool } from "./write_buffers.ts";

const bytes = (...values: number[]) => new Uint8Array(values);

Deno.test("WriteBufferPool: pieces laid out in order; a buffer given back carries the next concat", () => {
  const pool = new WriteBufferPool(1024 * 1024);
  const first = pool.concat([bytes(1), bytes(2, 3), bytes()]);
  assert.deepEqual([...first], [1, 2, 3]);
  assert.equal(first.buffer.byteLength, MIN_WRITE_BUFFER);
  pool.give(first);
  assert.equal(pool.pooledBytes, MIN_WRITE_BUFFER);
  const second = pool.concat([bytes(9, 8)]);
  assert.equal(second.buffer, first.buffer);
  assert.deepEqual([...second], [9, 8]);
  assert.equal(pool.pooledBytes, 0);
});

Deno.test("WriteBufferPool: a buffer not given back is never handed out twice", () => {
  const pool = new WriteBufferPool(1024 * 1024);
  const a = pool.concat([bytes(1), bytes(2)]);
  const b = pool.concat([bytes(3), bytes(4)]);
  assert.notEqual(a.buffer, b.buffer);
  assert.deepEqual([...a], [1, 2]);
  pool.give(a);
  pool.give(a); // a second give is ignored
  assert.equal(pool.pooledBytes, MIN_WRITE_BUFFER);
  const c = pool.concat([bytes(5)]);
  const d = pool.concat([bytes(6)]);
  assert.equal(c.buffer, a.buffer);
  assert.notEqual(d.buffer, a.buffer);
  assert.notEqual(d.buffer, b.buffer);
});

Deno.test("WriteBufferPool: sizes by power of two; a write over the largest gets its own array", () => {
  const pool = new WriteBufferPool(1024 * 1024);
  const mid = pool.concat([new Uint8Array(MIN_WRITE_BUFFER + 1)]);
  assert.equal(mid.buffer.byteLength, MIN_WRITE_BUFFER * 2);
  const big = pool.concat([new Uint8Array(MAX_WRITE_BUFFER), bytes(7)]);
  assert.equal(big.length, MAX_WRITE_BUFFER + 1);
  assert.equal(big[MAX_WRITE_BUFFER], 7);
  pool.give(big); // not the pool's: ignored
  pool.give(new Uint8Array(MIN_WRITE_BUFFER)); // nor this
  assert.equal(pool.pooledBytes, 0);
  pool.give(mid);
  // A smaller write does not take a larger class's buffer.
  assert.notEqual(pool.concat([bytes(1)]).buffer, mid.buffer);
  assert.equal(pool.concat([new Uint8Array(MIN_WRITE_BUFFER * 2)]).buffer, mid.buffer);
});

Deno.test("WriteBufferPool: keeps at most its bound of free buffers; clear drops them", () => {
  const pool = new WriteBufferPool(2 * MIN_WRITE_BUFFER);
  const taken = [1, 2, 3].map((n) => pool.concat([bytes(n)]));
  for (const t of taken) pool.give(t);
  assert.equal(pool.pooledBytes, 2 * MIN_WRITE_BUFFER);
  pool.clear();
  assert.equal(pool.pooledBytes, 0);
});
