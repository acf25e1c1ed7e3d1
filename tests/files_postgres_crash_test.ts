/**
 * PostgreSQL crashing under an upload whose bytes it holds (`postgres_file_bytes.ts`).
 * Appends commit with `synchronous_commit` off: a crash of PostgreSQL (`pg_ctl stop -m
 * immediate`) loses the last ones although they were acknowledged, and the server, which
 * stayed up, still counts them. Marking the bytes complete then must not make a short file
 * complete: `complete` checks the size held, the last chunk is refused with `bad_offset`,
 * and the sender's offer resumes from the bytes kept. A chunk lost before the last one is
 * caught by the next append (written only at the size held): `bad_offset` too.
 *
 * The scratch PostgreSQL runs with `wal_writer_delay=10s` (and no autovacuum), so that the
 * last append's commit stays in memory until the test crashes it (it would reach the OS
 * within 200 ms by default, surviving a crash of PostgreSQL alone); each test first checks
 * that the crash did lose it.
 */

import assert from "node:assert/strict";
import { concatBytes } from "../protocol/bytes.ts";
import { fileServiceOf } from "../server/files.ts";
import { PostgresFileBytes } from "../server/postgres_file_bytes.ts";
import { openPostgresFiles } from "../server/postgres_files.ts";
import { StoreError } from "../server/store.ts";
import { GatedFileBytes } from "./helpers/gated_file_bytes.ts";
import { Probe, type Received, testServer } from "./helpers/harness.ts";
import { POSTGRES_SKIP, startPostgres } from "./helpers/postgres.ts";
import { bytesOf, chunkOk, sha256 } from "./helpers/file_requests.ts";

const pg = POSTGRES_SKIP === null
  ? await startPostgres({ settings: ["wal_writer_delay=10s", "autovacuum=off"] })
  : null;
const ignore = pg === null;

/** Generous: the machine is shared and loaded. */
const WAIT_MS = 30_000;
const CHUNK = 512 * 1024;

/** Retries `fn` until it resolves (PostgreSQL coming back after a crash), or `ms`. */
async function once<T>(fn: () => Promise<T>, what: string, ms = WAIT_MS): Promise<T> {
  const deadline = Date.now() + ms;
  while (true) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`${what}: ${err}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

Deno.test({
  name: "PostgresFileBytes: a crash of PostgreSQL loses the last acknowledged append: " +
    "complete refuses the short bytes (conflict), the writer resumes from those kept",
  ignore,
  async fn() {
    const bytes = await PostgresFileBytes.open(await pg!.createDatabase());
    try {
      const size = 3 * CHUNK;
      const writer = await bytes.openWriter(1, size);
      for (let at = 0; at < size; at += CHUNK) await writer.append(bytesOf(CHUNK, at));
      assert.equal(writer.size, size);
      writer.close();
      await pg!.restart("immediate");
      const held = await once(() => bytes.size(1), "the size held after the crash");
      assert.ok(held !== null && held < size, `the crash lost no append (${held} bytes held)`);

      await assert.rejects(bytes.complete(1, size), (err: unknown) => {
        assert.ok(err instanceof StoreError, String(err));
        assert.equal(err.code, "conflict", err.message);
        return true;
      });
      const resumed = await bytes.openWriter(1, size);
      assert.equal(resumed.size, held, "not complete: resumed from the bytes kept");
      for (let at = held; at < size; at += CHUNK) await resumed.append(bytesOf(CHUNK, at));
      resumed.close();
      await bytes.complete(1, size);
      const back = new Uint8Array(size);
      assert.equal(await (await bytes.openReader(1, true))!.read(0, back), size);
      const want = concatBytes([0, 1, 2].map((i) => bytesOf(CHUNK, i * CHUNK)));
      assert.equal(sha256(back), sha256(want));
    } finally {
      await bytes.close();
    }
  },
});

Deno.test({
  name: "files in PostgreSQL: PostgreSQL crashes between the last chunk's write and its " +
    "completion: the chunk gets bad_offset, the offer resumes, the recipient gets it whole",
  ignore,
  async fn() {
    const files = await openPostgresFiles(await pg!.createDatabase(), { pollMs: 50 });
    const bytes = new GatedFileBytes(files.bytes);
    const server = await testServer({ maxFileSize: 64 * 1024 * 1024 }, {
      files: { store: files.store, bytes },
    });
    try {
      await using alice = await Probe.login(server, "alice");
      await using bob = await Probe.login(server, "bob");
      const content = bytesOf(3 * CHUNK, 5);
      const fields = {
        to: "bob",
        name: "crash.bin",
        size: content.length,
        sha256: sha256(content),
      };
      const file = (await alice.ok("file_offer", fields)).file as number;
      await chunkOk(alice, file, 0, content.subarray(0, CHUNK), WAIT_MS);
      await chunkOk(alice, file, CHUNK, content.subarray(CHUNK, 2 * CHUNK), WAIT_MS);

      // The last chunk is written (committed without its WAL flush), then PostgreSQL
      // crashes before the bytes are marked complete.
      const gate = bytes.holdNextComplete();
      alice.send(
        { type: "file_chunk", id: "last", file, offset: 2 * CHUNK },
        content.subarray(2 * CHUNK),
      );
      await gate.reached;
      await pg!.restart("immediate");
      const held = await once(() => bytes.size(file), "the size held after the crash");
      assert.equal(held, 2 * CHUNK, "the crash lost the last chunk's write");
      gate.release();

      const last: Received = await alice.expect({ re: "last" }, WAIT_MS);
      assert.equal(last.type, "error", `a short file completed: ${JSON.stringify(last)}`);
      assert.equal(last.code, "bad_offset", JSON.stringify(last));
      assert.notEqual((await fileServiceOf(server.hub).store.get(file))?.uploaded, true);

      // The sender offers the file again: it resumes from the bytes kept.
      const again = await alice.ok("file_offer", fields);
      assert.equal(again.file, file);
      assert.equal(again.offset, 2 * CHUNK);
      const done = await chunkOk(alice, file, 2 * CHUNK, content.subarray(2 * CHUNK), WAIT_MS);
      assert.equal(done.complete, true);
      assert.equal(await bytes.size(file), content.length);

      await receivesWhole(bob, file, content);
    } finally {
      await server.shutdown();
    }
  },
});

Deno.test({
  name: "files in PostgreSQL: PostgreSQL crashes after a chunk is acknowledged: the next " +
    "chunk gets bad_offset, the offer resumes from the bytes kept, the recipient gets it whole",
  ignore,
  async fn() {
    const files = await openPostgresFiles(await pg!.createDatabase(), { pollMs: 50 });
    const server = await testServer({ maxFileSize: 64 * 1024 * 1024 }, { files });
    try {
      await using alice = await Probe.login(server, "alice");
      await using bob = await Probe.login(server, "bob");
      const content = bytesOf(4 * CHUNK + 777, 6);
      const fields = { to: "bob", name: "lost.bin", size: content.length, sha256: sha256(content) };
      const file = (await alice.ok("file_offer", fields)).file as number;
      await chunkOk(alice, file, 0, content.subarray(0, CHUNK), WAIT_MS);
      await chunkOk(alice, file, CHUNK, content.subarray(CHUNK, 2 * CHUNK), WAIT_MS);
      await pg!.restart("immediate");
      const held = await once(() => files.bytes.size(file), "the size held after the crash");
      assert.equal(held, CHUNK, "the crash lost the acknowledged second chunk's write");

      // The server still counts the lost chunk: the next one is refused, not written
      // after a hole.
      const id = crypto.randomUUID();
      alice.send(
        { type: "file_chunk", id, file, offset: 2 * CHUNK },
        content.subarray(2 * CHUNK, 3 * CHUNK),
      );
      const next = await alice.expect({ re: id }, WAIT_MS);
      assert.equal(next.type, "error", JSON.stringify(next));
      assert.equal(next.code, "bad_offset", JSON.stringify(next));
      const again = await alice.ok("file_offer", fields);
      assert.equal(again.offset, CHUNK);
      let last: Received | undefined;
      for (let at = CHUNK; at < content.length; at += CHUNK) {
        last = await chunkOk(alice, file, at, content.subarray(at, at + CHUNK), WAIT_MS);
      }
      assert.equal(last?.complete, true);
      await receivesWhole(bob, file, content);
    } finally {
      await server.shutdown();
    }
  },
});

/** `bob` accepts file `file`, reads it whole, checks it is `content`, and is done with it. */
async function receivesWhole(bob: Probe, file: number, content: Uint8Array): Promise<void> {
  await bob.ok("file_accept", { file });
  const parts: Uint8Array[] = [];
  for (let at = 0; at < content.length;) {
    const id = crypto.randomUUID();
    bob.send({ type: "file_read", id, file, offset: at, length: content.length - at });
    const reply = await bob.expect((m) => m.re === id, WAIT_MS);
    assert.equal(reply.type, "ok", JSON.stringify(reply));
    assert.ok((reply.length as number) > 0, JSON.stringify(reply));
    for (const end = at + (reply.length as number); at < end;) {
      const data = await bob.expect({ type: "file_data", file, offset: at }, WAIT_MS);
      const body = data.frameBody as Uint8Array;
      parts.push(body);
      at += body.length;
    }
  }
  assert.equal(sha256(concatBytes(parts)), sha256(content));
  await bob.ok("file_done", { file });
}
