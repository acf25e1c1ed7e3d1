import assert from "node:assert/strict";
import { Histogram } from "./histogram.ts";

Deno.test("percentiles are within 2 % of the exact values", () => {
  const h = new Histogram();
  const values: number[] = [];
  for (let i = 1; i <= 10_000; i++) {
    const v = (i * 7919) % 10_000 / 100 + 0.01; // 0.01 … 100 ms, shuffled
    values.push(v);
    h.record(v);
  }
  values.sort((a, b) => a - b);
  for (const q of [0.5, 0.9, 0.99, 0.999]) {
    const exact = values[Math.ceil(q * values.length) - 1];
    const got = h.percentile(q);
    assert.ok(Math.abs(got - exact) / exact <= 0.021, `q=${q}: ${got} vs ${exact}`);
  }
  assert.equal(h.count, 10_000);
  assert.equal(h.max, values[values.length - 1]);
});

Deno.test("merging serialised histograms equals recording everything in one", () => {
  const a = new Histogram();
  const b = new Histogram();
  const all = new Histogram();
  for (let i = 0; i < 1000; i++) {
    const v = i / 10;
    (i % 2 === 0 ? a : b).record(v);
    all.record(v);
  }
  const merged = Histogram.fromJSON(JSON.parse(JSON.stringify(a.toJSON())));
  merged.merge(JSON.parse(JSON.stringify(b.toJSON())));
  assert.deepEqual(merged.toJSON(), all.toJSON());
});

Deno.test("empty, negative and huge values", () => {
  const h = new Histogram();
  assert.ok(Number.isNaN(h.percentile(0.5)));
  h.record(-3);
  assert.equal(h.percentile(0.5), 0); // bucket 0, capped at the largest value seen
  h.record(1e6); // 1000 s
  assert.equal(h.percentile(1), 1e6); // capped at the largest value seen
  h.record(1e12); // past the last bucket: kept there, still counted
  assert.equal(h.count, 3);
  assert.ok(h.percentile(1) > 1e6);
  h.reset();
  assert.equal(h.count, 0);
});
