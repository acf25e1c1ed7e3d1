import assert from "node:assert/strict";
import { MemoryStore } from "./memory_store.ts";
import { storeConformance } from "./store_conformance.ts";

storeConformance("MemoryStore", () => Promise.resolve(new MemoryStore()));

/** A direct message from alice to bob, as the retention tests store it. */
const DIRECT = {
  fromKey: "alice",
  from: "Alice",
  toKey: "bob",
  to: "Bob",
  text: "direct",
  ts: 0,
  clientId: "d",
};

Deno.test("MemoryStore: returned messages are copies", async () => {
  const store = new MemoryStore();
  await store.createRoom({ key: "a", name: "A", topic: "", topicBy: "", createdAt: 0 });
  const { message } = await store.appendMessage({
    fromKey: "alice",
    from: "Alice",
    room: "a",
    text: "original",
    ts: 1,
    clientId: "1",
  });
  message.text = "changed";
  const [stored] = await store.history({ room: "a", limit: 1 });
  assert.equal(stored.text, "original");
  await store.close();
});

Deno.test("MemoryStore: roomHistory bounds each room's messages; direct messages stay", async () => {
  const store = new MemoryStore({ roomHistory: 32 });
  await store.createRoom({ key: "a", name: "A", topic: "", topicBy: "", createdAt: 0 });
  await store.addMember("a", "bob");
  const say = (i: number) =>
    store.appendMessage({
      fromKey: "alice",
      from: "Alice",
      room: "a",
      text: `r${i}`,
      ts: i,
      clientId: `r${i}`,
    });
  const first = await store.appendMessage(DIRECT);
  for (let i = 0; i < 100; i++) await say(i);
  const kept = await store.history({ room: "a", limit: 1000 });
  assert.ok(kept.length <= 32 && kept.length >= 30, `${kept.length} kept`);
  assert.equal(kept.at(-1)?.text, "r99", "the newest are kept");
  const seen = await store.messagesAfter("bob", 0, 1000);
  assert.deepEqual(seen[0], first.message, "the direct message is still there");
  assert.equal(seen.length, kept.length + 1);
  assert.equal(await store.lastMessageId(), 101, "ids go on");
  assert.equal((await say(0)).duplicate, false, "a forgotten message's resend is stored again");
  assert.equal((await say(99)).duplicate, true);
  assert.deepEqual((await store.undelivered("bob")).map((m) => m.text), ["direct"]);
  assert.throws(() => new MemoryStore({ roomHistory: 0 }), RangeError);
  await store.close();
});

Deno.test("MemoryStore: forgotten room messages hold nothing, ids and resends go on", async () => {
  const store = new MemoryStore({ roomHistory: 32 });
  await store.createRoom({ key: "a", name: "A", topic: "", topicBy: "", createdAt: 0 });
  await store.addMember("a", "bob");
  await store.appendMessage(DIRECT);
  for (let i = 0; i < 5000; i++) {
    await store.appendMessage({
      fromKey: i % 2 === 0 ? "alice" : "carol",
      from: "x",
      room: "a",
      text: `r${i}`,
      ts: i,
      clientId: String(i),
    });
  }
  const kept = (await store.history({ room: "a", limit: 1000 })).length;
  // The room's kept messages and the direct one: no slot for the 4,968 or so forgotten.
  assert.equal(store.heldMessages, kept + 1);
  assert.equal(await store.lastMessageId(), 5001);
  const after = await store.messagesAfter("bob", 4990, 1000);
  assert.deepEqual(after.map((m) => m.id), Array.from({ length: 11 }, (_, i) => 4991 + i));
  assert.equal(await store.countUndelivered("bob", 5001), 1);
  assert.deepEqual((await store.undelivered("bob", { after: 0, through: 1 })).length, 1);
  assert.deepEqual((await store.undelivered("bob", { after: 1 })).length, 0);
  // Room a's message 4999, from carol, sent again by `fromKey`.
  const resend = async (fromKey: string) =>
    (await store.appendMessage({
      fromKey,
      from: "x",
      room: "a",
      text: "r4999",
      ts: 4999,
      clientId: "4999",
    })).duplicate;
  assert.equal(await resend("carol"), true, "a kept message's resend is found under its sender");
  assert.equal(
    await resend("alice"),
    false,
    "the same client id from another sender is another message",
  );
  await store.close();
});
