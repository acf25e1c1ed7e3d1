import assert from "node:assert/strict";
import { HashQueue, HashQueueFullError } from "./hash_queue.ts";

function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => open = resolve);
  return { promise, open };
}

Deno.test("hash queue: at most `concurrency` jobs run; the rest wait their turn", async () => {
  const queue = new HashQueue(2, 0);
  const gates = Array.from({ length: 6 }, gate);
  const order: number[] = [];
  const jobs = gates.map((g, i) =>
    queue.run("ip", async () => {
      order.push(i);
      await g.promise;
    })
  );
  await Promise.resolve();
  assert.equal(queue.running, 2);
  assert.equal(queue.queued, 4);
  for (const g of gates) g.open();
  await Promise.all(jobs);
  assert.equal(queue.peakRunning, 2);
  assert.deepEqual(order, [0, 1, 2, 3, 4, 5]);
});

Deno.test("hash queue: round-robin by key; a full queue makes the longest line give way", async () => {
  const queue = new HashQueue(1, 3);
  const block = gate();
  const order: string[] = [];
  const job = (name: string) => async () => {
    order.push(name);
    await block.promise;
  };
  const running = queue.run("flood", job("f0"));
  const f = [1, 2, 3].map((i) => queue.run("flood", job(`f${i}`)));
  const refused = f[2].then(() => false, (err) => err instanceof HashQueueFullError);
  const user = queue.run("user", job("u1")); // the queue is full: f3 gives way
  assert.equal(await refused, true);
  block.open();
  await Promise.all([running, f[0], f[1], user]);
  assert.deepEqual(order, ["f0", "f1", "u1", "f2"]);
  await assert.rejects(() => {
    const more = new HashQueue(1, 1);
    more.run("a", () => new Promise(() => {}));
    more.run("a", () => Promise.resolve());
    return more.run("a", () => Promise.resolve());
  }, HashQueueFullError);
});
