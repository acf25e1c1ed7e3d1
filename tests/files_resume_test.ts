/**
 * Interrupted file transfers resume from where they were instead of starting over:
 * the server killed (SIGKILL) and restarted on its SQLite data folder in the middle of
 * an upload and a download; the receiving client gone and back (its `.part` file);
 * the sending client gone and back (the server's `.part` file); peer to peer, a session
 * cut off and a new one.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { ChatClient } from "../client/chat_client.ts";
import { type FileClient, FileTransfers } from "../client/file_transfer.ts";
import { connectPeer } from "../peer/connect.ts";
import { decodeFrame } from "../protocol/frame.ts";
import { PeerFileTransfers } from "../peer/file_transfer.ts";
import type { PeerSession } from "../peer/session.ts";
import type { FileTransferEvent } from "../transport/file_transfer_events.ts";
import { connectClient, testServer, until } from "./helpers/harness.ts";
import { listDir, sha256Of, writeRandomFile } from "./helpers/files.ts";
import { listening } from "./helpers/peer_listener.ts";
import { reservePorts } from "./helpers/ports.ts";
import { spawnScript } from "./helpers/process.ts";

const serverScript = new URL("./helpers/server_process.ts", import.meta.url);
/** The killed server's log, from errors up (a handler's failure, `internal` to the client). */
const serverLog = { CHAT_TEST_LOG: Deno.env.get("CHAT_TEST_LOG") ?? "error" };
const MiB = 1024 * 1024;

/** Bytes in the `.part` file in `dir` (0 when there is none yet). */
async function partBytes(dir: string): Promise<number> {
  try {
    for await (const entry of Deno.readDir(dir)) {
      if (entry.name.endsWith(".part")) return (await Deno.stat(join(dir, entry.name))).size;
    }
  } catch {
    // not created yet
  }
  return 0;
}

/** Waits until the `.part` file in `dir` holds at least `bytes`. */
async function partReaches(dir: string, bytes: number, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (await partBytes(dir) < bytes) {
    if (Date.now() > deadline) throw new Error(`the .part file in ${dir} stays under ${bytes}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/**
 * A client for file transfers that counts the file bytes it uploads and can hold chunks
 * back (copying their bodies: the uploader reuses its buffer).
 */
class GatedClient {
  readonly client: ChatClient;
  sentBytes = 0;
  holdAfter = Infinity;
  /** Reads of a download from this offset on are held back too. */
  holdReadsFrom = Infinity;
  #release: (() => void) | null = null;
  #gate: Promise<void> | null = null;

  constructor(client: ChatClient) {
    this.client = client;
  }

  get nick(): string {
    return this.client.nick;
  }

  /** Resolves once a chunk is being held. */
  held(): Promise<void> {
    return until(() => this.#gate !== null ? true : undefined, "a chunk held back").then(() => {});
  }

  release(): void {
    this.#release?.();
  }

  readonly request: FileClient["request"] = ((type, fields, options) => {
    // A chunk comes encoded, its file bytes read straight into the frame.
    const frame = options?.frame;
    if (
      type === "file_read" && (fields as unknown as { offset: number }).offset >= this.holdReadsFrom
    ) {
      this.#gate ??= new Promise((resolve) => this.#release = resolve);
      return this.#gate.then(() => this.client.request(type, fields, options));
    }
    if (type !== "file_chunk" || frame === undefined) {
      return this.client.request(type, fields, options);
    }
    const length = decodeFrame(frame).body.length;
    if (this.sentBytes >= this.holdAfter) {
      this.#gate ??= new Promise((resolve) => this.#release = resolve);
      return this.#gate.then(() => {
        this.sentBytes += length;
        return this.client.request(type, fields, options);
      });
    }
    this.sentBytes += length;
    return this.client.request(type, fields, options);
  }) as FileClient["request"];

  onEvent: FileClient["onEvent"] = (listener) => this.client.onEvent(listener);
  onFileData: FileClient["onFileData"] = (listener) => this.client.onFileData(listener);
}

Deno.test("the server killed mid-transfer and restarted: upload and download resume", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "chat-files-kill-" });
  const tmp = await Deno.makeTempDir();
  // Reserved against the other test files, so that the restart below can have it again
  // (a port of the ephemeral range could be taken by any connection meanwhile).
  using reserved = reservePorts();
  const port = reserved.port;
  let server = await spawnScript<{ port: number }>(
    serverScript,
    [dataDir, String(port)],
    serverLog,
  );
  const clients: ChatClient[] = [];
  const transfers: FileTransfers[] = [];
  try {
    const connect = async (nick: string) => {
      const client = await ChatClient.connect({
        port,
        nick,
        password: "password123",
        reconnect: { initialDelayMs: 50, maxDelayMs: 200, maxAttempts: 100 },
      });
      clients.push(client);
      return client;
    };
    const bobEvents: FileTransferEvent[] = [];
    const bob = new FileTransfers(await connect("bob"), {
      acceptDir: join(tmp, "dl"),
      onEvent: (e) => bobEvents.push(e),
    });
    transfers.push(bob);
    const gated = new GatedClient(await connect("alice"));
    gated.holdAfter = 3 * MiB;
    const alice = new FileTransfers(gated, { onEvent: () => {} });
    transfers.push(alice);
    const path = join(tmp, "movie.bin");
    const size = 8 * MiB;
    const sha = await writeRandomFile(path, size, 11);
    const sending = alice.send("bob", path);
    sending.catch(() => {});
    await gated.held();
    // Bob is reading what is there (3 MiB) when the server dies without warning.
    await partReaches(join(tmp, "dl"), 2 * MiB);
    server.child.kill("SIGKILL");
    await server.child.status;
    server = await spawnScript<{ port: number }>(serverScript, [dataDir, String(port)], serverLog);
    gated.release();
    await sending;
    const saved = await until(
      () => bobEvents.find((e) => e.type === "file_saved"),
      `bob's file: ${JSON.stringify(bobEvents.filter((e) => e.type !== "file_progress"))}`,
    );
    assert.equal(saved.type === "file_saved" && await sha256Of(saved.path), sha);
    // Resumed, not started over: at most the window in flight was sent twice.
    assert.ok(
      gated.sentBytes < size + 2 * MiB,
      `sent ${gated.sentBytes} bytes for a ${size}-byte file`,
    );
    assert.equal(bobEvents.filter((e) => e.type === "file_receiving").length, 1);
  } finally {
    for (const t of transfers) await t.close();
    for (const c of clients) await c.close();
    server.child.kill("SIGTERM");
    await server.child.status;
    await Deno.remove(dataDir, { recursive: true });
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("a receiver that went away resumes from its .part file; so does a sender", async () => {
  const tmp = await Deno.makeTempDir();
  const server = await testServer();
  try {
    const login = (nick: string) => connectClient(server, nick);
    const path = join(tmp, "data.bin");
    const size = 6 * MiB;
    const sha = await writeRandomFile(path, size, 12);

    // The sender stops after 2 MiB (its process "dies"); a new one offers the same file.
    (await login("bob")).close();
    const firstClient = await login("alice");
    const gated = new GatedClient(firstClient);
    gated.holdAfter = 2 * MiB;
    const first = new FileTransfers(gated, { onEvent: () => {} });
    first.send("bob", path).catch(() => {});
    await gated.held();
    await first.close();
    await firstClient.close();
    const aliceClient = await login("alice");
    const aliceEvents: FileTransferEvent[] = [];
    const alice = new FileTransfers(aliceClient, { onEvent: (e) => aliceEvents.push(e) });
    await alice.send("bob", path);
    const sending = aliceEvents.find((e) => e.type === "file_sending");
    assert.ok(
      sending?.type === "file_sending" && sending.offset >= 1 * MiB,
      JSON.stringify(sending),
    );

    // The receiver stops after some bytes, and accepts again later.
    const dl = join(tmp, "dl");
    // Its reads from 1 MiB on are held, so that it cannot finish before it goes away.
    const bobClient = await login("bob");
    const gatedBob = new GatedClient(bobClient);
    gatedBob.holdReadsFrom = MiB;
    const bobEvents: FileTransferEvent[] = [];
    const bob = new FileTransfers(gatedBob, { onEvent: (e) => bobEvents.push(e) });
    const offer = await until(() => bob.offers[0], "the offer");
    bob.accept(offer.file, dl).catch(() => {});
    await gatedBob.held();
    await partReaches(dl, MiB);
    await bob.close();
    await bobClient.close();
    const part = (await listDir(dl)).find((n) => n.endsWith(".part"));
    assert.ok(part !== undefined, "a .part file is left");
    const again = await login("bob");
    const againEvents: FileTransferEvent[] = [];
    const bob2 = new FileTransfers(again, { onEvent: (e) => againEvents.push(e) });
    const saved = await bob2.accept(offer.file, dl);
    const receiving = againEvents.find((e) => e.type === "file_receiving");
    assert.ok(
      receiving?.type === "file_receiving" && receiving.offset >= MiB,
      JSON.stringify(receiving),
    );
    assert.equal(await sha256Of(saved), sha);
    assert.deepEqual(await listDir(dl), ["data.bin"]);
    await bob2.close();
    await again.close();
    await alice.close();
    await aliceClient.close();
  } finally {
    await server.shutdown();
    await Deno.remove(tmp, { recursive: true });
  }
});

/** A connected pair of peer sessions over loopback, bob listening. */
async function peerPair(): Promise<{ alice: PeerSession; bob: PeerSession }> {
  const bob = await listening("bob");
  const alice = await connectPeer({ host: "127.0.0.1", port: bob.port, nick: "alice" });
  return { alice, bob: await bob.session };
}

function follow(session: PeerSession, files: PeerFileTransfers): Promise<void> {
  return (async () => {
    try {
      for await (const event of session) if (event.type === "file") await files.handle(event);
    } catch {
      // the session was cut off: the test looks at the files
    } finally {
      await files.close();
    }
  })();
}

/**
 * A first peer session sends `path` into `dl` and is cut off (the sender vanishes) once
 * the receiver's `.part` file holds 2 MiB: the `.part` file stays for a resume.
 */
async function cutOffAt2MiB(path: string, dl: string): Promise<void> {
  const first = await peerPair();
  const bobEvents: FileTransferEvent[] = [];
  const bobFiles = new PeerFileTransfers(first.bob, {
    acceptDir: dl,
    onEvent: (e) => bobEvents.push(e),
  });
  // Alice's data after 2 MiB never leaves: the transfer is stuck there when she vanishes.
  let sent = 0;
  const stuck = {
    remoteNick: first.alice.remoteNick,
    get closed() {
      return first.alice.closed;
    },
    whenQueuedBelow: (bytes: number) => first.alice.whenQueuedBelow(bytes),
    sendFileMessage(message: Parameters<PeerSession["sendFileMessage"]>[0], body?: Uint8Array) {
      if (message.type === "peer_file_data") {
        if (sent >= 2 * MiB) return;
        sent += body?.length ?? 0;
      }
      first.alice.sendFileMessage(message, body);
    },
  };
  const aliceFiles = new PeerFileTransfers(stuck, { onEvent: () => {} });
  const followed = [follow(first.alice, aliceFiles), follow(first.bob, bobFiles)];
  aliceFiles.send(path).catch(() => {});
  await partReaches(dl, 2 * MiB);
  first.alice.abort(); // the sender vanishes
  await Promise.all(followed);
  assert.equal(bobEvents.some((e) => e.type === "file_saved"), false);
  assert.ok(bobEvents.some((e) => e.type === "file_failed"));
}

/**
 * A second peer session sends `path` into `dl` again; resolves with the receiver's
 * events and the types of the file messages the sender sent (with their offset for data).
 */
async function sendAgain(
  path: string,
  dl: string,
): Promise<{ events: FileTransferEvent[]; sent: string[] }> {
  const second = await peerPair();
  const events: FileTransferEvent[] = [];
  const bob = new PeerFileTransfers(second.bob, {
    acceptDir: dl,
    onEvent: (e) => events.push(e),
  });
  const sent: string[] = [];
  const recording = {
    remoteNick: second.alice.remoteNick,
    get closed() {
      return second.alice.closed;
    },
    whenQueuedBelow: (bytes: number) => second.alice.whenQueuedBelow(bytes),
    sendFileMessage(message: Parameters<PeerSession["sendFileMessage"]>[0], body?: Uint8Array) {
      sent.push(
        message.type === "peer_file_data" ? `peer_file_data ${message.offset}` : message.type,
      );
      second.alice.sendFileMessage(message, body);
    },
  };
  const alice = new PeerFileTransfers(recording, { onEvent: () => {} });
  const followed = [follow(second.alice, alice), follow(second.bob, bob)];
  await alice.send(path);
  await second.alice.close();
  await Promise.all(followed);
  return { events, sent };
}

Deno.test("peer to peer: a session cut off mid-transfer; the next one resumes", async () => {
  const tmp = await Deno.makeTempDir();
  try {
    const path = join(tmp, "big.bin");
    const sha = await writeRandomFile(path, 6 * MiB, 13);
    const dl = join(tmp, "dl");
    await cutOffAt2MiB(path, dl);
    const { events, sent } = await sendAgain(path, dl);
    const receiving = events.find((e) => e.type === "file_receiving");
    assert.ok(
      receiving?.type === "file_receiving" && receiving.offset >= 2 * MiB,
      JSON.stringify(receiving),
    );
    assert.ok(!sent.includes("peer_file_restart"), "the prefix matched");
    const saved = events.find((e) => e.type === "file_saved");
    assert.ok(saved?.type === "file_saved");
    assert.equal(await sha256Of(saved.path), sha);
    assert.deepEqual(await listDir(dl), ["big.bin"]);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("peer to peer: a .part file altered on disk between sessions is caught at the resume and sent again from 0", async () => {
  const tmp = await Deno.makeTempDir();
  try {
    const path = join(tmp, "big.bin");
    const sha = await writeRandomFile(path, 6 * MiB, 17);
    const dl = join(tmp, "dl");
    await cutOffAt2MiB(path, dl);
    // One byte of what the receiver already holds changes on its disk.
    const [part] = await listDir(dl);
    assert.ok(part.endsWith(".part"), part);
    const file = await Deno.open(join(dl, part), { read: true, write: true });
    try {
      const byte = new Uint8Array(1);
      await file.seek(MiB + 12_345, Deno.SeekMode.Start);
      await file.read(byte);
      byte[0] ^= 0x40;
      await file.seek(MiB + 12_345, Deno.SeekMode.Start);
      await file.write(byte);
    } finally {
      file.close();
    }
    const { events, sent } = await sendAgain(path, dl);
    const receiving = events.find((e) => e.type === "file_receiving");
    assert.ok(
      receiving?.type === "file_receiving" && receiving.offset >= 2 * MiB,
      JSON.stringify(receiving),
    );
    assert.deepEqual(sent.filter((t) => t === "peer_file_restart"), ["peer_file_restart"]);
    // Bob accepts every offer: data from 0 went before his accept came; after the
    // restart, the file goes again from 0.
    assert.equal(sent[sent.indexOf("peer_file_restart") + 1], "peer_file_data 0");
    const saved = events.find((e) => e.type === "file_saved");
    assert.ok(saved?.type === "file_saved");
    assert.equal(await sha256Of(saved.path), sha, "the altered byte did not survive");
    assert.deepEqual(await listDir(dl), ["big.bin"]);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
