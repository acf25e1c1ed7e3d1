/**
 * Large file chunks: a server shares the `large_chunks` feature in its hello and takes
 * `file_chunk` bodies up to `LARGE_FILE_CHUNK_BYTES`; the chat client uploads in such
 * chunks to it, and in chunks of 512 KiB to a server that does not share the feature
 * (older servers refuse larger ones). The chunks are seen as the server writes them.
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { FileTransfers } from "../client/file_transfer.ts";
import { SERVER_FEATURES } from "../protocol/hello.ts";
import {
  LARGE_CHUNKS_FEATURE,
  LARGE_FILE_CHUNK_BYTES,
  MAX_FILE_FRAME_BYTES,
} from "../protocol/messages.ts";
import { DiskFileBytes } from "../server/disk_file_bytes.ts";
import { MemoryFileStore } from "../server/file_store.ts";
import { GatedFileBytes } from "./helpers/gated_file_bytes.ts";
import { connectClient, Probe, testServer } from "./helpers/harness.ts";
import { withTempDir, writeRandomFile } from "./helpers/files.ts";
import { sha256 } from "./helpers/file_requests.ts";

const SIZE = 3 * 1024 * 1024;

for (const shared of [true, false]) {
  Deno.test(`the client uploads in ${shared ? "large chunks to a server sharing the feature" : "chunks of 512 KiB without it"}`, async () => {
    await withTempDir(async (dir) => {
      const bytes = new GatedFileBytes(new DiskFileBytes(dir));
      const server = await testServer({}, { files: { store: new MemoryFileStore(), bytes } });
      try {
        const features = shared
          ? SERVER_FEATURES
          : SERVER_FEATURES.filter((f) => f !== LARGE_CHUNKS_FEATURE);
        await using bob = await Probe.login(server, "bob");
        const alice = await connectClient(server, "alice", { features });
        try {
          assert.equal(alice.server?.features.includes(LARGE_CHUNKS_FEATURE), shared);
          const path = join(dir, "big.bin");
          await writeRandomFile(path, SIZE, 3);
          await using files = new FileTransfers(alice, { onEvent: () => {} });
          const sent = await files.send("bob", path);
          assert.equal(sent.size, SIZE);
          const chunk = shared ? LARGE_FILE_CHUNK_BYTES : MAX_FILE_FRAME_BYTES;
          const expected = [];
          for (let at = 0; at < SIZE; at += chunk) expected.push(Math.min(chunk, SIZE - at));
          assert.deepEqual(bytes.appends, expected);
          // The file arrives whole.
          await bob.ok("file_accept", { file: sent.file });
          const got = new Uint8Array(SIZE);
          let hash: unknown;
          for (let offset = 0; offset < SIZE;) {
            const read = await bob.ok("file_read", { file: sent.file, offset, length: 1 << 20 });
            hash = read.sha256;
            const end = offset + (read.length as number);
            for (let at = offset; at < end;) {
              const data = await bob.expect({ type: "file_data", file: sent.file, offset: at });
              const body = data.frameBody as Uint8Array;
              got.set(body, at);
              at += body.length;
            }
            offset = end;
          }
          assert.equal(sha256(got), hash);
        } finally {
          await alice.close();
        }
      } finally {
        await server.shutdown();
      }
    });
  });
}

Deno.test("the server takes a chunk of LARGE_FILE_CHUNK_BYTES and refuses one byte more", async () => {
  const server = await testServer();
  try {
    await using alice = await Probe.login(server, "alice");
    await using _bob = await Probe.login(server, "bob");
    const content = new Uint8Array(LARGE_FILE_CHUNK_BYTES + 1).fill(9);
    const offer = await alice.ok("file_offer", {
      to: "bob",
      name: "x.bin",
      size: content.length + 1,
      sha256: "0".repeat(64),
    });
    const file = offer.file as number;
    const refused = crypto.randomUUID();
    alice.send({ type: "file_chunk", id: refused, file, offset: 0 }, content);
    const no = await alice.expect((m) =>
      (m.type === "ok" || m.type === "error") && m.re === refused
    );
    assert.equal(no.type, "error");
    assert.equal(no.code, "bad_message");
    const taken = crypto.randomUUID();
    alice.send(
      { type: "file_chunk", id: taken, file, offset: 0 },
      content.subarray(0, LARGE_FILE_CHUNK_BYTES),
    );
    const ok = await alice.expect((m) => (m.type === "ok" || m.type === "error") && m.re === taken);
    assert.equal(ok.type, "ok", JSON.stringify(ok));
    assert.equal(ok.offset, LARGE_FILE_CHUNK_BYTES);
  } finally {
    await server.shutdown();
  }
});
