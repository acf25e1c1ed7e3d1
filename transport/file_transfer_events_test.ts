import assert from "node:assert/strict";
import { type FileHashingEvent, HashingReporter, ProgressMeter } from "./file_transfer_events.ts";

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

Deno.test("HashingReporter: nothing for a quick hash; then a few a second, the last one done", () => {
  let t = 0;
  const none: FileHashingEvent[] = [];
  const quick = new HashingReporter("bob", "a.bin", (e) => none.push(e), 250, () => t);
  for (t = 0; t <= 200; t += 50) quick.progress(t * 10, 2000);
  quick.end();
  assert.equal(none.length, 0, "hashing took under one interval: nothing to show");
  const events: FileHashingEvent[] = [];

  t = 0;
  const slow = new HashingReporter("bob", "big.iso", (e) => events.push(e), 250, () => t);
  for (t = 100; t <= 1000; t += 100) slow.progress(t * 1000, 1_000_000);
  slow.end();
  assert.deepEqual(events.map((e) => [e.bytes, e.done]), [
    [300_000, false], // the first once hashing lasted 250 ms
    [600_000, false],
    [900_000, false],
    [1_000_000, true], // the end, always
  ]);
  assert.ok(
    events.every((e) => e.type === "file_hashing" && e.to === "bob" && e.name === "big.iso"),
  );
  assert.equal(events[1].rate, 1_000_000);
});

Deno.test("HashingReporter: a hash that fails after being shown ends with a done event", () => {
  let t = 0;
  const events: FileHashingEvent[] = [];
  const failing = new HashingReporter("bob", "gone.bin", (e) => events.push(e), 0, () => t);
  t = 10;
  failing.progress(100, 1000);
  failing.end();
  failing.end();
  assert.deepEqual(events.map((e) => [e.bytes, e.size, e.done]), [[100, 1000, false], [
    100,
    1000,
    true,
  ]]);
});
