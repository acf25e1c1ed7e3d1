/**
 * Files through the server from the browser: the page's half of `server/files.ts`, on the
 * same requests as the terminal client (client/file_transfer.ts), with no DOM (the view
 * is web/files.ts).
 *
 * - Sending a `File`: its SHA-256 is computed first (the offer carries it), slice by
 *   slice with an incremental SHA-256 (`@noble/hashes`: WebCrypto's digest needs the
 *   whole file in one buffer), then it is offered (`file_offer`) and uploaded in chunks
 *   carried as frame bodies: of 1 MiB less 4 KiB ({@linkcode LARGE_FILE_CHUNK_BYTES}) to
 *   a server whose hello shares the `large_chunks` feature, as the terminal client
 *   does (half the chunks and acknowledgements), else of {@linkcode CHUNK_BYTES}; with
 *   {@linkcode WINDOW_BYTES} waiting for their acknowledgement at most (two large chunks
 *   or four small ones; fewer and smaller under a small frame or queue bound of the
 *   server: {@linkcode uploadWindow}). Across a reconnect the socket resends the chunks
 *   in flight (the server acknowledges again what it has); on a refusal such as
 *   `bad_offset` the file is offered again and the upload carries on from the server's
 *   offset.
 * - Receiving: offers come live (`file_offer`) or, held while we were away, from
 *   `file_list` ({@linkcode WebFileTransfers.refresh}, at login and after a reconnect).
 *   Accepting reads the file with two `file_read`s in flight, each of one large chunk's
 *   `file_data` frame from a server sharing `large_chunks` (half the frames of the
 *   default 512 KiB: {@linkcode readShape}); each `file_data` body is
 *   hashed as it comes and kept as a part of a `Blob`, folded into it every
 *   {@linkcode FOLD_BYTES} (the page holds at most that much plus the reads in flight;
 *   the browser keeps the Blob, in memory or on disk as it sees fit). Once every byte is
 *   in, the SHA-256 is compared with the offer's: a match gives a `blob:` URL to save the
 *   file from and tells the server (`file_done`); a mismatch reads the file again once,
 *   then cancels it as `corrupt` (the server drops it and tells the sender, who may send
 *   it again). Files over {@linkcode MAX_RECEIVE_BYTES} are not accepted in the page.
 *
 * Why a Blob and a link rather than a stream to disk: the File System Access API is not
 * in every browser (nor in headless Chromium), and a streamed download through a service
 * worker needs a worker script, which this page's strict Content-Security-Policy and its
 * single bundle keep out. A Blob built from parts is held by the browser's blob storage
 * (Chromium moves large blobs to disk), not by the page's JavaScript heap.
 *
 * @module
 */

import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import { largestChunkBytes, MAX_FILE_FRAME_BYTES } from "../protocol/file_chunks.ts";
import { nameKey } from "../protocol/names.ts";
import { MAX_UPLOAD_RESYNCS, UPLOAD_RESYNC_CODES } from "../protocol/upload_resync.ts";
import { type Header, RequestError } from "./chat_socket.ts";

/**
 * Bytes of file data per `file_chunk` to a server that does not share the
 * `large_chunks` feature (the protocol's MAX_FILE_FRAME_BYTES, 512 KiB); to one that
 * does, {@linkcode LARGE_FILE_CHUNK_BYTES}.
 */
export const CHUNK_BYTES: number = MAX_FILE_FRAME_BYTES;
/** Room for a chunk's frame header within the server's largest frame. */
const FRAME_ROOM = 1024;
/** Most chunks in flight (sent, not yet acknowledged) per upload. */
export const WINDOW_CHUNKS = 4;
/** Most file bytes in flight per upload, whatever the chunks' size: 2 MiB. */
export const WINDOW_BYTES: number = WINDOW_CHUNKS * CHUNK_BYTES;
/** Share of the server's queue bound (`maxQueue`) that chunks in flight may fill. */
const QUEUE_SHARE = 3 / 4;
/** Bytes read from the chosen file per step while hashing it. */
const HASH_SLICE = 4 * 1024 * 1024;
/** Reads at the end asking for a sender's SHA-256 before the page gives up on it. */
const HASH_ASKS = 30;

/** Bytes asked for per `file_read` (the server may send fewer). */
export const READ_BYTES = 1024 * 1024;
/** Received bytes kept as separate parts before they are folded into the Blob. */
export const FOLD_BYTES = 8 * 1024 * 1024;
/** Largest file the page accepts: 1 GiB (a larger one: `chat connect`, which streams to disk). */
export const MAX_RECEIVE_BYTES = 1024 * 1024 * 1024;
/** Milliseconds between two progress reports of a transfer. */
const PROGRESS_MS = 250;
/** What becomes of a transfer, in order (any may end in `failed`). */
export type TransferState =
  // sending
  | "hashing"
  | "uploading"
  | "uploaded"
  | "delivered"
  // receiving
  | "offered"
  | "receiving"
  | "saved"
  // either way
  | "declined"
  | "cancelled"
  | "failed";

/** A file on its way, either way, as the view shows it. */
export interface Transfer {
  /** Stable key of the transfer in the page (`send-N` or `receive-FILE`). */
  readonly key: string;
  readonly direction: "send" | "receive";
  /** The server's id (`#12`), once offered. */
  file: number | null;
  /** The other side's nick. */
  nick: string;
  /** The name as offered: unsafe, to be shown as text only. */
  name: string;
  size: number;
  /** SHA-256 (hex) of the whole file; "" while a sent file is hashed. */
  sha256: string;
  /** Bytes hashed (hashing), held by the server (sending) or received and hashed. */
  bytes: number;
  state: TransferState;
  /** Sent: the recipient accepted it (and may be reading while it uploads). */
  accepted: boolean;
  /** Why it failed, was declined or cancelled: a code and a sentence. */
  error: { code: string; message: string } | null;
  /** Saved: the file's bytes, checked, and a `blob:` URL to save them from. */
  blob: Blob | null;
  url: string | null;
}

/** What the transfers need of the chat session (web/chat_socket.ts's ChatSocket). */
export interface FileSocket {
  request(type: string, fields?: Header, body?: Uint8Array): Promise<Header>;
  onBody(listener: (header: Header, body: Uint8Array) => void): () => void;
  readonly maxFrame: number;
  readonly maxQueue: number | null;
  /** The features the server's hello shares (`large_chunks`: larger file chunks). */
  readonly features: readonly string[];
}

/** A transfer's end, with the code the view shows. */
export class TransferError extends Error {
  /** `cancelled`, `declined`, `corrupt`, `too_large` or the server's error code. */
  readonly code: string;
  /** Creates the error. */
  constructor(code: string, message: string) {
    super(message);
    this.name = "TransferError";
    this.code = code;
  }
}

/** Ways to stop a running transfer. */
interface Running {
  stop(reason: TransferError): void;
  stopped: Promise<never>;
  reason: TransferError | null;
}

function stopper(): Running {
  let reject!: (reason: TransferError) => void;
  const stopped = new Promise<never>((_, r) => reject = r);
  stopped.catch(() => {});
  const running: Running = {
    stopped,
    reason: null,
    stop(reason) {
      running.reason ??= reason;
      reject(reason);
    },
  };
  return running;
}

function toTransferError(err: unknown): TransferError {
  if (err instanceof TransferError) return err;
  if (err instanceof RequestError) return new TransferError(err.code, err.message);
  return new TransferError("internal", err instanceof Error ? err.message : String(err));
}

/**
 * The file transfers of one browser session; see the module documentation.
 *
 * @example
 * ```ts ignore
 * const files = new WebFileTransfers(chat, (t) => render(t));
 * await files.send("bob", input.files[0]); // resolves once the server holds it all
 * await files.accept(7); // the transfer's `url` then saves the checked file
 * ```
 */
export class WebFileTransfers {
  readonly #socket: FileSocket;
  readonly #changed: (transfer: Transfer) => void;
  readonly #transfers = new Map<string, Transfer>();
  readonly #running = new Map<string, Running>();
  readonly #reported = new Map<string, number>();
  #sent = 0;

  /** Follows `socket`; `changed` is called whenever a transfer changes (progress at most 4 a second). */
  constructor(socket: FileSocket, changed: (transfer: Transfer) => void) {
    this.#socket = socket;
    this.#changed = changed;
  }

  /** Every transfer of this session, oldest first. */
  get transfers(): Transfer[] {
    return [...this.#transfers.values()];
  }

  /** The transfers with `nick`, oldest first. */
  with(nick: string): Transfer[] {
    const key = nameKey(nick);
    return this.transfers.filter((t) => nameKey(t.nick) === key);
  }

  /** The transfer of `key`, if any. */
  get(key: string): Transfer | undefined {
    return this.#transfers.get(key);
  }

  /**
   * Forgets a finished transfer (saved, delivered, declined, cancelled, failed) and
   * releases its `blob:` URL; false when there is none or it is still under way.
   */
  dismiss(key: string): boolean {
    const transfer = this.#transfers.get(key);
    if (transfer === undefined || !isFinal(transfer.state)) return false;
    this.#release(transfer);
    this.#transfers.delete(key);
    return true;
  }

  /** Releases every received file's `blob:` URL (the page logs out). */
  releaseAll(): void {
    for (const transfer of this.#transfers.values()) this.#release(transfer);
  }

  #release(transfer: Transfer): void {
    if (transfer.url !== null) URL.revokeObjectURL(transfer.url);
    transfer.url = null;
    transfer.blob = null;
  }

  /**
   * Takes the file events among the server's events (offers, and what became of ours);
   * returns whether `header` was one.
   */
  handleEvent(header: Header): boolean {
    const file = Number(header.file);
    switch (header.type) {
      case "file_offer":
        this.#offered(header);
        return true;
      case "file_accepted": {
        const sent = this.#sentFile(file);
        if (sent !== undefined) {
          sent.accepted = true;
          this.#report(sent);
        }
        return true;
      }
      case "file_completed": {
        const sent = this.#sentFile(file);
        if (sent !== undefined) {
          sent.state = "delivered";
          sent.bytes = sent.size;
          this.#report(sent);
        }
        return true;
      }
      case "file_declined":
      case "file_cancelled": {
        const declined = header.type === "file_declined";
        const reason = declined ? "declined" : String(header.reason ?? "cancelled");
        const by = String(header.by ?? "");
        const message = declined
          ? `${by} declined it`
          : reason === "expired"
          ? "it expired on the server"
          : reason === "corrupt"
          ? `${by} received it damaged (its SHA-256 did not match): send it again`
          : `${by} cancelled it`;
        for (const transfer of [this.#sentFile(file), this.#transfers.get(`receive-${file}`)]) {
          if (transfer === undefined || isFinal(transfer.state)) continue;
          const error = new TransferError(reason, message);
          const running = this.#running.get(transfer.key);
          if (running !== undefined) running.stop(error);
          else this.#end(transfer, error);
        }
        return true;
      }
      default:
        return false;
    }
  }

  /** Asks the server for the files held for us; reports those not known yet. */
  async refresh(): Promise<void> {
    let page = await this.#socket.request("file_list", {});
    for (let n = 0; n < 100; n++) {
      const files = page.files as Header[];
      for (const offer of files) this.#offered(offer);
      if (page.more !== true || files.length === 0) return;
      page = await this.#socket.request("file_list", { after: files[files.length - 1].file });
    }
  }

  /**
   * Sends `file` to `to` through the server: hashes it, offers it, uploads it; resolves
   * once the server holds all of it. Failures end in the transfer's state (`failed`,
   * `cancelled`, `declined`), not in a rejection.
   */
  async send(to: string, file: File): Promise<Transfer> {
    const transfer: Transfer = {
      key: `send-${++this.#sent}`,
      direction: "send",
      file: null,
      nick: to,
      name: file.name,
      size: file.size,
      sha256: "",
      bytes: 0,
      state: "hashing",
      accepted: false,
      error: null,
      blob: null,
      url: null,
    };
    this.#transfers.set(transfer.key, transfer);
    const running = stopper();
    this.#running.set(transfer.key, running);
    this.#report(transfer);
    try {
      transfer.sha256 = await this.#hash(transfer, file, running);
      const fields = { to, name: file.name, size: file.size, sha256: transfer.sha256 };
      const offering = this.#socket.request("file_offer", fields);
      // Cancelled while the offer was on its way: withdraw it once it is known.
      offering.then((o) => {
        if (running.reason !== null) {
          void this.#socket.request("file_cancel", { file: o.file }).catch(() => {});
        }
      }, () => {});
      let offer = await Promise.race([offering, running.stopped]);
      transfer.file = Number(offer.file);
      transfer.nick = String(offer.to);
      transfer.state = "uploading";
      transfer.bytes = Number(offer.offset);
      this.#report(transfer);
      let resyncs = 0;
      while (true) {
        try {
          await this.#upload(transfer, file, Number(offer.offset), running);
          break;
        } catch (err) {
          const error = toTransferError(err);
          if (running.reason !== null) throw running.reason;
          if (!UPLOAD_RESYNC_CODES.has(error.code) || ++resyncs > MAX_UPLOAD_RESYNCS) throw error;
          // A refusal such as rate_limited or queue_full passes with time: wait a little more each time.
          await Promise.race([
            new Promise((resolve) => setTimeout(resolve, Math.min(5000, 250 * resyncs))),
            running.stopped,
          ]);
          // Naming the upload it resumes: a file that ended meanwhile is told, not sent again.
          offer = await Promise.race([
            this.#socket.request("file_offer", { ...fields, file: transfer.file }),
            running.stopped,
          ]);
          transfer.file = Number(offer.file);
        }
      }
      if (transfer.state === "uploading") transfer.state = "uploaded";
      transfer.bytes = transfer.size;
      this.#report(transfer);
    } catch (err) {
      this.#end(transfer, toTransferError(err));
    } finally {
      this.#running.delete(transfer.key);
    }
    return transfer;
  }

  /**
   * Accepts offered file `file` and receives it; resolves once it is saved (its SHA-256
   * matched) or failed. Failures end in the transfer's state, not in a rejection.
   */
  async accept(file: number): Promise<Transfer | undefined> {
    const transfer = this.#transfers.get(`receive-${file}`);
    if (transfer === undefined || this.#running.has(transfer.key)) return transfer;
    if (transfer.state !== "offered" && transfer.state !== "failed") return transfer;
    if (transfer.size > MAX_RECEIVE_BYTES) {
      this.#end(
        transfer,
        new TransferError(
          "too_large",
          `over the page's ${
            formatBytes(MAX_RECEIVE_BYTES)
          } limit: receive it with chat connect, or decline it`,
        ),
      );
      return transfer;
    }
    const running = stopper();
    this.#running.set(transfer.key, running);
    transfer.state = "receiving";
    transfer.error = null;
    transfer.bytes = 0;
    this.#report(transfer);
    try {
      await Promise.race([this.#socket.request("file_accept", { file }), running.stopped]);
      for (let attempt = 1;; attempt++) {
        const { blob, sha256: digest } = await this.#receive(transfer, running);
        if (digest === transfer.sha256) {
          transfer.blob = blob;
          transfer.url = URL.createObjectURL(blob);
          transfer.state = "saved";
          this.#report(transfer);
          // The server may drop it now (and tell the sender it arrived).
          await this.#socket.request("file_done", { file }).catch(() => {});
          return transfer;
        }
        if (attempt === 2) {
          await this.#socket.request("file_cancel", { file, reason: "corrupt" }).catch(() => {});
          throw new TransferError(
            "corrupt",
            `its SHA-256 did not match the offer's (twice): ${transfer.nick} is told to send it again`,
          );
        }
        // Damaged on the way or on the server's disk: read it once more.
        transfer.bytes = 0;
        this.#report(transfer);
      }
    } catch (err) {
      this.#end(transfer, toTransferError(err));
      return transfer;
    } finally {
      this.#running.delete(transfer.key);
    }
  }

  /** Declines offered file `file`: the server drops it and tells the sender. */
  async decline(file: number): Promise<void> {
    const transfer = this.#transfers.get(`receive-${file}`);
    await this.#socket.request("file_decline", { file });
    if (transfer !== undefined) {
      this.#end(transfer, new TransferError("declined", "you declined it"));
    }
  }

  /** Stops transfer `key` (either way) and tells the server to drop the file. */
  async cancel(key: string): Promise<void> {
    const transfer = this.#transfers.get(key);
    if (transfer === undefined || isFinal(transfer.state)) return;
    const error = new TransferError("cancelled", "you cancelled it");
    const running = this.#running.get(key);
    if (running !== undefined) running.stop(error);
    else this.#end(transfer, error);
    if (transfer.file !== null) {
      await this.#socket.request("file_cancel", { file: transfer.file }).catch(() => {});
    }
  }

  // ---------------------------------------------------------------- sending

  async #hash(transfer: Transfer, file: File, running: Running): Promise<string> {
    const hash = sha256.create();
    for (let at = 0; at < file.size; at += HASH_SLICE) {
      const slice = file.slice(at, Math.min(file.size, at + HASH_SLICE)).arrayBuffer();
      hash.update(new Uint8Array(await Promise.race([slice, running.stopped])));
      transfer.bytes = Math.min(file.size, at + HASH_SLICE);
      this.#report(transfer, false);
    }
    return bytesToHex(hash.digest());
  }

  /** Uploads from `offset` to the end with a window of chunks in flight. */
  async #upload(transfer: Transfer, file: File, offset: number, running: Running): Promise<void> {
    const id = transfer.file!;
    const socket = this.#socket;
    const { chunkBytes, window } = uploadWindow(socket.maxFrame, socket.maxQueue, socket.features);
    const inflight: Promise<Header>[] = [];
    let next = offset;
    let acked = offset;
    try {
      while (acked < file.size) {
        while (next < file.size && inflight.length < window) {
          const end = Math.min(file.size, next + chunkBytes);
          const body = new Uint8Array(
            await Promise.race([file.slice(next, end).arrayBuffer(), running.stopped]),
          );
          const reply = this.#socket.request("file_chunk", { file: id, offset: next }, body);
          reply.catch(() => {});
          inflight.push(reply);
          next = end;
        }
        const reply = await Promise.race([inflight.shift()!, running.stopped]);
        acked = Math.max(acked, Number(reply.offset));
        transfer.bytes = acked;
        this.#report(transfer, false);
        if (reply.complete === true) return;
      }
    } finally {
      // What is still in flight settles on its own; a resync starts from a quiet link.
      if (running.reason === null) await Promise.allSettled(inflight);
    }
  }

  #sentFile(file: number): Transfer | undefined {
    for (const transfer of this.#transfers.values()) {
      if (transfer.direction === "send" && transfer.file === file) return transfer;
    }
    return undefined;
  }

  // -------------------------------------------------------------- receiving

  #offered(offer: Header): void {
    const key = `receive-${Number(offer.file)}`;
    if (this.#transfers.has(key)) return;
    const transfer: Transfer = {
      key,
      direction: "receive",
      file: Number(offer.file),
      nick: String(offer.from),
      name: String(offer.name),
      size: Number(offer.size),
      // Absent when the sender hashes as it uploads: it comes with the last bytes' read.
      sha256: typeof offer.sha256 === "string" ? offer.sha256 : "",
      bytes: 0,
      state: "offered",
      accepted: false,
      error: null,
      blob: null,
      url: null,
    };
    this.#transfers.set(key, transfer);
    this.#report(transfer);
  }

  /** Reads the whole file once: its bytes as a Blob, and their SHA-256. */
  async #receive(
    transfer: Transfer,
    running: Running,
  ): Promise<{ blob: Blob; sha256: string }> {
    const id = transfer.file!;
    const size = transfer.size;
    const hash = sha256.create();
    let blob = new Blob([]);
    let parts: Uint8Array<ArrayBuffer>[] = [];
    let partBytes = 0;
    // The next byte wanted: a frame past it (after a short read, with a second read in
    // flight) is dropped, and reading starts again from here; one before it (resent after
    // a reconnect) gives only its new bytes.
    let expected = 0;
    const stopListening = this.#socket.onBody((header, body) => {
      if (header.type !== "file_data" || header.file !== id) return;
      const fresh = freshBytes(expected, Number(header.offset), body);
      if (fresh === null) return;
      hash.update(fresh);
      parts.push(fresh);
      partBytes += fresh.length;
      expected += fresh.length;
      if (partBytes >= FOLD_BYTES) {
        blob = new Blob([blob, ...parts]);
        parts = [];
        partBytes = 0;
      }
    });
    try {
      const reads: { reply: Promise<Header>; end: number }[] = [];
      const shape = readShape(this.#socket.features);
      let next = 0;
      const ask = () => {
        const length = Math.min(shape.length, size - next);
        const reply = this.#socket.request("file_read", {
          file: id,
          offset: next,
          length,
          frame: shape.frame,
        });
        reply.catch(() => {});
        reads.push({ reply, end: next + length });
        next += length;
      };
      while (expected < size) {
        if (reads.length === 0) {
          next = expected;
          ask();
        }
        if (reads.length === 1 && next < size) ask();
        const read = reads.shift()!;
        const reply = await Promise.race([read.reply, running.stopped]);
        if (typeof reply.sha256 === "string") transfer.sha256 = reply.sha256;
        if (Number(reply.offset) + Number(reply.length) < read.end) {
          // A short read: what follows in flight does not join up; start again from here.
          await Promise.race([Promise.allSettled(reads.map((r) => r.reply)), running.stopped]);
          reads.length = 0;
        }
        transfer.bytes = expected;
        this.#report(transfer, false);
      }
      // Every byte in, the sender's SHA-256 maybe not yet (it comes with its last chunk): a
      // read at the end asks for it; the server holds each such read a while.
      for (let asked = 0; transfer.sha256 === ""; asked++) {
        if (asked === HASH_ASKS) {
          throw new TransferError("stalled", `${transfer.nick} did not finish sending it`);
        }
        const reply = await Promise.race([
          this.#socket.request("file_read", { file: id, offset: size, length: 1 }),
          running.stopped,
        ]);
        if (typeof reply.sha256 === "string") transfer.sha256 = reply.sha256;
      }
      return { blob: new Blob([blob, ...parts]), sha256: bytesToHex(hash.digest()) };
    } finally {
      stopListening();
    }
  }

  // ----------------------------------------------------------------- events

  #end(transfer: Transfer, error: TransferError): void {
    transfer.state = error.code === "declined"
      ? "declined"
      : error.code === "cancelled" || error.code === "expired"
      ? "cancelled"
      : "failed";
    transfer.error = { code: error.code, message: error.message };
    this.#report(transfer);
  }

  /** Tells the view; progress (`now` false) at most every {@linkcode PROGRESS_MS}. */
  #report(transfer: Transfer, now = true): void {
    const time = performance.now();
    if (!now && time - (this.#reported.get(transfer.key) ?? -Infinity) < PROGRESS_MS) return;
    this.#reported.set(transfer.key, time);
    this.#changed(transfer);
  }
}

/**
 * The bytes of a `file_data` body at `offset` that continue a file received up to
 * `expected`: none when it starts past it (a gap: read again from `expected`) or ends
 * at or before it (sent again after a reconnect), else those after `expected`.
 *
 * @example
 * ```ts ignore
 * freshBytes(10, 8, new Uint8Array(4)); // its last 2 bytes
 * freshBytes(10, 12, new Uint8Array(4)); // null: bytes 10 and 11 are missing
 * ```
 */
export function freshBytes(
  expected: number,
  offset: number,
  body: Uint8Array,
): Uint8Array<ArrayBuffer> | null {
  if (offset > expected || offset + body.length <= expected) return null;
  return body.subarray(expected - offset) as Uint8Array<ArrayBuffer>;
}

/**
 * The `file_data` frames a download asks for (`frame`: a large chunk's,
 * {@linkcode LARGE_FILE_CHUNK_BYTES}, from a server sharing `large_chunks`, else the
 * protocol's 512 KiB; the page's frame decoder takes either) and the bytes per
 * `file_read`: {@linkcode READ_BYTES} rounded down to whole frames, one large frame a read.
 *
 * @example
 * ```ts ignore
 * readShape(["large_chunks"]); // { frame: 1044480, length: 1044480 }
 * readShape([]); // { frame: 524288, length: 1048576 }
 * ```
 */
export function readShape(features: readonly string[]): { frame: number; length: number } {
  const frame = largestChunkBytes(features);
  return { frame, length: frame * Math.max(1, Math.floor(READ_BYTES / frame)) };
}

/**
 * The size of an upload's chunks and how many may be in flight, from the server's hello
 * (its largest frame, its queue bound and the features it shares): chunks of
 * {@linkcode LARGE_FILE_CHUNK_BYTES} to a server sharing `large_chunks`, else of
 * {@linkcode CHUNK_BYTES}; each chunk's frame fits the server's largest frame; at most
 * {@linkcode WINDOW_CHUNKS} and {@linkcode WINDOW_BYTES} in flight, and together under
 * {@linkcode QUEUE_SHARE} of its queue bound (a WebSocket cannot hold the page back as
 * TCP holds a terminal client: the server closes a socket whose unread bytes pass it).
 *
 * @example
 * ```ts ignore
 * const MiB = 1024 * 1024;
 * uploadWindow(MiB, 4 * MiB, ["large_chunks"]); // { chunkBytes: 1044480, window: 2 }
 * uploadWindow(MiB, 4 * MiB, []); // { chunkBytes: 524288, window: 4 }
 * uploadWindow(MiB, 64 * 1024, ["large_chunks"]); // 47 KiB chunks, one at a time
 * ```
 */
export function uploadWindow(
  maxFrame: number,
  maxQueue: number | null,
  features: readonly string[],
): { chunkBytes: number; window: number } {
  const most = largestChunkBytes(features);
  const budget = maxQueue === null ? Infinity : Math.floor(maxQueue * QUEUE_SHARE);
  const chunkBytes = Math.max(
    1,
    Math.min(most, maxFrame - FRAME_ROOM, budget - FRAME_ROOM),
  );
  const window = Math.max(
    1,
    Math.min(
      WINDOW_CHUNKS,
      Math.floor(WINDOW_BYTES / chunkBytes),
      Math.floor(budget / (chunkBytes + FRAME_ROOM)),
    ),
  );
  return { chunkBytes, window };
}

/** Whether a transfer has ended (nothing more will happen to it). */
export function isFinal(state: TransferState): boolean {
  return state === "delivered" || state === "saved" || state === "declined" ||
    state === "cancelled" || state === "failed";
}

/**
 * A byte count for people: `512 B`, `1.5 KiB`, `12.0 MiB`, `2.00 GiB`.
 *
 * @example
 * ```ts ignore
 * formatBytes(1536); // "1.5 KiB"
 * ```
 */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  if (bytes < 1024 * 1024 * 1024) return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
  return `${(bytes / 1024 / 1024 / 1024).toFixed(2)} GiB`;
}
