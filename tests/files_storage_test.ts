/**
 * No user can fill the server's disk (issue 13, item 6), over real sockets: a limit on
 * the files one sender may have held (zero-byte ones were unlimited), a budget for the
 * files held from everyone, and a free-space reserve kept for the database, checked at
 * the offer and before each chunk. Refusals are `storage_full`; chat goes on; a server
 * whose disk is already under the reserve starts and serves what it holds; an upload cut
 * off by the reserve resumes later without losing a byte it acknowledged.
 *
 * The reserve is set above the disk's real free space to stand for a full disk.
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { concatBytes } from "../protocol/bytes.ts";
import type { ServerConfig } from "../server/config.ts";
import type { ChatServer } from "../server/server.ts";
import { Probe, type Received, testServer, withServer } from "./helpers/harness.ts";
import { withTempDir } from "./helpers/files.ts";

/** More free space than any disk has: the reserve cannot be met. */
const UNREACHABLE = 2 ** 52;

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

function bytesOf(n: number, seed = 7): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 31 + seed) & 0xff;
  return out;
}

async function chunk(probe: Probe, file: number, offset: number, body: Uint8Array) {
  const id = crypto.randomUUID();
  probe.send({ type: "file_chunk", id, file, offset }, body);
  return await probe.expect((m) => (m.type === "ok" || m.type === "error") && m.re === id);
}

function offerOf(name: string, content: Uint8Array, to = "bob") {
  return { to, name, size: content.length, sha256: sha256(content) };
}

/** Reads all of file `file` as `probe` (who accepted it), checking each frame's offset. */
async function readAll(probe: Probe, file: number, size: number): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let offset = 0;
  while (offset < size) {
    const id = crypto.randomUUID();
    probe.send({ type: "file_read", id, file, offset, length: size - offset });
    const reply = await probe.expect((m) => (m.type === "ok" || m.type === "error") && m.re === id);
    assert.equal(reply.type, "ok", JSON.stringify(reply));
    const end = offset + (reply.length as number);
    while (offset < end) {
      const data = await probe.expect({ type: "file_data", file, offset });
      const body = data.frameBody as Uint8Array;
      parts.push(body);
      offset += body.length;
    }
  }
  return concatBytes(parts);
}

async function withStorageServer(
  overrides: Partial<ServerConfig>,
  fn: (server: ChatServer) => Promise<void>,
): Promise<void> {
  await withServer(fn, overrides);
}

Deno.test("files: one sender may hold only so many files, zero-byte ones too", async () => {
  await withStorageServer({ maxHeldFilesPerSender: 3 }, async (server) => {
    await using alice = await Probe.login(server, "alice");
    await using _bob = await Probe.login(server, "bob");
    const empty = new Uint8Array(0);
    const files: number[] = [];
    for (let i = 0; i < 3; i++) {
      files.push((await alice.ok("file_offer", offerOf(`empty-${i}`, empty))).file as number);
    }
    const refused = await alice.fails("file_offer", offerOf("empty-3", empty), "quota_exceeded");
    assert.match(String(refused.message), /as many as one sender may have/);
    // Another sender is not held back by alice's files.
    await using carol = await Probe.login(server, "carol");
    await carol.ok("file_offer", offerOf("carol's", empty));
    // Withdrawing one makes room again.
    await alice.ok("file_cancel", { file: files[0] });
    await alice.ok("file_offer", offerOf("empty-3", empty));
  });
});

Deno.test("files: the budget is for everyone's files; over it offers get storage_full", async () => {
  // Room for one 150 kB file and one more small one (each counts 64 KiB more).
  await withStorageServer({ filesBudgetBytes: 300_000 }, async (server) => {
    await using alice = await Probe.login(server, "alice");
    await using _bob = await Probe.login(server, "bob");
    const big = await alice.ok("file_offer", offerOf("big.bin", bytesOf(150_000)));
    // Another account is refused: the budget is the server's, not a sender's quota.
    await using mallory = await Probe.login(server, "mallory");
    const refused = await mallory.fails(
      "file_offer",
      offerOf("more.bin", bytesOf(60_000)),
      "storage_full",
    );
    assert.match(String(refused.message), /budget/);
    // Zero-byte offers count too: they run out at once.
    let accepted = 0;
    let last: Received | undefined;
    for (let i = 0; i < 100; i++) {
      last = await mallory.request("file_offer", offerOf(`zero-${i}`, new Uint8Array(0)));
      if (last.type !== "ok") break;
      accepted++;
    }
    assert.equal(last?.code, "storage_full", JSON.stringify(last));
    assert.equal(accepted, 1, `${accepted} zero-byte files held`);
    // Chat is unaffected.
    const said = await alice.ok("say", { room: "lobby", text: "still here" });
    assert.equal((said.msg as { text: string }).text, "still here");
    // Once the big file goes, there is room again.
    await alice.ok("file_cancel", { file: big.file });
    await mallory.ok("file_offer", offerOf("more.bin", bytesOf(60_000)));
  });
});

Deno.test("files: an upload crossing the free-space reserve stops; chat goes on; it resumes", async () => {
  await withStorageServer({}, async (server) => {
    await using alice = await Probe.login(server, "alice");
    await using bob = await Probe.login(server, "bob");
    const content = bytesOf(300_000);
    const offer = await alice.ok("file_offer", offerOf("movie.bin", content));
    const file = offer.file as number;
    const first = await chunk(alice, file, 0, content.subarray(0, 100_000));
    assert.equal(first.type, "ok", JSON.stringify(first));

    // The disk fills up meanwhile (the reserve rises above the free space, as a SIGHUP
    // reload of --min-free-space would do).
    server.hub.config.minFreeBytes = UNREACHABLE;
    const cut = await chunk(alice, file, 100_000, content.subarray(100_000, 200_000));
    assert.equal(cut.type, "error", JSON.stringify(cut));
    assert.equal(cut.code, "storage_full");
    assert.match(String(cut.message), /kept for messages/);
    await alice.fails("file_offer", offerOf("other.bin", bytesOf(10)), "storage_full");
    // The database stays writable: chat goes on.
    await alice.ok("say", { room: "lobby", text: "the disk is nearly full" });
    await bob.expect({ type: "msg", text: "the disk is nearly full" });

    // Space comes back: offering it again resumes where the acknowledged bytes end.
    server.hub.config.minFreeBytes = 0;
    const again = await alice.ok("file_offer", offerOf("movie.bin", content));
    assert.equal(again.file, file);
    assert.equal(again.offset, 100_000);
    for (let offset = 100_000; offset < content.length; offset += 100_000) {
      const reply = await chunk(alice, file, offset, content.subarray(offset, offset + 100_000));
      assert.equal(reply.type, "ok", JSON.stringify(reply));
    }
    await bob.ok("file_accept", { file });
    assert.equal(sha256(await readAll(bob, file, content.length)), sha256(content));
    await bob.ok("file_done", { file });
  });
});

Deno.test("files: a server whose disk is under the reserve starts and serves what it holds", async () => {
  await withTempDir(async (dir) => {
    const data = join(dir, "data");
    const content = bytesOf(120_000);
    let file: number;
    const before = await testServer({ dataDir: data });
    try {
      await using alice = await Probe.login(before, "alice");
      await using _bob = await Probe.login(before, "bob");
      file = (await alice.ok("file_offer", offerOf("held.bin", content))).file as number;
      const done = await chunk(alice, file, 0, content);
      assert.equal(done.complete, true, JSON.stringify(done));
    } finally {
      await before.shutdown();
    }

    const server = await testServer({ dataDir: data, minFreeBytes: UNREACHABLE, metricsPort: 0 });
    try {
      await using alice = await Probe.login(server, "alice");
      await using bob = await Probe.login(server, "bob");
      // Messages are stored: the reserve is theirs.
      await alice.ok("say", { room: "lobby", text: "hello on a full disk" });
      await bob.expect({ type: "msg", text: "hello on a full disk" });
      await alice.ok("dm", { to: "bob", text: "psst", id: "dm-1" });
      // Nothing new is held, not even an empty file.
      const refused = await alice.fails(
        "file_offer",
        offerOf("new.bin", bytesOf(1000)),
        "storage_full",
      );
      assert.match(String(refused.message), /nearly full/);
      await alice.fails("file_offer", offerOf("empty", new Uint8Array(0)), "storage_full");
      // What is held is still delivered.
      const list = await bob.ok("file_list");
      assert.deepEqual((list.files as { file: number }[]).map((f) => f.file), [file]);
      await bob.ok("file_accept", { file });
      assert.equal(sha256(await readAll(bob, file, content.length)), sha256(content));
      await bob.ok("file_done", { file });
      // Operators see it: refusals counted, free space measured.
      const { port } = server.metricsAddr!;
      const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      assert.match(metrics, /^chat_storage_full_total 2$/m);
      assert.match(metrics, /^chat_disk_free_bytes \d+$/m);
    } finally {
      await server.shutdown();
    }
  });
});
