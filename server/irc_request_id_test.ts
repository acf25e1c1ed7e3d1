import assert from "node:assert/strict";
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
