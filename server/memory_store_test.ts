import assert from "node:assert/strict";
import { MemoryStore } from "./memory_store.ts";
import { storeConformance } from "./store_conformance.ts";
import { StoreError } from "./store.ts";
import { clientIdHash } from "./client_id_index.ts";
import type { ChatMessage } from "../protocol/messages.ts";

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
  assert.equal(store.indexedRequestIds, kept + 1, "a forgotten message's request id goes too");
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

Deno.test("MemoryStore: at roomHistory exactly the newest are kept; pages and resends across the ring's wrap", async () => {
  const store = new MemoryStore({ roomHistory: 10 });
  await store.createRoom({ key: "a", name: "A", topic: "", topicBy: "", createdAt: 0 });
  await store.createRoom({ key: "b", name: "B", topic: "", topicBy: "", createdAt: 0 });
  await store.addMember("a", "bob");
  await store.addMember("b", "bob");
  await store.addBlock("bob", "carol");
  /** Room a's messages by sequence number, with their ids (rooms b and DMs interleaved). */
  const sent: { id: number; i: number; fromKey: string }[] = [];
  const say = (room: string, i: number, fromKey = i % 4 === 0 ? "carol" : "alice") =>
    store.appendMessage({
      fromKey,
      from: fromKey.toUpperCase(),
      room,
      text: `${room}${i} ${"é".repeat(i % 5)}`,
      ts: 100 + i,
      clientId: `${room}${i}`,
    });
  for (let i = 0; i < 27; i++) {
    const { message } = await say("a", i);
    sent.push({ id: message.id, i, fromKey: i % 4 === 0 ? "carol" : "alice" });
    if (i % 3 === 0) await say("b", i);
    if (i % 5 === 0) await store.appendMessage({ ...DIRECT, clientId: `d${i}` });
  }
  const kept = sent.slice(-10);
  const text = (i: number) => `a${i} ${"é".repeat(i % 5)}`;
  const all = await store.history({ room: "a", limit: 100 });
  assert.deepEqual(all.map((m) => m.id), kept.map((m) => m.id), "exactly the newest 10");
  assert.deepEqual(all.map((m) => m.text), kept.map((m) => text(m.i)));
  assert.deepEqual(all.map((m) => m.from), kept.map((m) => m.fromKey.toUpperCase()));
  assert.equal(all[0].type === "msg" && all[0].room, "A");
  // Backward pages of 3 from the newest, then forward from the oldest: the ring's
  // start (slot 7 of 10) falls inside a page.
  const backward: number[] = [];
  for (let before: number | undefined = undefined;;) {
    const page: ChatMessage[] = await store.history({ room: "a", limit: 3, before });
    if (page.length === 0) break;
    backward.unshift(...page.map((m) => m.id));
    before = page[0].id;
  }
  assert.deepEqual(backward, kept.map((m) => m.id));
  const forward: number[] = [];
  for (let after = 0;;) {
    const page = await store.history({ room: "a", limit: 4, after, oldest: true });
    if (page.length === 0) break;
    forward.push(...page.map((m) => m.id));
    after = page.at(-1)!.id;
  }
  assert.deepEqual(forward, kept.map((m) => m.id));
  const middle = await store.history({
    room: "a",
    limit: 100,
    after: kept[2].id,
    before: kept[8].id,
    afterTs: 100 + kept[3].i - 1,
  });
  assert.deepEqual(middle.map((m) => m.id), kept.slice(3, 8).map((m) => m.id));
  const viewed = await store.history({ room: "a", limit: 100, viewer: "bob" });
  assert.deepEqual(
    viewed.map((m) => m.id),
    kept.filter((m) => m.fromKey !== "carol").map((m) => m.id),
  );
  // bob's catch-up: room a's kept (carol's blocked), room b's newest, the DMs, by id.
  const after = await store.messagesAfter("bob", kept[0].id - 1, 1000);
  assert.ok(after.every((m, k) => k === 0 || m.id > after[k - 1].id), "in id order");
  assert.deepEqual(
    after.filter((m) => m.type === "msg" && m.room === "A").map((m) => m.id),
    kept.filter((m) => m.fromKey !== "carol").map((m) => m.id),
  );
  assert.equal(store.heldMessages, 10 + 9 + 6, "room a's 10, room b's 9, six direct");
  // A kept message's resend is found (the same id); with another text, a conflict.
  const resent = await say("a", kept[0].i, kept[0].fromKey);
  assert.deepEqual([resent.duplicate, resent.message.id], [true, kept[0].id]);
  assert.equal(resent.message.text, text(kept[0].i));
  await assert.rejects(
    store.appendMessage({
      fromKey: "alice",
      from: "A",
      room: "b",
      text: "x",
      ts: 0,
      clientId: `a${kept[1].i}`,
    }),
    (e: unknown) => e instanceof StoreError && e.code === "conflict",
  );
  await assert.rejects(
    store.appendMessage({ ...DIRECT, clientId: `a${kept[1].i}` }),
    (e: unknown) => e instanceof StoreError && e.code === "conflict",
    "a room message's request id is taken for direct messages too",
  );
  // The newest forgotten one's resend is a new message, which takes the oldest's place.
  const forgotten = sent[sent.length - 11];
  const again = await say("a", forgotten.i, forgotten.fromKey);
  assert.equal(again.duplicate, false);
  assert.equal(again.message.id, await store.lastMessageId());
  const now = await store.history({ room: "a", limit: 100 });
  assert.deepEqual(now.map((m) => m.id), [...kept.slice(1).map((m) => m.id), again.message.id]);
  assert.equal((await say("a", kept[0].i, kept[0].fromKey)).duplicate, false, "kept[0] went");
  assert.equal((await say("a", kept[2].i, kept[2].fromKey)).duplicate, true);
  await store.close();
});

Deno.test("MemoryStore: room texts and request ids come back exactly (multi-byte, astral, lone surrogates)", async () => {
  const store = new MemoryStore({ roomHistory: 3 });
  await store.createRoom({ key: "a", name: "A", topic: "", topicBy: "", createdAt: 0 });
  const texts = ["plain", "héllo wörld", "🙂 astral", "lone \ud800 half", "tail \udfff", "日本語"];
  for (const [i, text] of texts.entries()) {
    await store.appendMessage({
      fromKey: "alice",
      from: "Alice",
      room: "a",
      text,
      ts: i,
      clientId: `${text}#`,
    });
  }
  const kept = await store.history({ room: "a", limit: 10 });
  assert.deepEqual(kept.map((m) => m.text), texts.slice(-3));
  for (const text of texts.slice(-3)) {
    const { duplicate, message } = await store.appendMessage({
      fromKey: "alice",
      from: "Alice",
      room: "a",
      text,
      ts: 0,
      clientId: `${text}#`,
    });
    assert.deepEqual([duplicate, message.text], [true, text]);
  }
  await store.close();
});

Deno.test("MemoryStore: two senders whose (sender, request id) pairs hash alike keep their own messages", async () => {
  // A fixed key (the default is random), and two senders found by search to have the
  // same 32-bit hash under it for the same request id "1".
  const store = new MemoryStore({ roomHistory: 4, requestIdKey: [1, 2] });
  await store.createRoom({ key: "a", name: "A", topic: "", topicBy: "", createdAt: 0 });
  assert.equal(clientIdHash("u62577", "1", 1, 2), clientIdHash("u143912", "1", 1, 2));
  const say = (fromKey: string, text: string) =>
    store.appendMessage({ fromKey, from: fromKey, room: "a", text, ts: 0, clientId: "1" });
  const first = await say("u62577", "one");
  const second = await say("u143912", "two");
  assert.equal(second.duplicate, false, "another sender's message, not a resend");
  assert.notEqual(second.message.id, first.message.id);
  assert.deepEqual((await say("u62577", "one")).message, first.message);
  assert.deepEqual((await say("u143912", "two")).message, second.message);
  await store.close();
});
