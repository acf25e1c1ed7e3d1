/**
 * The behaviour every {@linkcode FileStore} has, as one suite run against each
 * implementation (`file_store_test.ts`, `postgres_file_store_test.ts`).
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  type EndedBounds,
  type EndedFile,
  type FileStore,
  MAX_ENDED_PER_SENDER,
  type NewFileRecord,
} from "./file_store.ts";
import { StoreError } from "./store.ts";

/** A new file record, with `overrides`. */
export function fileRecord(overrides: Partial<NewFileRecord> = {}): NewFileRecord {
  return {
    fromKey: "alice",
    from: "Alice",
    toKey: "bob",
    to: "Bob",
    name: "../report.pdf",
    size: 1000,
    key: "a".repeat(64),
    sha256: null,
    state: "offered",
    uploaded: false,
    createdAt: 10,
    expiresAt: 100,
    ...overrides,
  };
}

/**
 * The behaviour every FileStore has: ids, find, held counts, updates, expiry, removal,
 * refusals, ended files (bounded per sender), and `closed` after close (it closes `store`).
 */
export async function fileStoreConformance(store: FileStore): Promise<void> {
  const first = await store.create(fileRecord());
  const second = await store.create(fileRecord({ toKey: "carol", to: "Carol", size: 500 }));
  const third = await store.create(fileRecord({ fromKey: "bob", from: "Bob", toKey: "alice" }));
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
  // The SHA-256 comes at the end of the upload; the key still finds the file.
  assert.equal(await store.update(first.id, { sha256: "c".repeat(64) }), true);
  assert.equal((await store.get(first.id))?.sha256, "c".repeat(64));
  assert.equal(
    (await store.find("alice", "bob", "a".repeat(64), 1000, "../report.pdf"))?.id,
    first.id,
  );
  assert.equal(await store.find("alice", "bob", "c".repeat(64), 1000, "../report.pdf"), null);
  await assert.rejects(store.update(first.id, { sha256: "C".repeat(64) }), StoreError);
  // An offer that carried its SHA-256 (older clients) keeps it.
  const hashed = await store.create(
    fileRecord({ toKey: "dave", to: "Dave", key: "d".repeat(64), sha256: "d".repeat(64) }),
  );
  assert.deepEqual(await store.get(hashed.id), hashed);
  assert.equal(await store.remove(hashed.id), true);

  assert.deepEqual((await store.expired(50)).map((r) => r.id), [first.id]);
  assert.deepEqual((await store.expired(49)).map((r) => r.id), []);
  assert.deepEqual((await store.ids()).sort((a, b) => a - b), [first.id, second.id, third.id]);

  assert.equal(await store.remove(first.id), true);
  assert.equal(await store.remove(first.id), false);
  assert.deepEqual(await store.held("alice"), { files: 1, bytes: 500 });

  await assert.rejects(store.create(fileRecord({ size: -1 })), (err: unknown) => {
    assert.ok(err instanceof StoreError);
    assert.equal(err.code, "invalid");
    return true;
  });
  await assert.rejects(store.create(fileRecord({ key: "XYZ" })), StoreError);
  await assert.rejects(store.create(fileRecord({ sha256: "XYZ" })), StoreError);

  // How files ended, remembered a while: the first ending stays; forgotten by age.
  const ended = {
    id: first.id,
    fromKey: "alice",
    to: "Bob",
    name: "../report.pdf",
    size: 1000,
    ending: "received" as const,
    by: "Bob",
    endedAt: 60,
  };
  assert.equal(await store.ended(first.id), null);
  await store.recordEnd(ended);
  await store.recordEnd({ ...ended, ending: "expired", by: "server", endedAt: 70 });
  await store.recordEnd({ ...ended, id: second.id, ending: "declined", endedAt: 80 });
  assert.deepEqual(await store.ended(first.id), ended);
  assert.equal((await store.ended(second.id))?.ending, "declined");
  await store.forgetEnded(70);
  assert.equal(await store.ended(first.id), null);
  assert.equal((await store.ended(second.id))?.ending, "declined");
  // Bounded per sender: the oldest go first.
  for (let i = 0; i < MAX_ENDED_PER_SENDER; i++) {
    await store.recordEnd({ ...ended, id: 10_000 + i, endedAt: 90 + i });
  }
  assert.equal(await store.ended(second.id), null);
  assert.equal((await store.ended(10_000))?.id, 10_000);
  await store.recordEnd({ ...ended, fromKey: "carol", id: 20_000, endedAt: 5000 });
  assert.equal((await store.ended(10_000))?.id, 10_000);
  await store.recordEnd({ ...ended, id: 20_001, endedAt: 5000 });
  assert.equal(await store.ended(10_000), null);
  assert.equal((await store.ended(10_001))?.id, 10_001);
  assert.equal((await store.ended(20_000))?.fromKey, "carol");

  await store.close();
  await assert.rejects(store.get(second.id), (err: unknown) => {
    assert.ok(err instanceof StoreError);
    assert.equal(err.code, "closed");
    return true;
  });
}

/** Ended-file bounds small enough for {@linkcode endedBoundsConformance} to reach. */
export const TEST_ENDED_BOUNDS: Readonly<EndedBounds> = { perSender: 4, total: 10 };

/**
 * Each sender keeps a fair share of the ended files' record, on a store opened with
 * {@linkcode TEST_ENDED_BOUNDS}: one sender ending many files only ever pushes out its own
 * oldest, and past the total the sender holding the most loses its oldest (of two holding
 * as many, the one whose oldest is older), never a sender with one record. Closes `store`.
 */
export async function endedBoundsConformance(store: FileStore): Promise<void> {
  const end = (fromKey: string, id: number): Promise<void> =>
    store.recordEnd({
      id,
      fromKey,
      to: "Bob",
      name: `${id}.bin`,
      size: 1,
      ending: "received",
      by: "Bob",
      endedAt: id,
    });
  const remembered = async (ids: number[]): Promise<number[]> => {
    const found: (EndedFile | null)[] = [];
    for (const id of ids) found.push(await store.ended(id));
    return ids.filter((_, i) => found[i] !== null);
  };
  const range = (from: number, to: number) =>
    Array.from({ length: to - from + 1 }, (_, i) => from + i);
  try {
    // Carol ended one file; alice ends forty, one after the other: alice keeps her last
    // four, and carol's record stays (the total, 10, is never reached).
    await end("carol", 1);
    for (const id of range(100, 139)) await end("alice", id);
    assert.deepEqual(await remembered([1, ...range(100, 139)]), [1, 136, 137, 138, 139]);

    // Dave ends four, erin four: past 10 in all, each eviction takes the oldest of the
    // sender holding the most (alice and dave tie at four: alice's oldest is older; then
    // dave; then erin herself), and carol's one record stays.
    for (const id of range(200, 203)) await end("dave", id);
    for (const id of range(300, 303)) await end("erin", id);
    const all = [1, ...range(136, 139), ...range(200, 203), ...range(300, 303)];
    assert.deepEqual(await remembered(all), [
      1,
      ...range(137, 139),
      ...range(201, 203),
      ...range(301, 303),
    ]);

    // Forgotten by age, then filled again: the bounds still count right.
    await store.forgetEnded(200);
    for (const id of range(400, 404)) await end("frank", id);
    assert.deepEqual(await remembered([1, ...range(137, 139), ...range(200, 404)]), [
      ...range(201, 203),
      ...range(301, 303),
      ...range(401, 404),
    ]);
  } finally {
    await store.close();
  }
}
