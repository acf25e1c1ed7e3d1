import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { MemoryFileStore } from "./file_store.ts";
import {
  endedBoundsConformance,
  fileRecord,
  fileStoreConformance,
  TEST_ENDED_BOUNDS,
} from "./file_store_conformance.ts";
import { SqliteFileStore } from "./sqlite_file_store.ts";
import { StoreError } from "./store.ts";

Deno.test("MemoryFileStore conforms", async () => {
  await fileStoreConformance(new MemoryFileStore());
});

Deno.test("SqliteFileStore conforms, and keeps its records across a reopen", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await fileStoreConformance(SqliteFileStore.open(dir));
    const store = SqliteFileStore.open(dir);
    const ids = await store.ids();
    assert.equal(ids.length, 2);
    const next = await store.create(fileRecord());
    assert.ok(next.id > Math.max(...ids), "ids are never reused");
    await store.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("MemoryFileStore keeps each sender's fair share of ended files", async () => {
  await endedBoundsConformance(new MemoryFileStore(TEST_ENDED_BOUNDS));
});

Deno.test("SqliteFileStore keeps each sender's fair share of ended files", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await endedBoundsConformance(SqliteFileStore.open(dir, TEST_ENDED_BOUNDS));
    // Reopened (the count is taken again, the senders' shares were kept): ten are held,
    // dave's, erin's three and frank's four; an eleventh pushes out frank's oldest.
    const store = SqliteFileStore.open(dir, TEST_ENDED_BOUNDS);
    await store.recordEnd({
      id: 500,
      fromKey: "gina",
      to: "Bob",
      name: "500.bin",
      size: 1,
      ending: "received",
      by: "Bob",
      endedAt: 500,
    });
    assert.equal(await store.ended(401), null);
    for (const id of [201, 301, 402, 500]) assert.equal((await store.ended(id))?.id, id);
    await store.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("SqliteFileStore names the file when it cannot open it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${dir}/files.db`);
    assert.throws(() => SqliteFileStore.open(dir), (err: unknown) => {
      assert.ok(err instanceof StoreError);
      assert.equal(err.code, "open_failed");
      assert.match(err.message, /files\.db/);
      return true;
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("SqliteFileStore migrates files offered with their SHA-256: it is their key and their hash", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // A files.db of schema version 1, as servers before hashing while sending wrote it.
    const db = new DatabaseSync(join(dir, "files.db"));
    db.exec(`
      CREATE TABLE files (
        id INTEGER PRIMARY KEY AUTOINCREMENT, from_key TEXT NOT NULL, from_nick TEXT NOT NULL,
        to_key TEXT NOT NULL, to_nick TEXT NOT NULL, name TEXT NOT NULL, size INTEGER NOT NULL,
        sha256 TEXT NOT NULL, state TEXT NOT NULL, uploaded INTEGER NOT NULL,
        created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL
      );
      INSERT INTO files (from_key, from_nick, to_key, to_nick, name, size, sha256, state,
        uploaded, created_at, expires_at)
        VALUES ('alice', 'Alice', 'bob', 'Bob', 'a.bin', 5, '${
      "e".repeat(64)
    }', 'offered', 0, 1, 2);
      PRAGMA user_version = 1;
    `);
    db.close();
    const store = SqliteFileStore.open(dir);
    const [id] = await store.ids();
    const record = await store.get(id);
    assert.equal(record?.key, "e".repeat(64));
    assert.equal(record?.sha256, "e".repeat(64));
    assert.equal((await store.find("alice", "bob", "e".repeat(64), 5, "a.bin"))?.id, id);
    await store.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
