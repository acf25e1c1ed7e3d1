import assert from "node:assert/strict";
import { ProgressMeter } from "./file_transfer_events.ts";

Deno.test("ProgressMeter reports at most once per interval, and always the end", () => {
  const meter = new ProgressMeter(1000, 100, 250, 0);
  assert.deepEqual(meter.update(300, 1000), { bytes: 300, size: 1000, rate: 200, eta: 3.5 });
  assert.equal(meter.update(400, 1100), null);
  assert.equal(meter.update(500, 1249), null);
  assert.equal(meter.update(600, 1250)?.bytes, 600);
  assert.deepEqual(meter.update(1000, 1251), {
    bytes: 1000,
    size: 1000,
    rate: 900 / 1.251,
    eta: 0,
  });
  assert.equal(meter.update(1000, 2000), null, "nothing new");
});

Deno.test("ProgressMeter: rate over the last few seconds; unknown time left without a rate", () => {
  const meter = new ProgressMeter(100_000, 0, 0, 0);
  assert.deepEqual(meter.update(0, 10), { bytes: 0, size: 100_000, rate: 0, eta: null });
  const slow = meter.update(1000, 1000)!;
  assert.equal(slow.rate, 1000);
  assert.equal(slow.eta, 99);
  // Ten seconds later at a new pace: the old samples fall out of the window.
  for (let t = 2000; t <= 10_000; t += 1000) meter.update(1000 + (t - 1000) * 10, t);
  const fast = meter.update(100_000 - 10_000, 11_000)!;
  assert.ok(fast.rate > 5000, `rate ${fast.rate}`);
  const stalled = new ProgressMeter(10, 0, 0, 0);
  assert.equal(stalled.update(0, 0)?.eta, null, "no rate yet: time left unknown");
  assert.equal(stalled.update(0, 5), null, "nothing new");
});
