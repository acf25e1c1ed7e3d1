import assert from "node:assert/strict";
import { withTempDir } from "../tests/helpers/files.ts";
import { HeldSync } from "../tests/helpers/held_sync.ts";
import { dirname, join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import {
  DATABASE_FILE,
  MAX_UNDURABLE_IDS,
  MIGRATIONS,
  ROOM_INSERT_ROWS,
  SqliteStore,
  type SqliteStoreOptions,
} from "./sqlite_store.ts";
import { type NewMessage, type Store, StoreError } from "./store.ts";
import { storeConformance } from "./store_conformance.ts";
import { newRequestId } from "../protocol/request_id.ts";
import { resolveServerConfig } from "./config.ts";
import { openEngines } from "./engines.ts";

async function removeStoreDir(store: Store): Promise<void> {
  await store.close();
  await Deno.remove(dirname((store as SqliteStore).path), { recursive: true });
}

storeConformance("SqliteStore", async () => SqliteStore.open(await Deno.makeTempDir()), {
  dispose: removeStoreDir,
});

const lobby = { key: "lobby", name: "Lobby", topic: "", topicBy: "", createdAt: 1 };

function say(i: number, clientId = `c${i}`): NewMessage {
  return { fromKey: "alice", from: "Alice", room: "lobby", text: `m${i}`, ts: i, clientId };
}

/** `promise`, or a rejection naming `what` when it takes over 10 s (a wait that never ends). */
async function within<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} still waiting after 10 s`)), 10_000);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Runs `fn` on a store in a fresh temp folder, then removes the folder. */
Deno.test("SqliteStore: data survives close and reopen; ids keep increasing", async () => {
  await withTempDir(async (dir) => {
    const data = join(dir, "nested", "data");
    const first = await SqliteStore.open(data);
    await first.createAccount({ key: "alice", nick: "Alice", passwordHash: "h", createdAt: 5 });
    await first.createRoom(lobby);
    await first.addMember("lobby", "alice");
    await first.setTopic("lobby", "welcome", "Alice");
    await first.addBlock("alice", "eve");
    await first.addContact("alice", "bob");
    const session = await first.recordLogin("alice", 10);
    const appended = await Promise.all([1, 2, 3].map((i) => first.appendMessage(say(i))));
    const direct = await first.appendMessage({
      fromKey: "alice",
      from: "Alice",
      toKey: "bob",
      to: "Bob",
      text: "psst",
      ts: 9,
      clientId: "d",
    });
    await first.close();

    const second = await SqliteStore.open(data);
    try {
      assert.deepEqual(await second.getAccount("alice"), {
        key: "alice",
        nick: "Alice",
        passwordHash: "h",
        createdAt: 5,
      });
      assert.deepEqual(await second.listRooms(), [
        { ...lobby, topic: "welcome", topicBy: "Alice", members: 1 },
      ]);
      assert.deepEqual(await second.blocksOf("alice"), ["eve"]);
      assert.deepEqual(await second.watchersOf("bob"), ["alice"]);
      assert.deepEqual(await second.onlineSince(1000), ["alice"]);
      await second.recordLogout(session, 20);
      assert.deepEqual(await second.onlineSince(1000), []);
      assert.deepEqual(
        await second.history({ room: "lobby", limit: 10 }),
        appended.map((r) => r.message),
      );
      assert.deepEqual(await second.undelivered("bob"), [direct.message]);
      const again = await second.appendMessage(say(1));
      assert.deepEqual(again, { message: appended[0].message, duplicate: true });
      const next = await second.appendMessage(say(4));
      // Increasing, not necessarily contiguous: a resend's ignored insert may use up an id.
      assert.ok(next.message.id > direct.message.id);
    } finally {
      await second.close();
    }
  });
});

Deno.test("SqliteStore: uses WAL and a schema version", async () => {
  await withTempDir(async (dir) => {
    const store = await SqliteStore.open(dir);
    assert.equal(store.path, join(dir, DATABASE_FILE));
    const peek = new DatabaseSync(store.path);
    try {
      assert.deepEqual({ ...peek.prepare("PRAGMA journal_mode").get() }, { journal_mode: "wal" });
      // The store syncs the WAL itself, off the event loop, before a write resolves.
      assert.equal(store.stats.walSyncs, 0);
      await store.createRoom({ key: "r", name: "R", topic: "", topicBy: "", createdAt: 0 });
      assert.equal(store.stats.walSyncs, 1);
      assert.deepEqual({ ...peek.prepare("PRAGMA user_version").get() }, {
        user_version: MIGRATIONS.length,
      });
      const tables = peek.prepare(
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' " +
          "ORDER BY name",
      ).all().map((row) => row.name);
      assert.deepEqual(tables, [
        "accounts",
        "blocks",
        "contacts",
        "login_sessions",
        "memberships",
        "messages",
        "rooms",
        "server_run",
        "session_tokens",
      ]);
    } finally {
      peek.close();
      await store.close();
    }
  });
});

Deno.test("SqliteStore: schema 1 databases keep their messages and ids", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, DATABASE_FILE);
    // Build a schema-1 database (the first migration alone) holding two messages.
    const old = new DatabaseSync(path);
    old.exec("PRAGMA journal_mode = WAL");
    old.exec(MIGRATIONS[0]);
    old.exec("PRAGMA user_version = 1");
    old.exec(
      "INSERT INTO rooms (key, name, created_at) VALUES ('lobby', 'Lobby', 1);" +
        "INSERT INTO messages (ts, from_key, from_nick, room_key, text, client_id) VALUES " +
        "(1, 'ann', 'Ann', 'lobby', 'one', 'c1'), (2, 'ann', 'Ann', 'lobby', 'two', 'c2');",
    );
    old.close();
    const store = await SqliteStore.open(dir);
    try {
      const kept = await store.history({ room: "lobby", limit: 10 });
      assert.deepEqual(kept.map((m) => [m.id, m.text]), [[1, "one"], [2, "two"]]);
      const resent = await store.appendMessage({
        fromKey: "ann",
        from: "Ann",
        room: "lobby",
        text: "two",
        ts: 3,
        clientId: "c2",
      });
      assert.deepEqual([resent.message.id, resent.duplicate], [2, true]);
      const next = await store.appendMessage({
        fromKey: "ann",
        from: "Ann",
        room: "lobby",
        text: "three",
        ts: 4,
        clientId: "c3",
      });
      assert.ok(next.message.id > 2);
    } finally {
      await store.close();
    }
  });
});

Deno.test("SqliteStore: migration 5 (a table rebuild) is all or nothing: a failed upgrade leaves schema 4 whole, the next one keeps every message", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, DATABASE_FILE);
    const old = new DatabaseSync(path);
    old.exec("PRAGMA journal_mode = WAL");
    for (const migration of MIGRATIONS.slice(0, 4)) old.exec(migration);
    old.exec("PRAGMA user_version = 4");
    old.exec(
      "INSERT INTO rooms (key, name, created_at) VALUES ('lobby', 'Lobby', 1);" +
        "INSERT INTO messages (ts, from_key, from_nick, room_key, text, client_id) VALUES " +
        "(1, 'ann', 'Ann', 'lobby', 'one', 'c1');" +
        "INSERT INTO messages (ts, from_key, from_nick, to_key, to_nick, dm_pair, text, client_id) " +
        "VALUES (2, 'ann', 'Ann', 'bob', 'Bob', 'ann' || char(10) || 'bob', 'two', 'c2');" +
        // A view on the table makes the rebuild fail after its DROP, at the RENAME
        // (SQLite checks the schema then): the upgrade stops half-way.
        "CREATE VIEW texts AS SELECT text FROM messages;",
    );
    old.close();
    await assert.rejects(SqliteStore.open(dir));
    const peek = new DatabaseSync(path);
    try {
      assert.equal(
        (peek.prepare("PRAGMA user_version").get() as { user_version: number }).user_version,
        4,
      );
      assert.deepEqual(
        peek.prepare("SELECT id, text FROM messages ORDER BY id").all().map((r) => [r.id, r.text]),
        [[1, "one"], [2, "two"]],
      );
      const tables = peek.prepare("SELECT name FROM sqlite_schema WHERE name = 'messages_v3'")
        .all();
      assert.deepEqual(tables, []);
      // The resend key as schema 4 had it: sender first.
      const unique = peek.prepare("PRAGMA index_list(messages)").all()
        .find((row) => row.origin === "u")!;
      const columns = peek.prepare(`PRAGMA index_info(${unique.name})`).all().map((r) => r.name);
      assert.deepEqual(columns, ["from_key", "client_id"]);
      peek.exec("DROP VIEW texts");
    } finally {
      peek.close();
    }
    const store = await SqliteStore.open(dir);
    try {
      const kept = await store.history({ room: "lobby", limit: 10 });
      assert.deepEqual(kept.map((m) => [m.id, m.text]), [[1, "one"]]);
      const resent = await store.appendMessage({
        fromKey: "ann",
        from: "Ann",
        toKey: "bob",
        to: "Bob",
        text: "two",
        ts: 3,
        clientId: "c2",
      });
      assert.deepEqual([resent.message.id, resent.duplicate], [2, true]);
    } finally {
      await store.close();
    }
    const after = new DatabaseSync(path);
    try {
      const unique = after.prepare("PRAGMA index_list(messages)").all()
        .find((row) => row.origin === "u")!;
      const columns = after.prepare(`PRAGMA index_info(${unique.name})`).all().map((r) => r.name);
      assert.deepEqual(columns, ["client_id", "from_key"]);
      assert.equal(
        (after.prepare("PRAGMA user_version").get() as { user_version: number }).user_version,
        MIGRATIONS.length,
      );
    } finally {
      after.close();
    }
  });
});

Deno.test("SqliteStore: a commit of messages from many senders writes the resend index's last page, not a page per sender", async () => {
  await withTempDir(async (dir) => {
    // The schema as the store makes it, in WAL mode; request ids in time order, as clients send.
    const db = new DatabaseSync(join(dir, DATABASE_FILE));
    try {
      db.exec("PRAGMA journal_mode = WAL");
      for (const migration of MIGRATIONS) db.exec(migration);
      db.exec("INSERT INTO rooms (key, name, created_at) VALUES ('lobby', 'Lobby', 1)");
      const insert = db.prepare(
        "INSERT INTO messages (ts, from_key, from_nick, room_key, text, client_id) " +
          "VALUES (?, ?, ?, 'lobby', ?, ?)",
      );
      const senders = 8;
      const commit = (count: number, at: number) => {
        db.exec("BEGIN");
        for (let i = 0; i < count; i++) {
          const from = `sender${i % senders}`;
          insert.run(at + i, from, from, `text ${at + i}`, newRequestId(at + i));
        }
        db.exec("COMMIT");
      };
      // A history several pages deep in every index, then an empty WAL.
      commit(4000, 1_000_000);
      db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
      assert.equal((await Deno.stat(join(dir, `${DATABASE_FILE}-wal`))).size, 0);
      // 50 group commits of one message from each sender: each appends the pages it changed.
      const commits = 50;
      for (let c = 0; c < commits; c++) commit(senders, 2_000_000 + c * senders);
      const { page_size } = db.prepare("PRAGMA page_size").get() as { page_size: number };
      const walBytes = (await Deno.stat(join(dir, `${DATABASE_FILE}-wal`))).size;
      const perCommit = (walBytes - 32) / (page_size + 24) / commits;
      // The table's last page, messages_by_room's and the resend index's, plus splits and
      // the header page when the file grows: 5.7. Sender first, the resend index changed a
      // page per sender: 14.6.
      assert.ok(perCommit <= 8, `${perCommit} pages per commit`);
    } finally {
      db.close();
    }
  });
});

Deno.test("SqliteStore: with a commit gap, a lone append commits at once and the appends of later turns within the gap share one commit", async () => {
  await withTempDir(async (dir) => {
    const turn = () => new Promise((resolve) => setTimeout(resolve, 0));
    // A gap no test run reaches: what commits within it is what the gap let through.
    const store = await SqliteStore.open(dir, { commitGapMs: 60_000 });
    try {
      await store.createRoom(lobby);
      // After a quiet spell: committed by the end of its turn.
      const first = store.appendMessage(say(1));
      await turn();
      assert.equal(store.stats.commits, 1);
      await within(first, "the lone append");
      // Two more, each in a turn of its own, within the gap: both wait.
      const second = store.appendMessage(say(2));
      await turn();
      const third = store.appendMessage(say(3));
      await turn();
      assert.deepEqual([store.stats.commits, store.stats.queued], [1, 2]);
      // A read commits the queue first, as it would have been at the gap's end: one commit.
      assert.equal(await store.lastMessageId(), 3);
      assert.deepEqual([store.stats.commits, store.stats.appends], [2, 3]);
      const ids = await within(Promise.all([second, third]), "the appends of the gap");
      assert.deepEqual(ids.map((r) => r.message.id), [2, 3]);
    } finally {
      await store.close();
    }
  });
});

Deno.test("SqliteStore: heldMs sums how long each append waited for its commit", async () => {
  await withTempDir(async (dir) => {
    const turn = () => new Promise((resolve) => setTimeout(resolve, 0));
    const store = await SqliteStore.open(dir, { commitGapMs: 60_000 });
    try {
      await store.createRoom(lobby);
      // A lone append: held no longer than from its call to its result.
      const lone = performance.now();
      await within(store.appendMessage(say(1)), "the lone append");
      const loneMs = performance.now() - lone;
      assert.ok(store.stats.heldMs >= 0 && store.stats.heldMs <= loneMs, `${store.stats.heldMs}`);
      // Two appends within the gap, kept while the test sleeps before a read commits them.
      const HOLD_MS = 30;
      const before = store.stats.heldMs;
      const second = store.appendMessage(say(2));
      await turn();
      const third = store.appendMessage(say(3));
      const held = performance.now();
      await new Promise((resolve) => setTimeout(resolve, HOLD_MS));
      const slept = performance.now() - held;
      assert.equal(store.stats.queued, 2);
      assert.equal(await store.lastMessageId(), 3);
      await within(Promise.all([second, third]), "the appends of the gap");
      const added = store.stats.heldMs - before;
      // Each waited at least as long as the test slept; neither longer than the test's span.
      assert.ok(added >= 2 * slept, `held ${added} ms for two appends kept ${slept} ms`);
      assert.ok(added <= 2 * (performance.now() - lone), `held ${added} ms`);
    } finally {
      await store.close();
    }
  });
});

Deno.test("SqliteStore: with a commit gap, appends no turn commits are committed by its timer", async () => {
  await withTempDir(async (dir) => {
    const store = await SqliteStore.open(dir, { commitGapMs: 20 });
    try {
      await store.createRoom(lobby);
      await store.appendMessage(say(1));
      // Within the gap of that commit (or past it: then at once); either way no read or
      // other append comes to commit it.
      const next = await within(store.appendMessage(say(2)), "the append after a commit");
      assert.equal(next.message.id, 2);
      assert.equal(store.stats.commits, 2);
    } finally {
      await store.close();
    }
  });
});

Deno.test("SqliteStore: the server's commitGapMs reaches the store it opens", async () => {
  await withTempDir(async (dir) => {
    const engines = await openEngines(resolveServerConfig({ dataDir: dir, commitGapMs: 60_000 }));
    const store = engines.store as SqliteStore;
    try {
      await store.createRoom(lobby);
      await store.appendMessage(say(1));
      const second = store.appendMessage(say(2));
      await new Promise((resolve) => setTimeout(resolve, 0));
      // Within the gap: still queued (committed at once without it).
      assert.deepEqual([store.stats.commits, store.stats.queued], [1, 1]);
      await store.lastMessageId();
      await within(second, "the append within the gap");
    } finally {
      await store.close();
    }
  });
});

Deno.test("SqliteStore: a commit gap out of range is refused", async () => {
  await withTempDir(async (dir) => {
    for (const commitGapMs of [-1, 60_001, Number.NaN]) {
      await assert.rejects(
        SqliteStore.open(dir, { commitGapMs }),
        (err: unknown) => err instanceof StoreError && err.code === "invalid",
      );
    }
  });
});

Deno.test("SqliteStore: a database of a newer schema is refused", async () => {
  await withTempDir(async (dir) => {
    await (await SqliteStore.open(dir)).close();
    const db = new DatabaseSync(join(dir, DATABASE_FILE));
    db.exec("PRAGMA user_version = 99");
    db.close();
    await assert.rejects(
      SqliteStore.open(dir),
      (err: unknown) =>
        err instanceof StoreError && err.code === "open_failed" &&
        err.message.includes("schema version 99"),
    );
  });
});

Deno.test("SqliteStore: an unusable data folder gives a clear error naming it", async () => {
  await withTempDir(async (dir) => {
    const file = join(dir, "a-file");
    await Deno.writeTextFile(file, "not a folder");
    const blocked = join(dir, "blocked");
    await Deno.mkdir(join(blocked, DATABASE_FILE), { recursive: true });
    for (const target of [join(file, "data"), file, blocked]) {
      await assert.rejects(
        SqliteStore.open(target),
        (err: unknown) => {
          assert.ok(err instanceof StoreError, String(err));
          assert.equal(err.code, "open_failed");
          assert.ok(err.message.includes(`data folder "${target}"`), err.message);
          return true;
        },
        target,
      );
    }
  });
});

Deno.test("SqliteStore: concurrent appends share commits (group commit)", async () => {
  await withTempDir(async (dir) => {
    const store = await SqliteStore.open(dir);
    try {
      await store.createRoom(lobby);
      const before = store.stats;
      assert.deepEqual([before.appends, before.commits, before.largestBatch], [0, 0, 0]);
      assert.equal(before.walSyncs, 1, "the room was synced before createRoom resolved");
      const results = await Promise.all(
        Array.from({ length: 1000 }, (_, i) => store.appendMessage(say(i))),
      );
      assert.equal(new Set(results.map((r) => r.message.id)).size, 1000);
      assert.equal(store.stats.appends, 1000);
      assert.ok(store.stats.commits <= 2, `1000 appends took ${store.stats.commits} commits`);
      const syncs = store.stats.walSyncs - before.walSyncs;
      assert.ok(syncs >= 1 && syncs <= 2, `1000 appends took ${syncs} syncs`);
      // Sequential appends each get their own commit.
      for (let i = 1000; i < 1003; i++) await store.appendMessage(say(i));
      assert.equal(store.stats.appends, 1003);
      assert.ok(store.stats.commits <= 5);
    } finally {
      await store.close();
    }
  });
});

Deno.test("SqliteStore: appends commit at the end of their turn, told at once, even during a sync; acknowledged after the next sync", async () => {
  await withTempDir(async (dir) => {
    const held = new HeldSync();
    const store = await SqliteStore.open(dir, { syncWal: held.syncWal });
    held.commits = () => store.stats.commits;
    // Another connection sees only what is committed.
    const other = new DatabaseSync(store.path, { readOnly: true });
    const stored = () => Number(other.prepare("SELECT count(*) AS n FROM messages").get()?.n);
    const told: number[] = [];
    const onCommitted = (r: { message: { id: number } }) => told.push(r.message.id);
    try {
      await store.createRoom(lobby);
      held.hold();
      const first = store.appendMessage(say(0), { onCommitted });
      // The turn's appends share one commit, made once the turn's work is done.
      assert.equal(store.stats.queued, 1);
      await Promise.resolve();
      assert.equal(store.stats.commits, 1);
      assert.equal(stored(), 1);
      assert.deepEqual(told, [1], "told once committed, before its sync");
      await held.begun(2);
      // While that sync runs, the next turn's appends commit at once too: told, not acked.
      const later = [1, 2, 3].map((i) => store.appendMessage(say(i), { onCommitted }));
      assert.equal(store.stats.queued, 3);
      await Promise.resolve();
      assert.equal(store.stats.commits, 2);
      assert.equal(stored(), 4);
      assert.deepEqual(told, [1, 2, 3, 4]);
      let acked = 0;
      for (const p of [first, ...later]) p.then(() => acked++);
      await new Promise((resolve) => setTimeout(resolve, 20));
      assert.equal(acked, 0, "none acknowledged before a sync covering it completed");
      held.release();
      await first;
      const results = await Promise.all(later);
      assert.deepEqual(results.map((r) => r.message.id), [2, 3, 4]);
      assert.equal(held.started[2], 2, "the second commit was made before the next sync began");
      const { appends, commits, largestBatch, queued } = store.stats;
      assert.deepEqual({ appends, commits, largestBatch, queued }, {
        appends: 4,
        commits: 2,
        largestBatch: 3,
        queued: 0,
      });
    } finally {
      held.release();
      other.close();
      await store.close();
    }
  });
});

Deno.test("SqliteStore: writes made during a sync share one commit at its end, each acknowledged after the next sync", async () => {
  await withTempDir(async (dir) => {
    const held = new HeldSync();
    const store = await SqliteStore.open(dir, { syncWal: held.syncWal });
    // Another connection sees only what is committed.
    const other = new DatabaseSync(store.path, { readOnly: true });
    const committed = (key: string) =>
      other.prepare("SELECT count(*) AS n FROM accounts WHERE key = ?").get(key)?.n === 1;
    const account = (key: string) => ({ key, nick: key, passwordHash: null, createdAt: 1 });
    try {
      await store.createRoom(lobby);
      held.hold();
      const before = held.started.length;
      // A lone write commits at once and starts its sync.
      const first = store.createAccount(account("a0"));
      await held.begun(before + 1);
      assert.ok(committed("a0"));
      // A login storm's writes while that sync runs: one open transaction.
      const acked: string[] = [];
      const during = [
        store.createAccount(account("a1")).then(() => acked.push("a1")),
        store.addMember("lobby", "a1").then(() => acked.push("member")),
        store.recordLogin("a1", 2).then(() => acked.push("login")),
        store.createAccount(account("a2")).then(() => acked.push("a2")),
      ];
      // A failing write in the group undoes only itself.
      const failing = store.setPasswordHash("nobody", "x");
      await assert.rejects(
        failing,
        (e: unknown) => e instanceof StoreError && e.code === "not_found",
      );
      // The store's own connection reads them at once; no one else sees them yet.
      assert.equal((await store.getAccount("a2"))?.nick, "a2");
      assert.equal(committed("a1"), false, "committed before the running sync ended");
      assert.equal(store.stats.writeGroups, 0);
      held.release();
      await within(first, "the first write");
      await within(held.begun(before + 2), "the next sync");
      // Committed together right before the next sync began, which covers them.
      assert.equal(store.stats.writeGroups, 1);
      assert.ok(committed("a1") && committed("a2"));
      await within(Promise.all(during), "the grouped writes");
      assert.deepEqual(acked.toSorted(), ["a1", "a2", "login", "member"]);
      assert.deepEqual(await store.accountRooms("a1"), ["lobby"]);
    } finally {
      held.release();
      other.close();
      await store.close();
    }
  });
});

Deno.test("SqliteStore: a message read waits for the sync of messages, not of other writes", async () => {
  await withTempDir(async (dir) => {
    const held = new HeldSync();
    const store = await SqliteStore.open(dir, { syncWal: held.syncWal });
    try {
      await store.createRoom(lobby);
      const { message } = await store.appendMessage(say(0));
      held.hold();
      // A login's record, committed and syncing: it holds no message.
      let recorded = false;
      const before = held.started.length;
      const login = store.recordLogin("alice", 1).then(() => recorded = true);
      await held.begun(before + 1);
      // A login storm's `lastMessageId`: what it can see is durable already.
      assert.equal(await within(store.lastMessageId(), "lastMessageId"), message.id);
      const history = await within(store.history({ room: "lobby", limit: 10 }), "history");
      assert.equal(history.length, 1);
      assert.equal(recorded, false, "the record's own sync is still held");
      // A message committed now: the reads that could see it wait for its sync.
      const appended = store.appendMessage(say(1));
      let read = false;
      const last = store.lastMessageId().then((id) => {
        read = true;
        return id;
      });
      await Promise.resolve();
      await Promise.resolve();
      assert.equal(read, false, "a message read does not run ahead of the message's sync");
      held.release();
      assert.equal(await last, (await appended).message.id);
      await login;
    } finally {
      held.release();
      await store.close();
    }
  });
});

Deno.test("SqliteStore: commits never checkpoint the WAL; a worker does, and the WAL starts over", async () => {
  await withTempDir(async (dir) => {
    // No checkpoint due by time: only the commits could checkpoint (SQLite's own does at
    // 1,000 WAL pages, inside the commit that crosses them).
    const store = await SqliteStore.open(dir, { checkpointIntervalMs: 3_600_000 });
    const path = join(dir, DATABASE_FILE);
    try {
      await store.createRoom(lobby);
      const dbBytes = (await Deno.stat(path)).size;
      const text = "x".repeat(8000);
      // 350 commits of a message of about 4 pages each: over 1,000 WAL pages.
      for (let i = 0; i < 350; i++) await store.appendMessage({ ...say(i), text });
      assert.ok((await Deno.stat(`${path}-wal`)).size > 1100 * 4096, "the WAL kept growing");
      assert.equal((await Deno.stat(path)).size, dbBytes, "no commit copied pages into the file");
      assert.equal(store.stats.checkpoints, 0);
    } finally {
      await store.close();
    }
    // Due after every sync now: the worker copies the pages, and the WAL starts over.
    const again = await SqliteStore.open(dir, { checkpointIntervalMs: 0 });
    try {
      const text = "y".repeat(3000);
      for (let i = 0; i < 50; i++) await again.appendMessage({ ...say(1000 + i), text });
      const deadline = Date.now() + 20_000;
      // A checkpoint that copied everything (over 1,300 frames), then one after the WAL
      // started over: far fewer (a checkpoint waits for 64 commits).
      while (again.stats.checkpoints < 2 || again.stats.walFrames > 500) {
        assert.ok(Date.now() < deadline, `no small WAL: ${JSON.stringify(again.stats)}`);
        await again.appendMessage({ ...say(2000 + again.stats.appends), text: "z" });
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      assert.equal(again.stats.blockingCheckpoints, 0);
      assert.ok((await Deno.stat(path)).size > 350 * 8000, "the pages are in the file");
      assert.ok((await again.history({ room: "lobby", limit: 1000 })).length >= 400);
    } finally {
      await again.close();
    }
  });
});

Deno.test("SqliteStore: a steady writer's appends wait for a running checkpoint: the WAL starts over", async () => {
  await withTempDir(async (dir) => {
    const store = await SqliteStore.open(dir, { checkpointIntervalMs: 0 });
    try {
      await store.createRoom(lobby);
      // One at a time, each on the previous one's ack: one commits whenever a checkpoint runs.
      for (let i = 0; i < 1500; i++) await store.appendMessage(say(i));
      const { checkpoints, walFrames } = store.stats;
      assert.ok(checkpoints >= 5, `checkpoints: ${checkpoints}`);
      // 1,500 commits of a frame or more: over 1,500 frames had the WAL never started over.
      assert.ok(walFrames < 1000, `the WAL kept growing: ${walFrames} frames`);
    } finally {
      await store.close();
    }
  });
});

Deno.test("SqliteStore: appends commit during a checkpoint's first passes and wait only for its last", async () => {
  await withTempDir(async (dir) => {
    // Each pass is held until released: what is committed meanwhile shows.
    const passes: { held: boolean; release: () => void }[] = [];
    const started = Promise.withResolvers<void>();
    const store = await SqliteStore.open(dir, {
      checkpointIntervalMs: 0,
      checkpointPass: async (run, held) => {
        const gate = Promise.withResolvers<void>();
        passes.push({ held, release: gate.resolve });
        started.resolve();
        await gate.promise;
        return run();
      },
    });
    try {
      await store.createRoom(lobby);
      // 64 commits (each on the previous one's ack) make a checkpoint due after a sync.
      let i = 0;
      while (passes.length === 0) {
        assert.ok(i < 1000, "no checkpoint started");
        await store.appendMessage(say(i++));
      }
      await within(started.promise, "the first pass");
      assert.equal(passes[0].held, false, "the first pass copies while appends commit");
      // Committed (receivers told) while the first pass runs, and acknowledged.
      const committed = Promise.withResolvers<void>();
      const during = store.appendMessage(say(i++), { onCommitted: () => committed.resolve() });
      await within(committed.promise, "the commit during the first pass");
      await within(during, "the ack during the first pass");
      // Passes follow one another until one copies few frames; the last one holds appends.
      const deadline = Date.now() + 20_000;
      while (!passes[passes.length - 1].held) {
        assert.ok(Date.now() < deadline, `no held pass: ${passes.length} passes`);
        const pass = passes.length;
        passes[pass - 1].release();
        while (passes.length === pass) {
          assert.ok(Date.now() < deadline, "no next pass");
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
        assert.ok(passes.length <= 5, `${passes.length} passes`);
      }
      let told = false;
      const held = store.appendMessage(say(i++), { onCommitted: () => told = true });
      // The end of the turn that would commit it, and of a few more.
      for (let k = 0; k < 5; k++) await new Promise((resolve) => setTimeout(resolve, 0));
      assert.equal(told, false, "an append waits for the last pass");
      passes[passes.length - 1].release();
      await within(held, "the append held by the last pass");
      assert.equal(told, true);
      assert.equal(
        (await store.history({ room: "lobby", limit: 1000 })).length,
        i,
        "every append is stored",
      );
    } finally {
      for (const pass of passes) pass.release();
      await store.close();
    }
  });
});

Deno.test("SqliteStore: a full queue commits at maxBatch", async () => {
  await withTempDir(async (dir) => {
    const store = await SqliteStore.open(dir, { maxBatch: 100 });
    try {
      await store.createRoom(lobby);
      const results = await Promise.all(
        Array.from({ length: 1000 }, (_, i) => store.appendMessage(say(i))),
      );
      const ids = results.map((r) => r.message.id);
      for (let i = 1; i < ids.length; i++) assert.ok(ids[i] > ids[i - 1]);
      const { appends, commits, largestBatch, walSyncs } = store.stats;
      // The turn's thousand commit each time 100 are queued.
      assert.deepEqual({ appends, commits, largestBatch }, {
        appends: 1000,
        commits: 10,
        largestBatch: 100,
      });
      // Commits made while a sync runs share the next one.
      assert.ok(walSyncs >= 2 && walSyncs < 11, `${walSyncs} syncs for 10 commits and a room`);
    } finally {
      await store.close();
    }
  });
  await assert.rejects(
    SqliteStore.open("unused", { maxBatch: 0 }),
    (err: unknown) => err instanceof StoreError && err.code === "invalid",
  );
});

Deno.test("SqliteStore: a batch past the largest multi-row insert stores each message once, in order; resends in it are duplicates", async () => {
  await withTempDir(async (dir) => {
    const store = await SqliteStore.open(dir);
    try {
      await store.createRoom(lobby);
      await store.createRoom({ ...lobby, key: "den", name: "Den" });
      const early = await store.appendMessage(say(0, "early"));
      const largest = Math.max(...ROOM_INSERT_ROWS);
      const count = 2 * largest + 20;
      // One turn, one commit: room messages of two rooms, a direct message and a message to
      // an unknown room among them, resends of one earlier in the batch (in the same
      // statement, and across statements) and of one stored by an earlier commit, and a
      // client id used again for another text.
      const plan: {
        message: NewMessage;
        expect: "new" | "duplicate" | "not_found" | "conflict";
      }[] = [];
      for (let i = 1; i <= count; i++) {
        plan.push({
          message: { ...say(i), ...(i % 3 === 0 ? { room: "den" } : {}) },
          expect: "new",
        });
        if (i === 5) plan.push({ message: say(2), expect: "duplicate" });
        if (i === largest + 3) plan.push({ message: say(4), expect: "duplicate" });
        if (i === largest + 10) plan.push({ message: say(0, "early"), expect: "duplicate" });
        if (i === largest + 11) {
          plan.push({ message: { ...say(i), text: "other", clientId: "c1" }, expect: "conflict" });
        }
        if (i === 30) {
          plan.push({
            message: {
              fromKey: "alice",
              from: "Alice",
              toKey: "bob",
              to: "Bob",
              text: "direct",
              ts: i,
              clientId: "direct",
            },
            expect: "new",
          });
        }
        if (i === 40) {
          plan.push({ message: { ...say(i, "nowhere"), room: "void" }, expect: "not_found" });
        }
      }
      const commitsBefore = store.stats.commits;
      const settled = await Promise.allSettled(
        plan.map(({ message }) => store.appendMessage(message)),
      );
      assert.equal(store.stats.commits - commitsBefore, 1, "one turn's appends, one commit");
      const firstOf = new Map<string, number>();
      let lastId = early.message.id;
      const stored: number[] = [];
      for (let i = 0; i < plan.length; i++) {
        const { message, expect } = plan[i];
        const outcome = settled[i];
        if (expect === "not_found" || expect === "conflict") {
          assert.equal(outcome.status, "rejected", `${message.clientId} is refused`);
          const reason = (outcome as PromiseRejectedResult).reason;
          assert.ok(reason instanceof StoreError && reason.code === expect, String(reason));
          continue;
        }
        assert.equal(outcome.status, "fulfilled", `${message.clientId}: ${String(outcome)}`);
        const { message: got, duplicate } = (outcome as PromiseFulfilledResult<
          Awaited<ReturnType<Store["appendMessage"]>>
        >).value;
        assert.equal(duplicate, expect === "duplicate", message.clientId);
        assert.equal(got.text, message.text);
        assert.equal(got.ts, message.ts);
        if (expect === "duplicate") {
          const first = message.clientId === "early"
            ? early.message.id
            : firstOf.get(message.clientId);
          assert.equal(got.id, first, `${message.clientId} answers with the stored copy`);
          continue;
        }
        assert.ok(
          got.id > lastId,
          `ids increase in the order of the appends (${message.clientId})`,
        );
        lastId = got.id;
        firstOf.set(message.clientId, got.id);
        stored.push(got.id);
        if (got.type === "msg") {
          assert.equal(got.room, message.room === "den" ? "Den" : "Lobby");
          assert.equal(got.from, "Alice");
        }
      }
      // What was stored reads back once each, with the ids the appends were given.
      const read = [
        ...await store.history({ room: "lobby", limit: 1000 }),
        ...await store.history({ room: "den", limit: 1000 }),
        ...await store.history({ between: ["alice", "bob"], limit: 1000 }),
      ];
      const readIds = read.map((m) => m.id).filter((id) => id !== early.message.id);
      assert.deepEqual(readIds.sort((a, b) => a - b), stored);
      for (const m of read) {
        const i = plan.findIndex((p) => firstOf.get(p.message.clientId) === m.id);
        if (m.id === early.message.id) continue;
        assert.equal(m.text, plan[i].message.text);
      }
      assert.equal(stored.length, count + 1);
    } finally {
      await store.close();
    }
  });
});

Deno.test("SqliteStore: after a stop of the machine, a batch of room messages starts at the id floor", async () => {
  await withTempDir(async (dir) => {
    const live = join(dir, "live");
    const store = await SqliteStore.open(live, { bootId: "boot-1" });
    const image = join(dir, "image");
    try {
      await store.createRoom(lobby);
      assert.equal((await store.appendMessage(say(0))).message.id, 1);
      await Deno.mkdir(image);
      for (const file of [DATABASE_FILE, `${DATABASE_FILE}-wal`]) {
        await Deno.copyFile(join(live, file), join(image, file));
      }
    } finally {
      await store.close();
    }
    const reopened = await SqliteStore.open(image, { bootId: "boot-2" });
    try {
      const count = Math.max(...ROOM_INSERT_ROWS) + 9;
      const results = await Promise.all(
        Array.from({ length: count }, (_, i) => reopened.appendMessage(say(i + 1))),
      );
      assert.deepEqual(
        results.map((r) => r.message.id),
        Array.from({ length: count }, (_, i) => MAX_UNDURABLE_IDS + 2 + i),
      );
      const read = await reopened.history({ room: "lobby", limit: 1000 });
      assert.deepEqual(
        read.map((m) => m.text),
        Array.from({ length: count + 1 }, (_, i) => `m${i}`),
      );
    } finally {
      await reopened.close();
    }
  });
});

Deno.test("SqliteStore: a failed batch rejects every append and keeps none", async () => {
  await withTempDir(async (dir) => {
    const store = await SqliteStore.open(dir);
    try {
      await store.createRoom(lobby);
      const before = await store.appendMessage(say(0));
      // Another connection installs a trigger that makes one insert fail.
      const other = new DatabaseSync(store.path);
      other.exec(
        "CREATE TRIGGER boom BEFORE INSERT ON messages WHEN NEW.text = 'm2' " +
          "BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
      );
      // A write's sync is running: the three appends queue and form one batch.
      const blocked = store.addBlock("alice", "nobody");
      const outcomes = await Promise.allSettled([1, 2, 3].map((i) => store.appendMessage(say(i))));
      assert.equal(await blocked, true);
      for (const outcome of outcomes) {
        assert.equal(outcome.status, "rejected");
        const reason = (outcome as PromiseRejectedResult).reason;
        assert.ok(reason instanceof StoreError && reason.code === "failed", String(reason));
        assert.match(reason.message, /could not store 3 message\(s\): injected failure/);
      }
      assert.deepEqual(await store.history({ room: "lobby", limit: 10 }), [before.message]);
      other.exec("DROP TRIGGER boom");
      other.close();
      // The same client ids go through once the failure is gone.
      const retried = await Promise.all([1, 2, 3].map((i) => store.appendMessage(say(i))));
      assert.ok(retried.every((r) => !r.duplicate));
      assert.deepEqual(
        (await store.history({ room: "lobby", limit: 10 })).map((m) => m.text),
        ["m0", "m1", "m2", "m3"],
      );
    } finally {
      await store.close();
    }
  });
});

const CHILD_SCRIPT = `
import { SqliteStore } from ${JSON.stringify(new URL("./sqlite_store.ts", import.meta.url).href)};
const store = await SqliteStore.open(Deno.args[0], JSON.parse(Deno.args[1] ?? "{}"));
await store.createRoom({ key: "lobby", name: "Lobby", topic: "", topicBy: "", createdAt: 1 });
const out = new TextEncoder();
let next = 0;
const pad = ".".repeat(Number(Deno.args[2] ?? 0));
async function writer() {
  for (;;) {
    const n = next++;
    const { message } = await store.appendMessage({
      fromKey: "alice", from: "Alice", room: "lobby", text: "m" + n + pad, ts: n, clientId: "c" + n,
    });
    const { checkpoints, blockingCheckpoints } = store.stats;
    Deno.stdout.writeSync(
      out.encode("acked " + message.id + " " + n + " " + (checkpoints + blockingCheckpoints) + "\\n"),
    );
  }
}
await Promise.all(Array.from({ length: 16 }, writer));
`;

/**
 * Starts a child appending with 16 writers (store options `options`, texts padded by
 * `pad` bytes), SIGKILLs it once it printed `killAfter` acknowledgements and `checkpoints`
 * checkpoints, and checks that every acknowledged message is stored.
 */
async function survivesSigkill(
  options: SqliteStoreOptions,
  { killAfter, checkpoints = 0, pad = 0 }: {
    killAfter: number;
    checkpoints?: number;
    pad?: number;
  },
): Promise<void> {
  await withTempDir(async (dir) => {
    const script = join(dir, "child.ts");
    await Deno.writeTextFile(script, CHILD_SCRIPT);
    const config = new URL("../deno.json", import.meta.url).pathname;
    const data = join(dir, "data");
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--quiet",
        "--config",
        config,
        script,
        data,
        JSON.stringify(options),
        `${pad}`,
      ],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const acked = new Map<number, string>();
    const decoder = new TextDecoder();
    let buffered = "";
    let killed = false;
    let checkpointed = 0;
    // A child that never acknowledges must not hang the test: the assertion below fails.
    const guard = setTimeout(() => child.kill("SIGKILL"), 60_000);
    for await (const chunk of child.stdout) {
      buffered += decoder.decode(chunk, { stream: true });
      const lines = buffered.split("\n");
      buffered = lines.pop()!; // an unfinished line is not an acknowledgement
      for (const line of lines) {
        const match = /^acked (\d+) (\d+) (\d+)$/.exec(line);
        assert.ok(match, `unexpected output: ${line}`);
        acked.set(Number(match[1]), `m${match[2]}${".".repeat(pad)}`);
        checkpointed = Math.max(checkpointed, Number(match[3]));
      }
      if (!killed && acked.size >= killAfter && checkpointed >= checkpoints) {
        child.kill("SIGKILL");
        killed = true;
      }
    }
    clearTimeout(guard);
    const status = await child.status;
    const stderr = new TextDecoder().decode(
      await new Response(child.stderr).arrayBuffer(),
    );
    assert.ok(
      killed,
      `child ended (code ${status.code}) after ${acked.size} acks, ${checkpointed} checkpoints: ${stderr}`,
    );
    assert.equal(status.signal, "SIGKILL");

    const store = await SqliteStore.open(data);
    try {
      const history = await store.history({ room: "lobby", limit: 1_000_000 });
      const byId = new Map(history.map((m) => [m.id, m.text]));
      for (const [id, text] of acked) {
        assert.equal(byId.get(id), text, `acknowledged message ${id} is missing`);
      }
      assert.ok(byId.size >= acked.size);
    } finally {
      await store.close();
    }
  });
}

Deno.test("SqliteStore: acknowledged appends survive SIGKILL of the process", async () => {
  await survivesSigkill({}, { killAfter: 300 });
});

Deno.test("SqliteStore: acknowledged appends survive SIGKILL while checkpoints run", async () => {
  // A checkpoint after every sync, and one on the store's thread whenever the worker's
  // leaves frames behind in a WAL past 64 frames: the kill lands among them.
  await survivesSigkill({ checkpointIntervalMs: 0, maxWalFrames: 64 }, {
    killAfter: 2000,
    checkpoints: 20,
    pad: 2000,
  });
});

Deno.test("SqliteStore: after the machine stopped during a run, message ids go on past any a receiver may have seen", async () => {
  await withTempDir(async (dir) => {
    const live = join(dir, "live");
    const store = await SqliteStore.open(live, { bootId: "boot-1" });
    const ids = async (s: SqliteStore, from: number) =>
      (await Promise.all([from, from + 1].map((i) => s.appendMessage(say(i)))))
        .map((r) => r.message.id);
    /** The data folder as the run left it, without a close: a crash's image. */
    const image = async (name: string) => {
      const to = join(dir, name);
      await Deno.mkdir(to);
      for (const file of [DATABASE_FILE, `${DATABASE_FILE}-wal`]) {
        await Deno.copyFile(join(live, file), join(to, file));
      }
      return to;
    };
    try {
      await store.createRoom(lobby);
      assert.deepEqual(await ids(store, 0), [1, 2]);
      const reboot = await image("reboot");
      const kill = await image("kill");
      const unknown = await image("unknown");
      const quiet = await image("quiet");
      const reopened = async (folder: string, bootId: string | null) => {
        const s = await SqliteStore.open(folder, { bootId });
        try {
          return await ids(s, 10);
        } finally {
          await s.close();
        }
      };
      // Another boot: the last commits may be gone with the machine, after being told.
      assert.deepEqual(await reopened(reboot, "boot-2"), [
        MAX_UNDURABLE_IDS + 3,
        MAX_UNDURABLE_IDS + 4,
      ]);
      // Moved on for good, though no message was written in the run after the reboot.
      await (await SqliteStore.open(quiet, { bootId: "boot-2" })).close();
      assert.deepEqual(await reopened(quiet, "boot-2"), [
        MAX_UNDURABLE_IDS + 3,
        MAX_UNDURABLE_IDS + 4,
      ]);
      // The same boot: a killed process lost nothing; ids go on.
      assert.deepEqual(await reopened(kill, "boot-1"), [3, 4]);
      // Boots that cannot be told apart: as after a reboot.
      assert.deepEqual(await reopened(unknown, null), [
        MAX_UNDURABLE_IDS + 3,
        MAX_UNDURABLE_IDS + 4,
      ]);
    } finally {
      await store.close();
    }
    // A run that closed lost nothing, whatever the boot after it.
    assert.deepEqual(
      await (async () => {
        const s = await SqliteStore.open(live, { bootId: "boot-3" });
        try {
          return await ids(s, 20);
        } finally {
          await s.close();
        }
      })(),
      [3, 4],
    );
  });
});
