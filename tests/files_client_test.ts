/**
 * File transfers between two `ChatClient`s with `FileTransfers` through a real server:
 * accept by hand and automatically, decline, an offline recipient served at its next
 * login, a refusal over the size limit (nothing written), hostile names saved safely
 * inside the download folder, and no overwrite.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import type { ChatClient } from "../client/chat_client.ts";
import { ChatError } from "../client/chat_error.ts";
import { FileTransfers } from "../client/file_transfer.ts";
import { LARGE_FILE_CHUNK_BYTES } from "../protocol/file_chunks.ts";
import type { ChatServer } from "../server/server.ts";
import { fileServiceOf } from "../server/files.ts";
import type { FileTransferEvent } from "../transport/file_transfer_events.ts";
import { connectClient, Probe, testServer, until } from "./helpers/harness.ts";
import { listDir, sha256Of, writeRandomFile } from "./helpers/files.ts";

interface Side {
  client: ChatClient;
  files: FileTransfers;
  events: FileTransferEvent[];
  chat: string[];
}

async function side(
  server: ChatServer,
  nick: string,
  options: {
    downloadDir?: string;
    acceptDir?: string;
    progressIntervalMs?: number;
    uploadBuffersIdleMs?: number;
  } = {},
  clientOptions: { maxFrameSize?: number } = {},
): Promise<Side> {
  const client = await connectClient(server, nick, clientOptions);
  const events: FileTransferEvent[] = [];
  const chat: string[] = [];
  client.onEvent((event) => chat.push(event.type));
  const files = new FileTransfers(client, { onEvent: (e) => events.push(e), ...options });
  return { client, files, events, chat };
}

async function close(...sides: Side[]): Promise<void> {
  for (const s of sides) {
    await s.files.close();
    await s.client.close();
  }
}

function find<T extends FileTransferEvent["type"]>(
  s: Side,
  type: T,
): Extract<FileTransferEvent, { type: T }> | undefined {
  return s.events.find((e) => e.type === type) as Extract<FileTransferEvent, { type: T }>;
}

Deno.test("a file offered, accepted by hand, received and verified", async () => {
  const tmp = await Deno.makeTempDir();
  const server = await testServer();
  try {
    const alice = await side(server, "alice");
    const bob = await side(server, "bob", { downloadDir: join(tmp, "dl") });
    const path = join(tmp, "photo.jpg");
    const sha = await writeRandomFile(path, 3 * 1024 * 1024 + 17, 7);
    const sent = await alice.files.send("bob", path);
    assert.equal(sent.online, true);
    const offered = await until(() => find(bob, "file_offered"), "the offer");
    assert.equal(offered.name, "photo.jpg");
    // Offered before it was hashed: the SHA-256 came with the last chunk.
    assert.equal(offered.sha256, undefined);
    assert.equal(offered.auto, false);
    assert.deepEqual(bob.files.offers.map((o) => o.file), [offered.file]);
    const saved = await bob.files.accept(offered.file);
    // Told before it was reported saved: the server holds nothing for bob any more.
    assert.equal(await fileServiceOf(server.hub).store.get(offered.file), null);
    assert.deepEqual((await bob.files.list()).files, []);
    assert.equal(saved, join(tmp, "dl", "photo.jpg"));
    assert.equal(await sha256Of(saved), sha);
    assert.equal(find(bob, "file_saved")?.sha256, sha);
    assert.deepEqual(await listDir(join(tmp, "dl")), ["photo.jpg"]);
    await until(() => alice.chat.includes("file_completed") ? true : undefined, "completed");
    assert.ok(alice.chat.includes("file_accepted"));
    assert.ok(find(alice, "file_sent"));
    const progress = alice.events.filter((e) => e.type === "file_progress");
    assert.ok(progress.length >= 1);
    assert.equal(
      progress.at(-1)!.type === "file_progress" && progress.at(-1)!.bytes,
      3 * 1024 * 1024 + 17,
    );
    // The server let go of it.
    assert.deepEqual(
      (await listDir(fileServiceOf(server.hub).dir)).filter((n) => /^\d/.test(n)),
      [],
    );
    await close(alice, bob);
  } finally {
    await server.shutdown();
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("declining drops the file; the sender hears it", async () => {
  const tmp = await Deno.makeTempDir();
  const server = await testServer();
  try {
    const alice = await side(server, "alice");
    const bob = await side(server, "bob", { downloadDir: join(tmp, "dl") });
    const path = join(tmp, "x.txt");
    await Deno.writeTextFile(path, "hello");
    await alice.files.send("bob", path);
    const offered = await until(() => find(bob, "file_offered"), "the offer");
    await bob.files.decline(offered.file);
    await until(() => alice.chat.includes("file_declined") ? true : undefined, "declined");
    await assert.rejects(bob.files.accept(offered.file), (err: unknown) => {
      assert.ok(err instanceof ChatError);
      assert.equal(err.code, "no_file");
      return true;
    });
    await close(alice, bob);
  } finally {
    await server.shutdown();
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("bytes damaged on the server are caught by the recipient: cancelled as corrupt, the sender hears", async () => {
  const tmp = await Deno.makeTempDir();
  const server = await testServer();
  try {
    const alice = await side(server, "alice");
    const cancelled: unknown[] = [];
    alice.client.onEvent((event) => {
      if (event.type === "file_cancelled") cancelled.push(event);
    });
    const bob = await side(server, "bob", { downloadDir: join(tmp, "dl") });
    const path = join(tmp, "x.bin");
    await writeRandomFile(path, 300_000, 3);
    await alice.files.send("bob", path);
    const offered = await until(() => find(bob, "file_offered"), "the offer");
    // The server does not hash what it holds: one byte changed on its disk goes unseen
    // there, and is the recipient's check to catch.
    const held = join(fileServiceOf(server.hub).dir, `${offered.file}.file`);
    const bytes = await Deno.readFile(held);
    bytes[1234] ^= 0xff;
    await Deno.writeFile(held, bytes);
    await assert.rejects(bob.files.accept(offered.file), (err: unknown) => {
      assert.ok(err instanceof ChatError);
      assert.equal(err.code, "corrupt");
      return true;
    });
    await until(() => cancelled.length > 0 ? true : undefined, "file_cancelled at the sender");
    assert.deepEqual(cancelled, [{
      type: "file_cancelled",
      file: offered.file,
      by: "bob",
      name: "x.bin",
      reason: "corrupt",
    }]);
    assert.equal(await fileServiceOf(server.hub).store.get(offered.file), null);
    assert.deepEqual(await listDir(join(tmp, "dl")), []);
    await close(alice, bob);
  } finally {
    await server.shutdown();
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("over the size limit: refused with a clear error, nothing written", async () => {
  const tmp = await Deno.makeTempDir();
  const server = await testServer({ maxFileSize: 1024 * 1024 });
  try {
    const alice = await side(server, "alice");
    const bob = await side(server, "bob", { acceptDir: join(tmp, "dl") });
    const path = join(tmp, "big.bin");
    await writeRandomFile(path, 1024 * 1024 + 1);
    await assert.rejects(alice.files.send("bob", path), (err: unknown) => {
      assert.ok(err instanceof ChatError);
      assert.equal(err.code, "file_too_large");
      assert.match(err.message, /1\.0 MiB/);
      return true;
    });
    assert.deepEqual(await listDir(fileServiceOf(server.hub).dir), []);
    assert.equal(find(bob, "file_offered"), undefined);
    await close(alice, bob);
  } finally {
    await server.shutdown();
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("an offline recipient gets the file at its next login, automatically accepted", async () => {
  const tmp = await Deno.makeTempDir();
  const server = await testServer();
  try {
    const first = await side(server, "bob");
    await close(first);
    const alice = await side(server, "alice");
    const path = join(tmp, "held.bin");
    const sha = await writeRandomFile(path, 200_000, 3);
    const sent = await alice.files.send("bob", path);
    assert.equal(sent.online, false);
    await close(alice);
    const dl = join(tmp, "auto");
    const bob = await side(server, "bob", { acceptDir: dl });
    const saved = await until(() => find(bob, "file_saved"), "the file saved");
    assert.equal(saved.from, "alice");
    assert.equal(await sha256Of(saved.path), sha);
    assert.equal(find(bob, "file_offered")?.auto, true);
    await bob.files.idle();
    await close(bob);
  } finally {
    await server.shutdown();
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("hostile names are saved safely inside the download folder, never overwriting", async () => {
  const tmp = await Deno.makeTempDir();
  const server = await testServer();
  try {
    const dl = join(tmp, "dl");
    await Deno.mkdir(dl);
    await Deno.writeTextFile(join(dl, "x"), "mine");
    const alice = await side(server, "alice");
    const bob = await side(server, "bob", { acceptDir: dl });
    const names = [
      "../../x",
      "/etc/passwd",
      "C:\\x",
      "\x1b[31mred\x1b[0m\x1b]0;owned\x07.txt",
      "nul\x00byte",
      "l".repeat(1000), // over 200 bytes (the saved name is cut), under the offer limit
      "CON .txt", // Windows devices, whatever follows
      "conin$",
    ];
    // Offered through the raw protocol: a sender's client would offer its own names.
    for (const [i, name] of names.entries()) {
      const bytes = new TextEncoder().encode(`content ${i}`);
      const sha = await crypto.subtle.digest("SHA-256", bytes);
      const hex = [...new Uint8Array(sha)].map((b) => b.toString(16).padStart(2, "0")).join("");
      const offer = await alice.client.request("file_offer", {
        to: "bob",
        name,
        size: bytes.length,
        sha256: hex,
      });
      await alice.client.request("file_chunk", { file: offer.file, offset: 0 }, { body: bytes });
    }
    await until(
      () =>
        bob.events.filter((e) => e.type === "file_saved").length === names.length
          ? true
          : undefined,
      `every file saved: ${JSON.stringify(bob.events.filter((e) => e.type !== "file_progress"))}`,
    );
    const saved = bob.events.filter((e) => e.type === "file_saved").map((e) =>
      e.type === "file_saved" ? e.path : ""
    );
    for (const path of saved) {
      assert.equal(join(dl, path.slice(dl.length + 1)), path);
      assert.ok(path.startsWith(dl + "/"), path);
      // deno-lint-ignore no-control-regex
      assert.doesNotMatch(path.slice(dl.length + 1), /[/\\\x00-\x1f]/);
    }
    const listing = await listDir(dl);
    assert.deepEqual(listing.filter((n) => n.endsWith(".part")), []);
    assert.ok(listing.includes("x (1)"), listing.join(","));
    assert.ok(listing.includes("x (2)"), listing.join(","));
    assert.ok(listing.includes("passwd"));
    assert.ok(listing.includes("red.txt"));
    assert.ok(listing.includes("nulbyte"));
    assert.ok(listing.includes("_CON .txt"), listing.join(","));
    assert.ok(listing.includes("_conin$"), listing.join(","));
    assert.equal(await Deno.readTextFile(join(dl, "x")), "mine", "never overwritten");
    assert.ok(
      listing.some((n) => n.startsWith("llll") && new TextEncoder().encode(n).length <= 200),
    );
    // Nothing was written outside the folder.
    assert.deepEqual((await listDir(tmp)).sort(), ["dl"]);
    await bob.files.idle();
    await close(alice, bob);
  } finally {
    await server.shutdown();
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("uploads fit a server's smaller largest frame: chunks shrink to it", async () => {
  const tmp = await Deno.makeTempDir();
  const server = await testServer({ maxFrameSize: 64 * 1024 });
  try {
    const alice = await side(server, "alice");
    const bob = await side(server, "bob", { acceptDir: join(tmp, "in") });
    const path = join(tmp, "notes.bin");
    const sha = await writeRandomFile(path, 300_000, 3);
    await alice.files.send("bob", path);
    const saved = await until(() => find(bob, "file_saved"), "the file saved");
    assert.equal(await sha256Of(saved.path), sha);
    assert.equal(alice.client.server?.maxFrame, 64 * 1024);
    await close(alice, bob);
  } finally {
    await server.shutdown();
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("an upload's chunk buffers serve the next upload, released once idle a while or on close", async () => {
  const tmp = await Deno.makeTempDir();
  const server = await testServer();
  try {
    const alice = await side(server, "alice", { uploadBuffersIdleMs: 300 });
    const bob = await side(server, "bob", { acceptDir: join(tmp, "in") });
    const files = [];
    for (const n of [1, 2, 3]) {
      const path = join(tmp, `f${n}.bin`);
      files.push({ path, sha: await writeRandomFile(path, 6 * LARGE_FILE_CHUNK_BYTES + n, n) });
    }
    assert.equal(alice.files.keptUploadBuffers, 0);
    await alice.files.send("bob", files[0].path);
    // A window of chunks and the one sent on an acknowledgement, kept for the next upload.
    const kept = alice.files.keptUploadBuffers;
    assert.ok(kept >= 2 && kept <= 5, `${kept} buffers kept`);
    // The next upload takes them (and gives them back): no more kept than before.
    await alice.files.send("bob", files[1].path);
    assert.equal(alice.files.keptUploadBuffers, kept);
    // Idle a while: released.
    await until(
      () => alice.files.keptUploadBuffers === 0 || undefined,
      "the buffers released",
    );
    await alice.files.send("bob", files[2].path);
    assert.ok(alice.files.keptUploadBuffers > 0);
    await until(
      () => bob.events.filter((e) => e.type === "file_saved").length === 3 || undefined,
      "three files saved",
    );
    const got = [];
    for (const event of bob.events) {
      if (event.type === "file_saved") got.push(await sha256Of(event.path));
    }
    assert.deepEqual(got.sort(), files.map((f) => f.sha).sort());
    // Closed: released at once.
    await alice.files.close();
    assert.equal(alice.files.keptUploadBuffers, 0);
    await close(alice, bob);
  } finally {
    await server.shutdown();
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("downloads come in large frames, or in frames that fit a client's smaller largest frame", async () => {
  const tmp = await Deno.makeTempDir();
  const server = await testServer();
  try {
    const alice = await side(server, "alice");
    const path = join(tmp, "big.bin");
    const size = 2 * LARGE_FILE_CHUNK_BYTES + 5;
    const sha = await writeRandomFile(path, size, 9);
    for (
      const [nick, maxFrameSize, largest] of [
        ["bob", undefined, LARGE_FILE_CHUNK_BYTES],
        ["carol", 64 * 1024, 63 * 1024],
      ] as const
    ) {
      const reader = await side(server, nick, { downloadDir: join(tmp, nick) }, { maxFrameSize });
      const bodies: number[] = [];
      reader.client.onFileData((_data, body) => bodies.push(body.length));
      // Uploaded whole before it is accepted: frames are cut by the reads alone.
      await alice.files.send(nick, path);
      const offered = await until(() => find(reader, "file_offered"), `${nick}'s offer`);
      const saved = await reader.files.accept(offered.file);
      assert.equal(await sha256Of(saved), sha);
      assert.equal(bodies.reduce((a, b) => a + b, 0), size);
      // A large chunk per frame by default; the smaller client's frames all fit it.
      if (maxFrameSize === undefined) assert.deepEqual(bodies, [largest, largest, 5]);
      else assert.ok(bodies.every((n) => n <= largest), String(bodies));
      await close(reader);
    }
    await close(alice);
  } finally {
    await server.shutdown();
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("a file is offered before it is hashed: no hashing pass, the SHA-256 follows its last chunk", async () => {
  const tmp = await Deno.makeTempDir();
  const server = await testServer();
  try {
    // Progress as often as it comes: a hashing pass would report every block.
    const alice = await side(server, "alice", { progressIntervalMs: 0 });
    const bob = await side(server, "bob", { acceptDir: join(tmp, "in") });
    const path = join(tmp, "big.bin");
    const size = 3 * 1024 * 1024;
    const sha = await writeRandomFile(path, size, 5);
    await alice.files.send("bob", path);
    assert.deepEqual(alice.events.filter((e) => e.type === "file_hashing"), []);
    assert.equal(alice.events[0]?.type, "file_sending");
    const saved = await until(() => find(bob, "file_saved"), "the file saved");
    assert.equal(saved.sha256, sha);
    assert.equal(await sha256Of(saved.path), sha);
    await close(alice, bob);
  } finally {
    await server.shutdown();
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("a wrong SHA-256 given with the last chunk is caught by the recipient: cancelled as corrupt, the sender hears", async () => {
  const tmp = await Deno.makeTempDir();
  const server = await testServer();
  try {
    await using alice = await Probe.login(server, "alice");
    const bob = await side(server, "bob", { downloadDir: join(tmp, "dl") });
    const content = crypto.getRandomValues(new Uint8Array(50_000));
    const offer = await alice.ok("file_offer", {
      to: "bob",
      name: "y.bin",
      size: content.length,
      key: "1".repeat(64),
    });
    const file = offer.file as number;
    const id = crypto.randomUUID();
    // The bytes as offered, a SHA-256 that is not theirs.
    alice.send({ type: "file_chunk", id, file, offset: 0, sha256: "2".repeat(64) }, content);
    const chunk = await alice.expect((m) => (m.type === "ok" || m.type === "error") && m.re === id);
    assert.equal(chunk.type, "ok", JSON.stringify(chunk));
    assert.equal(chunk.complete, true);
    await until(() => find(bob, "file_offered"), "the offer");
    await assert.rejects(bob.files.accept(file), (err: unknown) => {
      assert.ok(err instanceof ChatError);
      assert.equal(err.code, "corrupt");
      return true;
    });
    const cancelled = await alice.expect({ type: "file_cancelled", file });
    assert.equal(cancelled.reason, "corrupt");
    assert.equal(await fileServiceOf(server.hub).store.get(file), null);
    assert.deepEqual(await listDir(join(tmp, "dl")), []);
    await close(bob);
  } finally {
    await server.shutdown();
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("uploads at once share one window: no chunk is refused for a full outbound queue, none offered again", async () => {
  const tmp = await Deno.makeTempDir();
  const server = await testServer();
  try {
    const alice = await side(server, "alice");
    const bob = await side(server, "bob", { acceptDir: join(tmp, "in") });
    const asked: string[] = [];
    const refused: string[] = [];
    const request = alice.client.request.bind(alice.client);
    alice.client.request = ((type, fields, options) => {
      asked.push(type);
      const reply = request(type, fields, options);
      reply.catch((err) => refused.push(err instanceof ChatError ? err.code : String(err)));
      return reply;
    }) as ChatClient["request"];
    const paths = [1, 2, 3].map((n) => join(tmp, `${n}.bin`));
    const hashes = await Promise.all(
      paths.map((path, i) => writeRandomFile(path, 8 * LARGE_FILE_CHUNK_BYTES + i, i + 1)),
    );
    await Promise.all(paths.map((path) => alice.files.send("bob", path)));
    assert.deepEqual(refused, [], "no request refused (queue_full made an upload offer again)");
    assert.equal(asked.filter((t) => t === "file_offer").length, 3, "each file offered once");
    const saved = await until(() => {
      const got = bob.events.flatMap((e) => e.type === "file_saved" ? [e.sha256] : []);
      return got.length === 3 ? got : undefined;
    }, "the three files saved");
    assert.deepEqual(saved.sort(), [...hashes].sort());
    await close(alice, bob);
  } finally {
    await server.shutdown();
    await Deno.remove(tmp, { recursive: true });
  }
});
