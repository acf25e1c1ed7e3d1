/**
 * Held files shared through PostgreSQL by two servers in one process (issue 15, item 11):
 * each has its own chat store and in-process fan-out (nothing else is coordinated), and
 * both keep held files' records and bytes in one scratch PostgreSQL. A file uploaded on
 * server A is listed, accepted and read on server B while the upload goes on, its upload
 * is resumed on B after the sender lost A, its download resumed from an offset on the
 * other server, and what one server drops is gone for the other.
 */

import assert from "node:assert/strict";
import { concatBytes } from "../protocol/bytes.ts";
import { fileServiceOf, READ_WAIT_MS } from "../server/files.ts";
import { openPostgresFiles } from "../server/postgres_files.ts";
import type { ChatServer } from "../server/server.ts";
import { Probe, type Received, testServer } from "./helpers/harness.ts";
import { POSTGRES_SKIP, startPostgres } from "./helpers/postgres.ts";
import { bytesOf, chunkOk, sha256 } from "./helpers/file_requests.ts";

const pg = POSTGRES_SKIP === null ? await startPostgres() : null;

/** Generous: the machine is shared and loaded. */
const WAIT_MS = 15_000;
const CHUNK = 512 * 1024;

/** The `file_data` frames of one read, in order, and its reply. */
async function readRange(
  probe: Probe,
  file: number,
  offset: number,
  length: number,
): Promise<{ reply: Received; bytes: Uint8Array }> {
  const id = crypto.randomUUID();
  probe.send({ type: "file_read", id, file, offset, length });
  const reply = await probe.expect(
    (m) => (m.type === "ok" || m.type === "error") && m.re === id,
    WAIT_MS,
  );
  assert.equal(reply.type, "ok", JSON.stringify(reply));
  const parts: Uint8Array[] = [];
  for (let at = offset; at < offset + (reply.length as number);) {
    const data = await probe.expect({ type: "file_data", file, offset: at });
    const body = data.frameBody as Uint8Array;
    parts.push(body);
    at += body.length;
  }
  return { reply, bytes: concatBytes(parts) };
}

async function twoServers(url: string): Promise<[ChatServer, ChatServer]> {
  const config = { maxFileSize: 64 * 1024 * 1024 };
  const a = await testServer(config, { files: await openPostgresFiles(url, { pollMs: 50 }) });
  try {
    const b = await testServer(config, { files: await openPostgresFiles(url, { pollMs: 50 }) });
    return [a, b];
  } catch (err) {
    await a.shutdown();
    throw err;
  }
}

/**
 * A test with two servers sharing a fresh PostgreSQL database for files, alice and bob
 * registered on both (accounts are per server here: each has its own chat store); the
 * servers are shut down after `fn`. Skipped when PostgreSQL is not found.
 */
function twoServerTest(name: string, fn: (a: ChatServer, b: ChatServer) => Promise<void>): void {
  Deno.test({
    name,
    ignore: pg === null,
    async fn() {
      const [a, b] = await twoServers(await pg!.createDatabase());
      try {
        for (const server of [a, b]) {
          for (const nick of ["alice", "bob"]) (await Probe.login(server, nick)).close();
        }
        await fn(a, b);
      } finally {
        await a.shutdown();
        await b.shutdown();
      }
    },
  });
}

twoServerTest(
  "files in PostgreSQL: uploaded on A, read live and resumed on B, dropped for both",
  async (a, b) => {
    const content = bytesOf(6 * CHUNK + 12_345, 3);
    const aliceA = await Probe.login(a, "alice");
    await using bobB = await Probe.login(b, "bob");
    const fields = {
      to: "bob",
      name: "shared.bin",
      size: content.length,
      sha256: sha256(content),
    };
    const offer = await aliceA.ok("file_offer", fields);
    const file = offer.file as number;
    await chunkOk(aliceA, file, 0, content.subarray(0, CHUNK), WAIT_MS);

    // B knows the file from the shared records, and reads it while A takes the upload.
    const listed = await bobB.ok("file_list");
    assert.deepEqual((listed.files as { file: number }[]).map((f) => f.file), [file]);
    await bobB.ok("file_accept", { file });
    const id = "live";
    bobB.send({ type: "file_read", id, file, offset: 0, length: 2 * CHUNK });
    const first = await bobB.expect({ type: "file_data", file, offset: 0 }, WAIT_MS);
    assert.deepEqual(first.frameBody, content.subarray(0, CHUNK));
    // The next chunk, written on A, reaches the read waiting on B: B polls for it every
    // 50 ms. (Without the poll it would come only when the read's wait of READ_WAIT_MS
    // ends: the deadline is half that, a hundred times the poll.)
    await chunkOk(aliceA, file, CHUNK, content.subarray(CHUNK, 2 * CHUNK), WAIT_MS);
    const second = await bobB.expect(
      { type: "file_data", file, offset: CHUNK },
      READ_WAIT_MS / 2,
    );
    assert.deepEqual(second.frameBody, content.subarray(CHUNK, 2 * CHUNK));
    const live = await bobB.expect({ type: "ok", re: id }, WAIT_MS);
    assert.equal(live.length, 2 * CHUNK);

    // Alice loses A after a third chunk; offering the file again on B resumes it there.
    await chunkOk(aliceA, file, 2 * CHUNK, content.subarray(2 * CHUNK, 3 * CHUNK), WAIT_MS);
    await aliceA[Symbol.asyncDispose]();
    await using aliceB = await Probe.login(b, "alice");
    const resumed = await aliceB.ok("file_offer", fields);
    assert.equal(resumed.file, file);
    assert.equal(resumed.offset, 3 * CHUNK);
    let last: Received | undefined;
    for (let at = 3 * CHUNK; at < content.length; at += CHUNK) {
      last = await chunkOk(aliceB, file, at, content.subarray(at, at + CHUNK), WAIT_MS);
    }
    assert.equal(last?.complete, true, "the SHA-256 carried over from A's bytes matches");

    // Bob's download resumes on A from where B's read ended.
    await using bobA = await Probe.login(a, "bob");
    const parts: Uint8Array[] = [content.subarray(0, 2 * CHUNK)];
    for (let at = 2 * CHUNK; at < content.length;) {
      const { reply, bytes } = await readRange(bobA, file, at, content.length - at);
      assert.ok((reply.length as number) > 0);
      assert.equal(reply.available, content.length);
      parts.push(bytes);
      at += bytes.length;
    }
    assert.equal(sha256(concatBytes(parts)), sha256(content));

    // Done on A: gone for B too, records and bytes.
    await bobA.ok("file_done", { file });
    await bobB.fails("file_read", { file, offset: 0, length: 1 }, "no_file");
    assert.equal(await fileServiceOf(b.hub).store.get(file), null);
    assert.equal(await fileServiceOf(b.hub).bytes.used(), 0);
  },
);

twoServerTest(
  "files in PostgreSQL: an upload moved to B and back to A: A's stale chunk gets bad_offset, the offer resyncs",
  async (a, b) => {
    const content = bytesOf(3 * CHUNK, 9);
    const fields = {
      to: "bob",
      name: "moved.bin",
      size: content.length,
      sha256: sha256(content),
    };
    await using aliceA = await Probe.login(a, "alice");
    await using aliceB = await Probe.login(b, "alice");
    const file = (await aliceA.ok("file_offer", fields)).file as number;
    await chunkOk(aliceA, file, 0, content.subarray(0, CHUNK), WAIT_MS);
    assert.equal((await aliceB.ok("file_offer", fields)).offset, CHUNK);
    await chunkOk(aliceB, file, CHUNK, content.subarray(CHUNK, 2 * CHUNK), WAIT_MS);

    // A still has the upload open at CHUNK: the bytes it would append are refused.
    const id = "stale";
    aliceA.send(
      { type: "file_chunk", id, file, offset: CHUNK },
      content.subarray(CHUNK, 2 * CHUNK),
    );
    const stale = await aliceA.expect({ re: id }, WAIT_MS);
    assert.equal(stale.type, "error", JSON.stringify(stale));
    assert.equal(stale.code, "bad_offset", JSON.stringify(stale));
    // Offering again on A picks up where B got to, and finishes there.
    assert.equal((await aliceA.ok("file_offer", fields)).offset, 2 * CHUNK);
    const last = await chunkOk(aliceA, file, 2 * CHUNK, content.subarray(2 * CHUNK), WAIT_MS);
    assert.equal(last.complete, true);

    await using bobB = await Probe.login(b, "bob");
    await bobB.ok("file_accept", { file });
    const parts: Uint8Array[] = [];
    for (let at = 0; at < content.length;) {
      const { bytes } = await readRange(bobB, file, at, content.length - at);
      parts.push(bytes);
      at += bytes.length;
    }
    assert.equal(sha256(concatBytes(parts)), sha256(content));
  },
);

twoServerTest(
  "files in PostgreSQL: offered by key on A, the SHA-256 of its last chunk reaches a read waiting on B",
  async (a, b) => {
    const content = bytesOf(2 * CHUNK + 100, 11);
    await using aliceA = await Probe.login(a, "alice");
    await using bobB = await Probe.login(b, "bob");
    const file = (await aliceA.ok("file_offer", {
      to: "bob",
      name: "keyed.bin",
      size: content.length,
      key: "7".repeat(64),
    })).file as number;
    await chunkOk(aliceA, file, 0, content.subarray(0, CHUNK), WAIT_MS);
    await chunkOk(aliceA, file, CHUNK, content.subarray(CHUNK, 2 * CHUNK), WAIT_MS);
    await bobB.ok("file_accept", { file });
    const parts: Uint8Array[] = [];
    for (let at = 0; at < 2 * CHUNK;) {
      const { reply, bytes } = await readRange(bobB, file, at, 2 * CHUNK - at);
      assert.equal(reply.sha256, undefined, "not given yet");
      parts.push(bytes);
      at += bytes.length;
    }
    // A read at the end waits on B for the SHA-256 that comes to A with the last chunk.
    const id = "hash";
    bobB.send({ type: "file_read", id, file, offset: content.length, length: 1 });
    const chunkId = crypto.randomUUID();
    aliceA.send(
      { type: "file_chunk", id: chunkId, file, offset: 2 * CHUNK, sha256: sha256(content) },
      content.subarray(2 * CHUNK),
    );
    const last = await aliceA.expect({ re: chunkId }, WAIT_MS);
    assert.equal(last.type, "ok", JSON.stringify(last));
    assert.equal(last.complete, true);
    const waited = await bobB.expect({ re: id }, WAIT_MS);
    assert.equal(waited.type, "ok", JSON.stringify(waited));
    assert.equal(waited.sha256, sha256(content));
    const { reply, bytes } = await readRange(bobB, file, 2 * CHUNK, 100);
    assert.equal(reply.sha256, sha256(content));
    parts.push(bytes);
    assert.equal(sha256(concatBytes(parts)), waited.sha256);
    await bobB.ok("file_done", { file });
  },
);
