/**
 * The server reads an upload's next chunk while one is being written (the write runs on
 * another thread: the connection's reading, and the readers' sends, go on meanwhile),
 * holds at most two chunks of a connection, and still writes a file's chunks one after
 * another in the order they came. The write is held by {@linkcode GatedFileBytes}.
 *
 * @module
 */

import assert from "node:assert/strict";
import { DiskFileBytes } from "../server/disk_file_bytes.ts";
import { MemoryFileStore } from "../server/file_store.ts";
import { CHUNKS_IN_FLIGHT } from "../server/files.ts";
import { GatedFileBytes } from "./helpers/gated_file_bytes.ts";
import { Probe, testServer, until } from "./helpers/harness.ts";
import { bytesOf, sha256 } from "./helpers/file_requests.ts";

const PIECE = 64 * 1024;

Deno.test("the next chunk is read while one is written; two at most are held; written in order", async () => {
  const dir = await Deno.makeTempDir({ prefix: "chat-chunk-pipeline-" });
  const bytes = new GatedFileBytes(new DiskFileBytes(dir));
  const server = await testServer({}, { files: { store: new MemoryFileStore(), bytes } });
  try {
    await using alice = await Probe.login(server, "alice");
    await using bob = await Probe.login(server, "bob");
    const content = bytesOf(5 * PIECE, 11);
    const hash = sha256(content);
    const fields = { to: "bob", name: "pipe.bin", size: content.length, sha256: hash };
    const file = (await alice.ok("file_offer", fields)).file as number;
    await bob.ok("file_accept", { file });
    const counters = server.hub.metrics.counters;
    const write = bytes.holdNextAppend();
    const before = counters.requests;
    // Four chunks at once, the way a client keeps a window in flight.
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) {
      const id = crypto.randomUUID();
      ids.push(id);
      alice.send(
        { type: "file_chunk", id, file, offset: i * PIECE },
        content.subarray(i * PIECE, (i + 1) * PIECE),
      );
    }
    await write.reached;
    // The first chunk's write is held: the second is read meanwhile...
    await until(
      () => counters.requests - before >= CHUNKS_IN_FLIGHT || undefined,
      "the chunk after the one being written read",
      20_000,
    );
    // ...and no more (no event tells that a frame was not read: the server is given a
    // while to read on, which it would have done at once).
    for (let i = 0; i < 20; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.equal(counters.requests - before, CHUNKS_IN_FLIGHT, "chunks read while one is written");
    write.release();
    // Every chunk is answered in order, each after the one before it was written.
    for (let i = 0; i < 4; i++) {
      const reply = await alice.expect((m) =>
        (m.type === "ok" || m.type === "error") && m.re === ids[i]
      );
      assert.equal(reply.type, "ok", JSON.stringify(reply));
      assert.equal(reply.offset, (i + 1) * PIECE);
    }
    const last = crypto.randomUUID();
    alice.send(
      { type: "file_chunk", id: last, file, offset: 4 * PIECE },
      content.subarray(4 * PIECE),
    );
    const done = await alice.expect((m) =>
      (m.type === "ok" || m.type === "error") && m.re === last
    );
    assert.equal(done.complete, true, JSON.stringify(done));
    // What the recipient reads is the file, byte for byte.
    const read = await bob.ok("file_read", { file, offset: 0, length: content.length });
    assert.equal(read.length, content.length);
    const got = new Uint8Array(content.length);
    for (let at = 0; at < content.length;) {
      const data = await bob.expect({ type: "file_data", file, offset: at });
      const body = data.frameBody as Uint8Array;
      got.set(body, at);
      at += body.length;
    }
    assert.equal(sha256(got), hash);
  } finally {
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});
