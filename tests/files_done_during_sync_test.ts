/**
 * A recipient's `file_done` is taken while the upload's last chunk is still being synced
 * (it has every byte and checked the SHA-256): the file is dropped under the finishing
 * upload. The last chunk is then answered complete, whatever the order of the drop's
 * steps and the upload's: here its bytes are moved away (renamed `.gone`) but its record
 * not removed yet when the sync ends, and marking the bytes complete finds nothing. That
 * interleaving answered the last chunk `internal` (the rename's NotFound), once in 30 runs
 * of the "server killed mid-transfer" test in files_resume_test.ts under load, where bob
 * reads alongside the upload. Laid out on the server's real file folder by holding the
 * sync and the drop's removal ({@linkcode GatedFileBytes}). Likewise a file cancelled
 * while a chunk of it waits to be written (its file closed under the write) answers that
 * chunk `file_gone`, not `internal`. And a `file_done` whose read of the record came just
 * before the upload was recorded complete, its answer after (no longer finishing then), was
 * refused `bad_message` ("not completely uploaded yet"): the file stayed held, and
 * files_gone_test's PostgreSQL case (slow reads) failed once in a full run on it.
 */

import assert from "node:assert/strict";
import { DiskFileBytes } from "../server/disk_file_bytes.ts";
import { MemoryFileStore } from "../server/file_store.ts";
import { GatedFileBytes } from "./helpers/gated_file_bytes.ts";
import { Probe, testServer } from "./helpers/harness.ts";
import { listDir } from "./helpers/files.ts";
import { bytesOf, chunkOk, sha256 as sha256Of } from "./helpers/file_requests.ts";

/**
 * Alice offers bob 200,000 bytes (made from `seed`), bob accepts, the first half is
 * acknowledged, and the last half is sent with the SHA-256: resolves once its sync is
 * held (release it with `sync.release()`).
 */
async function lastChunkSyncing(alice: Probe, bob: Probe, bytes: GatedFileBytes, seed: number) {
  const content = bytesOf(200_000, seed);
  const sha256 = sha256Of(content);
  const fields = {
    to: "bob",
    name: `${seed}.bin`,
    size: content.length,
    key: `${seed}`.repeat(64),
  };
  const file = (await alice.ok("file_offer", fields)).file as number;
  await bob.ok("file_accept", { file });
  await chunkOk(alice, file, 0, content.subarray(0, 100_000));
  const sync = bytes.holdNextSync();
  const lastId = crypto.randomUUID();
  alice.send(
    { type: "file_chunk", id: lastId, file, offset: 100_000, sha256 },
    content.subarray(100_000),
  );
  await sync.reached;
  return { file, content, sha256, lastId, sync };
}

Deno.test("a file_done taken while the last chunk is synced: the last chunk is answered complete, not internal", async () => {
  const dir = await Deno.makeTempDir({ prefix: "chat-done-sync-" });
  const bytes = new GatedFileBytes(new DiskFileBytes(dir));
  const server = await testServer({}, { files: { store: new MemoryFileStore(), bytes } });
  try {
    await using alice = await Probe.login(server, "alice");
    await using bob = await Probe.login(server, "bob");
    // The last chunk is written and being synced.
    const { file, content, sha256, lastId, sync } = await lastChunkSyncing(alice, bob, bytes, 5);
    // Bob has every byte and the SHA-256 meanwhile, and is done: the drop moves the bytes
    // away and is held before it removes the record.
    const read = await bob.ok("file_read", { file, offset: 0, length: content.length });
    assert.equal(read.sha256, sha256);
    const remove = bytes.holdNextRemove();
    const doneId = crypto.randomUUID();
    bob.send({ type: "file_done", id: doneId, file });
    await remove.reached;
    sync.release();
    const last = await alice.expect((m) =>
      (m.type === "ok" || m.type === "error") && m.re === lastId
    );
    remove.release();
    assert.equal(last.type, "ok", JSON.stringify(last));
    assert.equal(last.complete, true);
    const done = await bob.expect((m) =>
      (m.type === "ok" || m.type === "error") && m.re === doneId
    );
    assert.equal(done.type, "ok", JSON.stringify(done));
  } finally {
    await server.shutdown();
    const left = (await listDir(dir)).filter((n) => /^\d+\.(part|file)$/.test(n));
    await Deno.remove(dir, { recursive: true });
    assert.deepEqual(left, [], "bytes of the received file left behind");
  }
});

Deno.test("a file cancelled while its chunk waits to be written: the chunk gets file_gone, not internal", async () => {
  const dir = await Deno.makeTempDir({ prefix: "chat-cancel-chunk-" });
  const bytes = new GatedFileBytes(new DiskFileBytes(dir));
  const server = await testServer({}, { files: { store: new MemoryFileStore(), bytes } });
  try {
    await using alice = await Probe.login(server, "alice");
    await using bob = await Probe.login(server, "bob");
    const content = bytesOf(200_000, 6);
    const fields = { to: "bob", name: "c.bin", size: content.length, key: "6".repeat(64) };
    const file = (await alice.ok("file_offer", fields)).file as number;
    await bob.ok("file_accept", { file });
    // The chunk is taken and held where it checks the free space, before its write; bob
    // cancels the file then (its upload is let go, its file closed).
    const free = bytes.holdNextFree();
    const chunkId = crypto.randomUUID();
    alice.send({ type: "file_chunk", id: chunkId, file, offset: 0 }, content.subarray(0, 100_000));
    await free.reached;
    await bob.ok("file_cancel", { file });
    free.release();
    const reply = await alice.expect((m) =>
      (m.type === "ok" || m.type === "error") && m.re === chunkId
    );
    assert.equal(reply.type, "error", JSON.stringify(reply));
    assert.equal(reply.code, "file_gone", JSON.stringify(reply));
  } finally {
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a file_done whose read of the record came before the upload was recorded complete, and was answered after, is taken", async () => {
  const dir = await Deno.makeTempDir({ prefix: "chat-done-stale-" });
  const bytes = new GatedFileBytes(new DiskFileBytes(dir));
  const store = new MemoryFileStore();
  // The next read of a record is held (after it is made) until released: the file_done's.
  let heldGet: { reached: PromiseWithResolvers<void>; release: PromiseWithResolvers<void> } | null =
    null;
  const get = store.get.bind(store);
  store.get = async (id: number) => {
    const record = await get(id);
    const held = heldGet;
    if (held !== null) {
      heldGet = null;
      held.reached.resolve();
      await held.release.promise;
    }
    return record;
  };
  const server = await testServer({}, { files: { store, bytes } });
  try {
    await using alice = await Probe.login(server, "alice");
    await using bob = await Probe.login(server, "bob");
    // The last chunk is written and being synced; bob has every byte and the SHA-256.
    const { file, content, sha256, lastId, sync } = await lastChunkSyncing(alice, bob, bytes, 6);
    const read = await bob.ok("file_read", { file, offset: 0, length: content.length });
    assert.equal(read.sha256, sha256);
    // Bob is done: the server reads the record (not uploaded yet) and is held there while
    // the sync ends and the upload is recorded complete (no longer finishing).
    heldGet = { reached: Promise.withResolvers(), release: Promise.withResolvers() };
    const held = heldGet;
    const doneId = crypto.randomUUID();
    bob.send({ type: "file_done", id: doneId, file });
    await held.reached.promise;
    sync.release();
    const last = await alice.expect((m) =>
      (m.type === "ok" || m.type === "error") && m.re === lastId
    );
    assert.equal(last.type, "ok", JSON.stringify(last));
    assert.equal((await get(file))?.uploaded, true);
    held.release.resolve();
    const done = await bob.expect((m) =>
      (m.type === "ok" || m.type === "error") && m.re === doneId
    );
    assert.equal(done.type, "ok", JSON.stringify(done));
    assert.equal(await get(file), null);
    await alice.expect({ type: "file_completed", file });
  } finally {
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});
