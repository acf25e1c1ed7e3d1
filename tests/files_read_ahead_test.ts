/**
 * File chunks read ahead of one being written are bounded server-wide, not only per
 * connection: a connection reads its next chunk while one is written only with room in
 * the server's read-ahead budget (`--max-partial-frames`, the largest frame's worth per
 * connection), else one at a time as before pipelining. Without it, 1,000 uploaders on a
 * slow disk held 2 MiB each (two chunks of 1 MiB), 2 GiB in all, whatever the limits.
 * The writes are held by {@linkcode GatedFileBytes}.
 *
 * @module
 */

import assert from "node:assert/strict";
import { DiskFileBytes } from "../server/disk_file_bytes.ts";
import { MemoryFileStore } from "../server/file_store.ts";
import { GatedFileBytes } from "./helpers/gated_file_bytes.ts";
import { Probe, testServer, until } from "./helpers/harness.ts";
import { bytesOf, sha256 } from "./helpers/file_requests.ts";

const PIECE = 64 * 1024;

interface Upload {
  probe: Probe;
  content: Uint8Array;
  file: number;
  ids: string[];
}
const CHUNKS = 4;

/** Gives the server a while to read on, which it would do at once (no event tells it did not). */
async function aWhile(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((resolve) => setTimeout(resolve, 10));
}

Deno.test("a second uploader reads no chunk ahead once the server's read-ahead budget is taken", async () => {
  const dir = await Deno.makeTempDir({ prefix: "chat-read-ahead-" });
  const bytes = new GatedFileBytes(new DiskFileBytes(dir));
  // Room for one connection's read-ahead (a 1 MiB frame), not two.
  const server = await testServer(
    { maxFrameSize: 1024 * 1024, maxPartialFrameBytes: 1536 * 1024 },
    {
      files: { store: new MemoryFileStore(), bytes },
    },
  );
  try {
    await using alice = await Probe.login(server, "alice");
    await using carol = await Probe.login(server, "carol");
    await using bob = await Probe.login(server, "bob");
    const uploads: Upload[] = [];
    for (const [probe, seed] of [[alice, 3], [carol, 4]] as const) {
      const content = bytesOf(CHUNKS * PIECE, seed);
      const fields = { to: "bob", name: "r.bin", size: content.length, sha256: sha256(content) };
      const file = (await probe.ok("file_offer", fields)).file as number;
      await bob.ok("file_accept", { file });
      uploads.push({ probe, content, file, ids: [] as string[] });
    }
    const counters = server.hub.metrics.counters;
    const before = counters.requests;
    const send = (upload: Upload) => {
      for (let i = 0; i < CHUNKS; i++) {
        const id = crypto.randomUUID();
        upload.ids.push(id);
        upload.probe.send(
          { type: "file_chunk", id, file: upload.file, offset: i * PIECE },
          upload.content.subarray(i * PIECE, (i + 1) * PIECE),
        );
      }
    };
    // Alice's first write is held: her next chunk is read meanwhile (the budget's room).
    const aliceWrite = bytes.holdNextAppend();
    send(uploads[0]);
    await aliceWrite.reached;
    await until(
      () => counters.requests - before >= 2 || undefined,
      "alice's chunk read ahead",
      20_000,
    );
    // Carol's first write is held too: the budget has no room left for her read-ahead.
    const carolWrite = bytes.holdNextAppend();
    send(uploads[1]);
    await carolWrite.reached;
    await aWhile();
    assert.equal(counters.requests - before, 3, "chunks read: alice's two, carol's one");
    aliceWrite.release();
    carolWrite.release();
    // Every chunk of both is answered, in order.
    for (const upload of uploads) {
      for (let i = 0; i < CHUNKS; i++) {
        const reply = await upload.probe.expect(
          (m) => (m.type === "ok" || m.type === "error") && m.re === upload.ids[i],
          20_000,
        );
        assert.equal(reply.type, "ok", JSON.stringify(reply));
        assert.equal(reply.offset, (i + 1) * PIECE);
        assert.equal(reply.complete, i === CHUNKS - 1);
      }
    }
  } finally {
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});
