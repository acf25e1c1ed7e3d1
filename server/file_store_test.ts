import assert from "node:assert/strict";
import { MemoryFileStore } from "./file_store.ts";
import { fileRecord, fileStoreConformance } from "./file_store_conformance.ts";
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
