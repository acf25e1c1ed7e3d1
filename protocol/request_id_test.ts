import assert from "node:assert/strict";
import { newRequestId } from "./request_id.ts";

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

Deno.test("newRequestId: a version 7 UUID holding the time in its first 48 bits", () => {
  const id = newRequestId(0x0190_a6c4_8f3b);
  assert.match(id, UUID_V7);
  assert.ok(id.startsWith("0190a6c4-8f3b-7"), id);
  assert.match(newRequestId(), UUID_V7);
  assert.ok(newRequestId(0).startsWith("00000000-0000-7"));
});

Deno.test("newRequestId: ids sort in the order they were made, within a millisecond too", () => {
  const start = Date.UTC(2026, 11, 5);
  const stamped = Array.from({ length: 300 }, (_, i) => newRequestId(start + i * 997));
  assert.deepEqual([...stamped].sort(), stamped);
  // Far more than one per millisecond: the package's counter keeps them in order.
  const fresh = Array.from({ length: 20_000 }, () => newRequestId());
  for (const id of fresh.slice(0, 100)) assert.match(id, UUID_V7);
  assert.deepEqual([...fresh].sort(), fresh);
  assert.equal(new Set(fresh).size, fresh.length, "unique");
});
