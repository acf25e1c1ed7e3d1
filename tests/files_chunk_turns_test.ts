/**
 * Hostile chunks and the per-file turn of pipelined `file_chunk`s: a file's chunks are
 * written one after another, in the order they came, but only its sender's chunks take
 * that turn. A chunk another account sends for the file (refused: not its file) must not
 * wait behind the sender's writes, nor hold its body meanwhile: anyone could otherwise
 * slow another's upload (every refusal costs lookups in the turn) and hold memory there.
 * A chunk too large or without bytes is refused before it takes any turn.
 *
 * @module
 */

import assert from "node:assert/strict";
import { DiskFileBytes } from "../server/disk_file_bytes.ts";
import { MemoryFileStore } from "../server/file_store.ts";
import { MAX_CHUNK_BYTES } from "../server/files.ts";
import { GatedFileBytes } from "./helpers/gated_file_bytes.ts";
import { Probe, testServer } from "./helpers/harness.ts";
import { bytesOf, sha256 } from "./helpers/file_requests.ts";

const PIECE = 64 * 1024;
/** Generous on a loaded machine: a reply that is not held comes at once. */
const REPLY_MS = 15_000;

Deno.test("a chunk of another's file is refused at once, not after the sender's write held in the file's turn", async () => {
  const dir = await Deno.makeTempDir({ prefix: "chat-chunk-turns-" });
  const bytes = new GatedFileBytes(new DiskFileBytes(dir));
  const server = await testServer({}, { files: { store: new MemoryFileStore(), bytes } });
  try {
    await using alice = await Probe.login(server, "alice");
    await using bob = await Probe.login(server, "bob");
    await using mallory = await Probe.login(server, "mallory");
    const content = bytesOf(2 * PIECE, 5);
    const fields = { to: "bob", name: "t.bin", size: content.length, sha256: sha256(content) };
    const file = (await alice.ok("file_offer", fields)).file as number;
    await bob.ok("file_accept", { file });
    const write = bytes.holdNextAppend();
    const first = crypto.randomUUID();
    alice.send({ type: "file_chunk", id: first, file, offset: 0 }, content.subarray(0, PIECE));
    await write.reached;
    try {
      // Alice's write is held in the file's turn: Mallory's chunks for the same file, one
      // too large, one empty, one of the right size, are refused meanwhile.
      const cases: [Uint8Array, string][] = [
        [new Uint8Array(MAX_CHUNK_BYTES + 1), "bad_message"],
        [new Uint8Array(0), "bad_message"],
        [content.subarray(PIECE), "no_file"],
      ];
      for (const [body, code] of cases) {
        const id = crypto.randomUUID();
        mallory.send({ type: "file_chunk", id, file, offset: PIECE }, body);
        const reply = await mallory.expect(
          (m) => (m.type === "ok" || m.type === "error") && m.re === id,
          REPLY_MS,
        );
        assert.equal(reply.type, "error", JSON.stringify(reply));
        assert.equal(reply.code, code, JSON.stringify(reply));
      }
    } finally {
      write.release();
    }
    // Alice's upload goes on, in order, untouched.
    const reply = await alice.expect((m) =>
      (m.type === "ok" || m.type === "error") && m.re === first
    );
    assert.equal(reply.type, "ok", JSON.stringify(reply));
    const last = crypto.randomUUID();
    alice.send({ type: "file_chunk", id: last, file, offset: PIECE }, content.subarray(PIECE));
    const done = await alice.expect((m) =>
      (m.type === "ok" || m.type === "error") && m.re === last
    );
    assert.equal(done.complete, true, JSON.stringify(done));
    assert.deepEqual(bytes.appends, [PIECE, PIECE]);
  } finally {
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});
