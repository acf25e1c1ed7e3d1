/**
 * The conformance suite every {@linkcode Store} implementation passes (test helper).
 *
 * Call {@linkcode storeConformance} from an implementation's `*_test.ts`: it registers
 * one `Deno.test` per behaviour, each on a fresh store.
 *
 * @example
 * ```ts ignore
 * import { storeConformance } from "./store_conformance.ts";
 * import { MemoryStore } from "./memory_store.ts";
 * storeConformance("MemoryStore", () => Promise.resolve(new MemoryStore()));
 * ```
 *
 * @module
 */

import assert from "node:assert/strict";
import type { ChatMessage } from "../protocol/messages.ts";
import {
  type AppendResult,
  MAX_TOKENS_PER_ACCOUNT,
  type NewMessage,
  type Store,
  StoreError,
  type TokenRecord,
} from "./store.ts";

/** Options of {@linkcode storeConformance}. */
export interface StoreConformanceOptions {
  /** Releases a store after a test (default: `store.close()`); may remove its files. */
  dispose?: (store: Store) => Promise<void>;
}

/**
 * Registers the conformance tests of a {@linkcode Store} implementation.
 *
 * @param name Prefix of every test name.
 * @param makeStore Creates a fresh, empty store for one test.
 */
export function storeConformance(
  name: string,
  makeStore: () => Promise<Store>,
  options: StoreConformanceOptions = {},
): void {
  const dispose = options.dispose ?? ((store: Store) => store.close());
  const test = (title: string, fn: (store: Store) => Promise<void>) =>
    Deno.test(`${name}: ${title}`, async () => {
      const store = await makeStore();
      try {
        await fn(store);
      } finally {
        await dispose(store);
      }
    });

  test("accounts: create, get, duplicate key, password hash", async (store) => {
    assert.equal(await store.getAccount("alice"), null);
    const alice = { key: "alice", nick: "Alice", passwordHash: "h1", createdAt: 1000 };
    assert.equal(await store.createAccount(alice), true);
    assert.deepEqual(await store.getAccount("alice"), alice);
    assert.equal(
      await store.createAccount({ key: "alice", nick: "ALICE", passwordHash: null, createdAt: 2 }),
      false,
    );
    assert.deepEqual(await store.getAccount("alice"), alice, "duplicate writes nothing");
    assert.deepEqual(await store.accountKeys(), ["alice"]);
    assert.equal(
      await store.createAccount({ key: "bob", nick: "Bob", passwordHash: null, createdAt: 5 }),
      true,
    );
    assert.deepEqual(await store.getAccount("bob"), {
      key: "bob",
      nick: "Bob",
      passwordHash: null,
      createdAt: 5,
    });
    await store.setPasswordHash("bob", "h2");
    assert.equal((await store.getAccount("bob"))?.passwordHash, "h2");
    await assertStoreError(store.setPasswordHash("nobody", "h"), "not_found");
    // Records handed out are copies.
    const copy = await store.getAccount("alice");
    copy!.nick = "mallory";
    assert.equal((await store.getAccount("alice"))?.nick, "Alice");
  });

  test("rooms: create, get, duplicate, topic, listing with member counts", async (store) => {
    assert.equal(await store.getRoom("lobby"), null);
    assert.deepEqual(await store.listRooms(), []);
    const lobby = room("lobby", "Lobby");
    assert.equal(await store.createRoom(lobby), true);
    assert.equal(await store.createRoom({ ...lobby, name: "LOBBY" }), false);
    assert.deepEqual(await store.getRoom("lobby"), lobby);
    assert.equal(await store.createRoom(room("dev", "Dev")), true);
    assert.equal(await store.createRoom(room("zoo", "Zoo")), true);
    await store.setTopic("dev", "compilers", "Alice");
    assert.deepEqual(await store.getRoom("dev"), {
      ...room("dev", "Dev"),
      topic: "compilers",
      topicBy: "Alice",
    });
    await assertStoreError(store.setTopic("nowhere", "t", "Alice"), "not_found");
    await store.addMember("lobby", "alice");
    await store.addMember("lobby", "bob");
    await store.addMember("dev", "alice");
    assert.deepEqual(await store.listRooms(), [
      { ...room("dev", "Dev"), topic: "compilers", topicBy: "Alice", members: 1 },
      { ...lobby, members: 2 },
      { ...room("zoo", "Zoo"), members: 0 },
    ]);
  });

  test("memberships: add, remove, list both ways", async (store) => {
    await store.createRoom(room("a", "A"));
    await store.createRoom(room("b", "B"));
    assert.equal(await store.addMember("a", "carol"), true);
    assert.equal(await store.addMember("a", "alice"), true);
    assert.equal(await store.addMember("a", "alice"), false);
    assert.equal(await store.addMember("b", "alice"), true);
    assert.deepEqual(await store.roomMembers("a"), ["alice", "carol"]);
    assert.deepEqual(await store.roomMembers("b"), ["alice"]);
    assert.deepEqual(await store.roomMembers("nowhere"), []);
    assert.deepEqual(await store.accountRooms("alice"), ["a", "b"]);
    assert.deepEqual(await store.accountRooms("nobody"), []);
    assert.equal(await store.removeMember("a", "alice"), true);
    assert.equal(await store.removeMember("a", "alice"), false);
    assert.equal(await store.removeMember("nowhere", "alice"), false);
    assert.deepEqual(await store.roomMembers("a"), ["carol"]);
    assert.deepEqual(await store.accountRooms("alice"), ["b"]);
    await assertStoreError(store.addMember("nowhere", "alice"), "not_found");
  });

  test("lastMessageId: 0 when empty, then the highest id, pending appends included", async (store) => {
    assert.equal(await store.lastMessageId(), 0);
    await store.createRoom(room("lobby", "Lobby"));
    const pending = [1, 2, 3].map((i) =>
      store.appendMessage(say("alice", "lobby", `m${i}`, `c${i}`, 100 + i))
    );
    const last = await store.lastMessageId();
    const ids = (await Promise.all(pending)).map((r) => r.message.id);
    assert.equal(last, Math.max(...ids));
  });

  test("appendMessage: room and direct shapes with display names, ids from 1", async (store) => {
    await store.createRoom(room("lobby", "Lobby"));
    const first = await store.appendMessage(say("alice", "lobby", "hello", "c1", 100));
    assert.deepEqual(first, {
      message: { type: "msg", id: 1, ts: 100, room: "Lobby", from: "Alice", text: "hello" },
      duplicate: false,
    });
    const second = await store.appendMessage(dm("alice", "bob", "psst", "c2", 101));
    assert.deepEqual(second, {
      message: { type: "dm", id: 2, ts: 101, from: "Alice", to: "Bob", text: "psst" },
      duplicate: false,
    });
    const third = await store.appendMessage(say("bob", "lobby", "hi", "c1", 102));
    assert.equal(third.message.id, 3, "clientIds are per sender");
    assert.equal(third.duplicate, false);
  });

  test("appendMessage: onCommitted is called as a method of its options, before the append resolves", async (store) => {
    await store.createRoom(room("lobby", "Lobby"));
    const options = {
      told: [] as { self: unknown; id: number; duplicate: boolean }[],
      onCommitted(result: AppendResult): void {
        this.told.push({ self: this, id: result.message.id, duplicate: result.duplicate });
      },
    };
    const first = await store.appendMessage(say("alice", "lobby", "hello", "c1", 100), options);
    assert.deepEqual(options.told, [{ self: options, id: first.message.id, duplicate: false }]);
    const again = await store.appendMessage(say("alice", "lobby", "hello", "c1", 100), options);
    assert.equal(again.duplicate, true);
    assert.deepEqual(options.told[1], { self: options, id: first.message.id, duplicate: true });
  });

  test("appendMessage: malformed messages and unknown rooms are refused alone", async (store) => {
    await store.createRoom(room("lobby", "Lobby"));
    await assertStoreError(
      store.appendMessage({ ...say("alice", "lobby", "x", "c1"), toKey: "bob", to: "Bob" }),
      "invalid",
    );
    const neither: NewMessage = say("alice", "lobby", "x", "c2");
    delete neither.room;
    await assertStoreError(store.appendMessage(neither), "invalid");
    await assertStoreError(store.appendMessage({ ...dm("a", "b", "x", "c3"), to: "" }), "invalid");
    await assertStoreError(store.appendMessage(say("alice", "lobby", "x", "")), "invalid");
    const [ok1, missing, ok2] = await Promise.allSettled([
      store.appendMessage(say("alice", "lobby", "one", "c4")),
      store.appendMessage(say("alice", "nowhere", "lost", "c5")),
      store.appendMessage(say("alice", "lobby", "two", "c6")),
    ]);
    assert.equal(ok1.status, "fulfilled");
    assert.equal(ok2.status, "fulfilled");
    assert.equal(missing.status, "rejected");
    assert.ok(missing.reason instanceof StoreError && missing.reason.code === "not_found");
    assert.deepEqual(texts(await store.history({ room: "lobby", limit: 10 })), ["one", "two"]);
  });

  test("appendMessage: duplicates within one batch and later", async (store) => {
    await store.createRoom(room("lobby", "Lobby"));
    const [a, b, c] = await Promise.all([
      store.appendMessage(say("alice", "lobby", "hello", "dup")),
      store.appendMessage(say("alice", "lobby", "hello", "dup")),
      store.appendMessage(say("bob", "lobby", "other sender", "dup")),
    ]);
    assert.equal(a.duplicate, false);
    assert.equal(b.duplicate, true);
    assert.deepEqual(b.message, a.message, "the duplicate returns the earlier message");
    assert.equal(c.duplicate, false);
    assert.notEqual(c.message.id, a.message.id);
    const later = await store.appendMessage(say("alice", "lobby", "hello", "dup"));
    assert.deepEqual(later, { message: a.message, duplicate: true });
    const dmFirst = await store.appendMessage(dm("alice", "bob", "direct", "d1"));
    const dmAgain = await store.appendMessage(dm("alice", "bob", "direct", "d1"));
    assert.deepEqual(dmAgain, { message: dmFirst.message, duplicate: true });
    assert.deepEqual(texts(await store.history({ room: "lobby", limit: 10 })), [
      "hello",
      "other sender",
    ]);
    assert.deepEqual(texts(await store.history({ between: ["alice", "bob"], limit: 10 })), [
      "direct",
    ]);
  });

  test("appendMessage: a reused clientId for another message is a conflict", async (store) => {
    await store.createRoom(room("lobby", "Lobby"));
    await store.createRoom(room("rust", "Rust"));
    const [first, sameBatch] = await Promise.allSettled([
      store.appendMessage(say("alice", "lobby", "hello", "c1")),
      store.appendMessage(say("alice", "lobby", "hello again", "c1")),
    ]);
    assert.equal(first.status, "fulfilled");
    assert.ok(sameBatch.status === "rejected" && sameBatch.reason instanceof StoreError);
    assert.equal(sameBatch.reason.code, "conflict");
    await assertStoreError(store.appendMessage(say("alice", "rust", "hello", "c1")), "conflict");
    await assertStoreError(store.appendMessage(dm("alice", "bob", "hello", "c1")), "conflict");
    await store.appendMessage(dm("alice", "bob", "psst", "d1"));
    await assertStoreError(store.appendMessage(say("alice", "lobby", "psst", "d1")), "conflict");
    await assertStoreError(store.appendMessage(dm("alice", "carol", "psst", "d1")), "conflict");
    await assertStoreError(store.appendMessage(dm("alice", "bob", "other", "d1")), "conflict");
    assert.deepEqual(texts(await store.history({ room: "lobby", limit: 10 })), ["hello"]);
    assert.deepEqual(texts(await store.history({ room: "rust", limit: 10 })), []);
    assert.deepEqual(texts(await store.history({ between: ["alice", "bob"], limit: 10 })), [
      "psst",
    ]);
    assert.deepEqual(texts(await store.history({ between: ["alice", "carol"], limit: 10 })), []);
  });

  test("appendMessage: 500 concurrent appends get distinct increasing ids", async (store) => {
    await store.createRoom(room("lobby", "Lobby"));
    const results = await Promise.all(
      Array.from(
        { length: 500 },
        (_, i) =>
          i % 5 === 0
            ? store.appendMessage(dm("alice", "bob", `m${i}`, `c${i}`))
            : store.appendMessage(say("alice", "lobby", `m${i}`, `c${i}`)),
      ),
    );
    const ids = results.map((r) => r.message.id);
    for (let i = 1; i < ids.length; i++) assert.ok(ids[i] > ids[i - 1], `ids[${i}]`);
    assert.ok(results.every((r) => !r.duplicate));
    assert.deepEqual(results.map((r) => r.message.text), results.map((_, i) => `m${i}`));
    const next = await store.appendMessage(say("alice", "lobby", "after", "after"));
    assert.ok(next.message.id > ids[ids.length - 1]);
  });

  test("reads see appends made before them, even before those resolve", async (store) => {
    await store.createRoom(room("lobby", "Lobby"));
    const pending = store.appendMessage(say("alice", "lobby", "early", "c1"));
    const pendingDm = store.appendMessage(dm("alice", "bob", "early dm", "c2"));
    assert.deepEqual(texts(await store.history({ room: "lobby", limit: 5 })), ["early"]);
    assert.deepEqual(texts(await store.undelivered("bob")), ["early dm"]);
    await pending;
    await pendingDm;
  });

  test("history: room and direct pair, with before and limit, oldest first", async (store) => {
    await store.createRoom(room("a", "Room-A"));
    await store.createRoom(room("b", "Room-B"));
    const ids: Record<string, number> = {};
    for (let i = 1; i <= 6; i++) {
      ids[`a${i}`] = (await store.appendMessage(say("alice", "a", `a${i}`, `a${i}`))).message.id;
      await store.appendMessage(say("bob", "b", `b${i}`, `b${i}`));
      const [from, to] = i % 2 === 0 ? ["alice", "bob"] : ["bob", "alice"];
      ids[`d${i}`] = (await store.appendMessage(dm(from, to, `d${i}`, `d${i}`))).message.id;
      await store.appendMessage(dm("alice", "carol", `x${i}`, `x${i}`));
    }
    assert.deepEqual(texts(await store.history({ room: "a", limit: 3 })), ["a4", "a5", "a6"]);
    assert.deepEqual(texts(await store.history({ room: "a", limit: 100 })), [
      "a1",
      "a2",
      "a3",
      "a4",
      "a5",
      "a6",
    ]);
    assert.deepEqual(
      texts(await store.history({ room: "a", before: ids.a4, limit: 2 })),
      ["a2", "a3"],
    );
    assert.deepEqual(texts(await store.history({ room: "a", before: ids.a1, limit: 2 })), []);
    assert.deepEqual(await store.history({ room: "a", limit: 0 }), []);
    assert.deepEqual(await store.history({ room: "nowhere", limit: 5 }), []);
    const roomMessages = await store.history({ room: "a", limit: 1 });
    assert.deepEqual(roomMessages[0], {
      type: "msg",
      id: ids.a6,
      ts: 1,
      room: "Room-A",
      from: "Alice",
      text: "a6",
    });

    const pair = await store.history({ between: ["alice", "bob"], limit: 4 });
    assert.deepEqual(texts(pair), ["d3", "d4", "d5", "d6"]);
    assert.deepEqual(await store.history({ between: ["bob", "alice"], limit: 4 }), pair);
    assert.deepEqual(pair[0], {
      type: "dm",
      id: ids.d3,
      ts: 1,
      from: "Bob",
      to: "Alice",
      text: "d3",
    });
    assert.deepEqual(
      texts(await store.history({ between: ["alice", "bob"], before: ids.d3, limit: 10 })),
      ["d1", "d2"],
    );
    assert.deepEqual(
      texts(await store.history({ between: ["carol", "alice"], limit: 2 })),
      ["x5", "x6"],
    );
    assert.deepEqual(await store.history({ between: ["bob", "carol"], limit: 2 }), []);
    await assertStoreError(store.history({ limit: 5 }), "invalid");
    await assertStoreError(
      store.history({ room: "a", between: ["alice", "bob"], limit: 5 }),
      "invalid",
    );
    await assertStoreError(store.history({ room: "a", limit: -1 }), "invalid");
  });

  test("history: after, oldest and time bounds page forward and backward", async (store) => {
    await store.createRoom(room("a", "A"));
    const ids: number[] = [];
    for (let i = 1; i <= 6; i++) {
      ids.push(
        (await store.appendMessage(say("alice", "a", `a${i}`, `a${i}`, i * 100))).message.id,
      );
      await store.appendMessage(dm("alice", "bob", `d${i}`, `d${i}`, i * 100));
      await store.appendMessage(say("mallory", "a", `m${i}`, `m${i}`, i * 100));
    }
    await store.addBlock("alice", "mallory");
    const q = { room: "a", viewer: "alice" };
    assert.deepEqual(texts(await store.history({ ...q, after: ids[1], limit: 2 })), ["a5", "a6"]);
    assert.deepEqual(
      texts(await store.history({ ...q, after: ids[1], limit: 2, oldest: true })),
      ["a3", "a4"],
    );
    assert.deepEqual(
      texts(await store.history({ ...q, after: ids[0], before: ids[4], limit: 10, oldest: true })),
      ["a2", "a3", "a4"],
    );
    assert.deepEqual(texts(await store.history({ ...q, beforeTs: 300, limit: 10 })), ["a1", "a2"]);
    assert.deepEqual(
      texts(await store.history({ ...q, afterTs: 300, beforeTs: 600, limit: 10 })),
      ["a4", "a5"],
    );
    assert.deepEqual(
      texts(await store.history({ ...q, afterTs: 100, limit: 2, oldest: true })),
      ["a2", "a3"],
    );
    const pair = { between: ["bob", "alice"] as [string, string] };
    assert.deepEqual(
      texts(await store.history({ ...pair, afterTs: 200, limit: 2, oldest: true })),
      ["d3", "d4"],
    );
    assert.deepEqual(texts(await store.history({ ...pair, beforeTs: 300, limit: 5 })), [
      "d1",
      "d2",
    ]);
    await assertStoreError(store.history({ ...q, after: -1, limit: 5 }), "invalid");
  });

  test("directConversations: partners of a time window, latest first", async (store) => {
    await store.createRoom(room("a", "A"));
    await store.appendMessage(dm("alice", "bob", "1", "c1", 100));
    await store.appendMessage(dm("carol", "alice", "2", "c2", 200));
    await store.appendMessage(dm("bob", "alice", "3", "c3", 300));
    await store.appendMessage(dm("bob", "carol", "4", "c4", 400));
    await store.appendMessage(say("alice", "a", "5", "c5", 500));
    await store.appendMessage(dm("alice", "dave", "6", "c6", 600));
    const window = { afterTs: 0, beforeTs: 1000, limit: 10 };
    assert.deepEqual(await store.directConversations("alice", window), [
      { key: "dave", ts: 600 },
      { key: "bob", ts: 300 },
      { key: "carol", ts: 200 },
    ]);
    assert.deepEqual(
      await store.directConversations("alice", { afterTs: 100, beforeTs: 600, limit: 10 }),
      [{ key: "bob", ts: 300 }, { key: "carol", ts: 200 }],
    );
    assert.deepEqual(await store.directConversations("alice", { ...window, limit: 1 }), [
      { key: "dave", ts: 600 },
    ]);
    assert.deepEqual(await store.directConversations("erin", window), []);
  });

  test("history and messagesAfter leave out room messages from blocked accounts", async (store) => {
    await store.createRoom(room("a", "A"));
    await store.addMember("a", "alice");
    for (let i = 0; i < 6; i++) {
      await store.appendMessage(say(i % 2 === 0 ? "bob" : "mallory", "a", `m${i}`, `c${i}`));
    }
    await store.appendMessage(dm("mallory", "alice", "earlier dm", "d1"));
    assert.equal(await store.addBlock("alice", "mallory"), true);
    assert.deepEqual(texts(await store.history({ room: "a", limit: 2, viewer: "alice" })), [
      "m2",
      "m4",
    ]);
    assert.deepEqual(texts(await store.history({ room: "a", limit: 10, viewer: "bob" })), [
      "m0",
      "m1",
      "m2",
      "m3",
      "m4",
      "m5",
    ]);
    assert.deepEqual(
      texts(await store.history({ room: "a", limit: 2, before: 5, viewer: "alice" })),
      ["m0", "m2"],
    );
    assert.equal((await store.history({ room: "a", limit: 10 })).length, 6, "no viewer: all");
    assert.deepEqual(texts(await store.messagesAfter("alice", 0, 3)), ["m0", "m2", "m4"]);
    assert.deepEqual(texts(await store.messagesAfter("alice", 0, 100)), [
      "m0",
      "m2",
      "m4",
      "earlier dm",
    ]);
    await store.removeBlock("alice", "mallory");
    assert.equal((await store.messagesAfter("alice", 0, 100)).length, 7);
  });

  test("messagesAfter: current memberships and own direct messages", async (store) => {
    await store.createRoom(room("a", "A"));
    await store.createRoom(room("b", "B"));
    await store.addMember("a", "alice");
    const a1 = await store.appendMessage(say("bob", "a", "a1", "1"));
    await store.appendMessage(say("bob", "b", "b1", "2"));
    await store.appendMessage(dm("bob", "alice", "to alice", "3"));
    await store.appendMessage(dm("alice", "carol", "from alice", "4"));
    await store.appendMessage(dm("bob", "carol", "not alice's", "5"));
    await store.appendMessage(say("carol", "a", "a2", "6"));
    assert.deepEqual(texts(await store.messagesAfter("alice", 0, 100)), [
      "a1",
      "to alice",
      "from alice",
      "a2",
    ]);
    assert.deepEqual(texts(await store.messagesAfter("alice", a1.message.id, 2)), [
      "to alice",
      "from alice",
    ]);
    assert.deepEqual(await store.messagesAfter("alice", 0, 0), []);
    // Membership is taken as it is now, for old messages too.
    await store.removeMember("a", "alice");
    await store.addMember("b", "alice");
    assert.deepEqual(texts(await store.messagesAfter("alice", 0, 100)), [
      "b1",
      "to alice",
      "from alice",
    ]);
    const all = await store.messagesAfter("carol", 0, 100);
    assert.deepEqual(texts(all), ["from alice", "not alice's"]);
    assert.equal(all[0].type, "dm");
    assert.deepEqual(await store.messagesAfter("nobody", 0, 100), []);
    await assertStoreError(store.messagesAfter("alice", -1, 10), "invalid");
  });

  test("undelivered and markDelivered", async (store) => {
    await store.createRoom(room("a", "A"));
    const r = await store.appendMessage(say("alice", "a", "room", "r"));
    const d1 = await store.appendMessage(dm("alice", "bob", "one", "1"));
    const d2 = await store.appendMessage(dm("carol", "bob", "two", "2"));
    const d3 = await store.appendMessage(dm("bob", "alice", "three", "3"));
    assert.deepEqual(await store.undelivered("bob"), [d1.message, d2.message]);
    assert.deepEqual(await store.undelivered("alice"), [d3.message]);
    assert.deepEqual(await store.undelivered("carol"), []);
    assert.deepEqual(await store.markDelivered([d1.message.id, r.message.id, 9999]), [
      d1.message.id,
    ]);
    assert.deepEqual(await store.undelivered("bob"), [d2.message]);
    assert.deepEqual(await store.markDelivered([]), []);
    assert.deepEqual(
      await store.markDelivered([d3.message.id, d2.message.id, d2.message.id, d1.message.id]),
      [d2.message.id, d3.message.id],
      "only the newly delivered, in order, once each",
    );
    assert.deepEqual(await store.undelivered("bob"), []);
    assert.deepEqual(await store.undelivered("alice"), []);
  });

  test("undelivered pages: after, through, limit, and countUndelivered", async (store) => {
    const ids: number[] = [];
    for (let i = 0; i < 8; i++) {
      ids.push(
        (await store.appendMessage(dm(i % 4 === 3 ? "carol" : "alice", "bob", `m${i}`, `${i}`)))
          .message.id,
      );
      await store.appendMessage(dm("alice", "dave", `other ${i}`, `o${i}`));
    }
    assert.equal(await store.countUndelivered("bob", ids[7]), 8);
    assert.equal(await store.countUndelivered("bob", ids[3]), 4);
    assert.equal(await store.countUndelivered("bob", 0), 0);
    assert.equal(await store.countUndelivered("nobody", ids[7]), 0);
    assert.deepEqual(texts(await store.undelivered("bob", { limit: 3 })), ["m0", "m1", "m2"]);
    assert.deepEqual(texts(await store.undelivered("bob", { after: ids[2], limit: 3 })), [
      "m3",
      "m4",
      "m5",
    ]);
    assert.deepEqual(texts(await store.undelivered("bob", { after: ids[4], through: ids[6] })), [
      "m5",
      "m6",
    ]);
    assert.deepEqual(await store.undelivered("bob", { limit: 0 }), []);
    await store.markDelivered([ids[1], ids[2]]);
    assert.deepEqual(texts(await store.undelivered("bob", { limit: 3 })), ["m0", "m3", "m4"]);
    assert.equal(await store.countUndelivered("bob", ids[3]), 2);
    await assertStoreError(store.undelivered("bob", { after: -1 }), "invalid");
    await assertStoreError(store.countUndelivered("bob", -1), "invalid");
  });

  test("markRead: only newly read direct messages to that account", async (store) => {
    await store.createRoom(room("a", "A"));
    const r = await store.appendMessage(say("alice", "a", "room", "r"));
    const d1 = await store.appendMessage(dm("alice", "bob", "one", "1"));
    const d2 = await store.appendMessage(dm("carol", "bob", "two", "2"));
    const toAlice = await store.appendMessage(dm("bob", "alice", "back", "3"));
    const read = await store.markRead("bob", [
      d2.message.id,
      r.message.id,
      toAlice.message.id,
      d1.message.id,
      9999,
    ]);
    assert.deepEqual(read, [d1.message, d2.message]);
    assert.deepEqual(await store.markRead("bob", [d1.message.id, d2.message.id]), []);
    assert.deepEqual(await store.markRead("bob", []), []);
    assert.deepEqual(await store.undelivered("bob"), [], "read implies delivered");
    assert.deepEqual(await store.markRead("alice", [toAlice.message.id]), [toAlice.message]);
    await assertStoreError(store.markRead("bob", [-1]), "invalid");
  });

  test("blocks: add, remove, list, false on duplicates", async (store) => {
    assert.equal(await store.addBlock("alice", "mallory"), true);
    assert.equal(await store.addBlock("alice", "mallory"), false);
    assert.equal(await store.addBlock("alice", "eve"), true);
    assert.equal(await store.addBlock("bob", "eve"), true);
    assert.deepEqual(await store.blocksOf("alice"), ["eve", "mallory"]);
    assert.deepEqual(await store.blocksOf("carol"), []);
    assert.equal(await store.removeBlock("alice", "eve"), true);
    assert.equal(await store.removeBlock("alice", "eve"), false);
    assert.equal(await store.removeBlock("carol", "eve"), false);
    assert.deepEqual(await store.blocksOf("alice"), ["mallory"]);
    assert.deepEqual(await store.blocksOf("bob"), ["eve"]);
  });

  test("contacts: add, remove, list, watchersOf, false on duplicates", async (store) => {
    assert.equal(await store.addContact("alice", "bob"), true);
    assert.equal(await store.addContact("alice", "bob"), false);
    assert.equal(await store.addContact("alice", "carol"), true);
    assert.equal(await store.addContact("dave", "bob"), true);
    assert.deepEqual(await store.contactsOf("alice"), ["bob", "carol"]);
    assert.deepEqual(await store.watchersOf("bob"), ["alice", "dave"]);
    assert.deepEqual(await store.watchersOf("alice"), []);
    assert.equal(await store.removeContact("alice", "bob"), true);
    assert.equal(await store.removeContact("alice", "bob"), false);
    assert.deepEqual(await store.contactsOf("alice"), ["carol"]);
    assert.deepEqual(await store.watchersOf("bob"), ["dave"]);
    assert.deepEqual(await store.contactsOf("nobody"), []);
  });

  test("login sessions: onlineSince and closeOpenSessions", async (store) => {
    const early = await store.recordLogin("early", 100);
    await store.recordLogout(early, 200);
    const open = await store.recordLogin("open", 150);
    const late = await store.recordLogin("late", 160);
    await store.recordLogout(late, 400);
    const edge = await store.recordLogin("edge", 100);
    await store.recordLogout(edge, 300);
    assert.equal(new Set([early, open, late, edge]).size, 4, "distinct session ids");
    assert.deepEqual(await store.onlineSince(300), ["edge", "late", "open"]);
    assert.deepEqual(await store.onlineSince(301), ["late", "open"]);
    assert.deepEqual(await store.onlineSince(0), ["early", "edge", "late", "open"]);
    // A second logout does not move the recorded end; unknown sessions are ignored.
    await store.recordLogout(early, 10_000);
    await store.recordLogout(424242, 10_000);
    assert.deepEqual(await store.onlineSince(300), ["edge", "late", "open"]);
    // Several sessions of one account count once.
    await store.recordLogin("late", 500);
    assert.deepEqual(await store.onlineSince(1000), ["late", "open"]);
    await store.closeOpenSessions(600);
    assert.deepEqual(await store.onlineSince(601), []);
    assert.deepEqual(await store.onlineSince(600), ["late", "open"]);
    const again = await store.recordLogin("open", 700);
    assert.ok(again > edge);
    assert.deepEqual(await store.onlineSince(601), ["open"]);
  });

  test("session tokens: add, get, revoke one or all, foreign account, password change", async (store) => {
    await store.createAccount({ key: "alice", nick: "Alice", passwordHash: "h1", createdAt: 1 });
    await store.createAccount({ key: "bob", nick: "Bob", passwordHash: "h1", createdAt: 1 });
    const a1 = token("a1", "alice", 1000);
    assert.equal(await store.getToken("a1"), null);
    await store.addToken(a1);
    await store.addToken(token("a2", "alice", 1001));
    await store.addToken(token("b1", "bob", 1002));
    assert.deepEqual(await store.getToken("a1"), a1);
    // Another account's token is not revoked by a request of this one.
    assert.equal(await store.removeToken("b1", "alice"), false);
    assert.equal((await store.getToken("b1"))?.accountKey, "bob");
    assert.equal(await store.removeToken("a1", "alice"), true);
    assert.equal(await store.removeToken("a1", "alice"), false);
    assert.equal(await store.getToken("a1"), null);
    await store.addToken(token("a3", "alice", 1003));
    assert.equal(await store.removeTokens("alice"), 2);
    assert.equal(await store.getToken("a2"), null);
    assert.equal(await store.getToken("a3"), null);
    assert.equal(await store.removeTokens("alice"), 0);
    // A new password revokes the account's tokens, and only its.
    await store.addToken(token("a4", "alice", 1004));
    await store.setPasswordHash("alice", "h2");
    assert.equal(await store.getToken("a4"), null);
    assert.equal((await store.getToken("b1"))?.accountKey, "bob");
    // A failed password change revokes nothing.
    await store.addToken(token("a5", "alice", 1005));
    await assertStoreError(store.setPasswordHash("nobody", "h"), "not_found");
    assert.equal((await store.getToken("a5"))?.accountKey, "alice");
    // Records handed out are copies.
    const copy = await store.getToken("b1");
    copy!.accountKey = "mallory";
    assert.equal((await store.getToken("b1"))?.accountKey, "bob");
  });

  test("session tokens: expired and beyond the cap are dropped as new ones come", async (store) => {
    await store.addToken({ ...token("old", "alice", 100), expiresAt: 500 });
    await store.addToken({ ...token("other", "bob", 100), expiresAt: 500 });
    // Not dropped before its expiry; returned as stored (the caller checks the expiry).
    await store.addToken(token("fresh", "alice", 499));
    assert.equal((await store.getToken("old"))?.expiresAt, 500);
    await store.addToken(token("t0", "alice", 500));
    assert.equal(await store.getToken("old"), null, "expired at 500: dropped");
    assert.equal((await store.getToken("other"))?.accountKey, "bob", "another account's kept");
    for (let i = 1; i < MAX_TOKENS_PER_ACCOUNT; i++) {
      await store.addToken(token(`t${i}`, "alice", 500 + i));
    }
    // fresh and t0 .. t(MAX - 1): one too many, so the oldest went.
    assert.equal(await store.getToken("fresh"), null, "the oldest beyond the cap is dropped");
    for (let i = 0; i < MAX_TOKENS_PER_ACCOUNT; i++) {
      assert.equal((await store.getToken(`t${i}`))?.accountKey, "alice", `t${i} kept`);
    }
    assert.equal(await store.removeTokens("alice"), MAX_TOKENS_PER_ACCOUNT);
  });

  test("close: later calls reject with a closed StoreError", async (store) => {
    await store.createRoom(room("a", "A"));
    const pending = store.appendMessage(say("alice", "a", "last", "1"));
    await store.close();
    assert.equal((await pending).message.text, "last", "close commits what is pending");
    await store.close();
    await assertStoreError(store.getAccount("alice"), "closed");
    await assertStoreError(store.appendMessage(say("alice", "a", "late", "2")), "closed");
    await assertStoreError(store.history({ room: "a", limit: 1 }), "closed");
    await assertStoreError(store.addBlock("a", "b"), "closed");
  });
}

function token(hash: string, accountKey: string, createdAt: number): TokenRecord {
  return { hash, accountKey, createdAt, expiresAt: createdAt + 1_000_000 };
}

function room(key: string, name: string) {
  return { key, name, topic: "", topicBy: "", createdAt: 42 };
}

function nick(key: string): string {
  return key[0].toUpperCase() + key.slice(1);
}

function say(fromKey: string, roomKey: string, text: string, clientId: string, ts = 1) {
  const message: NewMessage = { fromKey, from: nick(fromKey), room: roomKey, text, ts, clientId };
  return message;
}

function dm(fromKey: string, toKey: string, text: string, clientId: string, ts = 1) {
  const message: NewMessage = {
    fromKey,
    from: nick(fromKey),
    toKey,
    to: nick(toKey),
    text,
    ts,
    clientId,
  };
  return message;
}

function texts(messages: ChatMessage[]): string[] {
  return messages.map((m) => m.text);
}

async function assertStoreError(promise: Promise<unknown>, code: StoreError["code"]) {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof StoreError, `expected a StoreError, got ${err}`);
    assert.equal(err.code, code, err.message);
    return true;
  });
}
