import assert from "node:assert/strict";
import { DeadlineWheel, type Timed } from "./deadline_wheel.ts";

/** An item recording when it was told; `then` runs on each call (to schedule again). */
function item(then?: (now: number, self: Timed & { told: number[] }) => void) {
  let wake: () => void = () => {};
  const self: Timed & { told: number[]; next(): Promise<void> } = {
    deadlineAt: 0,
    told: [],
    onDeadline(now: number) {
      self.told.push(now);
      then?.(now, self);
      wake();
    },
    /** Resolves at the next call (at most 10 s from now). */
    next() {
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error("not told within 10 s")), 10_000);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    },
  };
  return self;
}

// Each test ends with the wheel empty and not stopped: the test's timer sanitizer then
// fails it if the wheel's timer still runs (it stops by itself once empty).

Deno.test("an item is told once, at or after its deadline", async () => {
  const wheel = new DeadlineWheel(10);
  const a = item();
  const at = performance.now() + 50;
  const told = a.next();
  wheel.schedule(a, at);
  assert.equal(wheel.size, 1);
  assert.ok(a.deadlineAt >= at);
  await told;
  assert.equal(a.told.length, 1);
  assert.ok(a.told[0] >= at, `told at ${a.told[0]}, deadline ${at}`);
  assert.equal(a.deadlineAt, 0);
  assert.equal(wheel.size, 0);
});

Deno.test("an item waits for its earliest deadline only: a later one changes nothing", async () => {
  const wheel = new DeadlineWheel(10);
  const a = item();
  const now = performance.now();
  wheel.schedule(a, now + 5_000);
  wheel.schedule(a, now + 30); // earlier: moved
  wheel.schedule(a, now + 3_000); // later: ignored
  assert.equal(wheel.size, 1);
  await a.next();
  assert.equal(a.told.length, 1);
  assert.ok(a.told[0] < now + 3_000);
  assert.equal(wheel.size, 0);
});

Deno.test("a cancelled item is not told; scheduleNextTick tells at the next tick", async () => {
  const wheel = new DeadlineWheel(10);
  const cancelled = item();
  const b = item();
  wheel.schedule(cancelled, performance.now() + 20);
  wheel.cancel(cancelled);
  assert.equal(cancelled.deadlineAt, 0);
  const told = b.next();
  wheel.schedule(b, performance.now() + 60);
  wheel.scheduleNextTick(b);
  await told;
  assert.equal(b.told.length, 1);
  assert.deepEqual(cancelled.told, []);
  assert.equal(wheel.size, 0);
});

Deno.test("a deadline past the wheel's reach is told early, and scheduled again it comes", async () => {
  const wheel = new DeadlineWheel(10, 4); // reaches 40 ms ahead
  const at = performance.now() + 150;
  let done!: () => void;
  const finished = new Promise<void>((resolve) => done = resolve);
  const a = item((now, self) => {
    if (now < at) wheel.schedule(self, at);
    else done();
  });
  wheel.schedule(a, at);
  await finished;
  assert.ok(a.told.length >= 2, `told ${a.told.length} times`);
  assert.ok(a.told.at(-1)! >= at);
  assert.ok(a.told.slice(0, -1).every((t) => t < at));
  assert.equal(wheel.size, 0);
});

Deno.test("a late run (a stalled event loop) tells each item once; what it schedules waits", async () => {
  const wheel = new DeadlineWheel(10);
  let runs = 0;
  const a = item((_now, self) => {
    if (++runs < 3) wheel.scheduleNextTick(self);
  });
  const b = item();
  wheel.schedule(a, performance.now() + 10);
  wheel.schedule(b, performance.now() + 30);
  // Stall the event loop past several ticks.
  const until = performance.now() + 80;
  while (performance.now() < until) { /* busy */ }
  await b.next();
  while (runs < 3) await a.next();
  assert.equal(b.told.length, 1);
  assert.equal(new Set(a.told).size, a.told.length, `told twice in one run: ${a.told}`);
  assert.equal(wheel.size, 0);
});

Deno.test("stop() empties the wheel and tells nothing more", () => {
  const wheel = new DeadlineWheel(10);
  const a = item();
  wheel.schedule(a, performance.now() + 10);
  wheel.stop();
  assert.equal(a.deadlineAt, 0);
  assert.equal(wheel.size, 0);
  wheel.schedule(a, performance.now() + 10);
  assert.equal(wheel.size, 0);
});

Deno.test("a wheel needs a positive tick and two slots", () => {
  assert.throws(() => new DeadlineWheel(0), RangeError);
  assert.throws(() => new DeadlineWheel(10, 1), RangeError);
});
