import assert from "node:assert/strict";
import type { ServerMessage } from "../protocol/messages.ts";
import { LocalBroker, type Publication, type Subscriber, userSubject } from "./broker.ts";
import { confirmDelivered, deliverHeld, type HeldTarget, HeldWindow } from "./held_delivery.ts";
import { MemoryStore } from "./memory_store.ts";

/** A connection whose writes the test completes by hand. */
function slowTarget(nick: string): HeldTarget & {
  frames: Uint8Array[];
  written: number;
  queued: number;
  maxQueued: number;
  ended: boolean;
  write(bytes: number): void;
  close(): void;
} {
  let waiters: { offset: number; resolve: (ok: boolean) => void }[] = [];
  let closed = false;
  const target = {
    nick,
    frames: [] as Uint8Array[],
    written: 0,
    queued: 0,
    maxQueued: 0,
    ended: false,
    send(frame: Uint8Array): boolean {
      target.frames.push(frame);
      target.queued += frame.length;
      target.maxQueued = Math.max(target.maxQueued, target.queued);
      return true;
    },
    outbound: () => ({ written: target.written, queued: target.queued }),
    whenWritten(offset: number): Promise<boolean> {
      if (target.written >= offset) return Promise.resolve(true);
      if (closed) return Promise.resolve(false);
      return new Promise<boolean>((resolve) => waiters.push({ offset, resolve }));
    },
    write(bytes: number): void {
      const n = Math.min(bytes, target.queued);
      target.written += n;
      target.queued -= n;
      const ready = waiters.filter((w) => w.offset <= target.written);
      waiters = waiters.filter((w) => w.offset > target.written);
      for (const w of ready) w.resolve(true);
    },
    close(): void {
      closed = true;
      target.ended = true;
      for (const w of waiters) w.resolve(false);
      waiters = [];
    },
  };
  return target;
}

/** Records the receipts published to `accountKey`. */
function receipts(broker: LocalBroker, accountKey: string): ServerMessage[] {
  const got: ServerMessage[] = [];
  const subscriber: Subscriber = {
    accountKey,
    accepts: (p: Publication) => {
      got.push(p.event);
      return true;
    },
    sendEncoded: () => true,
  };
  broker.subscribe(userSubject(accountKey), subscriber);
  return got;
}

async function heldFor(store: MemoryStore, n: number, text = "x".repeat(1000)): Promise<number[]> {
  const ids: number[] = [];
  for (let i = 0; i < n; i++) {
    const { message } = await store.appendMessage({
      fromKey: "alice",
      from: "Alice",
      toKey: "bob",
      to: "Bob",
      text: `${i} ${text}`,
      ts: i,
      clientId: `c${i}`,
    });
    ids.push(message.id);
  }
  return ids;
}

/** Lets the delivery run until it waits on the connection again. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

Deno.test("deliverHeld: paced by what is written, delivered only once written", async () => {
  const store = new MemoryStore();
  const broker = new LocalBroker();
  const ids = await heldFor(store, 40);
  const got = receipts(broker, "alice");
  const target = slowTarget("Bob");
  const done = deliverHeld(target, {
    store,
    broker,
    accountKey: "bob",
    throughId: ids[ids.length - 1],
    maxQueuedBytes: 4096,
    pageSize: 7,
    now: () => 1,
  });
  await settle();
  assert.ok(target.frames.length > 0 && target.frames.length < 40, "a bounded first part");
  assert.equal(got.length, 0, "nothing delivered before it is written");
  assert.equal((await store.undelivered("bob")).length, 40);
  while (target.frames.length < 40 || target.queued > 0) {
    target.write(1500);
    await settle();
    const receipted = got.length;
    const fullyWritten = prefixWritten(target.frames, target.written);
    assert.ok(receipted <= fullyWritten, `${receipted} receipts for ${fullyWritten} written`);
  }
  assert.equal(await done, 40);
  assert.ok(target.maxQueued <= 4096, `at most the bound queued (${target.maxQueued})`);
  assert.deepEqual(got.map((r) => (r as { id: number }).id), ids);
  assert.deepEqual(await store.undelivered("bob"), []);
});

Deno.test("deliverHeld: what was not written when the connection ends stays held", async () => {
  const store = new MemoryStore();
  const broker = new LocalBroker();
  const ids = await heldFor(store, 20);
  const got = receipts(broker, "alice");
  const target = slowTarget("Bob");
  const done = deliverHeld(target, {
    store,
    broker,
    accountKey: "bob",
    throughId: ids[ids.length - 1],
    maxQueuedBytes: 4096,
    now: () => 1,
  });
  await settle();
  const queuedFrames = target.frames.length;
  target.write(target.frames[0].length + target.frames[1].length); // two written
  await settle();
  target.close();
  const delivered = await done;
  assert.equal(delivered, 2);
  assert.equal(got.length, 2);
  assert.ok(queuedFrames > 2);
  assert.deepEqual((await store.undelivered("bob")).map((m) => m.id), ids.slice(2));
});

Deno.test("deliverHeld: skips what the session got live, and ids past throughId", async () => {
  const store = new MemoryStore();
  const broker = new LocalBroker();
  const ids = await heldFor(store, 5, "short");
  const window = new HeldWindow("bob");
  assert.equal(window.admit({ type: "dm", id: ids[1], to: "BOB" }), true, "live first");
  window.through(ids[3]);
  const target = slowTarget("Bob");
  const done = deliverHeld(target, {
    store,
    broker,
    accountKey: "bob",
    throughId: ids[3],
    window,
    maxQueuedBytes: 1 << 20,
    now: () => 1,
  });
  await settle();
  target.write(1 << 20);
  assert.equal(await done, 3);
  assert.equal(target.frames.length, 3, "ids 0, 2 and 3: not 1 (live) nor 4 (later)");
  assert.equal(window.admit({ type: "dm", id: ids[2], to: "bob" }), false, "not live again");
  assert.equal(window.admit({ type: "dm", id: ids[4], to: "bob" }), true, "later ids are live");
  assert.equal(window.admit({ type: "dm", id: ids[2], to: "carol" }), true, "others' dms pass");
  assert.equal(window.admit({ type: "msg", id: ids[2] }), true);
});

Deno.test("deliverHeld with acks: delivered on acknowledgement, open until all are or the end", async () => {
  const store = new MemoryStore();
  const broker = new LocalBroker();
  const ids = await heldFor(store, 4, "short");
  const got = receipts(broker, "alice");
  const window = new HeldWindow("bob");
  window.through(ids[3]);
  const target = Object.assign(slowTarget("Bob"), { acks: true });
  let finished = false;
  const done = deliverHeld(target, {
    store,
    broker,
    accountKey: "bob",
    throughId: ids[3],
    window,
    maxQueuedBytes: 1 << 20,
    now: () => 1,
  }).then(() => finished = true);
  await settle();
  target.write(1 << 20);
  await settle();
  assert.equal(target.frames.length, 4);
  assert.equal(got.length, 0, "written is not enough when the client acknowledges");
  assert.equal(window.unacknowledged, 4);
  const acked = window.acknowledge([ids[0], ids[2], 12345]);
  assert.deepEqual(acked.map((m) => m.id), [ids[0], ids[2]]);
  assert.equal(await confirmDelivered(acked, "Bob", { store, broker, now: () => 1 }), 2);
  assert.deepEqual(got.map((r) => (r as { id: number }).id), [ids[0], ids[2]]);
  assert.deepEqual(window.acknowledge([ids[0]]), [], "once");
  await settle();
  assert.equal(finished, false, "still waiting for two");
  window.acknowledge([ids[1], ids[3]]);
  await done;
  assert.deepEqual((await store.undelivered("bob")).map((m) => m.id), [ids[1], ids[3]]);
});

/** How many of `frames`, in order, fit in `written` bytes. */
function prefixWritten(frames: Uint8Array[], written: number): number {
  let n = 0;
  let end = 0;
  while (n < frames.length && end + frames[n].length <= written) end += frames[n++].length;
  return n;
}
