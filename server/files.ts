/**
 * Files sent through the server: store and forward, streamed from disk to disk.
 *
 * ```text
 * sender (alice)                          server                          recipient (bob)
 * file_offer {to:bob, name, size, key}  -> checks size, quota, blocks; records it
 *   <- ok {file:7, offset:0}                 -> file_offer {file:7, from:alice, key, ...}
 * file_chunk {file:7, offset} + body ->      appends to files/7.part
 *   <- ok {offset, complete}                 (the sender keeps a window of chunks in flight)
 * file_chunk {file:7, offset, sha256} + body (the last one) -> records the SHA-256
 *                                                        <- file_accept {file:7}
 *   <- file_accepted {file:7, by:bob}
 *                                            <- file_read {file:7, offset, length}
 *                                            -> file_data {file:7, offset} + body, ...
 *                                            -> ok {offset, length, available, sha256?}
 *                                                        <- file_done {file:7}
 *   <- file_completed {file:7, by:bob}       deletes the file
 *                                      (or, its SHA-256 wrong: <- file_cancel {file:7, reason:corrupt})
 * ```
 *
 * - Memory stays bounded: a connection holds at most {@linkcode CHUNKS_IN_FLIGHT}
 *   chunks (one being written while the next frame is read: the writes, on another
 *   thread, overlap the reading and the readers' sends; the chunks of a file are still
 *   written one after another, in the order they came), and a `file_read` sends at most
 *   a quarter of the outbound queue's
 *   bound (reads of one file by one session run one after another, so a reader may keep
 *   two in flight); nothing holds a whole file.
 * - While a file is being read, its last {@linkcode RECENT_CHUNKS} chunks stay in memory
 *   once written: a reader keeping up with the upload is sent them from there instead of
 *   reading them back from disk (`chat_file_bytes_sent_from_memory_total`).
 * - Integrity is checked end to end, by the recipient: the server does not hash the
 *   bytes (a second SHA-256 of every byte, on the server's one thread, would check
 *   nothing the recipient does not). The sender does not hash before it offers either:
 *   it names the file by a resume `key` (a hash of its size, first and last bytes),
 *   hashes the bytes as it reads them to send, and gives the SHA-256 with the chunk
 *   that completes the upload (refused without it); the record keeps it. The recipient
 *   gets it in the reply of the `file_read` that reaches the end (which waits for it a
 *   while when the bytes came first), and in offers once known. An offer may carry the
 *   `sha256` up front instead (older clients, the page): it is then the key too, and a
 *   last chunk's different one is refused (`file_corrupt`). The last chunk completes
 *   the upload once the announced size is held; `7.part` then becomes `7.file`. A
 *   recipient whose copy does
 *   not match the offer's SHA-256 (a sender that announced a wrong one, bytes damaged on
 *   the way or on the server's disk) reads it again once, then sends `file_cancel` with
 *   `reason: "corrupt"`: the file is dropped and the sender hears `file_cancelled`
 *   (`corrupt`), to send it again. A file of zero bytes, whose SHA-256 is known, is
 *   checked at its offer (`file_corrupt`). "Uploaded" (the record's flag) thus means
 *   every announced byte is held and synced, not verified; a partial upload is never
 *   uploaded, and bytes a crash or a bad disk damaged in a `.part` file are caught by
 *   the recipient the same way. A recipient may send `file_done` while the last chunk is
 *   being synced (it has every byte and checked them): it is taken then.
 * - The recipient may accept and read while the upload is still going: a `file_read`
 *   sends the bytes it asks for as they arrive, and ends short only when none came for
 *   {@linkcode READ_WAIT_MS}.
 * - Offering the same file (sender, recipient, name, size, key) again resumes it:
 *   the reply's `offset` is the size of the `.part` file on disk (after a restart too:
 *   nothing is read back). Chunks already received are acknowledged
 *   again, so a client may resend what it had in flight. Every byte held but the upload
 *   not recorded complete (the server stopped after the last chunk's write): the resent
 *   last chunk completes it, and so does the offer when the SHA-256 is known (else its
 *   reply's `offset` is one byte short, for the last chunk to come again with it).
 *   An offer resumed before its first byte is told to the recipient again (a server may
 *   have died between recording it and telling).
 * - A file that ended (received, declined, cancelled, expired) is remembered a while
 *   ({@linkcode FileStore.recordEnd}: one TTL, bounded per sender and in all): a chunk
 *   its sender resends after a dropped connection or a crash is told the event it
 *   missed, then answered complete (received) or refused `file_gone` (the others), not
 *   `no_file`, after which a client offers the file again (as a new file, once its
 *   record is gone). `no_file` stays "offer it again": an upload let go resumes so.
 * - Refusals: `file_too_large` over `maxFileSize` (nothing written); `quota_exceeded`
 *   when the sender's held files would pass `fileQuotaBytes` (the announced size counts
 *   from the offer on) or number `maxHeldFilesPerSender` already (zero-byte ones too);
 *   `blocked`; `self`; `unknown_user`.
 * - The disk is shared with the database, which must stay writable: `storage_full` when
 *   the files held from everyone would pass `filesBudgetBytes` (each counts
 *   {@linkcode FILE_OVERHEAD_BYTES} more than its size), or when the free space of the
 *   folder's disk would fall under `minFreeBytes`, checked at the offer and before each
 *   chunk is written (an upload that would cross it stops there, its bytes kept: offering
 *   it again later resumes it), and when a write finds the disk full. Dropped files lose
 *   their bytes before their record, so expiry frees space even on a full disk.
 * - A file is held for its recipient until `fileTtlSec` after it was offered (counted
 *   again from the end of the upload and from the accept), then deleted, and both sides
 *   hear `file_cancelled` (`expired`). An offline recipient sees held files at its next
 *   login (`file_list`). A sweep runs at start and periodically; files on disk that no
 *   record names are deleted at start.
 * - The bytes are kept behind {@linkcode FileBytes} (`file_bytes.ts`): in the file
 *   folder by default (`disk_file_bytes.ts`, the `.part` and `.file` files above), or in
 *   PostgreSQL (`postgres_file_bytes.ts`) for servers that serve each other's files; a
 *   read waiting for bytes another server uploads asks for them every
 *   {@linkcode FileBytes.pollMs}.
 * - Chunks and reads are paced by flood control (see `flood_control.ts`): each takes its
 *   bytes (a read, the bytes it asks for) from the session's file byte budget, and the
 *   connection waits when it is spent; they are also paced by the server's own writes and
 *   the reader's window, and bounded by the limits above.
 *
 * @module
 */

import { join } from "node:path";
import { getLogger } from "@logtape/logtape";
import { encodeFrame, encodeFrameWithBody } from "../protocol/frame.ts";
import {
  LARGE_FILE_CHUNK_BYTES,
  MAX_FILE_FRAME_BYTES,
  type ServerMessage,
  type ServerMessageMap,
} from "../protocol/messages.ts";
import type { FileOffer } from "../protocol/replies.ts";
import { MAX_OFFERED_NAME_BYTES } from "../protocol/file_names.ts";
import { encodedSize } from "../protocol/json_size.ts";
import { EMPTY_SHA256 } from "../transport/file_io.ts";
import { BufferPools, SentBufferPool } from "../transport/buffer_pool.ts";
import { formatBytes } from "../transport/file_transfer_events.ts";
import { userSubject } from "./broker.ts";
import type { CommandContext, CommandSpec } from "./commands.ts";
import { FILE_OVERHEAD_BYTES } from "./config.ts";
import { isDiskFull } from "./disk_space.ts";
import { DiskFileBytes } from "./disk_file_bytes.ts";
import { CommandError } from "./errors.ts";
import type { FileBytes, FileBytesReader, FileBytesWriter } from "./file_bytes.ts";
import {
  type EndedFile,
  type FileEnding,
  type FileRecord,
  type FileStore,
  MemoryFileStore,
} from "./file_store.ts";
import { makePrivateDir } from "./file_modes.ts";
import type { ChatHub, SessionPort } from "./hub.ts";
import { fitFirst, replyBudget, replyFloor } from "./reply_budget.ts";
import { SqliteFileStore } from "./sqlite_file_store.ts";
import { StoreError } from "./store.ts";

const log = getLogger(["chat", "server", "files"]);

/**
 * Largest `file_chunk` body accepted, in bytes: large chunks (the server's hello shares
 * the feature; older clients and the browser page send chunks of 512 KiB at most).
 */
export const MAX_CHUNK_BYTES: number = LARGE_FILE_CHUNK_BYTES;
/**
 * Buffers for the payloads of incoming `file_chunk` frames (a chunk and its header),
 * shared by the server's connections: a chunk's buffer is handed back once its bytes
 * are written, and receives a later chunk. Two sizes: chunks of 512 KiB and large ones.
 */
export const CHUNK_PAYLOADS: BufferPools = new BufferPools(
  [MAX_FILE_FRAME_BYTES + 1024, MAX_CHUNK_BYTES + 1024],
  16,
);
/**
 * `file_chunk` requests in flight per connection: one being written, the next read
 * meanwhile (each holds its body, at most {@linkcode MAX_CHUNK_BYTES}, until written).
 */
export const CHUNKS_IN_FLIGHT = 2;
/** Room for a `file_data` header in the frame buffers reused per connection. */
const FRAME_ROOM = 1024;
/** Frame buffers kept per connection: two reads of four frames in flight, and spares. */
const FRAME_BUFFERS = 12;
/**
 * Bytes of file data per `file_data` frame for a reader that does not ask for another
 * size (`file_read {frame}`, at most a large chunk's); at most a quarter of the outbound
 * queue either way.
 */
export const DATA_FRAME_BYTES: number = MAX_FILE_FRAME_BYTES;
/** Most bytes one `file_read` sends (also at most a quarter of the outbound queue). */
export const MAX_READ_BYTES: number = 1024 * 1024;
/**
 * Chunks an upload keeps in memory after writing them while someone reads the file (2
 * MiB with chunks of 512 KiB, 4 MiB with large ones): a reader keeping up with the
 * upload is sent them from memory instead of reading them back from disk.
 */
const RECENT_CHUNKS = 4;
/**
 * How long the file a reader's reads opened stays open for its next read, in ms (a reader
 * keeps reads in flight, and asks again as soon as it has written what came).
 */
const PARKED_READER_MS = 2000;
/** How long a `file_read` past the bytes received waits for more, in ms. */
export const READ_WAIT_MS = 10_000;
/** An upload without a chunk this long lets go of its open file (it resumes from disk). */
const UPLOAD_IDLE_MS = 60_000;
/** Longest and shortest time between two sweeps for expired files, in ms. */
const MAX_SWEEP_MS = 60_000;
const MIN_SWEEP_MS = 200;
/** Name of the files folder inside the data folder. */
export const FILES_FOLDER = "files";

/**
 * The cluster bus topic on which the node that tells a file's end (`file_completed`,
 * `file_declined`, `file_cancelled`) names the account told, just before the event goes
 * out: every node notes that the account's sessions there were told, so that a chunk or
 * offer of the file they send afterwards is answered without telling it a second time.
 */
export const ENDS_TOLD_TOPIC = "files.told";

/** The reads of one session and file: they run one after another, on one open file. */
interface ReadState {
  /** Settles once the last read queued is done. */
  chain: Promise<void>;
  /** The file's bytes, open while reads are queued. */
  file: FileBytesReader | null;
}

/** The reply to a `file_read`. */
type FileReadReply = {
  file: number;
  offset: number;
  length: number;
  available: number;
  sha256?: string;
};

/** An upload in progress: its bytes open for appending. */
interface Upload {
  readonly id: number;
  readonly fromKey: string;
  /** The record as the upload began (its size and SHA-256 do not change). */
  readonly record: FileRecord;
  readonly file: FileBytesWriter;
  offset: number;
  lastActive: number;
  chain: Promise<unknown>;
  closed: boolean;
}

const services = new WeakMap<ChatHub, FileService>();

/**
 * The file service of a hub (opened by the server at start).
 *
 * @throws {CommandError} `internal` when the server runs without one.
 */
export function fileServiceOf(hub: ChatHub): FileService {
  const service = services.get(hub);
  if (service === undefined) {
    throw new CommandError("internal", "file transfers are not available on this server");
  }
  return service;
}

/**
 * Where a server keeps its held files, when not in its file folder (see
 * {@linkcode FileService.open}): servers sharing them serve each other's files.
 */
export interface FileServiceDeps {
  /** The files' metadata. */
  store: FileStore;
  /** The files' bytes. */
  bytes: FileBytes;
}

/**
 * The files a server holds: their bytes, their metadata, the uploads in progress and
 * the expiry sweep. One per server; see the module documentation.
 */
export class FileService {
  /** The files' metadata. */
  readonly store: FileStore;
  /** The files' bytes (`<id>.part`, `<id>.file` in the file folder by default). */
  readonly bytes: FileBytes;
  readonly #dir: string | null;
  readonly #hub: ChatHub;
  readonly #temporary: boolean;
  readonly #uploads = new Map<number, Upload>();
  readonly #opening = new Map<number, Promise<Upload>>();
  /**
   * Uploads whose last chunk is held, being synced and recorded complete (a recipient
   * that read every byte may be done with them meanwhile).
   */
  readonly #finishing = new Map<number, Promise<void>>();
  /** Files being dropped here now (see {@linkcode FileService.#endedMeanwhile}). */
  readonly #dropping = new Set<number>();
  /**
   * The SHA-256 of uploads whose last chunk came, until their record has it: a reader
   * here gets it as soon as the bytes.
   */
  readonly #hashes = new Map<number, string>();
  readonly #waiters = new Map<number, Set<() => void>>();
  /**
   * Per file being read, how many times its readers were woken (bytes, the SHA-256, the
   * upload recorded complete): a read notes it before it looks at the file's state, and
   * waits only while it has not moved, so that a wake while it was busy is not missed.
   */
  readonly #wakes = new Map<number, number>();
  /**
   * Per session and file, the reader its last read left open (see
   * {@linkcode FileService.#park}).
   */
  readonly #parked = new Map<
    string,
    { id: number; file: FileBytesReader; timer: ReturnType<typeof setTimeout> }
  >();
  /** Per file, how many of its readers are parked (see {@linkcode FileService.#following}). */
  readonly #parkedPerFile = new Map<number, number>();
  /**
   * Per file and account sending chunks of it (`<id>\n<account key>`), the last chunk's
   * turn: they run in the order they arrived (see {@linkcode FileService.chunk}).
   */
  readonly #chunkTurns = new Map<string, Promise<void>>();
  /** Reads of one session and file run one after another: their frames never interleave. */
  readonly #reads = new Map<string, ReadState>();
  /** Per file, the sessions reading it now (their read states). */
  readonly #readers = new Map<number, number>();
  /**
   * Per file with readers, the last chunks written, in order (at most
   * {@linkcode RECENT_CHUNKS}); their buffers go back to {@linkcode CHUNK_PAYLOADS} when
   * they leave, when the last reader goes, or when the file is dropped.
   */
  readonly #recent = new Map<number, { offset: number; bytes: Uint8Array }[]>();
  /**
   * Per session, the ended files it was told of (live, see {@linkcode ENDS_TOLD_TOPIC}, or
   * again, see #gone): told once.
   */
  readonly #retold = new WeakMap<object, Set<number>>();
  #stopListening: (() => void) | null = null;
  /** Per client connection, the buffers of its `file_data` frames. */
  readonly #framePools = new WeakMap<SessionPort, SentBufferPool>();
  /** Whether the last sweep found the free space under the reserve. */
  #underReserve = false;
  #offers: Promise<unknown> = Promise.resolve();
  #timer: ReturnType<typeof setInterval> | undefined;
  #sweeping: Promise<void> | null = null;
  #closed = false;

  private constructor(
    hub: ChatHub,
    dir: string | null,
    store: FileStore,
    bytes: FileBytes,
    temporary: boolean,
  ) {
    this.#hub = hub;
    this.#dir = dir;
    this.store = store;
    this.bytes = bytes;
    this.#temporary = temporary;
  }

  /**
   * The folder holding the files' bytes (`<id>.part`, `<id>.file`) and `files.db`.
   *
   * @throws {Error} when they are held elsewhere ({@linkcode FileServiceDeps}).
   */
  get dir(): string {
    if (this.#dir === null) throw new Error(`held files are in ${this.bytes.where}, no folder`);
    return this.#dir;
  }

  /**
   * Opens the file service of `hub`: the folder `config.fileDir`, else `files/` in the
   * data folder, else a temporary folder (deleted at close) for a server without one;
   * or the metadata and bytes storage of `deps` (closed with the service). Deletes
   * expired and orphaned files, and starts the periodic sweep.
   *
   * @throws {Error} naming the folder when it cannot be created or used.
   */
  static async open(hub: ChatHub, deps?: FileServiceDeps): Promise<FileService> {
    const config = hub.config;
    let service: FileService;
    if (deps !== undefined) {
      service = new FileService(hub, null, deps.store, deps.bytes, false);
    } else {
      const configured = config.fileDir ??
        (config.dataDir !== null ? join(config.dataDir, FILES_FOLDER) : null);
      let dir: string;
      let store: FileStore;
      try {
        if (configured === null) {
          dir = await Deno.makeTempDir({ prefix: "chat-files-" });
        } else {
          dir = configured;
          makePrivateDir(dir);
        }
        store = config.dataDir === null ? new MemoryFileStore() : SqliteFileStore.open(dir);
      } catch (err) {
        throw new Error(
          `cannot use the file folder ${configured ?? "(temporary)"}: ${
            err instanceof Error ? err.message : String(err)
          }`,
          { cause: err },
        );
      }
      service = new FileService(
        hub,
        dir,
        store,
        new DiskFileBytes(dir),
        configured === null,
      );
    }
    service.#stopListening = await hub.bus.listen(
      ENDS_TOLD_TOPIC,
      (message) => service.#markTold(message.data),
    );
    await service.sweep({ orphans: true });
    const ttlMs = config.fileTtlSec * 1000;
    const every = Math.max(MIN_SWEEP_MS, Math.min(MAX_SWEEP_MS, Math.floor(ttlMs / 4)));
    service.#timer = setInterval(() => void service.sweep(), every);
    services.set(hub, service);
    log.debug("files in {dir}", { dir: service.bytes.where });
    return service;
  }

  /** Chunks kept in memory for the readers of files being uploaded (see `RECENT_CHUNKS`). */
  get keptChunks(): number {
    let kept = 0;
    for (const chunks of this.#recent.values()) kept += chunks.length;
    return kept;
  }

  /** Stops the sweep, lets go of open files and closes the metadata store. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#stopListening?.();
    clearInterval(this.#timer);
    this.#closeParked();
    await this.#sweeping?.catch(() => {});
    for (const waiters of this.#waiters.values()) for (const wake of waiters) wake();
    this.#waiters.clear();
    await Promise.allSettled([...this.#opening.values()]);
    for (const upload of [...this.#uploads.values()]) await this.#release(upload);
    await this.store.close();
    await this.bytes.close().catch((err) =>
      log.error("closing the files' bytes failed: {err}", { err })
    );
    if (this.#temporary && this.#dir !== null) {
      await Deno.remove(this.#dir, { recursive: true }).catch(() => {});
    }
    if (services.get(this.#hub) === this) services.delete(this.#hub);
  }

  /**
   * Deletes expired files (telling both sides), lets go of idle uploads, and with
   * `orphans` deletes files on disk that no record names.
   */
  sweep(options: { orphans?: boolean } = {}): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#sweeping ??= this.#sweep(options.orphans ?? false).catch((err) =>
      log.error("sweeping held files failed: {err}", { err })
    ).finally(() => this.#sweeping = null);
    return this.#sweeping;
  }

  async #sweep(orphans: boolean): Promise<void> {
    await this.#watchReserve();
    const now = this.#hub.now();
    for (const record of await this.store.expired(now)) await this.#expire(record);
    await this.store.forgetEnded(now - this.#hub.config.fileTtlSec * 1000);
    const idleBefore = performance.now() - UPLOAD_IDLE_MS;
    for (const upload of [...this.#uploads.values()]) {
      if (upload.lastActive < idleBefore) await this.#release(upload);
    }
    if (!orphans) return;
    await this.bytes.removeOrphans(async () => new Set(await this.store.ids()));
  }

  /** Drops an expired file and tells both sides (unless another server dropped it first). */
  async #expire(record: FileRecord): Promise<void> {
    log.info("file #{id} from {from} to {to} expired", {
      id: record.id,
      from: record.from,
      to: record.to,
    });
    // Servers sharing the files all sweep: the one that drops it tells.
    if (!(await this.#drop(record, "expired", "server"))) return;
    const event = { ...cancelledEvent(record, "server", "expired") };
    await this.#tell(record.fromKey, event);
    await this.#tell(record.toKey, event);
  }

  // ------------------------------------------------------------------ commands

  async offer(
    ctx: CommandContext,
    to: string,
    name: string,
    size: number,
    key: string | undefined,
    sha256: string | undefined,
    resumes?: number,
  ): Promise<
    { file: number; offset: number; to: string; size: number; online: boolean; expires: number }
  > {
    const { hub, session } = ctx;
    const self = session.account;
    if (encodedSize(name) - 2 > MAX_OFFERED_NAME_BYTES) {
      throw new CommandError(
        "bad_name",
        `a file name takes at most ${MAX_OFFERED_NAME_BYTES} bytes (a control character takes 6)`,
      );
    }
    const target = await hub.requireAccount(to);
    if (target.key === self.key) {
      throw new CommandError("self", "you cannot send a file to yourself");
    }
    if ((await hub.blocksOf(target.key)).has(self.key)) {
      throw new CommandError("blocked", `${target.nick} has blocked you: the file cannot be sent`);
    }
    const resumeKey = key ?? sha256;
    if (resumeKey === undefined) {
      throw new CommandError("bad_message", "a file_offer carries the file's key (or sha256)");
    }
    if (size === 0 && sha256 !== undefined && sha256 !== EMPTY_SHA256) {
      throw new CommandError(
        "file_corrupt",
        `a file of zero bytes has the SHA-256 ${EMPTY_SHA256}, not ${sha256}`,
      );
    }
    const max = hub.config.maxFileSize;
    if (size > max) {
      throw new CommandError(
        "file_too_large",
        `the file is ${formatBytes(size)}; this server takes files up to ${formatBytes(max)}`,
      );
    }
    // One offer at a time, so that two cannot both fit the quota's last bytes.
    const result = this.#offers.then(async () => {
      const now = hub.now();
      let record = await this.store.find(self.key, target.key, resumeKey, size, name);
      if (record !== null && record.expiresAt <= now) {
        await this.#expire(record);
        record = null;
      }
      if (record === null && resumes !== undefined) {
        // Offered again to resume file `resumes`, which ended meanwhile (between a
        // retryable refusal or a dropped connection and this offer): it learns the end,
        // not a new file sent twice.
        const ended = await this.store.ended(resumes);
        if (
          ended !== null && ended.fromKey === self.key && ended.size === size &&
          ended.name === name
        ) {
          return this.#endedOffer(ctx, ended, target.key);
        }
      }
      const resumed = record !== null;
      if (record === null) {
        await this.#admit(self.key, size);
        record = await this.store.create({
          fromKey: self.key,
          from: self.nick,
          toKey: target.key,
          to: target.nick,
          name,
          size,
          key: resumeKey,
          // Known now: announced, or that of zero bytes; else it comes with the last chunk.
          sha256: sha256 ?? (size === 0 ? EMPTY_SHA256 : null),
          state: "offered",
          uploaded: false,
          createdAt: now,
          expiresAt: now + hub.config.fileTtlSec * 1000,
        });
        log.info("{from} offers file #{id} ({size} bytes) to {to}", {
          from: self.nick,
          id: record.id,
          size,
          to: target.nick,
        });
        if (size === 0) {
          await this.#finishUpload(record, null);
          record = (await this.store.get(record.id)) ?? record;
        }
        await this.#tell(
          target.key,
          offerEvent((await this.store.get(record.id)) ?? record),
          self.key,
        );
      }
      let offset: number;
      try {
        offset = record.uploaded ? record.size : await this.#resumeAt(record, sha256);
      } catch (err) {
        // Dropped as its upload was being opened (declined, cancelled, expired meanwhile):
        // the end is told, as to an offer naming a file that ended.
        const ended = err instanceof CommandError && err.code === "no_file"
          ? await this.store.ended(record.id)
          : null;
        if (ended === null) throw err;
        return this.#endedOffer(ctx, ended, target.key);
      }
      if (resumed && offset === 0 && record.state === "offered") {
        // Resumed before its first byte: its offer may never have reached the recipient
        // (told after the record, by a server that died in between); told again (the
        // clients know an offer by its id).
        await this.#tell(target.key, offerEvent(record), self.key);
      }
      return {
        file: record.id,
        to: record.to,
        size: record.size,
        offset,
        online: hub.isVisible(target.key, self.key),
        expires: record.expiresAt,
      };
    });
    this.#offers = result.catch(() => {});
    return await result;
  }

  /**
   * The answer to an offer of file `ended`, which ended: the end told to the session
   * (once), then complete (received) or refused `file_gone`.
   */
  #endedOffer(
    ctx: CommandContext,
    ended: EndedFile,
    toKey: string,
  ): { file: number; offset: number; to: string; size: number; online: boolean; expires: number } {
    this.#retell(ctx, ended);
    if (ended.ending !== "received") throw goneError(ended);
    return {
      file: ended.id,
      to: ended.to,
      size: ended.size,
      offset: ended.size,
      online: this.#hub.isVisible(toKey, ctx.session.account.key),
      expires: ended.endedAt,
    };
  }

  /**
   * Stores a chunk of file `id`. The chunks of one file are handled in the order they
   * arrived, each once the one before is written: the connection reads the next chunk
   * (at most {@linkcode CHUNKS_IN_FLIGHT} in flight) while one is being written. The turn
   * is the sender's: a chunk another account sends for the file (refused) does not wait
   * behind the sender's writes, nor slow them down; a chunk without bytes or too large is
   * refused before it takes a turn.
   */
  chunk(
    ctx: CommandContext,
    id: number,
    offset: number,
    sha256?: string,
  ): Promise<{ file: number; offset: number; complete: boolean }> {
    const body = ctx.body;
    if (body === undefined || body.length === 0) {
      return Promise.reject(
        new CommandError("bad_message", "a file_chunk carries the bytes in its body"),
      );
    }
    if (body.length > MAX_CHUNK_BYTES) {
      return Promise.reject(
        new CommandError("bad_message", `a file chunk is at most ${MAX_CHUNK_BYTES} bytes`),
      );
    }
    const turn = `${id}\n${ctx.session.account.key}`;
    const prior = this.#chunkTurns.get(turn);
    const run = prior === undefined
      ? this.#chunk(ctx, body, id, offset, sha256)
      : prior.then(() => this.#chunk(ctx, body, id, offset, sha256));
    const settled = run.then(() => {}, () => {});
    this.#chunkTurns.set(turn, settled);
    settled.then(() => {
      if (this.#chunkTurns.get(turn) === settled) this.#chunkTurns.delete(turn);
    });
    return run;
  }

  async #chunk(
    ctx: CommandContext,
    body: Uint8Array,
    id: number,
    offset: number,
    sha256?: string,
  ): Promise<{ file: number; offset: number; complete: boolean }> {
    const self = ctx.session.account.key;
    let upload = this.#uploads.get(id);
    if (upload === undefined || upload.fromKey !== self) {
      const record = await this.#record(id);
      if (record === null || record.fromKey !== self) {
        return await this.#gone(ctx, id, `you are not sending a file #${id}`);
      }
      if (record.uploaded) {
        if (offset + body.length <= record.size) {
          return { file: id, offset: record.size, complete: true }; // a resent chunk
        }
        throw new CommandError("bad_offset", `file #${id} is complete (${record.size} bytes)`);
      }
      const opened = await this.#upload(record).catch((err) => {
        if (err instanceof CommandError && err.code === "no_file") return null;
        throw err;
      });
      // Dropped as its upload was being opened: the end is told (see #openUpload).
      if (opened === null) return await this.#gone(ctx, id, `file #${id} was dropped`);
      upload = opened;
    }
    const current = upload;
    return await this.#serial(current, async () => {
      if (current.closed) {
        return await this.#gone(ctx, id, `file #${id} is no longer being uploaded`);
      }
      if (offset + body.length <= current.offset) {
        if (offset + body.length === current.record.size) {
          // The last chunk again, every byte held but not recorded complete (a crash).
          return await this.#completeHeld(current, sha256);
        }
        return { file: id, offset: current.offset, complete: false }; // a resent chunk
      }
      if (offset > current.offset) {
        throw new CommandError(
          "bad_offset",
          `file #${id}: expected the chunk at offset ${current.offset}, not ${offset}`,
        );
      }
      // A resent chunk straddling the end of the bytes held (a crash cut its write
      // short): the bytes before that end are those held (the same file at the same
      // offsets; the recipient checks the SHA-256), its tail is new.
      const bytes = offset < current.offset ? body.subarray(current.offset - offset) : body;
      const record = current.record;
      if (current.offset + bytes.length > record.size) {
        throw new CommandError(
          "bad_message",
          `file #${id}: more bytes than the ${record.size} announced`,
        );
      }
      if (current.closed) throw new CommandError("no_file", `file #${id} was dropped`);
      const last = current.offset + bytes.length === record.size;
      const announced = record.sha256 ?? undefined;
      if (last && announced === undefined && sha256 === undefined) {
        throw new CommandError(
          "bad_message",
          `file #${id}: the chunk that completes the upload carries the file's sha256`,
        );
      }
      if (announced !== undefined && sha256 !== undefined && sha256 !== announced) {
        throw new CommandError(
          "file_corrupt",
          `file #${id}: its SHA-256 was announced as ${announced}, not ${sha256}`,
        );
      }
      await this.#checkFreeSpace(
        bytes.length,
        `file #${id} stops at ${formatBytes(current.offset)}`,
      );
      // Not hashed: the recipient checks the SHA-256 (see the module documentation). A
      // write that fails lets the upload go; it resumes from the bytes held.
      this.bytes.free.wrote(bytes.length);
      try {
        await current.file.append(bytes);
      } catch (err) {
        if (current.closed) {
          // Let go while it waited for the free space (dropped: cancelled, declined,
          // expired; or the server closing): its file was closed under the write.
          return await this.#gone(ctx, id, `file #${id} is no longer being uploaded`);
        }
        await this.#release(current);
        if (await this.#endedMeanwhile(id)) {
          // Dropped by another server sharing the files (its bytes went under the write).
          return await this.#gone(ctx, id, `file #${id} is no longer being uploaded`);
        }
        if (err instanceof StoreError && err.code === "conflict") {
          throw new CommandError(
            "bad_offset",
            `file #${id} was written from another connection meanwhile: offer it again to resume`,
          );
        }
        if (isDiskFull(err)) {
          throw this.#storageFull(
            `the server's disk is full: file #${id} stops at ${formatBytes(current.offset)}; ` +
              "offer it again later to resume",
          );
        }
        throw err;
      }
      this.#hub.metrics.counters.fileBytesStored += bytes.length;
      // Written: kept a while for readers keeping up (reading, or between two reads),
      // else given back.
      if (this.#following(id)) {
        let recent = this.#recent.get(id);
        if (recent === undefined) this.#recent.set(id, recent = []);
        recent.push({ offset: current.offset, bytes });
        if (recent.length > RECENT_CHUNKS) CHUNK_PAYLOADS.give(recent.shift()!.bytes);
      } else {
        CHUNK_PAYLOADS.give(body);
      }
      current.offset += bytes.length;
      current.lastActive = performance.now();
      if (current.offset < record.size) {
        this.#wake(id);
        return { file: id, offset: current.offset, complete: false };
      }
      await this.#completeWith(record, current, announced ?? sha256!);
      return { file: id, offset: current.offset, complete: true };
    });
  }

  /** The offers held for the session's account, by id, from after `after`: one page. */
  async list(ctx: CommandContext, after = 0): Promise<{ files: FileOffer[]; more: boolean }> {
    const now = this.#hub.now();
    const records = await this.store.incoming(ctx.session.account.key);
    const offers = records
      .filter((r) => r.expiresAt > now && r.id > after)
      .sort((a, b) => a.id - b.id)
      .map(offerInfo);
    const max = this.#hub.config.maxFrameSize;
    const page = fitFirst(offers, replyBudget(max), replyFloor(max));
    return { files: page.items, more: page.cut };
  }

  async accept(ctx: CommandContext, id: number): Promise<FileOffer> {
    const record = await this.#incoming(ctx, id);
    const expiresAt = this.#hub.now() + this.#hub.config.fileTtlSec * 1000;
    await this.store.update(id, { state: "accepted", expiresAt });
    if (record.state !== "accepted") {
      await this.#answer(record, "file_accepted", ctx.session.account.nick);
    }
    return offerInfo(record);
  }

  async decline(ctx: CommandContext, id: number): Promise<{ file: number }> {
    const record = await this.#incoming(ctx, id);
    await this.#drop(record, "declined", ctx.session.account.nick);
    log.info("{by} declined file #{id}", { by: ctx.session.account.nick, id });
    await this.#answer(record, "file_declined", ctx.session.account.nick);
    return { file: id };
  }

  /**
   * Sends up to `length` bytes of file `id` from `offset` in `file_data` frames of at
   * most `frame` bytes each (default {@linkcode DATA_FRAME_BYTES}), then replies.
   */
  read(
    ctx: CommandContext,
    id: number,
    offset: number,
    length: number,
    frame: number = DATA_FRAME_BYTES,
  ): Promise<FileReadReply> {
    const key = `${ctx.session.id}/${id}`;
    let state = this.#reads.get(key);
    if (state === undefined) {
      state = { chain: Promise.resolve(), file: this.#unpark(key) };
      this.#reads.set(key, state);
      this.#readers.set(id, (this.#readers.get(id) ?? 0) + 1);
    }
    const own = state;
    const run = own.chain.then(() => this.#read(ctx, id, offset, length, frame, own));
    const settled = run.then(() => {}, () => {});
    own.chain = settled;
    settled.then(() => {
      if (own.chain !== settled) return; // more reads queued: they use the open file
      if (this.#reads.get(key) === own) {
        this.#reads.delete(key);
        const readers = (this.#readers.get(id) ?? 1) - 1;
        if (readers > 0) {
          this.#readers.set(id, readers);
        } else {
          this.#readers.delete(id);
          this.#wakes.delete(id);
          // A reader parked below is between two reads (writing what came before it
          // asks again): the chunks written meanwhile are kept for its next read.
          if (own.file === null) this.#dropRecent(id);
        }
      }
      // Kept open a while for the reader's next read (it asks again as soon as it has
      // written what came): not opened and positioned again for each of its reads.
      if (own.file !== null) this.#park(key, id, own.file, ctx.session.port);
      own.file = null;
    });
    return run;
  }

  /**
   * Keeps `file`, open on file `id` for the reads of `key` (a session and file), for the
   * next read of the same key; closed after {@linkcode PARKED_READER_MS} unused, or when
   * the file is dropped or the service closes.
   */
  #park(key: string, id: number, file: FileBytesReader, port: SessionPort): void {
    this.#unpark(key)?.close();
    const timer = setTimeout(() => {
      if (this.#parked.get(key)?.file !== file) return;
      this.#unpark(key);
      file.close();
      // Its reader read no more: the chunks kept for it go, unless another reads on, and
      // the frame buffers its connection has written go back to the shared pool.
      if (!this.#following(id)) this.#dropRecent(id);
      if (!this.#reads.has(key)) this.#framePools.get(port)?.release();
    }, PARKED_READER_MS);
    this.#parked.set(key, { id, file, timer });
    this.#parkedPerFile.set(id, (this.#parkedPerFile.get(id) ?? 0) + 1);
  }

  /**
   * Whether file `id` has a reader now, or one between two reads (its file parked): the
   * chunks written are then kept for it ({@linkcode RECENT_CHUNKS}).
   */
  #following(id: number): boolean {
    return this.#readers.has(id) || this.#parkedPerFile.has(id);
  }

  /** The reader parked for `key` (taken back), or null. */
  #unpark(key: string): FileBytesReader | null {
    const parked = this.#parked.get(key);
    if (parked === undefined) return null;
    this.#parked.delete(key);
    clearTimeout(parked.timer);
    const left = (this.#parkedPerFile.get(parked.id) ?? 1) - 1;
    if (left > 0) this.#parkedPerFile.set(parked.id, left);
    else this.#parkedPerFile.delete(parked.id);
    return parked.file;
  }

  /** Closes the readers parked on file `id` (every one with `id` undefined). */
  #closeParked(id?: number): void {
    for (const [key, parked] of [...this.#parked]) {
      if (id !== undefined && parked.id !== id) continue;
      this.#unpark(key)?.close();
    }
  }

  async #read(
    ctx: CommandContext,
    id: number,
    offset: number,
    length: number,
    frame: number,
    state: ReadState,
  ): Promise<FileReadReply> {
    const session = ctx.session;
    // Noted before the state is read: a wake from then on ends a wait at once.
    let seen = this.#wakeCount(id);
    let record = await this.#incoming(ctx, id);
    if (record.state !== "accepted") {
      throw new CommandError("no_file", `accept file #${id} first`);
    }
    if (offset > record.size) {
      throw new CommandError("bad_offset", `file #${id} has only ${record.size} bytes`);
    }
    // A reader keeps at most two reads in flight: together at most half the queue.
    const quarter = Math.max(1024, Math.floor(this.#hub.config.maxQueueBytes / 4));
    const frameBytes = Math.min(frame, quarter);
    const limit = Math.min(MAX_READ_BYTES, quarter);
    const want = Math.max(0, Math.min(length, limit, record.size - offset));
    let available = await this.#available(record);
    let sent = 0;
    reading: while (sent < want && !session.ended) {
      // Bytes still being uploaded are sent as they arrive: the read ends early only when
      // none came for READ_WAIT_MS (or the file was dropped).
      // When another server may be uploading them, the bytes held are asked for again
      // every `pollMs` meanwhile.
      if (offset + sent >= available) {
        const poll = this.bytes.pollMs;
        const deadline = performance.now() + READ_WAIT_MS;
        let now: number;
        do {
          const left = Math.max(0, deadline - performance.now());
          await this.#waitForBytes(
            id,
            poll === null ? left : Math.min(poll, left),
            () => session.ended,
            seen,
          );
          seen = this.#wakeCount(id);
          // Uploaded here: its record does not change while the upload goes on (a drop,
          // the upload's end or its letting go closes it first and wakes this read), so
          // it is not read from the store again at each chunk.
          const live = this.#uploads.get(id);
          if (live !== undefined && !live.closed) {
            now = live.offset;
          } else {
            record = await this.#incoming(ctx, id);
            now = await this.#available(record);
          }
          // A wake need not bring bytes (it may be for bytes already counted, the read
          // having noted the count before it looked): it waits on until the deadline.
        } while (
          now <= available && performance.now() < deadline && !session.ended && !this.#closed
        );
        if (now <= available) break;
        available = now;
      }
      // The file stays open for the reads queued behind (a reader keeps two in flight).
      const file = state.file ??= await this.#openToRead(record);
      try {
        const pool = this.#framePool(session.port, frameBytes);
        const end = Math.min(want, available - offset);
        while (sent < end && !session.ended) {
          // Each frame is laid out in a buffer whose previous frame was written. Bytes
          // the upload still holds are copied in from memory; others are read from
          // disk straight into it.
          const at = offset + sent;
          const header = { type: "file_data", file: id, offset: at } as const;
          const buffer = pool?.take();
          const length = Math.min(frameBytes, end - sent);
          const held = this.#held(id, at, length);
          let data: { frame: Uint8Array; body: Uint8Array };
          let n: number;
          if (held !== null) {
            data = encodeFrameWithBody(header, held.length, buffer);
            data.body.set(held);
            n = held.length;
          } else {
            data = encodeFrameWithBody(header, length, buffer);
            n = await file.read(at, data.body);
          }
          const frame = n === data.body.length
            ? data.frame
            : encodeFrame(header, data.body.subarray(0, n));
          const queued = n > 0 && session.port.send(frame);
          if (buffer !== undefined) {
            if (queued && frame.buffer === buffer.buffer) pool!.queued(buffer);
            else pool!.unused(buffer);
          }
          if (!queued) break reading;
          sent += n;
          if (held !== null) this.#hub.metrics.counters.fileBytesSentFromMemory += n;
          else this.#hub.metrics.counters.fileBytesSentFromDisk += n;
        }
      } catch (err) {
        state.file = null;
        file.close();
        throw err;
      }
    }
    // The end reached: the SHA-256 to check the bytes against (it may come a little
    // after them: the sender gives it with the last chunk, another server records it).
    let sha256 = this.#hashOf(record);
    if (sha256 === null && offset + sent === record.size && !session.ended) {
      const poll = this.bytes.pollMs;
      const deadline = performance.now() + READ_WAIT_MS;
      while (sha256 === null && !session.ended && !this.#closed) {
        const left = deadline - performance.now();
        if (left <= 0) break;
        await this.#waitForBytes(
          id,
          poll === null ? left : Math.min(poll, left),
          () => session.ended,
          seen,
        );
        seen = this.#wakeCount(id);
        record = await this.#incoming(ctx, id);
        sha256 = this.#hashOf(record);
      }
    }
    return {
      file: id,
      offset,
      length: sent,
      available,
      ...(sha256 !== null ? { sha256 } : {}),
    };
  }

  /** The SHA-256 the sender gave for `record`'s file, or null before its last chunk. */
  #hashOf(record: FileRecord): string | null {
    return record.sha256 ?? this.#hashes.get(record.id) ?? null;
  }

  async done(ctx: CommandContext, id: number): Promise<{ file: number }> {
    let record = await this.#incoming(ctx, id);
    // Every byte held, still being synced and recorded complete: the recipient has them
    // all and checked their SHA-256; the file may go now (the sync need not finish).
    if (!record.uploaded && !this.#finishing.has(id)) {
      // Read before the upload was recorded complete, and finished since: read it again.
      record = await this.#incoming(ctx, id);
      if (!record.uploaded && !this.#finishing.has(id)) {
        throw new CommandError("bad_message", `file #${id} is not completely uploaded yet`);
      }
    }
    await this.#drop(record, "received", ctx.session.account.nick);
    log.info("{by} received file #{id}", { by: ctx.session.account.nick, id });
    await this.#answer(record, "file_completed", ctx.session.account.nick);
    return { file: id };
  }

  /**
   * Drops a file for its sender or recipient, and tells the other. A recipient gives
   * `reason` `corrupt` when its copy does not match the offer's SHA-256.
   */
  async cancel(ctx: CommandContext, id: number, reason?: "corrupt"): Promise<{ file: number }> {
    const self = ctx.session.account;
    const record = await this.#record(id);
    if (record === null || (record.fromKey !== self.key && record.toKey !== self.key)) {
      throw new CommandError("no_file", `no file #${id} from or to you`);
    }
    const corrupt = reason === "corrupt" && record.toKey === self.key;
    if (corrupt) {
      log.warn("file #{id} from {from} did not match its SHA-256 at {to}: dropped", {
        id,
        from: record.from,
        to: record.to,
      });
    }
    await this.#drop(record, corrupt ? "corrupt" : "cancelled", self.nick);
    const other = record.fromKey === self.key ? record.toKey : record.fromKey;
    await this.#tell(other, cancelledEvent(record, self.nick, corrupt ? "corrupt" : "cancelled"));
    return { file: id };
  }

  // ------------------------------------------------------------------ internals

  /**
   * Whether the server may take a new file of `size` bytes from `fromKey`: its count and
   * quota, the server's budget, and the free space over the reserve.
   *
   * @throws {CommandError} `quota_exceeded` or `storage_full`.
   */
  async #admit(fromKey: string, size: number): Promise<void> {
    const config = this.#hub.config;
    const mine = await this.store.held(fromKey);
    const most = config.maxHeldFilesPerSender;
    if (most > 0 && mine.files >= most) {
      throw new CommandError(
        "quota_exceeded",
        `the server holds ${mine.files} of your files for their recipients, as many as one ` +
          "sender may have: wait until they are received or expire, or cancel some",
      );
    }
    const quota = config.fileQuotaBytes;
    if (mine.bytes + size > quota) {
      throw new CommandError(
        "quota_exceeded",
        `the server holds ${formatBytes(mine.bytes)} of your files for their recipients; ` +
          `this one (${formatBytes(size)}) would pass your quota of ${formatBytes(quota)}`,
      );
    }
    const budget = config.filesBudgetBytes;
    if (budget > 0) {
      const all = await this.store.held();
      const used = all.bytes + all.files * FILE_OVERHEAD_BYTES;
      if (used + size + FILE_OVERHEAD_BYTES > budget) {
        throw this.#storageFull(
          `the server holds ${formatBytes(used)} of files, its budget is ` +
            `${formatBytes(budget)}: no room for this one (${formatBytes(size)}) now; ` +
            "try again later",
        );
      }
    }
    await this.#checkFreeSpace(size, "no room for this file now");
  }

  /**
   * Refuses to write `bytes` more when that would leave less free space than the reserve
   * kept for the database (`minFreeBytes`).
   *
   * @throws {CommandError} `storage_full`, saying `what` happens.
   */
  async #checkFreeSpace(bytes: number, what: string): Promise<void> {
    const reserve = this.#hub.config.minFreeBytes;
    let free = await this.bytes.free.bytes();
    // Refused on a fresh measure only: in between, the estimate errs low.
    if (free !== null && free - bytes < reserve) free = await this.bytes.free.bytes(true);
    this.#noteReserve(free);
    if (free === null || free - bytes >= reserve) return;
    throw this.#storageFull(
      `the server's disk is nearly full (${formatBytes(free)} free, ` +
        `${formatBytes(reserve)} kept for messages): ${what}; try again later`,
    );
  }

  /**
   * Measures the free space (for the metrics' gauge) and says in the log when it falls
   * under the reserve (uploads are refused from then on) and when it is back over.
   */
  async #watchReserve(): Promise<void> {
    this.#noteReserve(await this.bytes.free.bytes());
  }

  /** Logs a crossing of the reserve by the free space `free` (null: unknown). */
  #noteReserve(free: number | null): void {
    if (free === null) return;
    const reserve = this.#hub.config.minFreeBytes;
    const under = free < reserve;
    if (under === this.#underReserve) return;
    this.#underReserve = under;
    const values = {
      dir: this.bytes.where,
      free: formatBytes(free),
      reserve: formatBytes(reserve),
    };
    if (under) {
      log.warn(
        "the disk of {dir} has {free} free, under the {reserve} kept for messages: " +
          "uploads are refused until space is freed",
        values,
      );
    } else {
      log.info("the disk of {dir} has {free} free again, over the {reserve} reserve", values);
    }
  }

  /** Bytes free on the disk of the files' folder, as last measured (null: unknown). */
  get freeBytes(): number | null {
    return this.bytes.free.last;
  }

  #storageFull(message: string): CommandError {
    this.#hub.metrics.counters.storageFull++;
    // Counted, not logged one by one: refusals come as fast as anyone sends. Crossing
    // the reserve is logged once by the sweep.
    log.debug("storage full: {message}", { message });
    return new CommandError("storage_full", message);
  }

  /** The record, or null when unknown or expired. */
  async #record(id: number): Promise<FileRecord | null> {
    const record = await this.store.get(id);
    if (record === null || record.expiresAt <= this.#hub.now()) return null;
    return record;
  }

  /** The record of a file offered to the caller. */
  async #incoming(ctx: CommandContext, id: number): Promise<FileRecord> {
    const record = await this.#record(id);
    if (record === null || record.toKey !== ctx.session.account.key) {
      throw new CommandError("no_file", `no file #${id} is offered to you`);
    }
    return record;
  }

  /** The upload of a record, from memory or resumed from its `.part` file on disk. */
  #upload(record: FileRecord): Promise<Upload> {
    const existing = this.#uploads.get(record.id);
    if (existing !== undefined) return Promise.resolve(existing);
    let opening = this.#opening.get(record.id);
    if (opening === undefined) {
      opening = this.#openUpload(record).finally(() => this.#opening.delete(record.id));
      this.#opening.set(record.id, opening);
    }
    return opening;
  }

  /**
   * Opens the upload of `record`. A drop of the file waits for its opening (see
   * {@linkcode FileService.#dropNow}), and an opening that finds the file dropped, or
   * being dropped, lets its bytes go (no `.part` is left that no record names).
   *
   * @throws {CommandError} `no_file` when the file was dropped.
   */
  async #openUpload(record: FileRecord): Promise<Upload> {
    if (this.#closed) throw new CommandError("shutting_down", "the server is shutting down");
    const dropped = () => new CommandError("no_file", `file #${record.id} was dropped`);
    if (this.#dropping.has(record.id)) throw dropped();
    const file = await this.bytes.openWriter(record.id, record.size);
    if (this.#dropping.has(record.id) || (await this.store.get(record.id)) === null) {
      file.close();
      await this.bytes.remove(record.id);
      this.bytes.purge?.();
      throw dropped();
    }
    try {
      const offset = file.size;
      if (offset > 0) log.info("resuming file #{id} at {offset}", { id: record.id, offset });
      const upload: Upload = {
        id: record.id,
        fromKey: record.fromKey,
        record,
        file,
        offset,
        lastActive: performance.now(),
        chain: Promise.resolve(),
        closed: false,
      };
      this.#uploads.set(record.id, upload);
      return upload;
    } catch (err) {
      file.close();
      throw err;
    }
  }

  /**
   * Makes a complete upload (all the announced bytes held) available: synced, marked
   * complete, recorded as uploaded. Its SHA-256 is the recipient's to check.
   */
  /**
   * Records an upload complete with its SHA-256. A reader may have every byte before
   * that is recorded (the sync takes a while): it is given the SHA-256 at once, and its
   * `file_done` is taken meanwhile.
   */
  async #completeWith(record: FileRecord, upload: Upload, hash: string): Promise<void> {
    const id = record.id;
    this.#hashes.set(id, hash);
    this.#wake(id);
    const finishing = this.#finishUpload({ ...record, sha256: hash }, upload);
    this.#finishing.set(id, finishing);
    try {
      await finishing;
    } finally {
      if (this.#finishing.get(id) === finishing) {
        this.#finishing.delete(id);
        this.#hashes.delete(id);
      }
    }
  }

  async #finishUpload(record: FileRecord, upload: Upload | null): Promise<void> {
    try {
      if (upload !== null) {
        await upload.file.sync();
        await this.#release(upload);
      } else {
        (await this.bytes.openWriter(record.id, 0)).close();
      }
      await this.bytes.complete(record.id, record.size);
      const expiresAt = this.#hub.now() + this.#hub.config.fileTtlSec * 1000;
      const changes = { uploaded: true, expiresAt, sha256: record.sha256 ?? undefined };
      if (!(await this.store.update(record.id, changes))) return;
    } catch (err) {
      // Received (its `file_done` came during the sync) or cancelled meanwhile: dropped,
      // nothing left to complete. A drop remembers the end first, then moves the bytes
      // away, then removes the record: marking the bytes complete can fail between the
      // last two, the record still there.
      if (await this.#endedMeanwhile(record.id)) return;
      if (err instanceof StoreError && err.code === "conflict") {
        // Fewer bytes held than the writer counted: a crash of the storage lost the last
        // ones after they were acknowledged (see FileBytes.complete). The upload was let
        // go: the sender offers the file again and resumes from the bytes kept.
        log.warn("file #{id}: {why}", { id: record.id, why: err.message });
        throw new CommandError(
          "bad_offset",
          `file #${record.id}: its last bytes were lost by the storage: offer it again to resume`,
        );
      }
      throw err;
    }
    this.#wake(record.id);
    log.info("file #{id} uploaded", { id: record.id });
  }

  /** Whether file `id` was dropped (or is being dropped) since its upload began. */
  async #endedMeanwhile(id: number): Promise<boolean> {
    if (this.#dropping.has(id)) return true;
    if ((await this.store.get(id).catch(() => undefined)) === null) return true;
    return (await this.store.ended(id).catch(() => null)) !== null;
  }

  /**
   * Where the sender of `record` (not recorded uploaded) resumes: the bytes held. When
   * they are all held, the server stopped between the last chunk's write and recording
   * the upload complete (a crash), or the last chunk is being finished: the upload is
   * completed now when its SHA-256 is known (announced, or given with this offer), else
   * the sender is asked for the last byte again, with the SHA-256 that its last chunk
   * carries ({@linkcode FileService.chunk} then completes it).
   */
  async #resumeAt(record: FileRecord, sha256: string | undefined): Promise<number> {
    const finishing = this.#finishing.get(record.id);
    if (finishing !== undefined) {
      await finishing.catch(() => {});
      const now = await this.store.get(record.id);
      if (now?.uploaded === true) return now.size;
    }
    const upload = await this.#upload(record);
    if (upload.offset < record.size) return upload.offset;
    if ((record.sha256 ?? sha256) === undefined) return record.size - 1;
    const done = await this.#serial(upload, () => this.#completeHeld(upload, sha256));
    return done.offset;
  }

  /**
   * Completes an upload whose bytes are all held but which is not recorded complete (see
   * {@linkcode FileService.#resumeAt}), as its last chunk does: `sha256` is the one the
   * sender gives now, for a file offered without it. Runs in the upload's turn.
   *
   * @throws {CommandError} `bad_message` without a SHA-256, `file_corrupt` when it is not
   * the one announced.
   */
  async #completeHeld(
    upload: Upload,
    sha256: string | undefined,
  ): Promise<{ file: number; offset: number; complete: true }> {
    const { id, record } = upload;
    if (upload.closed) {
      // Completed meanwhile (by the chunk or offer before in its turn), or let go.
      if ((await this.store.get(id))?.uploaded === true) {
        return { file: id, offset: record.size, complete: true };
      }
      throw new CommandError("no_file", `file #${id} is no longer being uploaded`);
    }
    const announced = record.sha256 ?? undefined;
    if (announced !== undefined && sha256 !== undefined && sha256 !== announced) {
      throw new CommandError(
        "file_corrupt",
        `file #${id}: its SHA-256 was announced as ${announced}, not ${sha256}`,
      );
    }
    const hash = announced ?? sha256;
    if (hash === undefined) {
      throw new CommandError(
        "bad_message",
        `file #${id}: the chunk that completes the upload carries the file's sha256`,
      );
    }
    log.info("file #{id}: every byte was held, not recorded complete: completing it", { id });
    await this.#completeWith(record, upload, hash);
    return { file: id, offset: record.size, complete: true };
  }

  /**
   * Answers a chunk of file `id` that its sender, `ctx`'s account, no longer uploads
   * here. A file that ended (remembered a while, see {@linkcode FileStore.recordEnd};
   * an expired one not yet swept is expired now) is told to the session again, since
   * a sender that was away missed it: received, the chunk is answered complete (every
   * byte had arrived); declined, cancelled or expired, it is refused with `file_gone`,
   * not to be offered again. Otherwise (an upload let go, a file never known or
   * forgotten) `no_file` with `message`: offering it again resumes it.
   *
   * @throws {CommandError} `file_gone` or `no_file`.
   */
  async #gone(
    ctx: CommandContext,
    id: number,
    message: string,
  ): Promise<{ file: number; offset: number; complete: true }> {
    const self = ctx.session.account.key;
    let ended = await this.store.ended(id);
    let told = false;
    if (ended === null) {
      const record = await this.store.get(id);
      if (record !== null && record.fromKey === self && record.expiresAt <= this.#hub.now()) {
        await this.#expire(record); // tells the sender's sessions, this one too
        ended = await this.store.ended(id);
        told = true;
      }
    }
    if (ended === null || ended.fromKey !== self) throw new CommandError("no_file", message);
    this.#retell(ctx, ended, !told);
    if (ended.ending === "received") return { file: id, offset: ended.size, complete: true };
    throw goneError(ended);
  }

  /**
   * Sends session `ctx` the event that told how file `ended` ended, once per session and
   * file (its sender may resend several chunks); without `send`, notes it told already.
   */
  #retell(ctx: CommandContext, ended: EndedFile, send = true): void {
    const told = this.#toldOf(ctx.session);
    if (told.has(ended.id)) return;
    told.add(ended.id);
    if (!send) return;
    const base = { file: ended.id, by: ended.by, name: ended.name };
    ctx.session.send(
      ended.ending === "received"
        ? { type: "file_completed", ...base }
        : ended.ending === "declined"
        ? { type: "file_declined", ...base }
        : {
          type: "file_cancelled",
          ...base,
          reason: ended.ending === "cancelled" ? "cancelled" : ended.ending,
        },
    );
  }

  /** The ended files `session` was told of. */
  #toldOf(session: object): Set<number> {
    let told = this.#retold.get(session);
    if (told === undefined) this.#retold.set(session, told = new Set());
    return told;
  }

  /**
   * Notes that the sessions of an account on this node are being told how a file ended
   * (`{account, file}` from {@linkcode ENDS_TOLD_TOPIC}): a chunk or offer of it they
   * send later is answered without telling them again.
   */
  #markTold(data: unknown): void {
    const { account, file } = (data ?? {}) as { account?: unknown; file?: unknown };
    if (typeof account !== "string" || typeof file !== "number") return;
    for (const session of this.#hub.online(account)?.sessions ?? []) {
      this.#toldOf(session).add(file);
    }
  }

  /** Bytes of a file the server holds now. */
  async #available(record: FileRecord): Promise<number> {
    if (record.uploaded) return record.size;
    const upload = this.#uploads.get(record.id);
    if (upload !== undefined) return upload.offset;
    // Completed meanwhile (maybe before the record says so): as many bytes as announced.
    return Math.min(record.size, (await this.bytes.size(record.id)) ?? 0);
  }

  async #openToRead(record: FileRecord): Promise<FileBytesReader> {
    const reader = await this.bytes.openReader(record.id, record.uploaded);
    if (reader === null) throw new CommandError("no_file", `file #${record.id} was dropped`);
    return reader;
  }

  /** How many times the readers of file `id` were woken (see {@linkcode FileService.#wakes}). */
  #wakeCount(id: number): number {
    return this.#wakes.get(id) ?? 0;
  }

  /**
   * Waits until file `id`'s readers are woken, or `ms`; at once when they were woken
   * since `seen` (a {@linkcode FileService.#wakeCount}) or `gone()`.
   */
  #waitForBytes(id: number, ms: number, gone: () => boolean, seen: number): Promise<void> {
    if (gone() || this.#closed || this.#wakeCount(id) !== seen) return Promise.resolve();
    return new Promise((resolve) => {
      let waiters = this.#waiters.get(id);
      if (waiters === undefined) {
        waiters = new Set();
        this.#waiters.set(id, waiters);
      }
      const set = waiters;
      const wake = () => {
        clearTimeout(timer);
        set.delete(wake);
        if (set.size === 0 && this.#waiters.get(id) === set) this.#waiters.delete(id);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      set.add(wake);
    });
  }

  #wake(id: number): void {
    if (this.#readers.has(id)) this.#wakes.set(id, this.#wakeCount(id) + 1);
    const waiters = this.#waiters.get(id);
    if (waiters === undefined) return;
    for (const wake of [...waiters]) wake();
  }

  /**
   * Forgets a file: its upload, its bytes on disk and in memory, its record; wakes its
   * readers. False when its record was gone already (another server sharing the files
   * dropped it first).
   */
  async #drop(record: FileRecord, ending?: FileEnding, by?: string): Promise<boolean> {
    this.#dropping.add(record.id);
    try {
      return await this.#dropNow(record, ending, by);
    } finally {
      this.#dropping.delete(record.id);
    }
  }

  async #dropNow(record: FileRecord, ending?: FileEnding, by?: string): Promise<boolean> {
    if (ending !== undefined) {
      // Remembered first: a sender coming back to resend learns it (see #gone).
      const ended: EndedFile = {
        id: record.id,
        fromKey: record.fromKey,
        to: record.to,
        name: record.name,
        size: record.size,
        ending,
        by: by ?? "server",
        endedAt: this.#hub.now(),
      };
      await this.store.recordEnd(ended).catch((err) =>
        log.warn("remembering how file #{id} ended failed: {err}", { id: record.id, err })
      );
    }
    // Not beside the opening of its upload: opened, it is let go here; else the opening
    // finds the file dropping and lets its bytes go (see #openUpload).
    await this.#opening.get(record.id)?.catch(() => {});
    const upload = this.#uploads.get(record.id);
    if (upload !== undefined) await this.#release(upload);
    this.#dropRecent(record.id);
    // An open reader would keep the deleted bytes' space taken.
    this.#closeParked(record.id);
    // The bytes go first: on a full disk, the record's removal may fail until their
    // space is freed (then it is tried again once it is; a record without bytes is
    // dropped again by a later sweep). Their space is freed in the background once the
    // record is gone: a recipient's `file_done` does not wait for a large file's deletion.
    await this.bytes.remove(record.id);
    let removed: boolean;
    try {
      removed = await this.store.remove(record.id);
    } catch (err) {
      if (!isDiskFull(err) || this.bytes.freed === undefined) throw err;
      await this.bytes.freed();
      removed = await this.store.remove(record.id);
    } finally {
      this.bytes.purge?.();
    }
    this.#wake(record.id);
    return removed;
  }

  /**
   * Up to `max` bytes from `at` that the upload of file `id` still holds in memory (a
   * view: copy it before anything is awaited), or null.
   */
  #held(id: number, at: number, max: number): Uint8Array | null {
    for (const chunk of this.#recent.get(id) ?? []) {
      const from = at - chunk.offset;
      if (from >= 0 && from < chunk.bytes.length) return chunk.bytes.subarray(from, from + max);
    }
    return null;
  }

  /** Gives back the buffers of the chunks of file `id` held for its readers. */
  #dropRecent(id: number): void {
    for (const chunk of this.#recent.get(id) ?? []) CHUNK_PAYLOADS.give(chunk.bytes);
    this.#recent.delete(id);
  }

  /**
   * Lets go of an upload's open file. Not waiting for its queued chunks: it may be
   * called from one of them; a chunk still queued finds the upload closed.
   */
  #release(upload: Upload): Promise<void> {
    upload.closed = true;
    if (this.#uploads.get(upload.id) === upload) this.#uploads.delete(upload.id);
    try {
      upload.file.close();
    } catch {
      // already closed
    }
    return Promise.resolve();
  }

  /** The frame buffers of file data sent through `port`, when it tells its progress. */
  #framePool(port: SessionPort, frameBytes: number): SentBufferPool | null {
    const outbound = port.outbound?.bind(port);
    if (outbound === undefined) return null;
    let pool = this.#framePools.get(port);
    // Buffers of one of the chunks' two sizes: a 512 KiB chunk's payload, or a large
    // one's for readers taking large frames.
    const size = (frameBytes <= DATA_FRAME_BYTES ? DATA_FRAME_BYTES : MAX_CHUNK_BYTES) +
      FRAME_ROOM;
    if (pool === undefined || pool.bufferSize < size) {
      // Its buffers come from the chunks' pool: warm memory, not new pages for every
      // connection that reads a file. A smaller pool replaced gives its buffers back.
      pool?.release();
      pool = new SentBufferPool(size, FRAME_BUFFERS, outbound, CHUNK_PAYLOADS);
      this.#framePools.set(port, pool);
    }
    return pool;
  }

  #serial<T>(upload: Upload, task: () => Promise<T>): Promise<T> {
    const run = upload.chain.then(task, task);
    upload.chain = run.catch(() => {});
    return run;
  }

  /** Tells the sender of `record` what its recipient, `by`, did with it. */
  async #answer(
    record: FileRecord,
    type: "file_accepted" | "file_declined" | "file_completed",
    by: string,
  ): Promise<void> {
    await this.#tell(record.fromKey, { type, file: record.id, by, name: record.name });
  }

  async #tell(accountKey: string, event: ServerMessage, from?: string): Promise<void> {
    if (
      event.type === "file_completed" || event.type === "file_declined" ||
      event.type === "file_cancelled"
    ) {
      // Marked before the event goes, here at once and on the other nodes through the bus
      // (on the same NATS connection, so marked before it arrives): the sessions it
      // reaches are not told it again.
      const told = { account: accountKey, file: event.file };
      this.#markTold(told);
      this.#hub.bus.send(ENDS_TOLD_TOPIC, told);
    }
    await this.#hub.broker.publish(userSubject(accountKey), {
      event,
      ...(from !== undefined ? { from } : {}),
    });
  }
}

function offerInfo(record: FileRecord): FileOffer {
  return {
    file: record.id,
    from: record.from,
    to: record.to,
    name: record.name,
    size: record.size,
    key: record.key,
    ...(record.sha256 !== null ? { sha256: record.sha256 } : {}),
    ts: record.createdAt,
  };
}

function offerEvent(record: FileRecord): ServerMessageMap["file_offer"] {
  return { type: "file_offer", ...offerInfo(record) };
}

function cancelledEvent(
  record: FileRecord,
  by: string,
  reason: string,
): ServerMessageMap["file_cancelled"] {
  return { type: "file_cancelled", file: record.id, by, name: record.name, reason };
}

/** The `file_gone` refusal of a file that ended other than received. */
function goneError(ended: EndedFile): CommandError {
  const how = ended.ending === "declined"
    ? `declined by ${ended.by}`
    : ended.ending === "expired"
    ? "expired on the server"
    : ended.ending === "corrupt"
    ? `received damaged by ${ended.by} (its SHA-256 did not match): send it again`
    : `cancelled by ${ended.by}`;
  return new CommandError("file_gone", `file #${ended.id} (${ended.name}) was ${how}`);
}

/** The command table's entries for file transfers (see the module documentation). */
export const fileCommands: {
  file_offer: CommandSpec<"file_offer">;
  file_chunk: CommandSpec<"file_chunk">;
  file_list: CommandSpec<"file_list">;
  file_accept: CommandSpec<"file_accept">;
  file_decline: CommandSpec<"file_decline">;
  file_read: CommandSpec<"file_read">;
  file_done: CommandSpec<"file_done">;
  file_cancel: CommandSpec<"file_cancel">;
} = {
  file_offer: {
    run: async (ctx, { to, name, size, key, sha256, file }) =>
      await fileServiceOf(ctx.hub).offer(ctx, to, name, size, key, sha256, file),
  },
  // Pipelined, two at most: the next chunk is read while one is written (in the order
  // they came, see FileService.chunk); each holds its body until written.
  file_chunk: {
    pipelined: true,
    maxInFlight: CHUNKS_IN_FLIGHT,
    run: (ctx, { file, offset, sha256 }) => fileServiceOf(ctx.hub).chunk(ctx, file, offset, sha256),
  },
  file_list: { run: async (ctx, { after }) => await fileServiceOf(ctx.hub).list(ctx, after) },
  file_accept: { run: async (ctx, { file }) => await fileServiceOf(ctx.hub).accept(ctx, file) },
  file_decline: { run: async (ctx, { file }) => await fileServiceOf(ctx.hub).decline(ctx, file) },
  // Pipelined: a read waiting for bytes not yet uploaded holds up nothing else.
  file_read: {
    pipelined: true,
    run: async (ctx, { file, offset, length, frame }) =>
      await fileServiceOf(ctx.hub).read(ctx, file, offset, length, frame),
  },
  file_done: { run: async (ctx, { file }) => await fileServiceOf(ctx.hub).done(ctx, file) },
  file_cancel: {
    run: async (ctx, { file, reason }) => await fileServiceOf(ctx.hub).cancel(ctx, file, reason),
  },
};
