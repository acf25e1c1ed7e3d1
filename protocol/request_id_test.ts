import assert from "node:assert/strict";
import { newRequestId } from "./request_id.ts";

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

Deno.test("newRequestId: a version 7 UUID holding the time in its first 48 bits", () => {
  const id = newRequestId(0x0190_a6c4_8f3b, new Uint8Array(10).fill(0xff));
  assert.equal(id, "0190a6c4-8f3b-7fff-bfff-ffffffffffff");
  assert.match(newRequestId(), UUID_V7);
  assert.match(newRequestId(0, new Uint8Array(10)), UUID_V7);
  assert.equal(newRequestId(0, new Uint8Array(10)), "00000000-0000-7000-8000-000000000000");
});

Deno.test("newRequestId: ids sort in the order of their milliseconds, whatever the random bits", () => {
  const start = Date.UTC(2026, 11, 5);
  const ids: string[] = [];
  // Made later with smaller random bits: string order must still follow time.
  for (let i = 0; i < 300; i++) {
    ids.push(newRequestId(start + i * 997, new Uint8Array(10).fill(255 - (i % 256))));
  }
  assert.deepEqual([...ids].sort(), ids);
  const fresh = Array.from({ length: 1000 }, () => newRequestId());
  for (const id of fresh) assert.match(id, UUID_V7);
  assert.equal(new Set(fresh).size, fresh.length, "unique");
});

Deno.test("newRequestId: refuses a time it cannot hold and too few random bytes", () => {
  assert.throws(() => newRequestId(-1), RangeError);
  assert.throws(() => newRequestId(2 ** 48), RangeError);
  assert.throws(() => newRequestId(1.5), RangeError);
  assert.throws(() => newRequestId(0, new Uint8Array(9)), RangeError);
});
