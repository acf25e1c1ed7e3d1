import assert from "node:assert/strict";
import v8 from "node:v8";
import { newIrcRequestId } from "./irc_request_id.ts";

const UUID_V7 = /^irc-[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

Deno.test("IRC request ids: irc- and a version 7 UUID of the time made, in the order made, none twice", () => {
  const before = Date.now();
  const ids = Array.from({ length: 20_000 }, () => newIrcRequestId());
  const after = Date.now();
  for (const id of ids) assert.match(id, UUID_V7);
  assert.deepEqual([...ids].sort(), ids, "in the order made");
  assert.equal(new Set(ids).size, ids.length, "none twice");
  const ms = (id: string) => parseInt(id.slice(4, 12) + id.slice(13, 17), 16);
  assert.ok(ms(ids[0]) >= before, `${ms(ids[0])} ≥ ${before}`);
  // 20,000 in a millisecond or so: the counter (31 bits) never carries far.
  assert.ok(ms(ids.at(-1)!) <= after + 1, `${ms(ids.at(-1)!)} ≤ ${after} + 1`);
});

Deno.test("IRC request ids: a clock that goes back keeps the order (the counter goes on)", () => {
  const first = newIrcRequestId(Date.now() + 60_000);
  const later = newIrcRequestId(Date.now());
  assert.ok(later > first, `${later} after ${first}`);
  assert.equal(later.slice(0, 17), first.slice(0, 17), "the same millisecond");
});

Deno.test("IRC request ids: one string per id, no garbage beside it", () => {
  const allocated = () =>
    (v8.getHeapStatistics() as { total_allocated_bytes?: number }).total_allocated_bytes;
  if (allocated() === undefined) {
    console.log("skipped: this runtime does not count allocated bytes");
    return;
  }
  for (let i = 0; i < 10_000; i++) newIrcRequestId(); // compiled
  const n = 50_000;
  const ids = new Array<string>(n);
  const before = allocated()!;
  for (let i = 0; i < n; i++) ids[i] = newIrcRequestId();
  const perId = (allocated()! - before - 8 * n) / n;
  // `irc-${v7()}` (npm uuid): ~1,000 B per id; this: a 40-character string (~56 B).
  assert.ok(perId < 160, `${perId.toFixed(0)} B per id`);
});
