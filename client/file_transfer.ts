/**
 * File transfers through the chat server (`/send NICK PATH`, `/accept #ID`): the client
 * half of `server/files.ts`.
 *
 * - Sending: the file is offered (`file_offer`) by its resume key
 *   (`FileSource.resumeKey`: its size, first and last bytes), not hashed first: it is
 *   hashed as it is read to send (read once), and the chunk that completes the upload
 *   carries the SHA-256. It is uploaded in chunks of {@linkcode CHUNK_BYTES} (about 1 MiB
 *   to a server that takes large chunks; less when the server's largest frame is smaller)
 *   carried as frame bodies, with at most
 *   {@linkcode WINDOW_CHUNKS} chunks waiting for the server's acknowledgement: memory
 *   stays bounded whatever the file's size. Their buffers serve the next upload (warm
 *   memory, not new pages: ~1000 page faults fewer per upload here), released after
 *   {@linkcode UPLOAD_BUFFERS_IDLE_MS} without one, or on close. Across a reconnect, chunks in flight are
 *   resent by the client (the server acknowledges again what it has); on a refusal the
 *   upload offers the file again, and carries on from the offset the server reports
 *   (hashing the bytes before it again first).
 * - Receiving: offers arrive live (`file_offer`) or, when they were held while we were
 *   away, from `file_list` at login and after each reconnect. Accepting (by hand, or
 *   every offer with `acceptDir`) writes into the download folder through
 *   {@linkcode IncomingFile}: a safe name, a `.part` file (named by the offer's key)
 *   resumed from its size, the SHA-256 (the offer's when it had one, else the one the
 *   sender gave with its last chunk, in the reply of the read that reaches the end)
 *   checked before the rename, never an overwrite (the server does not check it:
 *   integrity is end to end). Two reads are in flight, each of a large chunk's
 *   `file_data` frame (or of {@linkcode READ_BYTES} in frames that fit a smaller
 *   largest frame: {@linkcode readShape}); a SHA-256 mismatch starts over once, a second one cancels the file as `corrupt` (the
 *   server drops it and tells the sender).
 *
 * Everything that happens is reported through `onEvent` as {@linkcode FileTransferEvent}s
 * (the server's own `file_accepted`, `file_declined`, `file_completed` and
 * `file_cancelled` events reach the sender through the client's event stream).
 *
 * @module
 */

import type { Hash } from "node:crypto";
import { isAbsolute, resolve } from "node:path";
import { getLogger } from "@logtape/logtape";
import { encodeFrameAround } from "../protocol/frame.ts";
import { MAX_FILE_FRAME_BYTES, type ServerMessageMap } from "../protocol/messages.ts";
import {
  LARGE_FILE_CHUNK_BYTES,
  largestChunkBytes,
  MIN_FILE_DATA_FRAME_BYTES,
} from "../protocol/file_chunks.ts";
import type { FileOffer, ReplyMap } from "../protocol/replies.ts";
import { MAX_UPLOAD_RESYNCS, UPLOAD_RESYNC_CODES } from "../protocol/upload_resync.ts";
import { BufferPool } from "../transport/buffer_pool.ts";
import { defaultDownloadDir, FileIoError, FileSource, IncomingFile } from "../transport/file_io.ts";
import {
  FileEvents,
  type FileOfferedEvent,
  type FileTransferEvent,
  type ProgressMeter,
  type TransferDirection,
} from "../transport/file_transfer_events.ts";
import type { ChatClient, ChatEvent } from "./chat_client.ts";
import { ChatError } from "./chat_error.ts";

const log = getLogger(["chat", "client", "files"]);

/**
 * Bytes of file data per `file_chunk`; {@linkcode LARGE_FILE_CHUNK_BYTES} to a server
 * that shares the {@linkcode LARGE_CHUNKS_FEATURE}.
 */
export const CHUNK_BYTES: number = MAX_FILE_FRAME_BYTES;
/** Room for a chunk's frame header in the buffers an upload reuses. */
const FRAME_ROOM = 1024;
/**
 * Chunks in flight (sent, not yet acknowledged), all uploads of a client together: 2 MiB
 * (4 MiB of large chunks, as much as the connection's outbound queue holds: three uploads
 * with four each had chunks refused `queue_full`, each such upload offered again).
 */
export const WINDOW_CHUNKS = 4;
/**
 * Milliseconds a client with no upload running keeps its uploads' chunk buffers for the
 * next upload (memory touched for the first time costs a fault per 4 KiB page, ~15 µs
 * each on a virtual machine: ~20 ms for a window of large chunks).
 */
export const UPLOAD_BUFFERS_IDLE_MS = 30_000;
/**
 * Bytes asked for per `file_read` (the server may send fewer); a whole number of the
 * `file_data` frames asked for (one large frame: {@linkcode readShape}).
 */
export const READ_BYTES: number = 1024 * 1024;
/** A download without a new byte this long gives up (its `.part` file stays for later). */
export const STALL_TIMEOUT_MS: number = 5 * 60 * 1000;
/** Longest a received file waits for the server to hear it arrived before it is reported saved. */
const DONE_WAIT_MS = 5000;
/** What file transfers need of the chat client (`recycleFileData` and `server` are optional). */
export type FileClient =
  & Pick<ChatClient, "request" | "onEvent" | "onFileData" | "nick">
  & Partial<Pick<ChatClient, "recycleFileData" | "server" | "maxFrameSize">>;

/**
 * The `file_data` frames a download asks for (`frame`: the largest body, a large chunk's
 * when the client takes frames that large, else what its largest frame holds; none from a
 * client that does not say, which gets the server's default of 512 KiB) and the bytes per
 * `file_read`: {@linkcode READ_BYTES} rounded down to whole frames.
 *
 * @example
 * ```ts
 * import { readShape } from "./file_transfer.ts";
 * readShape(1024 * 1024); // { frame: 1044480, length: 1044480 }: one large frame per read
 * readShape(undefined); // { length: 1048576 }
 * ```
 */
export function readShape(maxFrameSize: number | undefined): { frame?: number; length: number } {
  if (maxFrameSize === undefined) return { length: READ_BYTES };
  const frame = Math.max(
    MIN_FILE_DATA_FRAME_BYTES,
    Math.min(LARGE_FILE_CHUNK_BYTES, maxFrameSize - FRAME_ROOM),
  );
  return { frame, length: frame * Math.max(1, Math.floor(READ_BYTES / frame)) };
}

/** Options of {@linkcode FileTransfers}. */
export interface FileTransfersOptions {
  /** Receives every {@linkcode FileTransferEvent} (to show it). */
  onEvent: (event: FileTransferEvent) => void;
  /** Where accepted files are saved. Default: `Downloads` in the home folder. */
  downloadDir?: string;
  /** Accept every offer into this folder (`--accept-files DIR`). */
  acceptDir?: string;
  /** Milliseconds between two progress events of a transfer. Default 250. */
  progressIntervalMs?: number;
  /**
   * Milliseconds the chunk buffers of finished uploads are kept for the next one once no
   * upload runs. Default {@linkcode UPLOAD_BUFFERS_IDLE_MS}.
   */
  uploadBuffersIdleMs?: number;
  /**
   * The folder a relative path given to {@linkcode FileTransfers.send} is in. Default:
   * the working directory.
   */
  baseDir?: string;
}

/** A running transfer, to stop it. */
interface Running {
  readonly direction: TransferDirection;
  readonly done: Promise<unknown>;
  stop(reason: ChatError): void;
}

/**
 * The file transfers of one chat client; see the module documentation.
 *
 * @example
 * ```ts ignore
 * import { FileTransfers } from "./file_transfer.ts";
 * const files = new FileTransfers(client, { onEvent: (e) => console.log(e) });
 * await files.send("bob", "./report.pdf"); // resolves once the server has it all
 * // on bob's side: await files.accept(7) resolves with the saved path
 * ```
 */
export class FileTransfers implements AsyncDisposable {
  readonly #client: FileClient;
  readonly #options: FileTransfersOptions;
  readonly #events: FileEvents;
  readonly #offers = new Map<number, FileOfferedEvent>();
  readonly #running = new Map<number, Running>();
  /** Files received in this session: a listing after a reconnect must not offer them again. */
  readonly #received = new Set<number>();
  readonly #background = new Set<Promise<unknown>>();
  readonly #unsubscribe: (() => void)[] = [];
  #closed = false;
  /** Chunk buffers of finished uploads, for the next (null once released). */
  #uploadBuffers: BufferPool | null = null;
  /** Uploads running (their buffers are released once none is, after a while). */
  #uploads = 0;
  #releaseTimer: ReturnType<typeof setTimeout> | undefined;
  /** Chunks of every upload in flight (at most {@linkcode WINDOW_CHUNKS}). */
  #chunksInFlight = 0;
  /** Settles once a chunk in flight is answered (an upload waiting for room then goes on). */
  #chunkAnswered: { promise: Promise<void>; resolve: () => void } | null = null;

  /** Follows `client`'s events and asks for the files held for us. */
  constructor(client: FileClient, options: FileTransfersOptions) {
    this.#client = client;
    this.#options = options;
    this.#events = new FileEvents(options.onEvent, options.progressIntervalMs);
    this.#unsubscribe.push(client.onEvent((event) => this.#onChatEvent(event)));
    this.#track(this.refresh());
  }

  /** The download folder of `/accept`. */
  get downloadDir(): string {
    return this.#options.downloadDir ?? defaultDownloadDir();
  }

  /** Offers waiting for an answer. */
  get offers(): FileOfferedEvent[] {
    return [...this.#offers.values()];
  }

  /** Asks the server for the files held for us and reports those not known yet. */
  async refresh(): Promise<void> {
    try {
      await this.list();
    } catch (err) {
      if (!this.#closed) log.warn("listing held files failed: {err}", { err: describe(err) });
    }
  }

  /**
   * The files offered to us and not yet received, from the server (every page, at most
   * `maxPages`; `more` when some were left unlisted); those not known yet are reported (and accepted with `acceptDir`).
   *
   * @throws {ChatError} when the server cannot be asked.
   */
  async list(maxPages = 1000): Promise<ReplyMap["file_list"]> {
    const files: ReplyMap["file_list"]["files"] = [];
    let page = await this.#client.request("file_list", {});
    for (let n = 1;; n++) {
      for (const offer of page.files) this.#offered(offer);
      files.push(...page.files);
      if (page.more !== true || page.files.length === 0 || n >= maxPages) break;
      page = await this.#client.request("file_list", {
        after: page.files[page.files.length - 1].file,
      });
    }
    return { files, more: page.more === true };
  }

  /**
   * Sends the file at `path` to `nick` through the server; resolves once the server
   * holds all of it (the recipient may not have accepted yet).
   *
   * @throws {ChatError} the server's refusal (`file_too_large`, `quota_exceeded`,
   * `unknown_user`, `blocked`, `self`, ...), `not_a_file`, `unreadable`, `closed`.
   */
  async send(nick: string, path: string): Promise<ReplyMap["file_offer"]> {
    this.#checkOpen();
    let source: FileSource;
    try {
      const base = this.#options.baseDir;
      source = await FileSource.openToStream(
        base === undefined || isAbsolute(path) ? path : resolve(base, path),
      );
    } catch (err) {
      throw toChatError(err);
    }
    try {
      let key: string;
      try {
        key = await source.resumeKey();
      } catch (err) {
        throw toChatError(err);
      }
      const fields = { to: nick, name: source.name, size: source.size, key };
      let offer = await this.#client.request("file_offer", fields);
      this.#events.emit({
        type: "file_sending",
        file: offer.file,
        to: offer.to,
        name: source.name,
        size: source.size,
        offset: offer.offset,
      });
      let stopped: ChatError | null = null;
      let stopWaiting: () => void = () => {};
      const stopSignal = new Promise<void>((resolve) => stopWaiting = resolve);
      const running: Running = {
        direction: "send",
        done: Promise.resolve(),
        stop: (reason) => {
          stopped = reason;
          stopWaiting();
        },
      };
      this.#running.set(offer.file, running);
      const meter = this.#events.meter(source.size, offer.offset);
      try {
        let offset = offer.offset;
        let resyncs = 0;
        while (offset < source.size || source.size === 0) {
          try {
            offset = await this.#upload(
              source,
              offer.file,
              offset,
              meter,
              offer.to,
              stopSignal,
              () => stopped,
            );
            break;
          } catch (err) {
            const error = toChatError(err);
            if (stopped !== null) throw stopped;
            if (!UPLOAD_RESYNC_CODES.has(error.code) || ++resyncs > MAX_UPLOAD_RESYNCS) throw error;
            log.info("upload of file #{id} resyncs after {code}", {
              id: offer.file,
              code: error.code,
            });
            if (error.retryAfter !== undefined) {
              await sleep(error.retryAfter * 1000, stopSignal);
            }
            // Cancelled during the wait: not offered again (the file is gone).
            if (stopped !== null) throw stopped;
            const previous = offer.file;
            // Naming the upload it resumes: a file that ended meanwhile is told, not sent again.
            // (Refused `file_gone` after the event that says why, which stopped it.)
            offer = await this.#client.request("file_offer", { ...fields, file: previous })
              .catch((err) => {
                throw stopped ?? err;
              });
            if (stopped !== null) throw stopped;
            if (offer.file !== previous) {
              this.#running.delete(previous);
              this.#running.set(offer.file, running);
            }
            offset = offer.offset;
          }
        }
        if (stopped !== null) throw stopped;
        this.#events.emit({
          type: "file_sent",
          file: offer.file,
          to: offer.to,
          name: source.name,
          size: source.size,
          online: offer.online,
        });
        return offer;
      } catch (err) {
        const error = toChatError(err);
        this.#events.emit({
          type: "file_failed",
          file: offer.file,
          direction: "send",
          nick: offer.to,
          name: source.name,
          code: error.code,
          reason: error.message,
        });
        throw error;
      } finally {
        if (this.#running.get(offer.file) === running) this.#running.delete(offer.file);
      }
    } finally {
      source.close();
    }
  }

  /**
   * Accepts file `id` and receives it into `dir` (default: the download folder);
   * resolves with the path it is saved under once its SHA-256 matched.
   *
   * @throws {ChatError} `no_file`, `corrupt` (twice), `unwritable`, `stalled`, `closed`...
   */
  accept(id: number, dir: string = this.downloadDir): Promise<string> {
    this.#checkOpen();
    const existing = this.#running.get(id);
    if (existing !== undefined && existing.direction === "receive") {
      return existing.done as Promise<string>;
    }
    let stop!: (reason: ChatError) => void;
    const stopped = new Promise<never>((_, reject) => stop = reject);
    stopped.catch(() => {});
    const done = this.#download(id, dir, stopped);
    const running: Running = { direction: "receive", done, stop };
    this.#running.set(id, running);
    done.then(
      () => {},
      () => {},
    ).finally(() => {
      if (this.#running.get(id) === running) this.#running.delete(id);
    });
    return done;
  }

  /** Declines file `id`: the server drops it and tells the sender. */
  async decline(id: number): Promise<void> {
    this.#checkOpen();
    await this.#client.request("file_decline", { file: id });
    this.#offers.delete(id);
  }

  /** Stops transfer `id` (either way) and tells the server to drop the file. */
  async cancel(id: number): Promise<void> {
    this.#checkOpen();
    this.#running.get(id)?.stop(new ChatError("cancelled", "cancelled here"));
    this.#offers.delete(id);
    await this.#client.request("file_cancel", { file: id });
  }

  /** Resolves when no transfer runs and the held files are listed (scripts wait for it). */
  async idle(): Promise<void> {
    while (this.#background.size > 0 || this.#running.size > 0) {
      await Promise.allSettled([
        ...this.#background,
        ...[...this.#running.values()].map((r) => r.done),
      ]);
    }
  }

  /** Stops every transfer (`.part` files stay for a resume) and stops following the client. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const dispose of this.#unsubscribe) dispose();
    clearTimeout(this.#releaseTimer);
    this.#uploadBuffers = null;
    const running = [...this.#running.values()];
    for (const r of running) r.stop(new ChatError("closed", "the client is closing"));
    await Promise.allSettled(running.map((r) => r.done));
  }

  /**
   * Chunk buffers kept for the next upload: those of the uploads that ran, reused instead
   * of new memory, until {@linkcode FileTransfersOptions.uploadBuffersIdleMs} without an
   * upload or {@linkcode close}; at most {@linkcode WINDOW_CHUNKS} + 1.
   */
  get keptUploadBuffers(): number {
    return this.#uploadBuffers?.freeCount ?? 0;
  }

  /** The chunk buffers for an upload starting; {@linkcode #uploadEnded} when it ends. */
  #uploadStarted(): BufferPool {
    this.#uploads++;
    clearTimeout(this.#releaseTimer);
    this.#uploadBuffers ??= new BufferPool(LARGE_FILE_CHUNK_BYTES + FRAME_ROOM, WINDOW_CHUNKS + 1);
    return this.#uploadBuffers;
  }

  /** Settles when the next chunk in flight, of any upload, is answered. */
  #nextChunkAnswer(): Promise<void> {
    if (this.#chunkAnswered === null) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => resolve = r);
      this.#chunkAnswered = { promise, resolve };
    }
    return this.#chunkAnswered.promise;
  }

  /** A chunk in flight was answered (or failed): its room in the window is free. */
  #chunkAnswerCame(): void {
    this.#chunksInFlight--;
    const waiting = this.#chunkAnswered;
    this.#chunkAnswered = null;
    waiting?.resolve();
  }

  /** An upload ended: once none runs, its buffers go after a while. */
  #uploadEnded(): void {
    if (--this.#uploads > 0 || this.#closed) return;
    this.#releaseTimer = setTimeout(
      () => this.#uploadBuffers = null,
      this.#options.uploadBuffersIdleMs ?? UPLOAD_BUFFERS_IDLE_MS,
    );
    Deno.unrefTimer(this.#releaseTimer);
  }

  /** Closes; for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  // ---------------------------------------------------------------- sending

  /**
   * Uploads from `offset` to the end with a window of chunks in flight, hashing what it
   * reads (the bytes before `offset` first): the last chunk carries the file's SHA-256.
   * Returns the end.
   */
  async #upload(
    source: FileSource,
    file: number,
    offset: number,
    meter: ProgressMeter,
    to: string,
    stopSignal: Promise<void>,
    stopped: () => ChatError | null,
  ): Promise<number> {
    const inflight: Promise<ReplyMap["file_chunk"]>[] = [];
    // Buffers of chunks the server acknowledged: it has read them, so they are free for
    // the next chunks (a failed request's buffer is never reused: it may still be queued).
    const free: Uint8Array<ArrayBuffer>[] = [];
    let next = offset;
    let acked = offset;
    // A chunk's frame fits the server's largest frame (its hello says which, and whether
    // it takes large chunks).
    const server = this.#client.server;
    const maxFrame = server?.maxFrame ?? Infinity;
    const most = largestChunkBytes(server?.features ?? []);
    const chunkBytes = Math.max(1, Math.min(most, maxFrame - FRAME_ROOM));
    // The SHA-256 of the whole file, carried on as chunks are read (in order); resuming,
    // the bytes before `offset` first (reported as hashing when slow).
    let hash: Hash | null = null;
    if (offset < source.size) {
      const hashing = offset > 0 ? this.#events.hashing(to, source.name) : null;
      try {
        hash = await source.hashPrefix(
          offset,
          hashing === null ? undefined : (hashed) => hashing.progress(hashed, offset),
        );
      } finally {
        hashing?.end();
      }
    }
    // Buffers come warm from the uploads before (kept a while), and go back to them.
    const pool = this.#uploadStarted();
    try {
      while (acked < source.size) {
        while (next < source.size && inflight.length < WINDOW_CHUNKS) {
          if (this.#chunksInFlight >= WINDOW_CHUNKS) {
            // The window is taken by other uploads too: this one's next answer frees
            // room, or, with none in flight, another's.
            if (inflight.length > 0) break;
            await Promise.race([this.#nextChunkAnswer(), stopSignal]);
            const halt = stopped();
            if (halt !== null) throw halt;
            continue;
          }
          // Each chunk is read straight into its request's buffer, after room for the
          // header, which is laid out before it once read (the last one's carries the
          // SHA-256): never copied again.
          const id = crypto.randomUUID();
          const length = Math.min(chunkBytes, source.size - next);
          const buffer = free.pop() ?? pool.take(chunkBytes + FRAME_ROOM);
          // Read synchronously: no hop to another thread and back per chunk.
          const bytes = source.readSync(next, length, buffer.subarray(FRAME_ROOM));
          hash!.update(bytes);
          const last = next + bytes.length === source.size;
          const fields: { file: number; offset: number; sha256?: string } = last
            ? { file, offset: next, sha256: hash!.digest("hex") }
            : { file, offset: next };
          const frame = encodeFrameAround(
            { ...fields, type: "file_chunk", id },
            buffer,
            FRAME_ROOM,
            bytes.length,
          );
          const reply = this.#client.request("file_chunk", fields, { id, frame });
          this.#chunksInFlight++;
          // (Before this upload's own wait for the answer goes on: its room is free then.)
          reply.then(() => {
            free.push(buffer);
            this.#chunkAnswerCame();
          }, () => this.#chunkAnswerCame());
          inflight.push(reply);
          next += bytes.length;
        }
        const reply = await Promise.race([inflight.shift()!, stopSignal.then(() => null)]);
        const halt = stopped();
        if (halt !== null || reply === null) throw halt ?? new ChatError("cancelled", "stopped");
        acked = Math.max(acked, reply.offset);
        this.#events.progress(meter, file, "send", to, source.name, acked);
        if (reply.complete) return source.size;
      }
      if (source.size === 0) return 0;
      return acked;
    } finally {
      // Whatever is still in flight settles on its own (the server acknowledges resent
      // chunks again); wait for it so that a resync starts from a quiet connection.
      if (stopped() === null) await Promise.allSettled(inflight);
      for (const buffer of free) pool.give(buffer);
      this.#uploadEnded();
    }
  }

  // -------------------------------------------------------------- receiving

  async #download(id: number, dir: string, stopped: Promise<never>): Promise<string> {
    const offered = this.#offers.get(id);
    let info: { from: string; name: string } | null = offered ?? null;
    const target: { file: IncomingFile | null } = { file: null };
    let writeError: unknown = null;
    let lastWrite: Promise<void> = Promise.resolve();
    // Where the next data frame must start; a frame past it (after a short read, with a
    // second read in flight) is dropped, and reading starts again from what is written.
    let expected = 0;
    const stopListening = this.#client.onFileData((data, body) => {
      const file = target.file;
      if (data.file !== id || file === null || writeError !== null) return;
      if (data.offset > expected) return;
      expected = Math.max(expected, data.offset + body.length);
      // Once written, the body's memory receives a later frame.
      lastWrite = file.write(data.offset, body).then(
        () => this.#client.recycleFileData?.(body),
        (err) => {
          writeError ??= err;
        },
      );
    });
    try {
      const accepted = await Promise.race([
        this.#client.request("file_accept", { file: id }),
        stopped,
      ]);
      info = accepted;
      this.#offers.delete(id);
      // The `.part` file is named by the key; the SHA-256 to check may come only with
      // the last bytes.
      let sha256: string | null = accepted.sha256 ?? null;
      const incoming = await Promise.race([
        IncomingFile.open({
          dir,
          offeredName: accepted.name,
          size: accepted.size,
          sha256: null,
          key: accepted.key,
        }),
        stopped,
      ]);
      target.file = incoming;
      this.#events.emit({
        type: "file_receiving",
        file: id,
        from: accepted.from,
        name: accepted.name,
        size: accepted.size,
        path: incoming.partPath,
        offset: incoming.offset,
      });
      const meter = this.#events.meter(accepted.size, incoming.offset);
      let restarted = false;
      let lastProgress = performance.now();
      while (true) {
        expected = incoming.offset;
        // Two reads in flight: the server sends bytes still being uploaded as they arrive.
        const reads: { reply: Promise<ReplyMap["file_read"]>; end: number }[] = [];
        let next = incoming.offset;
        const shape = readShape(this.#client.maxFrameSize);
        const ask = () => {
          const length = Math.min(shape.length, accepted.size - next);
          const reply = this.#client.request("file_read", {
            file: id,
            offset: next,
            length,
            ...(shape.frame !== undefined ? { frame: shape.frame } : {}),
          }, { id: crypto.randomUUID() });
          reply.catch(() => {});
          reads.push({ reply, end: next + length });
          next += length;
        };
        while (!incoming.complete) {
          if (reads.length === 0) {
            next = incoming.offset;
            ask();
          }
          if (reads.length === 1 && next < accepted.size) ask();
          const before = incoming.offset;
          const read = reads.shift()!;
          const reply = await Promise.race([read.reply, stopped]);
          sha256 ??= reply.sha256 ?? null;
          await lastWrite;
          if (writeError !== null) throw writeError;
          if (reply.offset + reply.length < read.end) {
            // A short read: what follows in flight does not join up; start again from here.
            await Promise.allSettled(reads.map((r) => r.reply));
            reads.length = 0;
            await lastWrite;
            if (writeError !== null) throw writeError;
            next = incoming.offset;
            expected = incoming.offset;
          }
          if (incoming.offset > before) {
            lastProgress = performance.now();
            this.#events.progress(
              meter,
              id,
              "receive",
              accepted.from,
              accepted.name,
              incoming.offset,
            );
          } else if (performance.now() - lastProgress > STALL_TIMEOUT_MS) {
            throw new ChatError(
              "stalled",
              `no bytes for ${STALL_TIMEOUT_MS / 60_000} minutes; /accept #${id} again to resume`,
            );
          }
        }
        // Every byte in, the SHA-256 maybe not yet (the sender gives it with its last
        // chunk): a read at the end asks for it (the server waits for it a while).
        while (sha256 === null) {
          const reply = await Promise.race([
            this.#client.request("file_read", { file: id, offset: accepted.size, length: 1 }),
            stopped,
          ]);
          sha256 = reply.sha256 ?? null;
          if (sha256 === null && performance.now() - lastProgress > STALL_TIMEOUT_MS) {
            throw new ChatError(
              "stalled",
              `the sender did not finish file #${id}; /accept #${id} again to resume`,
            );
          }
        }
        try {
          const path = await incoming.finish(sha256);
          target.file = null;
          this.#received.add(id);
          // Told before the file is reported saved (for a while at most: the connection
          // may be down): a script that exits then must not leave the file held, to be
          // offered again at its next login.
          const told = this.#client.request("file_done", { file: id }).catch((err) =>
            log.warn("telling the server file #{id} arrived failed: {err}", {
              id,
              err: describe(err),
            })
          );
          let timer: ReturnType<typeof setTimeout> | undefined;
          await Promise.race([told, new Promise((r) => timer = setTimeout(r, DONE_WAIT_MS))]);
          clearTimeout(timer);
          this.#events.emit({
            type: "file_saved",
            file: id,
            from: accepted.from,
            name: accepted.name,
            size: accepted.size,
            sha256,
            path,
          });
          return path;
        } catch (err) {
          if (!(err instanceof FileIoError) || err.code !== "corrupt") throw err;
          if (restarted) {
            // The server does not hash what it holds: the recipient's check is the one.
            // Told, it drops the file and tells the sender, who may send it again; the
            // `.part` file has nothing left to resume.
            target.file = null;
            await incoming.discard().catch(() => {});
            await this.#client.request("file_cancel", { file: id, reason: "corrupt" }).catch(
              (cancelErr) =>
                log.warn("telling the server file #{id} is corrupt failed: {err}", {
                  id,
                  err: describe(cancelErr),
                }),
            );
            throw err;
          }
          restarted = true;
          log.warn("file #{id} did not match its SHA-256: receiving it again", { id });
        }
      }
    } catch (err) {
      const error = toChatError(err);
      await lastWrite;
      await target.file?.close().catch(() => {});
      // A file never offered here (`/accept #999`): the refusal is the command's error,
      // not a failed transfer "from ?".
      if (info !== null) {
        this.#events.emit({
          type: "file_failed",
          file: id,
          direction: "receive",
          nick: info.from,
          name: info.name,
          code: error.code,
          reason: error.message,
        });
      }
      throw error;
    } finally {
      stopListening();
    }
  }

  // ----------------------------------------------------------------- events

  #onChatEvent(event: ChatEvent): void {
    if (this.#closed) return;
    switch (event.type) {
      case "file_offer":
        this.#offered(event);
        return;
      case "reconnected":
        this.#track(this.refresh());
        return;
      case "file_cancelled":
      case "file_declined":
        this.#offers.delete(event.file);
        this.#running.get(event.file)?.stop(
          new ChatError(
            event.type === "file_declined" ? "declined" : event.reason,
            event.type === "file_declined"
              ? `${event.by} declined it`
              : event.reason === "expired"
              ? "it expired on the server"
              : `${event.by} cancelled it`,
          ),
        );
        return;
    }
  }

  #offered(offer: FileOffer | ServerMessageMap["file_offer"]): void {
    const known = this.#offers.has(offer.file) || this.#running.has(offer.file) ||
      this.#received.has(offer.file);
    if (known) return;
    const auto = this.#options.acceptDir !== undefined;
    const event: FileOfferedEvent = {
      type: "file_offered",
      file: offer.file,
      from: offer.from,
      name: offer.name,
      size: offer.size,
      sha256: offer.sha256,
      auto,
    };
    this.#offers.set(offer.file, event);
    this.#events.emit(event);
    if (auto) this.#track(this.accept(offer.file, this.#options.acceptDir!).catch(() => {}));
  }

  #track(promise: Promise<unknown>): void {
    const tracked = promise.catch(() => {}).finally(() => this.#background.delete(tracked));
    this.#background.add(tracked);
  }

  #checkOpen(): void {
    if (this.#closed) throw new ChatError("closed", "file transfers are closed");
  }
}

function toChatError(err: unknown): ChatError {
  if (err instanceof ChatError) return err;
  if (err instanceof FileIoError) return new ChatError(err.code, err.message, { cause: err });
  return new ChatError("internal", describe(err), { cause: err });
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Waits `ms`, or less if `cut` settles first (its timer cleared). */
function sleep(ms: number, cut?: Promise<void>): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    cut?.then(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}
