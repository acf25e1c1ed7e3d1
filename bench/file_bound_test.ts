import assert from "node:assert/strict";
import { boundOf, measureByteCosts, peerBound, relayBound } from "./file_bound.ts";

/** `actual` within `epsilon` of `expected`. */
function assertAlmostEquals(actual: number, expected: number, epsilon: number): void {
  assert.ok(Math.abs(actual - expected) <= epsilon, `${actual} is not ${expected}`);
}

const MiB = 1024 * 1024;
const raw = { ms: 124, cpuMs: { sender: 90, receiver: 90 } };
const costs = { sha256: 0.65, seal: 0.65, open: 0.65 };

Deno.test("file bound: the longest of the raw copy, one process's work, all work over the cores", () => {
  assert.deepEqual(boundOf({ a: 100, b: 100, c: 100 }, 50, 2).ms, 150);
  assert.deepEqual(boundOf({ a: 200, b: 10 }, 50, 2).ms, 200);
  assert.deepEqual(boundOf({ a: 10, b: 10 }, 50, 2).ms, 50);
  assert.deepEqual(boundOf({ a: 10, b: 10 }, 50, 2).ratio, 1);
  assert.deepEqual(boundOf({ a: 100, b: 100, c: 100 }, 50, 3).ms, 100);
});

Deno.test("file bound: peer to peer adds sealing to the sender and opening to the receiver", () => {
  const b = peerBound(raw, 128 * MiB, costs, 2);
  assertAlmostEquals(b.processMs.sender, 90 + 128 * MiB * 0.65 / 1e6, 1e-6);
  assertAlmostEquals(b.processMs.receiver, 90 + 128 * MiB * 0.65 / 1e6, 1e-6);
  assert.deepEqual(b.ratio, Math.round(124 / b.processMs.receiver * 1000) / 1000);
  // Free crypto: the raw copy itself.
  assert.deepEqual(peerBound(raw, 128 * MiB, { sha256: 0, seal: 0, open: 0 }, 2).ratio, 1);
});

Deno.test("file bound: through the server, three processes share the cores", () => {
  const b = relayBound(raw, 128 * MiB, costs, 2);
  const hash = 128 * MiB * 0.65 / 1e6;
  assert.deepEqual(b.processMs, { sender: 90 + hash, server: 180, receiver: 90 + hash });
  assertAlmostEquals(b.ms, (360 + 2 * hash) / 2, 1e-6);
  assert.ok(b.ratio < 0.5, `ratio ${b.ratio}`);
  // With a core each, the busiest process alone.
  assertAlmostEquals(relayBound(raw, 128 * MiB, costs, 3).ms, 180, 1e-6);
});

Deno.test("file bound: byte costs are measured (the opening checks the tag)", () => {
  const measured = measureByteCosts(2 * MiB, 1);
  for (const [what, ns] of Object.entries(measured)) {
    assert.ok(Number.isFinite(ns) && ns > 0, `${what}: ${ns}`);
  }
});
