/**
 * A `file_read` waiting for bytes still being uploaded (or for the SHA-256 that comes
 * with the last chunk) is answered as soon as they are there: a change of the file
 * while the read was busy sending frames, or before it looked, is not missed (it would
 * wait {@linkcode READ_WAIT_MS} for nothing: the cause of the flaky "server killed
 * mid-transfer" test in files_resume_test.ts), and a wake for bytes it already had does
 * not end it short. The interleavings are laid out on the server's real file folder by
 * holding one of its disk operations back ({@linkcode GatedFileBytes}).
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { concatBytes } from "../protocol/bytes.ts";
import { DiskFileBytes } from "../server/disk_file_bytes.ts";
import { MemoryFileStore } from "../server/file_store.ts";
import { READ_WAIT_MS } from "../server/files.ts";
import type { ChatServer } from "../server/server.ts";
import { SqliteFileStore } from "../server/sqlite_file_store.ts";
import { GatedFileBytes } from "./helpers/gated_file_bytes.ts";
import { Probe, type Received, testServer } from "./helpers/harness.ts";
import { bytesOf, chunkOk, offeredAndAccepted, sha256 } from "./helpers/file_requests.ts";

/**
 * A server on a real file folder whose reads, syncs and sizes can be held back, with
 * alice and bob logged in; bob also accepted a file of 10 bytes from alice that never
 * gets a byte (`nothing`).
 */
async function withGatedServer(
  fn: (bytes: GatedFileBytes, alice: Probe, bob: Probe, nothing: number) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "chat-gated-files-" });
  const bytes = new GatedFileBytes(new DiskFileBytes(dir));
  const server = await testServer({}, { files: { store: new MemoryFileStore(), bytes } });
  try {
    await using alice = await Probe.login(server, "alice");
    await using bob = await Probe.login(server, "bob");
    const nothing = await offeredAndAccepted(alice, bob, "bob", "nothing", bytesOf(10, 3));
    await fn(bytes, alice, bob, nothing);
  } finally {
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * Sends a read of `nothing` (a file that never gets a byte: it waits READ_WAIT_MS, then
 * ends short) and waits until the server has taken it: the yardstick of a read that
 * waits out its time.
 */
async function startYardstick(bob: Probe, nothing: number): Promise<string> {
  const id = crypto.randomUUID();
  bob.send({ type: "file_read", id, file: nothing, offset: 0, length: 10 });
  await bob.ok("file_list"); // taken in order: the read above is waiting now
  return id;
}

/** The first of the replies to reads `ids`. */
function firstReply(bob: Probe, ids: string[]): Promise<Received> {
  return bob.expect((m) => m.type === "ok" && ids.includes(m.re as string), 3 * READ_WAIT_MS);
}

Deno.test("bytes that arrive while a read is sending are sent on at once, not after the read's wait", async () => {
  await withGatedServer(async (bytes, alice, bob, nothing) => {
    const content = bytesOf(200_000, 21);
    const file = await offeredAndAccepted(alice, bob, "bob", "live", content);
    await chunkOk(alice, file, 0, content.subarray(0, 100_000));
    const yardstick = await startYardstick(bob, nothing);
    // Bob's read sends the 100 000 bytes held; it is held at its first disk read while
    // the rest of the file arrives (and wakes nobody: the read is not waiting yet).
    const gate = bytes.holdNextRead();
    const readId = crypto.randomUUID();
    bob.send({ type: "file_read", id: readId, file, offset: 0, length: content.length });
    await gate.reached;
    const last = await chunkOk(alice, file, 100_000, content.subarray(100_000));
    assert.equal(last.complete, true);
    gate.release();
    const first = await firstReply(bob, [readId, yardstick]);
    assert.equal(
      first.re,
      readId,
      "the read waited for bytes that had arrived while it was sending (as long as a read of a file with none)",
    );
    assert.equal(first.length, content.length);
    const data = [];
    for (let at = 0; at < content.length; at += 100_000) {
      data.push(
        (await bob.expect({ type: "file_data", file, offset: at })).frameBody as Uint8Array,
      );
    }
    assert.deepEqual(concatBytes(data), content);
  });
});

Deno.test("a read reaching the end gets the SHA-256 recorded while it was sending, at once", async () => {
  await withGatedServer(async (bytes, alice, bob, nothing) => {
    const content = bytesOf(200_000, 22);
    const fields = { to: "bob", name: "k.bin", size: content.length, key: "7".repeat(64) };
    const file = (await alice.ok("file_offer", fields)).file as number;
    await bob.ok("file_accept", { file });
    await chunkOk(alice, file, 0, content.subarray(0, 100_000));
    const yardstick = await startYardstick(bob, nothing);
    // The last chunk is written and being synced: every byte is held, the SHA-256 known
    // but not recorded yet.
    const sync = bytes.holdNextSync();
    const lastId = crypto.randomUUID();
    alice.send(
      { type: "file_chunk", id: lastId, file, offset: 100_000, sha256: sha256(content) },
      content.subarray(100_000),
    );
    await sync.reached;
    // Bob's read of every byte begins then, and is held at its first disk read while the
    // upload is recorded complete with its SHA-256 (which wakes nobody: it is not waiting).
    const gate = bytes.holdNextRead();
    const readId = crypto.randomUUID();
    bob.send({ type: "file_read", id: readId, file, offset: 0, length: content.length });
    await gate.reached;
    sync.release();
    const last = await alice.expect((m) => m.type === "ok" && m.re === lastId);
    assert.equal(last.complete, true);
    gate.release();
    const first = await firstReply(bob, [readId, yardstick]);
    assert.equal(
      first.re,
      readId,
      "the read waited for a SHA-256 recorded while it was sending (as long as a read of a file with no bytes)",
    );
    assert.equal(first.length, content.length);
    assert.equal(first.sha256, sha256(content));
  });
});

/** A server on `dataDir` whose held files are in `filesDir`, behind gated bytes. */
async function gatedServerOn(
  dataDir: string,
  filesDir: string,
): Promise<{ server: ChatServer; bytes: GatedFileBytes }> {
  const bytes = new GatedFileBytes(new DiskFileBytes(filesDir));
  const store = SqliteFileStore.open(filesDir);
  const server = await testServer({ dataDir }, { files: { store, bytes } });
  return { server, bytes };
}

Deno.test("a read woken for bytes it already had waits on for the rest, not ending short", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "chat-read-wait-" });
  const filesDir = join(dataDir, "held");
  await Deno.mkdir(filesDir);
  const content = bytesOf(200_000, 23);
  try {
    // Offered and accepted, then the server restarts: nothing of the upload is open.
    let file: number;
    {
      const { server } = await gatedServerOn(dataDir, filesDir);
      try {
        await using alice = await Probe.login(server, "alice");
        await using bob = await Probe.login(server, "bob");
        file = await offeredAndAccepted(alice, bob, "bob", "restarted", content);
      } finally {
        await server.shutdown();
      }
    }
    const { server, bytes } = await gatedServerOn(dataDir, filesDir);
    try {
      await using alice = await Probe.login(server, "alice");
      await using bob = await Probe.login(server, "bob");
      // Bob's read measures the bytes held on disk; it is held there while alice's first
      // chunk arrives (and wakes the file's readers), then measures them with it.
      const size = bytes.holdNextSize();
      const readId = crypto.randomUUID();
      bob.send({ type: "file_read", id: readId, file, offset: 0, length: content.length });
      await size.reached;
      await chunkOk(alice, file, 0, content.subarray(0, 100_000));
      size.release();
      // It sends them, then waits for more: the wake it had seen already does not end it.
      await bob.expect({ type: "file_data", file, offset: 0 });
      await chunkOk(alice, file, 100_000, content.subarray(100_000));
      const reply = await bob.expect((m) => m.type === "ok" && m.re === readId, 3 * READ_WAIT_MS);
      assert.equal(reply.length, content.length, `ended short: ${JSON.stringify(reply)}`);
      const rest = await bob.expect({ type: "file_data", file, offset: 100_000 });
      assert.deepEqual(rest.frameBody, content.subarray(100_000));
    } finally {
      await server.shutdown();
    }
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});
