import assert from "node:assert/strict";
import { DurabilityBarrier } from "./durability.ts";

/** A sync the test completes by hand. */
function manualSync() {
  const calls: { resolve: () => void; reject: (e: Error) => void }[] = [];
  const sync = () => {
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    calls.push({ resolve, reject });
    return promise;
  };
  return { sync, calls };
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

Deno.test("DurabilityBarrier: a commit is durable only after a sync that began after it", async () => {
  const { sync, calls } = manualSync();
  const barrier = new DurabilityBarrier(sync);
  await barrier.durable(); // nothing committed: at once
  assert.equal(calls.length, 0);
  const order: string[] = [];
  barrier.committed();
  const first = barrier.durable().then(() => order.push("first"));
  assert.equal(calls.length, 1);
  // Committed while the first sync runs: that sync does not cover it.
  barrier.committed();
  const second = barrier.durable().then(() => order.push("second"));
  barrier.committed();
  const third = barrier.durable().then(() => order.push("third"));
  assert.equal(calls.length, 1, "one sync at a time");
  calls[0].resolve();
  await first;
  await tick();
  assert.deepEqual(order, ["first"]);
  assert.equal(calls.length, 2, "the next sync covers both later commits");
  calls[1].resolve();
  await Promise.all([second, third]);
  assert.deepEqual(order, ["first", "second", "third"]);
  assert.equal(barrier.syncs, 2);
  await barrier.durable();
  assert.equal(calls.length, 2);
});

Deno.test("DurabilityBarrier: a failed sync rejects the commits it was to cover; the next retries", async () => {
  const { sync, calls } = manualSync();
  const barrier = new DurabilityBarrier(sync);
  barrier.committed();
  const failed = barrier.durable();
  calls[0].reject(new Error("EIO"));
  await assert.rejects(failed, /EIO/);
  assert.equal(barrier.syncs, 0);
  const retried = barrier.durable();
  assert.equal(calls.length, 2, "still not durable: synced again");
  calls[1].resolve();
  await retried;
  assert.equal(barrier.syncs, 1);
});

Deno.test("DurabilityBarrier: what onSyncEnd commits is covered by the very next sync", async () => {
  const { sync, calls } = manualSync();
  let late: Promise<void> | undefined;
  let queued = 0;
  const barrier: DurabilityBarrier = new DurabilityBarrier(sync, {
    // A writer that queued work during the sync commits it when the sync ends.
    onSyncEnd: () => {
      if (queued === 0) return;
      queued = 0;
      barrier.committed();
      late = barrier.durable();
    },
  });
  assert.equal(barrier.syncing, false);
  barrier.committed();
  const first = barrier.durable();
  assert.equal(barrier.syncing, true);
  queued = 3; // arrived during the first sync, not committed yet
  calls[0].resolve();
  await first;
  assert.ok(late !== undefined, "onSyncEnd ran when the sync ended");
  assert.equal(calls.length, 2, "the next sync started right after the hook's commit");
  assert.equal(barrier.syncing, true);
  let settled = false;
  late.then(() => settled = true);
  await tick();
  assert.equal(settled, false, "not durable before the sync that covers it");
  calls[1].resolve();
  await late;
  assert.equal(barrier.syncs, 2);
  assert.equal(barrier.syncing, false);
  // A sync with nothing queued meanwhile is followed by none.
  barrier.committed();
  const third = barrier.durable();
  calls[2].resolve();
  await third;
  await tick();
  assert.equal(calls.length, 3);
});

Deno.test("DurabilityBarrier: with a schedule, the sync that durable() asks for starts when the schedule says, once for several asks", async () => {
  const { sync, calls } = manualSync();
  const scheduled: (() => void)[] = [];
  const barrier = new DurabilityBarrier(sync, { schedule: (start) => scheduled.push(start) });
  barrier.committed();
  const first = barrier.durable();
  barrier.committed();
  const second = barrier.durable();
  assert.equal(calls.length, 0, "not started before the schedule's call");
  assert.equal(scheduled.length, 1, "one start scheduled for both asks");
  scheduled[0]();
  assert.equal(calls.length, 1, "started by the schedule's call");
  calls[0].resolve();
  await Promise.all([first, second]);
  assert.equal(barrier.syncs, 1, "both commits covered by the one sync");
  // A commit made while a sync runs is synced as that one ends, without the schedule.
  barrier.committed();
  const third = barrier.durable();
  scheduled[1]();
  assert.equal(calls.length, 2);
  barrier.committed();
  const fourth = barrier.durable();
  assert.equal(scheduled.length, 2, "nothing scheduled while a sync runs");
  calls[1].resolve();
  await third;
  await tick();
  assert.equal(calls.length, 3, "the next sync started as the last ended");
  calls[2].resolve();
  await fourth;
});
