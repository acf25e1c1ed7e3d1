import assert from "node:assert/strict";
import { RoomRing } from "./room_ring.ts";

/** Pushes message `id` (its fields derived from the id), dropping the oldest when full. */
function say(ring: RoomRing, id: number, text = `text ${id}`): void {
  if (ring.full) ring.dropOldest();
  ring.push(id, 1000 + id, `key${id % 3}`, `Nick${id % 3}`, `c${id}`, text, id * 7);
}

/** Every held message, oldest first, as the tests compare them. */
function held(ring: RoomRing) {
  return Array.from({ length: ring.length }, (_, k) => ({
    id: ring.idAt(k),
    ts: ring.tsAt(k),
    fromKey: ring.fromKeyAt(k),
    from: ring.fromAt(k),
    clientId: ring.clientIdAt(k),
    text: ring.textAt(k),
    hash: ring.hashAt(k),
  }));
}

function expected(ids: number[]) {
  return ids.map((id) => ({
    id,
    ts: 1000 + id,
    fromKey: `key${id % 3}`,
    from: `Nick${id % 3}`,
    clientId: `c${id}`,
    text: `text ${id}`,
    hash: id * 7,
  }));
}

Deno.test("RoomRing: at its bound each message takes the oldest one's slot, across the wrap", () => {
  const ring = new RoomRing("a", 0, 5);
  for (let id = 1; id <= 12; id++) {
    say(ring, id);
    const first = Math.max(1, id - 4);
    assert.deepEqual(held(ring), expected(range(first, id)), `after ${id}`);
  }
  assert.equal(ring.capacity, 5, "no slot beyond the bound");
  const fraction = new RoomRing("b", 1, 2.5);
  for (let id = 1; id <= 4; id++) say(fraction, id);
  assert.deepEqual(held(fraction), expected([3, 4]), "a bound of 2.5 holds 2");
  // Ids 8..12 sit in slots 2,3,4,0,1: the search runs across the wrap.
  assert.equal(ring.firstAtLeast(0), 0);
  assert.equal(ring.firstAtLeast(10), 2);
  assert.equal(ring.firstAtLeast(11), 3);
  assert.equal(ring.firstAtLeast(13), 5);
  assert.equal(ring.indexOf(12), 4);
  assert.equal(ring.indexOf(7), -1, "a forgotten id is not found");
  assert.throws(() => ring.push(13, 0, "k", "n", "c", "t", 0), RangeError);
});

Deno.test("RoomRing: slots double up to the bound, in order, with gaps in the ids", () => {
  const ring = new RoomRing("a", 0, 100);
  const ids: number[] = [];
  for (let i = 1; i <= 250; i++) {
    say(ring, i * 3);
    ids.push(i * 3);
    // Dropped by the store's bound alone; here also a few at a time, mid-growth.
    if (i % 40 === 0) ring.dropOldest(), ids.shift();
  }
  assert.equal(ring.capacity, 100);
  assert.deepEqual(held(ring), expected(ids.slice(-100)));
  assert.equal(ring.indexOf(750), 99);
  assert.equal(ring.firstAtLeast(749), 99);
  const unbounded = new RoomRing("b", 1, Infinity);
  for (let id = 1; id <= 1000; id++) say(unbounded, id);
  assert.equal(unbounded.capacity, 1024);
  assert.deepEqual(held(unbounded), expected(range(1, 1000)));
});

Deno.test("RoomRing: the log reuses the bytes of forgotten messages", () => {
  // Live bytes from a tenth to most of half the log: moved to its front while held.
  for (const bound of [4, 8, 12]) {
    const ring = new RoomRing("a", 0, bound);
    const texts: string[] = [];
    for (let id = 1; id <= 5_000; id++) {
      const text = `${"é".repeat(id % 7)}${"x".repeat(id % 30)}🙂${id}`;
      texts.push(text);
      say(ring, id, text);
      const n = Math.min(id, bound);
      const got = range(0, n - 1).map((k) => ring.textAt(k));
      if (got.join() !== texts.slice(-n).join()) {
        assert.deepEqual(got, texts.slice(-n), `bound ${bound}, after ${id}`);
      }
    }
    // At most ~60 bytes each (and room for the next one's worst case): the log stays
    // at twice what is held, moved to its front from time to time.
    assert.equal(ring.logBytes, bound <= 8 ? 1024 : 2048, `bound ${bound}`);
    assert.equal(ring.clientIdAt(bound - 1), "c5000");
  }
});

Deno.test("RoomRing: a long text grows the log; emptied, the ring starts over", () => {
  const ring = new RoomRing("a", 0, 3);
  const long = "ü".repeat(4000);
  say(ring, 1, long);
  say(ring, 2);
  assert.equal(ring.textAt(0), long);
  assert.ok(ring.logBytes >= 2 * 3 * 4000, `${ring.logBytes} bytes`);
  for (let k = 0; k < 5; k++) ring.dropOldest();
  assert.equal(ring.length, 0);
  assert.equal(ring.firstAtLeast(1), 0);
  say(ring, 9);
  assert.deepEqual(held(ring), expected([9]));
});

Deno.test("RoomRing: texts and request ids UTF-8 cannot carry come back exactly", () => {
  const ring = new RoomRing("a", 0, 2);
  const odd = ["lone \ud800 high", "lone \udc00 low", "pair \ud83d\ude42 ok", "end \ud83d"];
  for (let i = 0; i < odd.length; i++) {
    if (ring.full) ring.dropOldest();
    ring.push(i + 1, 0, "k", "n", `id${odd[i]}`, odd[i], 0);
    assert.equal(ring.textAt(ring.length - 1), odd[i]);
    assert.equal(ring.clientIdAt(ring.length - 1), `id${odd[i]}`);
  }
  assert.deepEqual([ring.textAt(0), ring.textAt(1)], odd.slice(2));
});

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}
