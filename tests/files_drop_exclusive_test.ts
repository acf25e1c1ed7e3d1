/**
 * A file's drop and the opening of its writer exclude each other. An offer (which opens
 * the upload it starts or resumes) or a chunk opens the file's writer (its `.part` in the
 * data folder) while the recipient declines the file: the drop moved the bytes away and removed the record
 * while the writer was being opened, and the writer then made a fresh `.part` that no
 * record names (an orphan until the next start's clean-up), holding an upload that took
 * the sender's next chunks. Now the drop waits for the opening, and an opening that finds
 * its file dropped lets its bytes go and answers as for a file that ended (`file_gone`).
 * Laid out on the server's real file folder by holding the writer's opening
 * ({@linkcode GatedFileBytes}); the drop is under way once its end is recorded.
 */

import assert from "node:assert/strict";
import { DiskFileBytes } from "../server/disk_file_bytes.ts";
import { fileServiceOf } from "../server/files.ts";
import { SqliteFileStore } from "../server/sqlite_file_store.ts";
import type { ChatServer } from "../server/server.ts";
import { GatedFileBytes } from "./helpers/gated_file_bytes.ts";
import { Probe, testServer } from "./helpers/harness.ts";
import { listDir } from "./helpers/files.ts";
import { bytesOf } from "./helpers/file_requests.ts";

/** Generous: the machine is shared and loaded. */
const WAIT_MS = 30_000;

const content = bytesOf(100_000, 9);
const fields = { to: "bob", name: "x.bin", size: content.length, key: "9".repeat(64) };

/** A server on the file folder `dir` (SQLite records, gated bytes). */
function serverOn(dir: string, bytes: GatedFileBytes): Promise<ChatServer> {
  return testServer({}, { files: { store: SqliteFileStore.open(dir), bytes } });
}

/** The bytes files (`.part`, `.file`) in `dir`. */
async function heldBytes(dir: string): Promise<string[]> {
  return (await listDir(dir)).filter((n) => /^\d+\.(part|file)$/.test(n));
}

/** Sends a request without waiting; the reply, when it comes. */
function pending(probe: Probe, header: Record<string, unknown>, body?: Uint8Array) {
  const id = crypto.randomUUID();
  probe.send({ ...header, id }, body);
  return probe.expect((m) => (m.type === "ok" || m.type === "error") && m.re === id, WAIT_MS);
}

/**
 * Bob declines file `file` while its writer's opening is held at `gate`; the opening is
 * let go once the drop is under way (its end recorded).
 */
async function declinedWhileOpening(
  server: ChatServer,
  bob: Probe,
  file: number,
  gate: { reached: Promise<void>; release(): void },
): Promise<Awaited<ReturnType<typeof pending>>> {
  await gate.reached;
  const declined = pending(bob, { type: "file_decline", file });
  const store = fileServiceOf(server.hub).store;
  const deadline = Date.now() + WAIT_MS;
  while ((await store.ended(file)) === null) {
    if (Date.now() > deadline) throw new Error("timed out waiting for the drop under way");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  gate.release();
  return await declined;
}

Deno.test("an offer, its writer opened as the file is declined: file_gone, no orphan .part", async () => {
  const dir = await Deno.makeTempDir({ prefix: "chat-drop-offer-" });
  const bytes = new GatedFileBytes(new DiskFileBytes(dir));
  const server = await serverOn(dir, bytes);
  try {
    await using alice = await Probe.login(server, "alice");
    await using bob = await Probe.login(server, "bob");
    const opening = bytes.holdNextOpenWriter();
    const offer = pending(alice, { type: "file_offer", ...fields });
    const told = await bob.expect({ type: "file_offer" }, WAIT_MS);
    const file = told.file as number;
    const declined = await declinedWhileOpening(server, bob, file, opening);
    assert.equal(declined.type, "ok", JSON.stringify(declined));
    const reply = await offer;
    assert.equal(reply.code, "file_gone", JSON.stringify(reply));
    // Its next chunk learns the end too: no upload was left open.
    const chunk = await pending(
      alice,
      { type: "file_chunk", file, offset: 0 },
      content.subarray(0, 50_000),
    );
    assert.equal(chunk.code, "file_gone", JSON.stringify(chunk));
    assert.deepEqual(await heldBytes(dir), []);
  } finally {
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a chunk after a restart, its writer opened as the file is declined: file_gone, no orphan .part", async () => {
  const dir = await Deno.makeTempDir({ prefix: "chat-drop-chunk-" });
  let file: number;
  // Offered (its .part made), then the server stops: the next chunk opens the writer.
  const first = await serverOn(dir, new GatedFileBytes(new DiskFileBytes(dir)));
  try {
    await using alice = await Probe.login(first, "alice");
    await using _bob = await Probe.login(first, "bob");
    file = (await alice.ok("file_offer", fields)).file as number;
  } finally {
    await first.shutdown();
  }
  const bytes = new GatedFileBytes(new DiskFileBytes(dir));
  const server = await serverOn(dir, bytes);
  try {
    await using alice = await Probe.login(server, "alice");
    await using bob = await Probe.login(server, "bob");
    const opening = bytes.holdNextOpenWriter();
    const chunk = pending(
      alice,
      { type: "file_chunk", file, offset: 0 },
      content.subarray(0, 50_000),
    );
    const declined = await declinedWhileOpening(server, bob, file, opening);
    assert.equal(declined.type, "ok", JSON.stringify(declined));
    const reply = await chunk;
    assert.equal(reply.code, "file_gone", JSON.stringify(reply));
    assert.deepEqual(await heldBytes(dir), []);
  } finally {
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});
