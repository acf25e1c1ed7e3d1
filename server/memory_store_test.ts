import assert from "node:assert/strict";
import { MemoryStore } from "./memory_store.ts";
import { storeConformance } from "./store_conformance.ts";

storeConformance("MemoryStore", () => Promise.resolve(new MemoryStore()));

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
  const first = await store.appendMessage({
    fromKey: "alice",
    from: "Alice",
    toKey: "bob",
    to: "Bob",
    text: "direct",
    ts: 0,
    clientId: "d",
  });
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
