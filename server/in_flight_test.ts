import assert from "node:assert/strict";
import { InFlight } from "./in_flight.ts";

Deno.test("InFlight: counts until settled either way; atMost waits for the count to drop", async () => {
  const inFlight = new InFlight();
  const a = Promise.withResolvers<void>();
  const b = Promise.withResolvers<void>();
  inFlight.track(a.promise);
  inFlight.track(b.promise);
  assert.equal(inFlight.size, 2);
  await inFlight.atMost(2); // already true
  const order: string[] = [];
  const one = inFlight.atMost(1).then(() => order.push("at most 1"));
  const none = inFlight.atMost(0).then(() => order.push("none"));
  a.reject(new Error("failed requests count too"));
  await one;
  assert.equal(inFlight.size, 1);
  assert.deepEqual(order, ["at most 1"]);
  b.resolve();
  await none;
  assert.deepEqual(order, ["at most 1", "none"]);
  assert.equal(inFlight.size, 0);
});

Deno.test("InFlight: begin and settled count a request without a promise", async () => {
  const inFlight = new InFlight();
  inFlight.begin();
  inFlight.begin();
  assert.equal(inFlight.size, 2);
  let woken = false;
  const none = inFlight.atMost(0).then(() => woken = true);
  inFlight.settled();
  await Promise.resolve();
  assert.equal(woken, false);
  inFlight.settled();
  await none;
  assert.equal(inFlight.size, 0);
});
