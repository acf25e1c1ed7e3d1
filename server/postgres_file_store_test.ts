import assert from "node:assert/strict";
import { POSTGRES_SKIP, startPostgres } from "../tests/helpers/postgres.ts";
import {
  endedBoundsConformance,
  fileRecord,
  fileStoreConformance,
  TEST_ENDED_BOUNDS,
} from "./file_store_conformance.ts";
import postgres from "postgres";
import { connectPostgresFiles, FILES_MIGRATIONS } from "./postgres_files.ts";
import { PostgresFileStore } from "./postgres_file_store.ts";

const pg = POSTGRES_SKIP === null ? await startPostgres() : null;
const ignore = pg === null;

Deno.test({
  name: "PostgresFileStore conforms",
  ignore,
  async fn() {
    await fileStoreConformance(await PostgresFileStore.open(await pg!.createDatabase()));
  },
});

Deno.test({
  name: "PostgresFileStore keeps each sender's fair share of ended files",
  ignore,
  async fn() {
    const url = await pg!.createDatabase();
    await endedBoundsConformance(await PostgresFileStore.open(url, undefined, TEST_ENDED_BOUNDS));
  },
});

Deno.test({
  name: "PostgresFileStore: two nodes opening one database at once get global, unique ids",
  ignore,
  async fn() {
    const url = await pg!.createDatabase();
    // Both create the schema at once: one waits for the other's advisory lock.
    const [a, b] = await Promise.all([PostgresFileStore.open(url), PostgresFileStore.open(url)]);
    try {
      const created = await Promise.all(
        Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? a : b).create(fileRecord())),
      );
      const ids = created.map((r) => r.id);
      assert.equal(new Set(ids).size, ids.length, "no id given twice");
      assert.deepEqual((await b.ids()).sort((x, y) => x - y), [...ids].sort((x, y) => x - y));
      // A record made on one node is seen, updated and removed on the other.
      const one = created[0];
      assert.deepEqual(await b.get(one.id), one);
      assert.equal(await b.update(one.id, { state: "accepted" }), true);
      assert.equal((await a.get(one.id))?.state, "accepted");
      assert.equal(await a.remove(one.id), true);
      assert.equal(await b.get(one.id), null);
      assert.deepEqual(await a.held(), { files: 39, bytes: 39 * 1000 });
    } finally {
      await a.close();
      await b.close();
    }
  },
});

Deno.test({
  name: "PostgresFileStore keeps names PostgreSQL text cannot hold, exactly, and finds them",
  ignore,
  async fn() {
    const store = await PostgresFileStore.open(await pg!.createDatabase());
    try {
      const name = `a\u0000b${String.fromCharCode(0xd800)}\u{1F600}"'\\.txt`;
      const record = await store.create(fileRecord({ name }));
      assert.equal((await store.get(record.id))?.name, name);
      assert.equal((await store.find("alice", "bob", "a".repeat(64), 1000, name))?.id, record.id);
      assert.equal(await store.find("alice", "bob", "a".repeat(64), 1000, "a\u0000b"), null);
    } finally {
      await store.close();
    }
  },
});

Deno.test({
  name: "PostgresFileStore: a schema newer than the program is refused with open_failed",
  ignore,
  async fn() {
    const url = await pg!.createDatabase();
    const handle = await connectPostgresFiles(url);
    await handle.sql`UPDATE chat_component_schema SET version = 99 WHERE component = 'held_files'`;
    await handle.release();
    await assert.rejects(PostgresFileStore.open(url), (err: unknown) => {
      assert.equal((err as { code?: string }).code, "open_failed");
      assert.match((err as Error).message, /version 99/);
      return true;
    });
  },
});

Deno.test({
  name:
    "PostgresFileStore migrates files offered with their SHA-256: it is their key and their hash",
  ignore,
  async fn() {
    const url = await pg!.createDatabase();
    // The schema of version 1, as servers before hashing while sending left it, and a file.
    const sql = postgres(url, { max: 1, onnotice: () => {} });
    try {
      await sql.unsafe(FILES_MIGRATIONS[0]);
      await sql`CREATE TABLE chat_component_schema (
        component TEXT PRIMARY KEY, version INT NOT NULL)`;
      await sql`INSERT INTO chat_component_schema VALUES ('held_files', 1)`;
      await sql`
        INSERT INTO held_files (from_key, from_nick, to_key, to_nick, name, size, sha256, state,
          uploaded, created_at, expires_at)
        VALUES ('alice', 'Alice', 'bob', 'Bob', '"a.bin"', 5, ${"e".repeat(64)}, 'offered',
          false, 1, 2)`;
    } finally {
      await sql.end();
    }
    const store = await PostgresFileStore.open(url);
    try {
      const [id] = await store.ids();
      const record = await store.get(id);
      assert.equal(record?.key, "e".repeat(64));
      assert.equal(record?.sha256, "e".repeat(64));
      assert.equal((await store.find("alice", "bob", "e".repeat(64), 5, "a.bin"))?.id, id);
    } finally {
      await store.close();
    }
  },
});
