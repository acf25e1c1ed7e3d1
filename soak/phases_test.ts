import assert from "node:assert/strict";
import { percentile } from "./phases.ts";

Deno.test("percentile: nearest rank, null when empty", () => {
  assert.equal(percentile([], 99), null);
  assert.equal(percentile([5], 99), 5);
  const hundred = Array.from({ length: 100 }, (_, i) => 100 - i);
  assert.equal(percentile(hundred, 99), 99);
  assert.equal(percentile(hundred, 50), 50);
  assert.equal(percentile([1, 2, 3, 1000], 99), 1000);
});
