import assert from "node:assert/strict";
import { ByteQueue } from "./byte_queue.ts";

Deno.test("ByteQueue: reads what was pushed, across chunks, then null at the end", async () => {
  const queue = new ByteQueue();
  queue.push(new Uint8Array([1, 2, 3]));
  queue.push(new Uint8Array([4]));
  const buffer = new Uint8Array(2);
  assert.equal(await queue.read(buffer), 2);
  assert.deepEqual([...buffer], [1, 2]);
  assert.equal(await queue.read(buffer), 1);
  assert.equal(buffer[0], 3);
  const pending = queue.read(buffer); // waits for more
  queue.end();
  assert.equal(await pending, 1);
  assert.equal(buffer[0], 4);
  assert.equal(await queue.read(buffer), null);
  queue.push(new Uint8Array([9])); // ignored after the end
  assert.equal(await queue.read(buffer), null);
});

Deno.test("ByteQueue: a failure or a close wakes a waiting reader", async () => {
  const failing = new ByteQueue();
  const waiting = failing.read(new Uint8Array(4));
  failing.fail(new Error("relay lost"));
  await assert.rejects(waiting, /relay lost/);
  const closing = new ByteQueue();
  const blocked = closing.read(new Uint8Array(4));
  closing.close();
  await assert.rejects(blocked, Deno.errors.BadResource);
  assert.equal(closing.closed, true);
});
