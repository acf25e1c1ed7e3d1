import assert from "node:assert/strict";
import { type FileStore, MemoryFileStore, type NewFileRecord } from "./file_store.ts";
import { SqliteFileStore } from "./sqlite_file_store.ts";
import { StoreError } from "./store.ts";

function record(overrides: Partial<NewFileRecord> = {}): NewFileRecord {
  return {
    fromKey: "alice",
    from: "Alice",
    toKey: "bob",
    to: "Bob",
    name: "../report.pdf",
    size: 1000,
    sha256: "a".repeat(64),
    state: "offered",
    uploaded: false,
    createdAt: 10,
    expiresAt: 100,
    ...overrides,
  };
}

/** The behaviour every FileStore has. */
async function conformance(store: FileStore): Promise<void> {
  const first = await store.create(record());
  const second = await store.create(record({ toKey: "carol", to: "Carol", size: 500 }));
  const third = await store.create(record({ fromKey: "bob", from: "Bob", toKey: "alice" }));
  assert.ok(first.id >= 1 && second.id > first.id && third.id > second.id);
  assert.deepEqual(await store.get(first.id), first);
  assert.equal(await store.get(9999), null);

  assert.deepEqual(
    await store.find("alice", "bob", "a".repeat(64), 1000, "../report.pdf"),
    first,
  );
  assert.equal(await store.find("alice", "bob", "a".repeat(64), 1000, "other.pdf"), null);
  assert.equal(await store.find("alice", "bob", "b".repeat(64), 1000, "../report.pdf"), null);

  assert.deepEqual(await store.held("alice"), { files: 2, bytes: 1500 });
  assert.deepEqual(await store.held("nobody"), { files: 0, bytes: 0 });
  assert.deepEqual(await store.held(), { files: 3, bytes: 2500 });
  assert.deepEqual((await store.incoming("bob")).map((r) => r.id), [first.id]);

  assert.equal(await store.update(first.id, { state: "accepted" }), true);
  assert.equal(await store.update(first.id, { uploaded: true, expiresAt: 50 }), true);
  assert.deepEqual(await store.get(first.id), {
    ...first,
    state: "accepted",
    uploaded: true,
    expiresAt: 50,
  });
  assert.equal(await store.update(9999, { state: "accepted" }), false);

  assert.deepEqual((await store.expired(50)).map((r) => r.id), [first.id]);
  assert.deepEqual((await store.expired(49)).map((r) => r.id), []);
  assert.deepEqual((await store.ids()).sort((a, b) => a - b), [first.id, second.id, third.id]);

  assert.equal(await store.remove(first.id), true);
  assert.equal(await store.remove(first.id), false);
  assert.deepEqual(await store.held("alice"), { files: 1, bytes: 500 });

  await assert.rejects(store.create(record({ size: -1 })), (err: unknown) => {
    assert.ok(err instanceof StoreError);
    assert.equal(err.code, "invalid");
    return true;
  });
  await assert.rejects(store.create(record({ sha256: "XYZ" })), StoreError);

  await store.close();
  await assert.rejects(store.get(second.id), (err: unknown) => {
    assert.ok(err instanceof StoreError);
    assert.equal(err.code, "closed");
    return true;
  });
}

Deno.test("MemoryFileStore conforms", async () => {
  await conformance(new MemoryFileStore());
});

Deno.test("SqliteFileStore conforms, and keeps its records across a reopen", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await conformance(SqliteFileStore.open(dir));
    const store = SqliteFileStore.open(dir);
    const ids = await store.ids();
    assert.equal(ids.length, 2);
    const next = await store.create(record());
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
