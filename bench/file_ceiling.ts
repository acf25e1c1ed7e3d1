/**
 * The ceilings of the file-transfer benchmark: the work every byte of a chat transfer
 * needs, done by bare programs with no protocol, so that the suite shows how much of
 * what this machine allows the chat transfers reach.
 *
 * - Store and forward (three processes): the sender streams its file, hashing each
 *   piece as it reads it (the chat sender sends the SHA-256 with its last chunk: the file
 *   is read once), the next piece read and hashed while one is written; the hop writes
 *   every piece to disk once and forwards it from memory, without hashing it (the chat
 *   server checks no SHA-256 since integrity became end to end: the recipient's), and
 *   syncs it as the server syncs an upload: in the background as it writes and the rest
 *   once all is forwarded; the receiver writes (synchronously) and hashes,
 *   syncs in the background as it writes and at the end, as the chat receiver does.
 *   What the relay adds to this is the protocol: frames, requests and acknowledgements,
 *   reading back from disk, flow control, the metadata's commits.
 * - Encrypted peer to peer (two processes): the sender streams its file as
 *   ChaCha20-Poly1305 records of 1 MiB (through the process's `recordAead`, as the
 *   session does: OpenSSL through FFI when allowed and present, else `node:crypto`; the
 *   next record sealed while one is written); the receiver decrypts and
 *   writes (synchronously, synced in the background and at the end, as the chat
 *   receiver does). Neither hashes (peer protocol version 5 on: the AEAD authenticates every byte;
 *   version 4 hashed the file on both sides). No handshake: a fixed key.
 *
 * ```text
 * deno run -A bench/file_ceiling.ts relay-receive PATH       listen; write, hash and sync into PATH
 * deno run -A bench/file_ceiling.ts relay-hop PATH PORT      listen; store into PATH, forward to PORT (no hash)
 * deno run -A bench/file_ceiling.ts relay-send PORT PATH     send PATH to PORT, hashing it as it goes
 * deno run -A bench/file_ceiling.ts peer-receive PATH        listen; decrypt, write and sync into PATH
 * deno run -A bench/file_ceiling.ts peer-send PORT PATH      send PATH encrypted
 * ```
 *
 * Like `raw_copy.ts`, each prints `{"ready": true, "port": N}` when ready (a sender once
 * connected) and
 * `{"done": true, "sha256": HEX}` when its part is over (a receiver: the file written,
 * hashed and closed; the hop and the peer ends, which hash nothing: `null`; the hop adds
 * `"backgroundSyncs": N`, the syncs it started as it stored the file); `{"error": ...}` and
 * exit 1 on failure.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { recordAead } from "../peer/record_aead_choice.ts";
import { BACKGROUND_SYNC_BYTES, BackgroundSync } from "../transport/background_sync.ts";
import { readFull, writeFull } from "../transport/file_io.ts";
import { MAX_FILE_FRAME_BYTES } from "../protocol/messages.ts";

/** Bytes per piece of the store-and-forward pipeline (the relay's chunk size). */
const PIECE = MAX_FILE_FRAME_BYTES;
/** Plaintext bytes per encrypted record (the peer session's record size). */
const RECORD = 1024 * 1024;

/** Listens on 127.0.0.1, says ready with the port, and takes one connection. */
async function acceptOne(): Promise<Deno.TcpConn> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  console.log(JSON.stringify({ ready: true, port: (listener.addr as Deno.NetAddr).port }));
  const conn = await listener.accept();
  listener.close();
  return conn;
}

/**
 * A received file as the chat receiver writes it (`IncomingFile`): each piece written
 * synchronously, synced in the background every {@linkcode BACKGROUND_SYNC_BYTES}
 * through a second handle (one handle's operations run in turn), and once at the end.
 */
class SyncedFile implements Disposable {
  readonly #file: Deno.FsFile;
  readonly #syncHandle: Deno.FsFile;
  #syncing: Promise<void> | null = null;
  #unsynced = 0;

  private constructor(file: Deno.FsFile, syncHandle: Deno.FsFile) {
    this.#file = file;
    this.#syncHandle = syncHandle;
  }

  static async create(path: string): Promise<SyncedFile> {
    const file = await Deno.open(path, { write: true, create: true, truncate: true });
    return new SyncedFile(file, await Deno.open(path, { write: true }));
  }

  write(piece: Uint8Array): void {
    for (let at = 0; at < piece.length;) at += this.#file.writeSync(piece.subarray(at));
    this.#unsynced += piece.length;
    if (this.#unsynced >= BACKGROUND_SYNC_BYTES && this.#syncing === null) {
      this.#unsynced = 0;
      this.#syncing = this.#syncHandle.syncData().finally(() => this.#syncing = null);
    }
  }

  async finish(): Promise<void> {
    await this.#syncing;
    await this.#file.sync();
  }

  [Symbol.dispose](): void {
    this.#file.close();
    this.#syncHandle.close();
  }
}

async function relayReceive(path: string): Promise<string> {
  const conn = await acceptOne();
  using file = await SyncedFile.create(path);
  const hash = createHash("sha256");
  const buffer = new Uint8Array(PIECE);
  while (true) {
    const n = await readFull(conn, buffer);
    if (n === 0) break;
    // Written synchronously, then hashed, as the chat receiver does (`IncomingFile`).
    const piece = buffer.subarray(0, n);
    file.write(piece);
    hash.update(piece);
  }
  await file.finish();
  conn.close();
  return hash.digest("hex");
}

async function relayHop(path: string, port: number): Promise<Done> {
  const down = await Deno.connect({ hostname: "127.0.0.1", port });
  const up = await acceptOne();
  using file = await Deno.open(path, { write: true, create: true, truncate: true });
  // Synced as the server's upload is (`DiskWriter`): in the background every
  // BACKGROUND_SYNC_BYTES, through a second handle, and the rest at the end.
  const syncs = new BackgroundSync(path);
  // Two buffers: one being forwarded while the next is read and stored.
  const buffers = [new Uint8Array(PIECE), new Uint8Array(PIECE)];
  let forwarding: Promise<void> = Promise.resolve();
  for (let i = 0;; i ^= 1) {
    const n = await readFull(up, buffers[i]);
    if (n === 0) break;
    const piece = buffers[i].subarray(0, n);
    await writeFull(file, piece);
    syncs.wrote(n);
    await forwarding;
    forwarding = writeFull(down, piece);
  }
  await forwarding;
  up.close();
  down.close();
  await syncs.syncFinally(file);
  return { sha256: null, backgroundSyncs: syncs.started };
}

async function relaySend(port: number, path: string): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  console.log(JSON.stringify({ ready: true, port }));
  const hash = createHash("sha256");
  using file = await Deno.open(path, { read: true });
  // Two buffers: one being written while the next is read and hashed.
  const buffers = [new Uint8Array(PIECE), new Uint8Array(PIECE)];
  let writing: Promise<void> = Promise.resolve();
  for (let i = 0;; i ^= 1) {
    const n = await readFull(file, buffers[i]);
    if (n === 0) break;
    const piece = buffers[i].subarray(0, n);
    hash.update(piece);
    await writing;
    writing = writeFull(conn, piece);
  }
  await writing;
  await conn.closeWrite();
  conn.close();
  return hash.digest("hex");
}

/** The fixed key of the ceiling's records (no handshake). */
const KEY = new Uint8Array(32);
function nonce(counter: number): Uint8Array {
  const iv = new Uint8Array(12);
  new DataView(iv.buffer).setUint32(8, counter);
  return iv;
}

async function peerReceive(path: string): Promise<null> {
  const conn = await acceptOne();
  using file = await SyncedFile.create(path);
  const prefix = new Uint8Array(4);
  const ciphertext = new Uint8Array(RECORD + 16);
  const plaintext = new Uint8Array(RECORD);
  const opener = recordAead().opener(KEY);
  let counter = 0;
  while (true) {
    if (await readFull(conn, prefix) < 4) break;
    const length = new DataView(prefix.buffer).getUint32(0);
    if (
      length < 16 || length > ciphertext.length ||
      await readFull(conn, ciphertext.subarray(0, length)) < length
    ) {
      throw new Error("a record was cut short");
    }
    const opened = plaintext.subarray(0, length - 16);
    opener.begin(nonce(counter++), prefix, opened.length);
    opener.update(ciphertext.subarray(0, opened.length), opened);
    if (!opener.finish(ciphertext.subarray(opened.length, length))) {
      throw new Error(`record ${counter - 1} failed authentication`);
    }
    // Written synchronously and synced as it goes, as the chat receiver does.
    file.write(opened);
  }
  await file.finish();
  conn.close();
  return null;
}

async function peerSend(port: number, path: string): Promise<null> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  console.log(JSON.stringify({ ready: true, port }));
  using file = await Deno.open(path, { read: true });
  const buffer = new Uint8Array(RECORD);
  // Two record buffers: one being written while the next is read and sealed.
  const records = [new Uint8Array(4 + RECORD + 16), new Uint8Array(4 + RECORD + 16)];
  const sealer = recordAead().sealer(KEY);
  let writing: Promise<void> = Promise.resolve();
  let counter = 0;
  while (true) {
    const n = await readFull(file, buffer);
    if (n === 0) break;
    const record = records[counter % 2].subarray(0, 4 + n + 16);
    new DataView(record.buffer).setUint32(0, n + 16);
    sealer.begin(nonce(counter++), record.subarray(0, 4), n);
    sealer.update(buffer.subarray(0, n), record.subarray(4, 4 + n));
    sealer.finish(record.subarray(4 + n, 4 + n + 16));
    await writing;
    writing = writeFull(conn, record);
  }
  await writing;
  await conn.closeWrite();
  conn.close();
  return null;
}

function port(value: string | undefined): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0 || n > 65535) throw new Error(`bad port "${value}"`);
  return n;
}

/** What a program says when its part is over (besides `done: true`). */
interface Done {
  /** The SHA-256 of the bytes, from the ends that hash them; else null. */
  sha256: string | null;
  /** The hop: the syncs it started in the background as it stored the file. */
  backgroundSyncs?: number;
}

if (import.meta.main) {
  const [mode, a, b] = Deno.args;
  const hashed = async (sha256: Promise<string | null>): Promise<Done> => ({
    sha256: await sha256,
  });
  try {
    let done: Done;
    if (mode === "relay-receive" && a) done = await hashed(relayReceive(a));
    else if (mode === "relay-hop" && a && b) done = await relayHop(a, port(b));
    else if (mode === "relay-send" && a && b) done = await hashed(relaySend(port(a), b));
    else if (mode === "peer-receive" && a) done = await hashed(peerReceive(a));
    else if (mode === "peer-send" && a && b) done = await hashed(peerSend(port(a), b));
    else {
      throw new Error(
        "usage: file_ceiling.ts relay-receive PATH | relay-hop PATH PORT | relay-send PORT PATH" +
          " | peer-receive PATH | peer-send PORT PATH",
      );
    }
    console.log(JSON.stringify({ done: true, ...done }));
    Deno.exit(0);
  } catch (err) {
    console.log(JSON.stringify({ error: err instanceof Error ? err.message : String(err) }));
    Deno.exit(1);
  }
}
