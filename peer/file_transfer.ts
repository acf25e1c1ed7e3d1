/**
 * File transfers inside a peer session (`chat peer --send PATH`, `/send PATH`): end to
 * end encrypted like everything else in the session, with the same offer / accept /
 * resume behaviour as transfers through the server.
 *
 * ```text
 * sender                                       receiver
 *                                           <- peer_file_policy {accept: "all"}  (--accept-files)
 * peer_file_offer {fid, name, size, key}    ->
 *                                           <- peer_file_accept {fid, offset, prefix?}  (or decline)
 * peer_file_data {fid, offset} + body ...   ->  written to NAME.<key>.part
 *                                           <- peer_file_ack {fid, offset}      (every 2 MiB)
 * peer_file_end {fid}                       ->  (after the last byte)
 *                                           <- peer_file_done {fid, ok: true}   (saved)
 * ```
 *
 * - A receiver that accepts every offer (`acceptDir`, `--accept-files`) says so once,
 *   first thing (`peer_file_policy`): a sender that has heard it streams each file from
 *   byte 0 right after its offer, within its window, instead of waiting a round trip for
 *   the accept (peer protocol version 6). A new `.part` file is opened (created
 *   exclusively) synchronously on the offer, so the file's next message finds it: the
 *   stream is written as it comes. A `.part` file that holds bytes (a resume) has them
 *   hashed first, which takes a while for a large one (~0.7 s per GB): the session reads
 *   on meanwhile (texts and other files never wait behind it), dropping that file's
 *   messages (of no use: the sender sends again from the offset accepted) but for an
 *   abort, which stops it (no accept follows, the `.part` file stays); the rest of that
 *   stream, past the gap, is dropped after the accept too, until data joins up. The
 *   accept still comes: from 0, the stream runs on; from further (a resume), the sender
 *   stops, checks the prefix and goes on from there (or restarts it); a decline drops
 *   what follows and stops the sender (at most a window sent for nothing). An end sent
 *   before the accept is marked `early`: only a receiver that accepted from 0 saves on
 *   it.
 * - Integrity is the session's (peer protocol version 5 on): every record is authenticated
 *   by ChaCha20-Poly1305 under a counter nonce, so a byte modified, dropped, replayed or
 *   reordered on the way ends the session before it is written, and data frames must
 *   come in file order. Nobody hashes a whole file: the sender reads it once, the
 *   receiver writes it once (version 4 hashed every byte on both sides and compared the
 *   SHA-256 after the last byte: as much CPU again as the encryption).
 * - Resuming is where bytes come from outside the session: the `.part` file left by an
 *   earlier one. The receiver hashes what it holds and accepts from its size with that
 *   SHA-256 (`prefix`); the sender hashes its own first bytes as far (reported as
 *   `file_hashing` when slow) and sends from there when they match, else
 *   `peer_file_restart`: the receiver empties the `.part` file and accepts from 0.
 * - The offer carries a resume key (`FileSource.resumeKey`), which names the `.part`.
 *
 * - The sender keeps at most {@linkcode WINDOW_BYTES} sent and not acknowledged, and
 *   at most {@linkcode QUEUE_BYTES} waiting in the session's queue (it follows the
 *   connection, not the acks), and reads the file a few chunks at a time (each
 *   {@linkcode CHUNK_BYTES}):
 *   memory stays bounded whatever the file's size; so does the receiver's, which writes
 *   each chunk before it reads the next frame.
 * - The receiver saves through {@linkcode IncomingFile}: a safe name inside the download
 *   folder, a `.part` file renamed once every byte is written, never an overwrite.
 * - Messages from the other side are checked: data for an unknown file, past the
 *   announced size or out of order cancels that transfer; nothing it sends can crash
 *   the session.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { defaultDownloadDir, FileIoError, FileSource, IncomingFile } from "../transport/file_io.ts";
import {
  FileEvents,
  type FileOfferedEvent,
  type FileTransferEvent,
  type ProgressMeter,
  type TransferDirection,
} from "../transport/file_transfer_events.ts";
import { PeerError } from "./errors.ts";
import type { PeerFileMessage, PeerMessageMap } from "./messages.ts";
import type { PeerSession } from "./session.ts";

const log = getLogger(["chat", "peer", "files"]);

/** Bytes of file data per `peer_file_data` frame: 1 MiB with its header, one encrypted record. */
export const CHUNK_BYTES: number = 1024 * 1024 - 512;
/** Chunks the sender reads from disk at once, at most. */
const READ_CHUNKS = 2;
/**
 * Bytes the sender may have sent and not had acknowledged. Large enough that the sender
 * never waits for an ack while the connection could take more (the acks come after the
 * receiver's disk write, a turn of its loop and a record back): with 2 MiB, two chunks,
 * the sender stood idle waiting for them.
 */
export const WINDOW_BYTES: number = 8 * 1024 * 1024;
/**
 * Bytes of file data the sender lets wait in the session's outbound queue: the next
 * chunk is read from the file only once the connection has taken the queue down to
 * this (the window alone would let the queue pass its bound when the network is the
 * slow part). Queued bytes count until their whole batch is written. Each chunk queued
 * holds one of the session's frames, so the bound is also the sender's memory: 3 MiB
 * grew the frames to four per transfer, each a fresh mebibyte to fault in (~3.5 ms of
 * CPU on the machine measured), 2 MiB keeps three, and the stream kept its pace (1 MiB
 * too, there: two frames); with records sealed by `node:crypto`, 2 MiB let the queue
 * run empty at the end of each batch while the next chunk was read.
 */
export const QUEUE_BYTES: number = 2 * 1024 * 1024;
/**
 * Most files a receiver holds offered, being opened (a resume's bytes hashed) or being
 * received from the other side at once: an offer past it is declined at once. Each
 * holds an entry, and accepted (`--accept-files` accepts every offer) an open `.part`
 * file: without a bound a peer's stream of offers would take the receiver's memory and
 * file handles.
 */
export const MAX_FILES_AT_ONCE: number = 64;
/** Bytes a receiver lets wait for the disk before it stops reading the session. */
export const MAX_PENDING_WRITE_BYTES: number = 1024 * 1024;
/**
 * The receiver acknowledges at least this often, in bytes (a quarter of the window:
 * acks come well before the sender runs out of window, and each costs both sides a
 * record).
 */
export const ACK_BYTES: number = 2 * 1024 * 1024;

/**
 * What file transfers need of a peer session (`recycleFileData`, `encodeFileData` and
 * `sendEncodedFileData` are optional: without them data goes through `sendFileMessage`;
 * `whenQueuedBelow` paces the sender on the connection).
 */
export type PeerFileSession =
  & Pick<PeerSession, "sendFileMessage" | "remoteNick" | "closed" | "whenQueuedBelow">
  & Partial<Pick<PeerSession, "recycleFileData" | "encodeFileData" | "sendEncodedFileData">>;

/** Options of {@linkcode PeerFileTransfers}. */
export interface PeerFileTransfersOptions {
  /** Receives every {@linkcode FileTransferEvent} (to show it). */
  onEvent: (event: FileTransferEvent) => void;
  /** Where accepted files are saved. Default: `Downloads` in the home folder. */
  downloadDir?: string;
  /** Accept every offer into this folder (`--accept-files DIR`). */
  acceptDir?: string;
  /** Milliseconds between two progress events of a transfer. Default 250. */
  progressIntervalMs?: number;
  /**
   * Awaited once the bytes of a resumed `.part` file are hashed, before its accept goes
   * out: a test holds a resume there as a long hashing would (`signal` is aborted when the
   * file is stopped meanwhile, as the hashing is). None by default.
   */
  resumeGate?: (fid: number, signal: AbortSignal) => Promise<void>;
}

/**
 * The failure of a peer file transfer, with a stable code: `declined`, `cancelled`,
 * `closed`, `corrupt`, `no_file`, or a {@linkcode FileIoError} code.
 */
export class PeerFileError extends Error {
  /** The stable reason. */
  readonly code: string;

  /** Creates the error. */
  constructor(code: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "PeerFileError";
    this.code = code;
  }
}

interface Outgoing {
  readonly fid: number;
  readonly source: FileSource;
  /** Bumped at each accept (and at an early start): an older pump stops. */
  generation: number;
  /** An accept came. */
  accepted: boolean;
  /** The running pump started before any accept (the receiver accepts every offer). */
  early: boolean;
  acked: number;
  sent: number;
  /** The SHA-256 of the receiver's resumed prefix, from its latest accept. */
  prefix: string | undefined;
  meter: ProgressMeter;
  wake: (() => void) | null;
  resolve: () => void;
  reject: (err: PeerFileError) => void;
  finished: boolean;
}

interface Incoming {
  readonly fid: number;
  readonly offer: FileOfferedEvent;
  file: IncomingFile;
  /** The sender said it sent every byte (`peer_file_end`). */
  ended: boolean;
  lastAck: number;
  restarted: boolean;
  /** Accepted from further than 0 (a resume): an `early` end is not the sender's last word. */
  readonly resumed: boolean;
  /**
   * A resume whose first data may be missing (dropped while its prefix was hashed): data
   * past what is written is the rest of the stream sent before the accept, dropped too,
   * until data joins up (the sender's answer to the accept, or that stream itself).
   */
  joining: boolean;
  /** Bytes received and not yet written. */
  pendingBytes: number;
  /** The write of the latest chunk received (writes run in order). */
  lastWrite: Promise<void>;
  /** Renaming. */
  finishing: boolean;
  /** Given up: later chunks are dropped. */
  failed: boolean;
  meter: ProgressMeter;
  resolve: (path: string) => void;
  reject: (err: PeerFileError) => void;
}

/** A resumed `.part` file whose bytes are being hashed, before its accept. */
interface Opening {
  /** Stopped meanwhile (an abort, a decline, the end): no accept follows. */
  stopped: boolean;
  /** Aborted when stopped: the hashing stops at its next block. */
  readonly hashing: AbortController;
  /** Stops it and settles its transfer with `err`. */
  stop: (err: PeerFileError) => void;
}

/**
 * The file transfers of one peer session. Feed it every `file` event of the session
 * ({@linkcode PeerFileTransfers.handle}); call {@linkcode PeerFileTransfers.send},
 * {@linkcode PeerFileTransfers.accept} and {@linkcode PeerFileTransfers.decline}.
 *
 * @example
 * ```ts ignore
 * import { PeerFileTransfers } from "./file_transfer.ts";
 * const files = new PeerFileTransfers(session, { onEvent: (e) => console.log(e) });
 * const sending = files.send("./photo.jpg"); // resolves once the peer has checked it
 * for await (const event of session) if (event.type === "file") await files.handle(event);
 * ```
 */
export class PeerFileTransfers {
  readonly #session: PeerFileSession;
  readonly #options: PeerFileTransfersOptions;
  readonly #events: FileEvents;
  readonly #outgoing = new Map<number, Outgoing>();
  readonly #offers = new Map<number, FileOfferedEvent>();
  /** The resume key of each offer (it names the `.part` file). */
  readonly #offerKeys = new Map<number, string>();
  readonly #incoming = new Map<number, Incoming>();
  /**
   * The resumed `.part` files whose bytes are being hashed, by offer: each counts as a file
   * coming; its messages meanwhile are dropped (an abort stops it).
   */
  readonly #opening = new Map<number, Opening>();
  readonly #pending = new Set<Promise<unknown>>();
  #nextFid = 1;
  #closed = false;
  /** The other side said it accepts every offer: files stream before the accept. */
  #acceptsAll = false;

  /**
   * Transfers over `session`. With {@linkcode PeerFileTransfersOptions.acceptDir} it
   * tells the other side at once that every offer is accepted (`peer_file_policy`).
   */
  constructor(session: PeerFileSession, options: PeerFileTransfersOptions) {
    this.#session = session;
    this.#options = options;
    this.#events = new FileEvents(options.onEvent, options.progressIntervalMs);
    if (options.acceptDir !== undefined) {
      this.#trySend({ type: "peer_file_policy", accept: "all" });
    }
  }

  /** The download folder of {@linkcode accept}. */
  get downloadDir(): string {
    return this.#options.downloadDir ?? defaultDownloadDir();
  }

  /** Offers waiting for an answer. */
  get offers(): FileOfferedEvent[] {
    return [...this.#offers.values()];
  }

  /** Whether any transfer is running or waiting for an answer. */
  get busy(): boolean {
    return this.#outgoing.size > 0 || this.#opening.size > 0 || this.#incoming.size > 0;
  }

  /**
   * Offers the file at `path` and sends it once accepted; resolves when the other side
   * has checked its SHA-256.
   *
   * @throws {PeerFileError} `declined`, `cancelled`, `closed`, `not_a_file`, `unreadable`...
   */
  async send(path: string): Promise<void> {
    this.#checkOpen();
    let source: FileSource;
    let key: string;
    try {
      source = await FileSource.openToStream(path);
    } catch (err) {
      throw toFileError(err);
    }
    try {
      key = await source.resumeKey();
    } catch (err) {
      source.close();
      throw toFileError(err);
    }
    const fid = this.#nextFid++;
    let resolve!: () => void;
    let reject!: (err: PeerFileError) => void;
    const done = new Promise<void>((ok, fail) => {
      resolve = ok;
      reject = fail;
    });
    const outgoing: Outgoing = {
      fid,
      source,
      generation: 0,
      accepted: false,
      early: false,
      acked: 0,
      sent: 0,
      prefix: undefined,
      meter: this.#events.meter(source.size, 0),
      wake: null,
      resolve,
      reject,
      finished: false,
    };
    this.#outgoing.set(fid, outgoing);
    const tracked = done.finally(() => {
      outgoing.finished = true;
      this.#outgoing.delete(fid);
      source.close();
    });
    this.#track(tracked);
    try {
      this.#send({
        type: "peer_file_offer",
        fid,
        name: source.name,
        size: source.size,
        key,
      });
      if (this.#acceptsAll) this.#startEarly(outgoing);
    } catch (err) {
      reject(toFileError(err));
    }
    this.#events.emit({
      type: "file_sending",
      file: fid,
      to: this.#session.remoteNick,
      name: source.name,
      size: source.size,
      offset: 0,
    });
    try {
      await tracked;
      this.#events.emit({
        type: "file_answer",
        file: fid,
        by: this.#session.remoteNick,
        name: source.name,
        answer: "completed",
      });
    } catch (err) {
      const error = toFileError(err);
      if (error.code === "declined") {
        this.#events.emit({
          type: "file_answer",
          file: fid,
          by: this.#session.remoteNick,
          name: source.name,
          answer: "declined",
        });
      } else {
        this.#failed(fid, "send", source.name, error);
      }
      throw error;
    }
  }

  /**
   * Accepts offer `fid` into `dir` (default: the download folder); resolves with the
   * path the file is saved under once its SHA-256 matched.
   *
   * @throws {PeerFileError} `no_file`, `corrupt` (twice), `unwritable`, `closed`...
   */
  accept(fid: number, dir: string = this.downloadDir): Promise<string> {
    this.#checkOpen();
    const offer = this.#offers.get(fid);
    if (offer === undefined) {
      return Promise.reject(
        new PeerFileError(
          "no_file",
          this.#incoming.has(fid) || this.#opening.has(fid)
            ? `file ${fid} is already being received`
            : `no offer ${fid}`,
        ),
      );
    }
    this.#offers.delete(fid);
    const key = this.#offerKeys.get(fid)!;
    this.#offerKeys.delete(fid);
    let resolve!: (path: string) => void;
    let reject!: (err: PeerFileError) => void;
    const done = new Promise<string>((ok, fail) => {
      resolve = ok;
      reject = fail;
    });
    let file: IncomingFile | null = null;
    const tracked = done.catch(async (err) => {
      this.#incoming.delete(fid);
      this.#trySend({ type: "peer_file_decline", fid, reason: toFileError(err).message });
      // The `.part` file stays for a later resume (closed once a hashing under way ends).
      await file?.close().catch(() => {});
      this.#failed(fid, "receive", offer.name, toFileError(err), offer.from);
      throw err;
    }).finally(() => this.#incoming.delete(fid));
    this.#track(tracked);
    try {
      file = IncomingFile.openNow({
        dir,
        offeredName: offer.name,
        size: offer.size,
        sha256: null,
        key,
        hashing: false,
      });
    } catch (err) {
      reject(toFileError(err));
      return tracked;
    }
    if (!file.resuming) {
      // A new `.part` file, opened synchronously: the file's next message (data streamed
      // before the accept) finds it.
      this.#receive(fid, offer, file, resolve, reject);
      return tracked;
    }
    // A resume: its bytes are hashed while the session reads on. What the sender streams
    // meanwhile is dropped (it sends again from the offset accepted).
    const opened = file;
    const opening: Opening = {
      stopped: false,
      hashing: new AbortController(),
      stop: (err) => {
        opening.stopped = true;
        opening.hashing.abort(err);
        reject(err);
      },
    };
    this.#opening.set(fid, opening);
    const hashed = (async () => {
      await opened.resume(opening.hashing.signal);
      await this.#options.resumeGate?.(fid, opening.hashing.signal);
    })().then(
      () => {
        if (!opening.stopped) this.#receive(fid, offer, opened, resolve, reject);
      },
      (err) => opening.stop(toFileError(err)),
    ).finally(() => this.#opening.delete(fid));
    this.#track(hashed);
    return tracked;
  }

  /** Receives offer `fid` into `file`, open (and its bytes hashed): accepts it. */
  #receive(
    fid: number,
    offer: FileOfferedEvent,
    file: IncomingFile,
    resolve: (path: string) => void,
    reject: (err: PeerFileError) => void,
  ): void {
    const resumed = file.offset > 0;
    const incoming: Incoming = {
      fid,
      offer,
      file,
      ended: false,
      lastAck: file.offset,
      restarted: false,
      resumed,
      joining: resumed,
      pendingBytes: 0,
      lastWrite: Promise.resolve(),
      finishing: false,
      failed: false,
      meter: this.#events.meter(offer.size, file.offset),
      resolve,
      reject: (err) => {
        incoming.failed = true;
        reject(err);
      },
    };
    this.#incoming.set(fid, incoming);
    try {
      this.#events.emit({
        type: "file_receiving",
        file: fid,
        from: offer.from,
        name: offer.name,
        size: offer.size,
        path: file.partPath,
        offset: file.offset,
      });
      // Even a complete `.part` file waits for the end: the sender compares the prefix.
      this.#sendAccept(incoming);
    } catch (err) {
      incoming.reject(toFileError(err));
    }
  }

  /** Declines offer `fid`, or gives up receiving it. */
  decline(fid: number, reason = "declined"): void {
    this.#checkOpen();
    const offered = this.#offers.delete(fid);
    this.#offerKeys.delete(fid);
    const incoming = this.#incoming.get(fid);
    const opening = this.#opening.get(fid);
    if (!offered && incoming === undefined && opening === undefined) {
      throw new PeerFileError("no_file", `no offer ${fid}`);
    }
    this.#trySend({ type: "peer_file_decline", fid, reason });
    const error = new PeerFileError("cancelled", "given up here");
    incoming?.reject(error);
    opening?.stop(error);
  }

  /** Resolves when no transfer runs (the end of a script waits for it). */
  async idle(): Promise<void> {
    while (this.#pending.size > 0) await Promise.allSettled([...this.#pending]);
  }

  /**
   * Stops every transfer: `.part` files stay for a resume in a later session. Call it
   * when the session ends.
   */
  async close(reason = "the session ended"): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const error = new PeerFileError("closed", reason);
    for (const outgoing of this.#outgoing.values()) outgoing.reject(error);
    for (const incoming of this.#incoming.values()) incoming.reject(error);
    for (const opening of this.#opening.values()) opening.stop(error);
    this.#offers.clear();
    this.#offerKeys.clear();
    await this.idle();
  }

  /**
   * Handles a file message from the other side; resolves once it is dealt with (a data
   * chunk written), so that the session's reader paces the sender.
   */
  async handle(event: { message: PeerFileMessage; body: Uint8Array }): Promise<void> {
    if (this.#closed) return;
    const message = event.message;
    try {
      switch (message.type) {
        case "peer_file_data":
        case "peer_file_end":
        case "peer_file_restart":
        case "peer_file_abort": {
          // Sent right after the offer, before the accept, while the bytes of a resumed
          // `.part` file are hashed: of no use (the sender sends again from the offset
          // accepted), but an abort stops it. The session reads on meanwhile.
          const opening = this.#opening.get(message.fid);
          if (opening === undefined) break;
          if (message.type === "peer_file_abort") opening.stop(this.#aborted(message.reason));
          return;
        }
      }
      switch (message.type) {
        case "peer_file_policy":
          this.#acceptsAll = true;
          for (const outgoing of this.#outgoing.values()) this.#startEarly(outgoing);
          return;
        case "peer_file_offer":
          this.#onOffer(message);
          return;
        case "peer_file_data":
          await this.#onData(message, event.body);
          return;
        case "peer_file_end": {
          const incoming = this.#incoming.get(message.fid);
          if (incoming === undefined || incoming.failed) return;
          // Before the accept, the sender had not checked a resumed prefix: it ends again.
          if (message.early === true && incoming.resumed) return;
          incoming.ended = true;
          await this.#finishWhenWhole(incoming);
          return;
        }
        case "peer_file_restart": {
          const incoming = this.#incoming.get(message.fid);
          if (incoming === undefined || incoming.failed) return;
          await this.#restartIncoming(incoming);
          return;
        }
        case "peer_file_abort": {
          this.#offers.delete(message.fid);
          this.#offerKeys.delete(message.fid);
          this.#incoming.get(message.fid)?.reject(this.#aborted(message.reason));
          return;
        }
        case "peer_file_accept":
          this.#onAccept(message);
          return;
        case "peer_file_ack": {
          const outgoing = this.#outgoing.get(message.fid);
          if (outgoing === undefined) return;
          outgoing.acked = Math.max(outgoing.acked, Math.min(message.offset, outgoing.sent));
          this.#events.progress(
            outgoing.meter,
            outgoing.fid,
            "send",
            this.#session.remoteNick,
            outgoing.source.name,
            outgoing.acked,
          );
          outgoing.wake?.();
          return;
        }
        case "peer_file_done": {
          const outgoing = this.#outgoing.get(message.fid);
          if (outgoing === undefined) return;
          if (message.ok) outgoing.resolve();
          return;
        }
        case "peer_file_decline": {
          const outgoing = this.#outgoing.get(message.fid);
          if (outgoing === undefined) return;
          const declined = !outgoing.accepted;
          outgoing.reject(
            new PeerFileError(
              declined ? "declined" : "cancelled",
              declined
                ? `${this.#session.remoteNick} declined it`
                : `${this.#session.remoteNick} stopped receiving it: ${message.reason}`,
            ),
          );
          return;
        }
      }
    } catch (err) {
      log.warn("file message {type} from {nick} failed: {err}", {
        type: message.type,
        nick: this.#session.remoteNick,
        err: err instanceof Error ? err.message : String(err),
      });
    }
  }

  #aborted(reason: string): PeerFileError {
    return new PeerFileError("cancelled", `${this.#session.remoteNick} stopped: ${reason}`);
  }

  // ----------------------------------------------------------------- sending

  /**
   * Streams `outgoing` from byte 0 before any accept, once the other side has said it
   * accepts every offer (not after an accept: that started its own pump).
   */
  #startEarly(outgoing: Outgoing): void {
    if (outgoing.finished || outgoing.accepted || outgoing.generation !== 0) return;
    outgoing.early = true;
    const generation = ++outgoing.generation;
    this.#pump(outgoing, generation).catch((err) => outgoing.reject(toFileError(err)));
  }

  #onAccept(message: PeerMessageMap["peer_file_accept"]): void {
    const outgoing = this.#outgoing.get(message.fid);
    if (outgoing === undefined || outgoing.finished) return;
    if (message.offset > outgoing.source.size) {
      this.#trySend({ type: "peer_file_abort", fid: message.fid, reason: "bad offset" });
      outgoing.reject(new PeerFileError("bad_offset", "the receiver asked past the end"));
      return;
    }
    if (!outgoing.accepted) {
      outgoing.accepted = true;
      this.#events.emit({
        type: "file_answer",
        file: outgoing.fid,
        by: this.#session.remoteNick,
        name: outgoing.source.name,
        answer: "accepted",
      });
    }
    if (outgoing.early) {
      outgoing.early = false;
      // From 0: the stream already running is what the receiver asks for.
      if (message.offset === 0) return;
    }
    const generation = ++outgoing.generation;
    outgoing.sent = message.offset;
    outgoing.acked = message.offset;
    outgoing.prefix = message.prefix;
    outgoing.meter = this.#events.meter(outgoing.source.size, message.offset);
    outgoing.wake?.();
    this.#pump(outgoing, generation).catch((err) => outgoing.reject(toFileError(err)));
  }

  async #pump(outgoing: Outgoing, generation: number): Promise<void> {
    const size = outgoing.source.size;
    const session = this.#session;
    const start = outgoing.sent;
    if (start > 0) {
      // A resume: the receiver's bytes came from outside this session. Its prefix must
      // be this file's first bytes, else it starts over from 0.
      const hashing = this.#events.hashing(session.remoteNick, outgoing.source.name);
      let digest: string;
      try {
        const hash = await outgoing.source.hashPrefix(
          start,
          (hashed) => hashing.progress(hashed, start),
        );
        digest = hash.digest("hex");
      } finally {
        hashing.end();
      }
      if (outgoing.generation !== generation || outgoing.finished) return;
      if (digest !== outgoing.prefix) {
        log.warn("{nick} holds other bytes of file {fid} than these: starting over", {
          nick: session.remoteNick,
          fid: outgoing.fid,
        });
        this.#send({ type: "peer_file_restart", fid: outgoing.fid });
        return; // the receiver accepts again from 0
      }
    }
    // Each chunk is read straight into its frame when the session lays frames out (no
    // copy of the bytes before they are sealed); else through one buffer, which a
    // message's encoding copies. A read takes several chunks then (fewer disk reads).
    const inPlace = session.encodeFileData !== undefined &&
      session.sendEncodedFileData !== undefined;
    const buffer = inPlace ? null : new Uint8Array(CHUNK_BYTES * READ_CHUNKS);
    while (outgoing.sent < size) {
      if (outgoing.generation !== generation || outgoing.finished) return;
      const room = WINDOW_BYTES - (outgoing.sent - outgoing.acked);
      if (room <= 0) {
        await new Promise<void>((resolve) => outgoing.wake = resolve);
        outgoing.wake = null;
        continue;
      }
      await session.whenQueuedBelow(QUEUE_BYTES);
      if (outgoing.generation !== generation || outgoing.finished) return;
      const offset = outgoing.sent;
      if (buffer === null) {
        // One chunk at a time, each after the queue check: the connection always has the
        // next one queued while it writes, and the queue stays under its bound.
        const length = Math.min(CHUNK_BYTES, size - offset);
        const message = { type: "peer_file_data", fid: outgoing.fid, offset } as const;
        const { frame, body } = session.encodeFileData!(message, length);
        await outgoing.source.read(offset, length, body);
        if (outgoing.generation !== generation || outgoing.finished) return;
        if (session.closed) throw new PeerFileError("closed", "the session is closed");
        session.sendEncodedFileData!(frame);
        outgoing.sent = offset + length;
        continue;
      }
      const chunks = Math.max(1, Math.min(READ_CHUNKS, Math.floor(room / CHUNK_BYTES)));
      const bytes = await outgoing.source.read(offset, CHUNK_BYTES * chunks, buffer);
      if (outgoing.generation !== generation || outgoing.finished) return;
      for (let at = 0; at < bytes.length; at += CHUNK_BYTES) {
        const chunk = bytes.subarray(at, at + CHUNK_BYTES);
        this.#send({ type: "peer_file_data", fid: outgoing.fid, offset: offset + at }, chunk);
      }
      outgoing.sent = offset + bytes.length;
    }
    if (outgoing.generation !== generation || outgoing.finished) return;
    this.#send({
      type: "peer_file_end",
      fid: outgoing.fid,
      ...(outgoing.early ? { early: true as const } : {}),
    });
    this.#events.emit({
      type: "file_sent",
      file: outgoing.fid,
      to: this.#session.remoteNick,
      name: outgoing.source.name,
      size,
      online: true,
    });
  }

  // --------------------------------------------------------------- receiving

  #onOffer(message: PeerMessageMap["peer_file_offer"]): void {
    if (
      this.#offers.has(message.fid) || this.#opening.has(message.fid) ||
      this.#incoming.has(message.fid)
    ) {
      log.warn("{nick} offered file {fid} twice", {
        nick: this.#session.remoteNick,
        fid: message.fid,
      });
      return;
    }
    if (this.#offers.size + this.#opening.size + this.#incoming.size >= MAX_FILES_AT_ONCE) {
      log.warn("{nick} offered more than {max} files at once: file {fid} declined", {
        nick: this.#session.remoteNick,
        max: MAX_FILES_AT_ONCE,
        fid: message.fid,
      });
      this.#trySend({
        type: "peer_file_decline",
        fid: message.fid,
        reason: `too many files at once (at most ${MAX_FILES_AT_ONCE} offered or coming)`,
      });
      return;
    }
    const auto = this.#options.acceptDir !== undefined;
    const offer: FileOfferedEvent = {
      type: "file_offered",
      file: message.fid,
      from: this.#session.remoteNick,
      name: message.name,
      size: message.size,
      auto,
    };
    this.#offers.set(message.fid, offer);
    this.#offerKeys.set(message.fid, message.key);
    this.#events.emit(offer);
    if (auto) this.accept(message.fid, this.#options.acceptDir!).catch(() => {});
  }

  /**
   * Queues a chunk's write (writes run in order) and resolves at once, unless more than
   * {@linkcode MAX_PENDING_WRITE_BYTES} wait to be written: then once they are down to
   * this chunk (the writes before it done), so that the session's reader (which awaits
   * this) paces the sender while the disk writes this chunk as the next is decrypted.
   * The ack goes out once the bytes are written.
   */
  async #onData(message: PeerMessageMap["peer_file_data"], body: Uint8Array): Promise<void> {
    const incoming = this.#incoming.get(message.fid);
    if (incoming === undefined || incoming.failed) return; // declined or done: late chunks
    if (incoming.joining) {
      // The stream sent before the accept, its start dropped while the prefix was hashed.
      if (message.offset > incoming.file.offset) return;
      incoming.joining = false;
    }
    incoming.pendingBytes += body.length;
    const before = incoming.lastWrite;
    const written = incoming.file.write(message.offset, body).then(
      () => {
        this.#session.recycleFileData?.(body); // written: its memory takes a later chunk
        return this.#written(incoming);
      },
      (err) => {
        if (incoming.failed) return;
        incoming.failed = true;
        const error = toFileError(err);
        this.#trySend({ type: "peer_file_decline", fid: message.fid, reason: error.message });
        incoming.reject(error);
      },
    ).finally(() => incoming.pendingBytes -= body.length);
    incoming.lastWrite = written;
    if (incoming.pendingBytes > MAX_PENDING_WRITE_BYTES) await before;
  }

  async #written(incoming: Incoming): Promise<void> {
    if (incoming.failed) return;
    const offset = incoming.file.offset;
    this.#events.progress(
      incoming.meter,
      incoming.fid,
      "receive",
      this.#session.remoteNick,
      incoming.offer.name,
      offset,
    );
    if (offset - incoming.lastAck >= ACK_BYTES || incoming.file.complete) {
      incoming.lastAck = offset;
      this.#trySend({ type: "peer_file_ack", fid: incoming.fid, offset });
    }
    await this.#finishWhenWhole(incoming);
  }

  /**
   * Saves the file once both are there, in either order: every byte written, and the
   * sender's end (after its last byte, and after it found a resumed prefix its own).
   */
  async #finishWhenWhole(incoming: Incoming): Promise<void> {
    if (!incoming.file.complete || !incoming.ended || incoming.finishing) return;
    incoming.finishing = true;
    await this.#finishIncoming(incoming);
    incoming.finishing = false;
  }

  async #finishIncoming(incoming: Incoming): Promise<void> {
    try {
      const path = await incoming.file.finish(null);
      this.#trySend({ type: "peer_file_done", fid: incoming.fid, ok: true });
      this.#incoming.delete(incoming.fid);
      this.#events.emit({
        type: "file_saved",
        file: incoming.fid,
        from: incoming.offer.from,
        name: incoming.offer.name,
        size: incoming.offer.size,
        path,
      });
      incoming.resolve(path);
    } catch (err) {
      const error = toFileError(err);
      this.#trySend({ type: "peer_file_decline", fid: incoming.fid, reason: error.message });
      incoming.reject(error);
    }
  }

  /**
   * The sender found the resumed `.part` file's bytes not its own: empties it and
   * accepts again from 0 (once: a second time gives up as `corrupt`).
   */
  async #restartIncoming(incoming: Incoming): Promise<void> {
    if (incoming.restarted || incoming.file.offset === 0) {
      incoming.reject(
        new PeerFileError("corrupt", `${this.#session.remoteNick} refused the bytes held here`),
      );
      return;
    }
    log.warn("the bytes of file {fid} held here are not the sender's: receiving it again", {
      fid: incoming.fid,
    });
    incoming.restarted = true;
    incoming.ended = false;
    incoming.joining = false;
    try {
      await incoming.file.restart();
    } catch (err) {
      incoming.reject(toFileError(err));
      return;
    }
    incoming.lastAck = 0;
    incoming.meter = this.#events.meter(incoming.offer.size, 0);
    this.#sendAccept(incoming);
  }

  #sendAccept(incoming: Incoming): void {
    const { offset, resumedSha256 } = incoming.file;
    this.#send({
      type: "peer_file_accept",
      fid: incoming.fid,
      offset,
      ...(offset > 0 && resumedSha256 !== null ? { prefix: resumedSha256 } : {}),
    });
  }

  // --------------------------------------------------------------- internals

  #send(message: PeerFileMessage, body?: Uint8Array): void {
    if (this.#session.closed) throw new PeerFileError("closed", "the session is closed");
    this.#session.sendFileMessage(message, body);
  }

  #trySend(message: PeerFileMessage): void {
    try {
      this.#send(message);
    } catch {
      // the session is over; its end stops the transfers
    }
  }

  #failed(
    fid: number,
    direction: TransferDirection,
    name: string,
    error: PeerFileError,
    nick = this.#session.remoteNick,
  ): void {
    this.#events.emit({
      type: "file_failed",
      file: fid,
      direction,
      nick,
      name,
      code: error.code,
      reason: error.message,
    });
  }

  #track(promise: Promise<unknown>): void {
    const tracked = promise.catch(() => {}).finally(() => this.#pending.delete(tracked));
    this.#pending.add(tracked);
  }

  #checkOpen(): void {
    if (this.#closed) throw new PeerFileError("closed", "the session is over");
  }
}

function toFileError(err: unknown): PeerFileError {
  if (err instanceof PeerFileError) return err;
  if (err instanceof FileIoError) return new PeerFileError(err.code, err.message, { cause: err });
  if (err instanceof PeerError) return new PeerFileError(err.code, err.message, { cause: err });
  return new PeerFileError("failed", err instanceof Error ? err.message : String(err), {
    cause: err,
  });
}
