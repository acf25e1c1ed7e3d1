import assert from "node:assert/strict";
import postgres from "postgres";
import { POSTGRES_SKIP, startPostgres } from "../tests/helpers/postgres.ts";
import { PostgresStore } from "./postgres_store.ts";
import { type NewMessage, StoreError } from "./store.ts";
import { storeConformance } from "./store_conformance.ts";

// One scratch server for this file (stopped and removed when the process ends); a fresh
// database per store.
const pg = await startPostgres();
const ignore = pg === null;

async function openStore(url: string, nodeId = "n1", maxBatch?: number) {
  return await PostgresStore.open({ url, nodeId, maxBatch });
}

if (pg !== null) {
  storeConformance("PostgresStore", async () => openStore(await pg.createDatabase()));
} else {
  Deno.test({ name: `PostgresStore: conformance (${POSTGRES_SKIP})`, ignore: true, fn() {} });
}

function say(fromKey: string, text: string, clientId: string, room = "lobby"): NewMessage {
  return { fromKey, from: fromKey.toUpperCase(), room, text, ts: 1, clientId };
}

const lobby = { key: "lobby", name: "Lobby", topic: "", topicBy: "", createdAt: 1 };

Deno.test({
  name: "PostgresStore: three nodes appending concurrently; a poller of id > last misses none",
  ignore,
  async fn() {
    const url = await pg!.createDatabase();
    // Small batches, so that batches of the three nodes overlap many times.
    const nodes = await Promise.all(["a", "b", "c"].map((n) => openStore(url, n, 8)));
    const reader = await openStore(url, "reader");
    try {
      await nodes[0].createRoom(lobby);
      await nodes[0].addMember("lobby", "watcher");
      const perNode = 600;
      const stored: number[] = [];
      let writing = true;
      const writers = nodes.map(async (store, n) => {
        // 16 concurrent senders per node, each sending its messages one after another.
        await Promise.all(Array.from({ length: 16 }, async (_, sender) => {
          for (let i = sender; i < perNode; i += 16) {
            const { message } = await store.appendMessage(say(`u${n}`, `m${i}`, `c${i}`));
            stored.push(message.id);
          }
        }));
      });
      const seen = new Set<number>();
      let last = 0;
      let polls = 0;
      const poller = (async () => {
        for (;;) {
          const done = !writing;
          const page = await reader.messagesAfter("watcher", last, 10_000);
          polls++;
          for (const m of page) {
            assert.ok(m.id > last, "ids above last, increasing");
            seen.add(m.id);
            last = m.id;
          }
          if (done && page.length === 0) return;
        }
      })();
      await Promise.all(writers).finally(() => writing = false);
      await poller;
      assert.equal(stored.length, 3 * perNode);
      const missed = stored.filter((id) => !seen.has(id));
      assert.equal(
        missed.length,
        0,
        `missed ${missed.length} of ${stored.length} (${polls} polls)`,
      );
      assert.equal(seen.size, stored.length);
      const batches = nodes.reduce((sum, s) => sum + s.stats.commits, 0);
      assert.ok(batches < 3 * perNode, `group commit: ${batches} batches`);
    } finally {
      await Promise.all([...nodes, reader].map((s) => s.close()));
    }
  },
});

Deno.test({
  name: "PostgresStore: a resend through another node is a duplicate; a reused id a conflict",
  ignore,
  async fn() {
    const url = await pg!.createDatabase();
    const [a, b] = [await openStore(url, "a"), await openStore(url, "b")];
    try {
      await a.createRoom(lobby);
      const first = await a.appendMessage(say("alice", "hello", "c1"));
      const [again1, again2] = await Promise.all([
        b.appendMessage(say("alice", "hello", "c1")),
        a.appendMessage(say("alice", "hello", "c1")),
      ]);
      assert.deepEqual(again1, { message: first.message, duplicate: true });
      assert.deepEqual(again2, { message: first.message, duplicate: true });
      await assert.rejects(
        b.appendMessage(say("alice", "changed", "c1")),
        (e: unknown) => e instanceof StoreError && e.code === "conflict",
      );
      // The same new message sent to both nodes at once is stored once.
      const both = await Promise.all([
        a.appendMessage(say("alice", "race", "c2")),
        b.appendMessage(say("alice", "race", "c2")),
      ]);
      assert.equal(both.filter((r) => r.duplicate).length, 1);
      assert.equal(both[0].message.id, both[1].message.id);
      assert.equal((await a.history({ room: "lobby", limit: 10 })).length, 2);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  },
});

Deno.test({
  name: "PostgresStore: two nodes marking the same messages delivered: one receipt each",
  ignore,
  async fn() {
    const url = await pg!.createDatabase();
    const [a, b] = [await openStore(url, "a"), await openStore(url, "b")];
    try {
      const ids: number[] = [];
      for (let i = 0; i < 50; i++) {
        ids.push(
          (await a.appendMessage({
            fromKey: "alice",
            from: "Alice",
            toKey: "bob",
            to: "Bob",
            text: `d${i}`,
            ts: i,
            clientId: `d${i}`,
          })).message.id,
        );
      }
      for (let round = 0; round < 5; round++) {
        const chunk = ids.slice(round * 10, round * 10 + 10);
        const [fromA, fromB] = await Promise.all([a.markDelivered(chunk), b.markDelivered(chunk)]);
        assert.deepEqual([...fromA, ...fromB].sort((x, y) => x - y), chunk);
      }
      assert.deepEqual(await b.undelivered("bob"), []);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  },
});

Deno.test({
  name: "PostgresStore: closeOpenSessions closes this node's sessions only; closeNodeSessions",
  ignore,
  async fn() {
    const url = await pg!.createDatabase();
    const [a, b] = [await openStore(url, "a"), await openStore(url, "b")];
    try {
      await a.recordLogin("alice", 100);
      await b.recordLogin("bob", 100);
      await b.recordLogin("carol", 100);
      assert.deepEqual(await a.onlineSince(1000), ["alice", "bob", "carol"]);
      await a.closeOpenSessions(500);
      assert.deepEqual(await b.onlineSince(1000), ["bob", "carol"], "b's users are still on");
      await a.closeNodeSessions("b", 600);
      assert.deepEqual(await b.onlineSince(1000), []);
      assert.deepEqual(await b.onlineSince(550), ["bob", "carol"]);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  },
});

Deno.test({
  name: "PostgresStore: opening twice at once creates the schema once; data survives reopen",
  ignore,
  async fn() {
    const url = await pg!.createDatabase();
    const [a, b, c] = await Promise.all(["a", "b", "c"].map((n) => openStore(url, n)));
    try {
      await a.createRoom(lobby);
      const { message } = await b.appendMessage(say("alice", "hi", "1"));
      await c.close();
      const again = await openStore(url, "c");
      try {
        assert.deepEqual(await again.history({ room: "lobby", limit: 5 }), [message]);
        assert.equal(await again.lastMessageId(), message.id);
      } finally {
        await again.close();
      }
    } finally {
      await Promise.all([a.close(), b.close(), c.close()]);
    }
  },
});

/** Retries `fn` until it resolves or `ms` pass; returns its result. */
async function eventually<T>(fn: () => Promise<T>, ms: number): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return await fn();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

async function assertUnavailable(promise: Promise<unknown>) {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof StoreError, `expected a StoreError, got ${err}`);
    assert.equal(err.code, "unavailable", err.message);
    return true;
  });
}

Deno.test({
  name: "PostgresStore: PostgreSQL stopped: calls reject `unavailable`; started: calls work again",
  ignore,
  async fn() {
    // A server of its own: stopping the shared one would fail the other tests.
    const own = (await startPostgres())!;
    try {
      const store = await PostgresStore.open({
        url: await own.createDatabase(),
        nodeId: "n1",
        connectTimeoutSeconds: 2,
      });
      try {
        await store.createRoom(lobby);
        await store.appendMessage(say("alice", "before", "1"));
        await own.stop();
        await assertUnavailable(store.getRoom("lobby"));
        await assertUnavailable(store.appendMessage(say("alice", "while down", "2")));
        await assertUnavailable(store.history({ room: "lobby", limit: 5 }));
        await own.start();
        // The first call after the restart may still meet the backoff or a dying socket.
        await eventually(() => store.getRoom("lobby"), 30_000);
        const after = await store.appendMessage(say("alice", "after", "3"));
        assert.equal(after.duplicate, false);
        const texts = (await store.history({ room: "lobby", limit: 5 })).map((m) => m.text);
        assert.deepEqual(texts, ["before", "after"]);
        // A crash (immediate stop) while connections are open: the same.
        await own.stop("immediate");
        await assertUnavailable(store.appendMessage(say("alice", "lost", "4")));
        await own.start();
        const resent = await eventually(
          () => store.appendMessage(say("alice", "resent", "5")),
          30_000,
        );
        assert.equal(resent.message.text, "resent");
      } finally {
        await store.close();
      }
    } finally {
      await own.close();
    }
  },
});

Deno.test({
  name: "PostgresStore: U+0000 in a text is stored as is; in a client id refused alone",
  ignore,
  async fn() {
    const url = await pg!.createDatabase();
    const store = await openStore(url);
    try {
      await store.createRoom(lobby);
      const odd = ["nul \u0000 inside", "\uffff marker first", "\uffff\u0000 both", "plain"];
      const [bad, ...results] = await Promise.allSettled([
        store.appendMessage(say("alice", "x", "bad\u0000id")),
        ...odd.map((text, i) => store.appendMessage(say("alice", text, `c${i}`))),
      ]);
      assert.ok(bad.status === "rejected" && bad.reason instanceof StoreError);
      assert.equal(bad.reason.code, "invalid");
      assert.deepEqual(
        results.map((r) => r.status === "fulfilled" ? r.value.message.text : r.reason),
        odd,
        "the other messages of the batch are stored",
      );
      const stored = await store.history({ room: "lobby", limit: 10 });
      assert.deepEqual(stored.map((m) => m.text), odd);
      const again = await store.appendMessage(say("alice", odd[0], "c0"));
      assert.equal(again.duplicate, true, "a resend of a text with U+0000 is a duplicate");
      await assert.rejects(
        store.appendMessage(say("alice", "nul \u0000 changed", "c0")),
        (e: unknown) => e instanceof StoreError && e.code === "conflict",
      );
    } finally {
      await store.close();
    }
  },
});

Deno.test({
  name: "PostgresStore: a lock held elsewhere: the call rejects `unavailable` after lock_timeout",
  ignore,
  async fn() {
    const url = await pg!.createDatabase();
    const store = await PostgresStore.open({ url, nodeId: "n1", lockTimeoutMs: 300 });
    const other = await openStore(url, "n2");
    const blocker = postgres(url, { max: 1, onnotice: () => {} });
    try {
      await store.createRoom(lobby);
      const { promise: locked, resolve: onLocked } = Promise.withResolvers<void>();
      const { promise: release, resolve: doRelease } = Promise.withResolvers<void>();
      const holding = blocker.begin(async (tx) => {
        await tx`LOCK TABLE rooms IN ACCESS EXCLUSIVE MODE`;
        onLocked();
        await release;
      });
      await locked;
      await assertUnavailable(store.getRoom("lobby"));
      await assertUnavailable(store.appendMessage(say("alice", "blocked", "1")));
      doRelease();
      await holding;
      assert.equal((await store.appendMessage(say("alice", "free", "2"))).duplicate, false);
      assert.deepEqual(
        (await other.history({ room: "lobby", limit: 5 })).map((m) => m.text),
        ["free"],
      );
    } finally {
      await blocker.end({ timeout: 5 });
      await Promise.all([store.close(), other.close()]);
    }
  },
});

Deno.test({
  name: "PostgresStore: open fails with open_failed on a newer schema or without a server",
  ignore,
  async fn() {
    const url = await pg!.createDatabase();
    await (await openStore(url)).close();
    const sql = postgres(url, { max: 1, onnotice: () => {} });
    try {
      await sql`UPDATE chat_schema SET version = 99`;
    } finally {
      await sql.end({ timeout: 5 });
    }
    await assert.rejects(openStore(url), (e: unknown) => {
      assert.ok(e instanceof StoreError && e.code === "open_failed", String(e));
      assert.match(e.message, /schema version 99/);
      return true;
    });
    // A port nothing listens on (the scratch server's, on another host address).
    const nowhere = url.replace("127.0.0.1", "127.0.0.2");
    await assert.rejects(
      PostgresStore.open({ url: nowhere, nodeId: "n", connectTimeoutSeconds: 2 }),
      (e: unknown) => e instanceof StoreError && e.code === "open_failed",
    );
  },
});
