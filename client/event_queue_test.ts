import assert from "node:assert/strict";
import { EventQueue } from "./event_queue.ts";

Deno.test("EventQueue: delivers in order, ends after draining, drops the oldest past its bound", async () => {
  const queue = new EventQueue<number>(3);
  const waiting = queue.next();
  queue.push(1);
  assert.deepEqual(await waiting, { value: 1, done: false });
  for (const n of [2, 3, 4, 5]) queue.push(n);
  assert.equal(queue.dropped, 1);
  queue.end();
  queue.push(6);
  const seen: number[] = [];
  for await (const n of queue) seen.push(n);
  assert.deepEqual(seen, [3, 4, 5]);
  assert.deepEqual(await queue.next(), { value: undefined, done: true });
});
