import assert from "node:assert/strict";
import { POSTGRES_SKIP, startPostgres } from "../tests/helpers/postgres.ts";
import { fileRecord, fileStoreConformance } from "./file_store_conformance.ts";
import { connectPostgresFiles } from "./postgres_files.ts";
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
