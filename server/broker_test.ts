import assert from "node:assert/strict";
import { decodePayload, encodeFrame, encodeFrames, FrameDecoder } from "../protocol/frame.ts";
import type { ServerMessage } from "../protocol/messages.ts";
import { LocalBroker, type Publication, type Subscriber } from "./broker.ts";
import { brokerConformance } from "./broker_conformance.ts";
import { PresenceBatcher } from "./presence.ts";

/** A subscriber that records every buffer it is handed. */
function recorder(accountKey: string, blocks: string[] = []): Subscriber & {
  buffers: Uint8Array[];
  events(): Record<string, unknown>[];
} {
  const buffers: Uint8Array[] = [];
  return {
    accountKey,
    buffers,
    accepts: (p: Publication) =>
      !(p.except?.has(accountKey) ?? false) &&
      (p.from === undefined || !blocks.includes(p.from)),
    sendEncoded(frames: Uint8Array): boolean {
      buffers.push(frames);
      return true;
    },
    events(): Record<string, unknown>[] {
      const decoder = new FrameDecoder();
      return buffers.flatMap((b) => decoder.push(b)).map((p) => decodePayload(p).header);
    },
  };
}

function notice(text: string): ServerMessage {
  return { type: "notice", code: "info", text };
}

Deno.test("publishBatch: a subscriber the whole batch reaches gets one shared buffer", async () => {
  const broker = new LocalBroker();
  const ann = recorder("ann");
  const bob = recorder("bob");
  broker.subscribe("all", ann);
  broker.subscribe("all", bob);
  const accepted = await broker.publishBatch("all", [
    { event: notice("one") },
    { event: notice("two") },
    { event: notice("three") },
  ]);
  assert.equal(accepted, 2);
  assert.equal(ann.buffers.length, 1);
  assert.equal(ann.buffers[0], bob.buffers[0], "the same buffer, encoded once");
  assert.deepEqual(ann.events().map((e) => e.text), ["one", "two", "three"]);
});

Deno.test("publishBatch: a subscriber named in an except gets the runs around it, in order", async () => {
  const broker = new LocalBroker();
  const ann = recorder("ann");
  const bob = recorder("bob");
  const cat = recorder("cat");
  for (const s of [ann, bob, cat]) broker.subscribe("all", s);
  await broker.publishBatch("all", [
    { event: notice("1") },
    { event: notice("2"), except: new Set(["bob"]) },
    { event: notice("3") },
    { event: notice("4"), except: new Set(["bob", "cat"]) },
  ]);
  assert.deepEqual(ann.events().map((e) => e.text), ["1", "2", "3", "4"]);
  assert.deepEqual(bob.events().map((e) => e.text), ["1", "3"]);
  assert.equal(bob.buffers.length, 2, "two runs: before and after the excluded frame");
  assert.deepEqual(cat.events().map((e) => e.text), ["1", "2", "3"]);
  assert.equal(cat.buffers.length, 1, "one run");
});

Deno.test("publishBatch: `from` is checked for every subscriber (blocks)", async () => {
  const broker = new LocalBroker();
  const ann = recorder("ann", ["eve"]);
  const bob = recorder("bob");
  broker.subscribe("all", ann);
  broker.subscribe("all", bob);
  const accepted = await broker.publishBatch("all", [
    { event: notice("from eve"), from: "eve" },
    { event: notice("from zed"), from: "zed" },
  ]);
  assert.equal(accepted, 2);
  assert.deepEqual(ann.events().map((e) => e.text), ["from zed"]);
  assert.deepEqual(bob.events().map((e) => e.text), ["from eve", "from zed"]);
  assert.equal(await broker.publishBatch("nobody", [{ event: notice("x") }]), 0);
  assert.equal(await broker.publishBatch("all", []), 0);
});

Deno.test("PresenceBatcher: the changes of one turn go out together, each kept, in order", async () => {
  const broker = new LocalBroker();
  const ann = recorder("ann");
  const bob = recorder("bob");
  broker.subscribe("all", ann);
  broker.subscribe("all", bob);
  const presence = new PresenceBatcher(broker);
  presence.announce({ key: "bob", nick: "Bob", blocks: new Set() }, true, 1);
  presence.announce({ key: "cat", nick: "Cat", blocks: new Set(["ann"]) }, true, 2);
  presence.announce({ key: "bob", nick: "Bob", blocks: new Set() }, false, 3);
  assert.equal(presence.pending, 3);
  assert.equal(ann.buffers.length, 0, "nothing before the end of the turn");
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(presence.pending, 0);
  assert.equal(presence.batches, 1);
  const seen = (s: ReturnType<typeof recorder>) =>
    s.events().map((e) => `${e.nick}:${e.online ? "on" : "off"}`);
  assert.deepEqual(seen(ann), ["Bob:on", "Bob:off"], "cat blocks ann");
  assert.deepEqual(seen(bob), ["Cat:on"], "not told of itself");
  presence.announce({ key: "dan", nick: "Dan", blocks: new Set() }, true, 4);
  presence.close();
  assert.equal(presence.pending, 0);
});

brokerConformance("LocalBroker", () => {
  const broker = new LocalBroker();
  return Promise.resolve({ publisher: broker, subscriber: broker, close: () => broker.close() });
});

Deno.test("publish: one job's publications to a subject reach each subscriber as one shared buffer", async () => {
  const broker = new LocalBroker();
  const ann = recorder("ann");
  const bob = recorder("bob", ["eve"]);
  const eve = recorder("eve");
  for (const s of [ann, bob, eve]) broker.subscribe("room.a", s);
  const published = [
    broker.publish("room.a", { event: notice("1"), from: "ann" }),
    broker.publish("room.a", { event: notice("2"), from: "eve" }),
    broker.publish("room.a", { event: notice("3"), from: "ann", except: new Set(["eve"]) }),
  ];
  assert.equal(ann.buffers.length, 0, "delivered at the end of the job");
  assert.deepEqual(await Promise.all(published), [3, 2, 2], "each resolves to its own count");
  assert.equal(ann.buffers.length, 1, "one buffer for the three");
  assert.deepEqual(ann.events().map((e) => e.text), ["1", "2", "3"]);
  assert.deepEqual(bob.events().map((e) => e.text), ["1", "3"], "bob blocks eve");
  assert.equal(bob.buffers.length, 2, "the runs around what it does not take");
  assert.deepEqual(eve.events().map((e) => e.text), ["1", "2"]);
  assert.equal(eve.buffers.length, 1);
  assert.equal(eve.buffers[0].buffer, ann.buffers[0].buffer, "a view of the same bytes");
});

Deno.test("publish: a subscription changed in the same job sees what was published before it", async () => {
  const broker = new LocalBroker();
  const ann = recorder("ann");
  const bob = recorder("bob");
  broker.subscribe("room.a", ann);
  const before = broker.publish("room.a", { event: notice("before") });
  broker.subscribe("room.a", bob);
  broker.unsubscribe("room.a", ann);
  const after = broker.publish("room.a", { event: notice("after") });
  assert.deepEqual(await Promise.all([before, after]), [1, 1]);
  assert.deepEqual(ann.events().map((e) => e.text), ["before"]);
  assert.deepEqual(bob.events().map((e) => e.text), ["after"]);
});

Deno.test("publish: the order of one job's publications holds across subjects and batches", async () => {
  const broker = new LocalBroker();
  const ann = recorder("ann");
  broker.subscribe("room.a", ann);
  broker.subscribe("user.ann", ann);
  broker.publish("room.a", { event: notice("1") });
  broker.publish("user.ann", { event: notice("2") });
  await broker.publishBatch("room.a", [{ event: notice("3") }, { event: notice("4") }]);
  assert.deepEqual(ann.events().map((e) => e.text), ["1", "2", "3", "4"]);
});

Deno.test("a subject held by a lone subscriber, then several, then one and none", async () => {
  const broker = new LocalBroker();
  const ann = recorder("ann");
  const bob = recorder("bob");
  await broker.subscribe("user.ann", ann);
  await broker.subscribe("user.ann", ann); // idempotent
  assert.equal(broker.subscriberCount("user.ann"), 1);
  assert.equal(await broker.publish("user.ann", { event: notice("one") }), 1);
  await broker.subscribe("user.ann", bob);
  assert.equal(broker.subscriberCount("user.ann"), 2);
  assert.equal(await broker.publish("user.ann", { event: notice("two") }), 2);
  broker.unsubscribe("user.ann", ann);
  assert.equal(await broker.publish("user.ann", { event: notice("three") }), 1);
  broker.unsubscribe("user.ann", bob);
  broker.unsubscribe("user.ann", bob); // idempotent
  assert.equal(broker.subscriberCount("user.ann"), 0);
  assert.equal(await broker.publishBatch("user.ann", [{ event: notice("none") }]), 0);
  await broker.subscribe("user.ann", bob);
  broker.unsubscribe("user.ann", ann); // not its subscriber: nothing changes
  assert.equal(await broker.publishBatch("user.ann", [{ event: notice("four") }]), 1);
  assert.deepEqual(ann.events().map((e) => e.text), ["one", "two"]);
  assert.deepEqual(bob.events().map((e) => e.text), ["two", "three", "four"]);
});

Deno.test("publications with their frames encoded already are sent those bytes, not encoded again", async () => {
  const broker = new LocalBroker();
  const ann = recorder("ann");
  const bob = recorder("bob");
  await broker.subscribe("room.a", ann);
  await broker.subscribe("room.a", bob);
  // The frame says "sent", the event "not": what a subscriber gets shows which was used.
  const one = encodeFrame(notice("sent 1"));
  await broker.publish("room.a", { event: notice("not 1"), frame: one });
  // Frames lying back to back in one buffer reach a whole-batch subscriber as a view of it.
  const both = encodeFrames([notice("sent 2"), notice("sent 3")]);
  const [two, three] = [both.bytes.subarray(0, both.ends[0]), both.bytes.subarray(both.ends[0])];
  await broker.publishBatch("room.a", [
    { event: notice("not 2"), frame: two },
    { event: notice("not 3"), frame: three, except: new Set(["bob"]) },
  ]);
  // Frames of separate buffers are put together.
  await broker.publishBatch("room.a", [
    { event: notice("not 4"), frame: encodeFrame(notice("sent 4")) },
    { event: notice("not 5"), frame: encodeFrame(notice("sent 5")) },
  ]);
  assert.deepEqual(ann.events().map((e) => e.text), [
    "sent 1",
    "sent 2",
    "sent 3",
    "sent 4",
    "sent 5",
  ]);
  assert.deepEqual(bob.events().map((e) => e.text), ["sent 1", "sent 2", "sent 4", "sent 5"]);
  assert.equal(ann.buffers[0], one);
  assert.equal(ann.buffers[1].buffer, both.bytes.buffer);
  assert.equal(bob.buffers[1].buffer, both.bytes.buffer);
});

Deno.test("every delivery hands its subscriber the publications its frames are of (a receiver that reads events decodes nothing)", async () => {
  const broker = new LocalBroker();
  /** Per delivery: the texts its frames decode to, and those of the publications handed. */
  const seen = (accountKey: string) => {
    const deliveries: { frames: unknown[]; publications: unknown[] }[] = [];
    const subscriber: Subscriber = {
      accountKey,
      accepts: (p) => !(p.except?.has(accountKey) ?? false),
      sendEncoded(frames, count = 1, publications, first = 0) {
        assert.ok(publications !== undefined, "the publications are handed");
        const decoded = new FrameDecoder().push(frames).map((p) => decodePayload(p).header.text);
        assert.equal(decoded.length, count);
        deliveries.push({
          frames: decoded,
          publications: publications.slice(first, first + count).map((p) =>
            (p.event as { text: string }).text
          ),
        });
        return true;
      },
    };
    return { subscriber, deliveries };
  };
  const ann = seen("ann");
  const bob = seen("bob");
  for (const s of [ann, bob]) broker.subscribe("all", s.subscriber);
  // A batch: ann takes it whole, bob the runs around the one he is excepted from.
  await broker.publishBatch("all", [
    { event: notice("1") },
    { event: notice("2"), except: new Set(["bob"]) },
    { event: notice("3") },
  ]);
  // One job's publications (a batch), and one alone (publishNow).
  await Promise.all([
    broker.publish("all", { event: notice("4") }),
    broker.publish("all", { event: notice("5") }),
  ]);
  await broker.publish("all", { event: notice("6") });
  for (const { deliveries } of [ann, bob]) {
    for (const { frames, publications } of deliveries) assert.deepEqual(publications, frames);
  }
  assert.deepEqual(ann.deliveries.map((d) => d.frames), [["1", "2", "3"], ["4", "5"], ["6"]]);
  assert.deepEqual(bob.deliveries.map((d) => d.frames), [["1"], ["3"], ["4", "5"], ["6"]]);
});

Deno.test("subscribers that read events are handed no frames: a fan-out to them alone encodes none", async () => {
  const broker = new LocalBroker();
  /** A subscriber that records the frames' lengths and the texts of the publications. */
  const subscriber = (accountKey: string, readsEvents: boolean) => {
    const got: { bytes: number; texts: unknown[] }[] = [];
    const s: Subscriber = {
      accountKey,
      readsEvents,
      accepts: (p) => !(p.except?.has(accountKey) ?? false),
      sendEncoded(frames, count = 1, publications, first = 0) {
        got.push({
          bytes: frames.length,
          texts: publications!.slice(first, first + count).map((p) =>
            (p.event as { text: string }).text
          ),
        });
        return true;
      },
    };
    return { s, got };
  };
  const irc = subscriber("ann", true);
  const ircToo = subscriber("bob", true);
  for (const { s } of [irc, ircToo]) broker.subscribe("room.a", s);
  await broker.publishBatch("room.a", [
    { event: notice("1") },
    { event: notice("2"), except: new Set(["bob"]) },
  ]);
  await broker.publish("room.a", { event: notice("3") });
  assert.deepEqual(irc.got, [{ bytes: 0, texts: ["1", "2"] }, { bytes: 0, texts: ["3"] }]);
  assert.deepEqual(ircToo.got, [{ bytes: 0, texts: ["1"] }, { bytes: 0, texts: ["3"] }]);

  // With a subscriber that takes frames: it gets them; those that read events still none.
  const chat = recorder("cat");
  broker.subscribe("room.a", chat);
  await broker.publishBatch("room.a", [{ event: notice("4") }, { event: notice("5") }]);
  assert.deepEqual(chat.events().map((e) => e.text), ["4", "5"]);
  assert.deepEqual(irc.got.at(-1), { bytes: 0, texts: ["4", "5"] });
});
