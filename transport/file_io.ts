/**
 * Disk side of file transfers, shared by the server, the client and peer sessions:
 * streaming SHA-256 of files, reading a file to send in chunks, and receiving one into
 * a `.part` file that is renamed once its hash matches.
 *
 * Memory stays bounded whatever the size of the file: files are read and hashed
 * through one buffer at a time, never whole. SHA-256 is computed incrementally with
 * `node:crypto` (WebCrypto has no incremental digest).
 *
 * @module
 */

import { createHash, type Hash } from "node:crypto";
import { basename, join, resolve } from "node:path";
import {
  MAX_OFFERED_NAME_BYTES,
  MAX_SAFE_NAME_BYTES,
  numberedFileName,
  partFileName,
  safeFileName,
} from "../protocol/file_names.ts";
import { encodedSize } from "../protocol/json_size.ts";
import { BACKGROUND_SYNC_BYTES, BackgroundSync } from "./background_sync.ts";

/** Bytes read from disk at a time while hashing. */
const HASH_BUFFER_BYTES = 256 * 1024;
/** Most alternatives (`name (n).ext`) tried before giving up on a free name. */
const MAX_NAME_ATTEMPTS = 10_000;

/**
 * Stable codes of {@linkcode FileIoError}.
 *
 * - `not_a_file`: the path to send is missing, a folder or a device.
 * - `unreadable` / `unwritable`: the system refused access, or the disk failed.
 * - `bad_offset`: data arrived for a place in the file that does not follow what is written.
 * - `too_long`: data would make the file longer than announced.
 * - `corrupt`: the received bytes do not have the announced SHA-256.
 * - `no_free_name`: every alternative name in the download folder is taken.
 */
export type FileIoErrorCode =
  | "not_a_file"
  | "unreadable"
  | "unwritable"
  | "bad_offset"
  | "too_long"
  | "corrupt"
  | "no_free_name";

/**
 * A failure reading, writing or checking a transferred file.
 *
 * @example
 * ```ts
 * import { FileIoError } from "./file_io.ts";
 * new FileIoError("corrupt", "SHA-256 mismatch").code; // "corrupt"
 * ```
 */
export class FileIoError extends Error {
  /** The stable, machine-readable reason. */
  readonly code: FileIoErrorCode;

  /** Creates the error. */
  constructor(code: FileIoErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "FileIoError";
    this.code = code;
  }
}

/** The SHA-256 of zero bytes, in hex. */
export const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

let sha256Count = 0;

/** A new incremental SHA-256. */
export function newSha256(): Hash {
  sha256Count++;
  return createHash("sha256");
}

/**
 * Incremental SHA-256 started so far in this process by this module (a receiver that
 * does not hash what it writes starts none: {@linkcode IncomingFileInit.hashing}).
 */
export function sha256Started(): number {
  return sha256Count;
}

/** Something to read bytes from: a `Deno.FsFile`, a `Deno.Conn`. */
export interface ByteSource {
  /** Reads into `p`; resolves to the byte count, or `null` at the end. */
  read(p: Uint8Array): Promise<number | null>;
}

/** Something to write bytes to: a `Deno.FsFile`, a `Deno.Conn`. */
export interface ByteSink {
  /** Writes from `p`; resolves to the byte count written (possibly fewer than all). */
  write(p: Uint8Array): Promise<number>;
}

/**
 * Reads from `file`'s current position until `buffer` is full or the file (or stream)
 * ends; returns the bytes read.
 */
export async function readFull(file: ByteSource, buffer: Uint8Array): Promise<number> {
  let filled = 0;
  while (filled < buffer.length) {
    const n = await file.read(buffer.subarray(filled));
    if (n === null) break;
    filled += n;
  }
  return filled;
}

/** Writes all of `bytes` at `file`'s current position (or to the stream). */
export async function writeFull(file: ByteSink, bytes: Uint8Array): Promise<void> {
  let written = 0;
  while (written < bytes.length) written += await file.write(bytes.subarray(written));
}

/**
 * Feeds the first `limit` bytes of an open file (from its start) into `hash`, through
 * two bounded buffers: the next block is read while the current one is hashed. Returns
 * the bytes hashed (fewer when the file is shorter) and leaves the file positioned
 * after them. `onBlock` hears the bytes hashed so far after each block. Once `signal`
 * is aborted it stops before the next block, with the signal's reason, no read left
 * running on the file.
 */
export async function hashPrefix(
  file: Deno.FsFile,
  hash: Hash,
  limit: number,
  onBlock?: (hashed: number) => void,
  signal?: AbortSignal,
): Promise<number> {
  await file.seek(0, Deno.SeekMode.Start);
  const buffers = [new Uint8Array(HASH_BUFFER_BYTES), new Uint8Array(HASH_BUFFER_BYTES)];
  const readBlock = async (buffer: Uint8Array, from: number): Promise<number> => {
    const want = Math.min(buffer.length, limit - from);
    return want <= 0 ? 0 : await readFull(file, buffer.subarray(0, want));
  };
  let done = 0;
  let current = 0;
  let reading = readBlock(buffers[0], 0);
  while (true) {
    const n = await reading;
    if (n === 0) break;
    signal?.throwIfAborted();
    const block = buffers[current];
    const end = done + n;
    const full = n === Math.min(block.length, limit - done);
    current ^= 1;
    // Only one read runs at a time; it goes on while this block is hashed.
    reading = full ? readBlock(buffers[current], end) : Promise.resolve(0);
    hash.update(block.subarray(0, n));
    done = end;
    onBlock?.(done);
  }
  return done;
}

/**
 * The SHA-256 (lowercase hex) and size of a file, read through one bounded buffer.
 *
 * @throws {FileIoError} `not_a_file` or `unreadable`.
 * @example
 * ```ts ignore
 * import { sha256File } from "./file_io.ts";
 * const { sha256, size } = await sha256File("report.pdf");
 * ```
 */
export async function sha256File(path: string): Promise<{ sha256: string; size: number }> {
  const file = openToSend(path);
  try {
    const hash = newSha256();
    const size = await hashPrefix(file, hash, Number.MAX_SAFE_INTEGER);
    return { sha256: hash.digest("hex"), size };
  } finally {
    file.close();
  }
}

/**
 * Opens a regular file to read. Synchronously: a file's metadata is in memory (or one
 * disk read away), where an asynchronous call costs a hop to another thread and back,
 * ~0.5-1 ms each on a virtual machine here, in the way of a transfer's start.
 */
function openToSend(path: string): Deno.FsFile {
  let info: Deno.FileInfo;
  try {
    info = Deno.statSync(path);
  } catch (err) {
    throw describeReadError(err, path);
  }
  if (!info.isFile) throw new FileIoError("not_a_file", `${path} is not a file`);
  try {
    return Deno.openSync(path, { read: true });
  } catch (err) {
    throw describeReadError(err, path);
  }
}

function describeReadError(err: unknown, path: string): FileIoError {
  if (err instanceof Deno.errors.NotFound) {
    return new FileIoError("not_a_file", `no such file: ${path}`, { cause: err });
  }
  if (err instanceof Deno.errors.PermissionDenied || err instanceof Deno.errors.NotCapable) {
    return new FileIoError("unreadable", `cannot read ${path}: permission denied`, {
      cause: err,
    });
  }
  return new FileIoError("unreadable", `cannot read ${path}: ${errorText(err)}`, { cause: err });
}

function describeWriteError(err: unknown, path: string): FileIoError {
  if (err instanceof FileIoError) return err;
  if (err instanceof Deno.errors.PermissionDenied || err instanceof Deno.errors.NotCapable) {
    return new FileIoError("unwritable", `cannot write ${path}: permission denied`, {
      cause: err,
    });
  }
  return new FileIoError("unwritable", `cannot write ${path}: ${errorText(err)}`, { cause: err });
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Bytes of each end of a file that {@linkcode FileSource.resumeKey} samples. */
const RESUME_KEY_SAMPLE_BYTES = 64 * 1024;

/**
 * A file to send: its name (the last component of its path), size and SHA-256,
 * computed when it is opened ({@linkcode FileSource.open}), or not at all when the
 * sender hashes while it sends ({@linkcode FileSource.openToStream}), and chunks read
 * on demand.
 *
 * @example
 * ```ts ignore
 * import { FileSource } from "./file_io.ts";
 * await using source = await FileSource.open("report.pdf");
 * const first = await source.read(0, 64 * 1024);
 * ```
 */
export class FileSource implements AsyncDisposable {
  /** The path as given. */
  readonly path: string;
  /**
   * The name offered to the other side: the path's last component, made safe
   * (`safeFileName`) when it is longer than an offer may be (`MAX_OFFERED_NAME_BYTES`).
   */
  readonly name: string;
  /** Bytes in the file when it was opened. */
  readonly size: number;
  /**
   * SHA-256 of the content when it was opened, lowercase hex; null when opened without
   * hashing ({@linkcode FileSource.openToStream}).
   */
  readonly sha256: string | null;
  readonly #file: Deno.FsFile;
  #position = 0;
  #closed = false;

  private constructor(path: string, file: Deno.FsFile, size: number, sha256: string | null) {
    this.path = path;
    const name = basename(path);
    this.name = encodedSize(name) - 2 > MAX_OFFERED_NAME_BYTES ? safeFileName(name) : name;
    this.#file = file;
    this.size = size;
    this.sha256 = sha256;
  }

  /**
   * Opens a file and hashes it (one pass through a bounded buffer). `onProgress` hears
   * the bytes hashed so far, and the file's size, after each block (a large file takes
   * a while: see `hashingReporter`).
   *
   * @throws {FileIoError} `not_a_file` or `unreadable`.
   */
  static async open(
    path: string,
    onProgress?: (hashed: number, size: number) => void,
  ): Promise<HashedFileSource> {
    const file = openToSend(path);
    try {
      const hash = newSha256();
      const expected = onProgress === undefined ? 0 : (await file.stat()).size;
      const size = await hashPrefix(
        file,
        hash,
        Number.MAX_SAFE_INTEGER,
        onProgress && ((hashed) => onProgress(hashed, Math.max(expected, hashed))),
      );
      const source = new FileSource(path, file, size, hash.digest("hex"));
      source.#position = size;
      return source as HashedFileSource;
    } catch (err) {
      file.close();
      throw err instanceof FileIoError ? err : describeReadError(err, path);
    }
  }

  /**
   * Opens a file to send without reading it (`sha256` is null): for a sender that
   * hashes the bytes as it reads them to send (see {@linkcode FileSource.hashPrefix}),
   * so that the file is read once, not once to hash and once to send.
   *
   * @throws {FileIoError} `not_a_file` or `unreadable`.
   */
  static openToStream(path: string): Promise<FileSource> {
    try {
      const file = openToSend(path);
      try {
        return Promise.resolve(new FileSource(path, file, file.statSync().size, null));
      } catch (err) {
        file.close();
        throw err instanceof FileIoError ? err : describeReadError(err, path);
      }
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * A cheap identity of the content, lowercase hex (64 digits): the SHA-256 of the
   * size and of the first and last {@linkcode RESUME_KEY_SAMPLE_BYTES} bytes. Offered
   * instead of the SHA-256 when the sender hashes while sending, it names the
   * receiver's `.part` file, so that offering the same file again resumes it; a file
   * changed elsewhere resumes too, and fails the final SHA-256 check (then starts over).
   *
   * @throws {FileIoError} `unreadable`, or `corrupt` when the file shrank.
   */
  resumeKey(): Promise<string> {
    const hash = newSha256();
    const size = new Uint8Array(8);
    new DataView(size.buffer).setBigUint64(0, BigInt(this.size));
    hash.update("chat-file-resume-key/1");
    hash.update(size);
    const head = Math.min(this.size, RESUME_KEY_SAMPLE_BYTES);
    // Both samples through one buffer (hashed before it is read into again): fresh
    // memory costs more to touch than to hash here.
    const sample = new Uint8Array(head);
    try {
      hash.update(this.#readSync(0, sample));
      const tailFrom = Math.max(head, this.size - RESUME_KEY_SAMPLE_BYTES);
      hash.update(this.#readSync(tailFrom, sample.subarray(0, this.size - tailFrom)));
    } catch (err) {
      return Promise.reject(err);
    }
    return Promise.resolve(hash.digest("hex"));
  }

  /**
   * An incremental SHA-256 fed with the first `limit` bytes of the file (a sender
   * resuming at `limit` carries it on with the bytes it sends). `onProgress` hears the
   * bytes hashed so far after each block.
   *
   * @throws {FileIoError} `unreadable`, or `corrupt` when the file is shorter.
   */
  async hashPrefix(limit: number, onProgress?: (hashed: number) => void): Promise<Hash> {
    const hash = newSha256();
    if (limit <= 0) return hash;
    try {
      const n = await hashPrefix(this.#file, hash, limit, onProgress);
      this.#position = n;
      if (n < limit) {
        throw new FileIoError("corrupt", `${this.path} changed while it was being sent`);
      }
      return hash;
    } catch (err) {
      throw err instanceof FileIoError ? err : describeReadError(err, this.path);
    }
  }

  /**
   * Reads up to `length` bytes at `offset` (fewer at the end) into `into` when given
   * (returning the filled part of it: reuse one buffer for a whole file), else into a
   * new array.
   *
   * @throws {FileIoError} `unreadable`, or `corrupt` when the file shrank since it was
   * opened (it changed while being sent).
   */
  async read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    const want = Math.max(0, Math.min(length, this.size - offset, into?.length ?? Infinity));
    const buffer = into === undefined ? new Uint8Array(want) : into.subarray(0, want);
    try {
      if (this.#position !== offset) {
        await this.#file.seek(offset, Deno.SeekMode.Start);
        this.#position = offset;
      }
      const n = await readFull(this.#file, buffer);
      this.#position += n;
      if (n < want) {
        throw new FileIoError("corrupt", `${this.path} changed while it was being sent`);
      }
      return buffer;
    } catch (err) {
      throw err instanceof FileIoError ? err : describeReadError(err, this.path);
    }
  }

  /**
   * {@linkcode FileSource.read}, synchronously: for a sender that reads chunk after chunk
   * of a file, most often from the page cache, where an asynchronous read costs a hop to
   * another thread and back per chunk (two wake-ups, ~0.3-0.5 ms of CPU here) for a copy
   * of about as long (a cold read from a slow disk holds the caller's thread meanwhile).
   *
   * @throws {FileIoError} `unreadable`, or `corrupt` when the file shrank since it was
   * opened.
   */
  readSync(offset: number, length: number, into?: Uint8Array): Uint8Array {
    const want = Math.max(0, Math.min(length, this.size - offset, into?.length ?? Infinity));
    const buffer = into === undefined ? new Uint8Array(want) : into.subarray(0, want);
    return this.#readSync(offset, buffer);
  }

  /**
   * Fills `buffer` from `offset` synchronously (for the resume key's two samples of
   * 64 KiB: an asynchronous read costs more in hops between threads than the read).
   */
  #readSync(offset: number, buffer: Uint8Array): Uint8Array {
    const length = buffer.length;
    try {
      if (this.#position !== offset) this.#file.seekSync(offset, Deno.SeekMode.Start);
      let n = 0;
      while (n < length) {
        const got = this.#file.readSync(buffer.subarray(n));
        if (got === null) break;
        n += got;
      }
      this.#position = offset + n;
      if (n < length) {
        throw new FileIoError("corrupt", `${this.path} changed while it was being sent`);
      }
      return buffer;
    } catch (err) {
      if (!(err instanceof FileIoError)) this.#position = -1; // where it stopped is unknown
      throw err instanceof FileIoError ? err : describeReadError(err, this.path);
    }
  }

  /** Closes the file. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#file.close();
  }

  /** Closes the file; for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    this.close();
    return Promise.resolve();
  }
}

/** A {@linkcode FileSource} opened with its SHA-256 ({@linkcode FileSource.open}). */
export type HashedFileSource = FileSource & { readonly sha256: string };

/** What {@linkcode IncomingFile.open} needs: the offer as the sender described it. */
export interface IncomingFileInit {
  /** The download folder (created when missing). */
  dir: string;
  /** The name the sender offered (made safe here). */
  offeredName: string;
  /** Bytes announced. */
  size: number;
  /**
   * SHA-256 announced, lowercase hex; null when the sender sends it after the last
   * byte (then given to {@linkcode IncomingFile.finish}, and `key` names the `.part`).
   */
  sha256: string | null;
  /** What names the `.part` file when `sha256` is null (64 hex digits). */
  key?: string;
  /**
   * Whether the bytes are hashed as they are written, for {@linkcode IncomingFile.finish}
   * to check. Default true. Without it (a channel that authenticates every byte in order,
   * peer protocol version 5 on) only the bytes a `.part` file already holds are hashed, once,
   * at open: {@linkcode IncomingFile.resumedSha256}, for the sender to compare.
   */
  hashing?: boolean;
  /** Bytes between two background syncs. Default {@linkcode BACKGROUND_SYNC_BYTES}. */
  backgroundSyncBytes?: number;
}

/**
 * A file being received into a download folder, safely:
 *
 * - its local name is {@linkcode safeFileName} of the offered one, joined to the
 *   folder: nothing is ever written outside it;
 * - bytes go to `NAME.<hash prefix>.part`; a `.part` file left by an interrupted
 *   transfer of the same content is picked up where it ended (its bytes are hashed
 *   again to carry on the incremental SHA-256);
 * - every {@linkcode BACKGROUND_SYNC_BYTES} written, a sync of the `.part` file starts
 *   in the background (through a second handle: one handle's operations run one after
 *   another), so that the sync in {@linkcode IncomingFile.finish} has little left to do;
 * - {@linkcode IncomingFile.finish} checks the SHA-256 and only then renames the
 *   `.part` file to the first free name of `NAME`, `NAME (1).ext`, `NAME (2).ext`...:
 *   an existing file is never overwritten (the name is claimed with an exclusive
 *   create first).
 *
 * Nothing received is ever opened, other than for writing, or executed.
 */
export class IncomingFile {
  /** The download folder, absolute. */
  readonly dir: string;
  /** The safe local name (the final file may get a ` (n)` suffix). */
  readonly safeName: string;
  /** The `.part` file's path. */
  readonly partPath: string;
  /** Bytes announced. */
  readonly size: number;
  /** SHA-256 announced; null when it comes after the last byte (to `finish`). */
  readonly sha256: string | null;
  /** Whether written bytes are hashed ({@linkcode IncomingFileInit.hashing}). */
  readonly hashing: boolean;
  /**
   * The SHA-256 (lowercase hex) of the bytes the `.part` file held when opened, the
   * resumed prefix; null when it held none.
   */
  resumedSha256: string | null = null;
  #file: Deno.FsFile | null;
  /**
   * The SHA-256 of the bytes written (with {@linkcode hashing}) or resumed; null until
   * there are any to hash: the first `createHash` of a process loads its module (~0.5 ms
   * on the receiver's way from an offer to its accept).
   */
  #hash: Hash | null;
  #offset: number;
  /** Bytes the `.part` file held when opened, not hashed yet ({@linkcode resume}). */
  #held = 0;
  /** A write failed: the hash is ahead of the file, nothing more can be written. */
  #failure: FileIoError | null = null;
  #chain: Promise<unknown> = Promise.resolve();
  /** The syncs started in the background as the file is written. */
  readonly #syncs: BackgroundSync;

  private constructor(init: IncomingFileInit, dir: string, safeName: string, file: Deno.FsFile) {
    this.dir = dir;
    this.safeName = safeName;
    this.partPath = join(dir, partFileName(safeName, partKey(init)));
    this.size = init.size;
    this.sha256 = init.sha256;
    this.hashing = init.hashing ?? true;
    this.#file = file;
    this.#hash = this.hashing ? newSha256() : null;
    this.#offset = 0;
    this.#syncs = new BackgroundSync(
      this.partPath,
      init.backgroundSyncBytes ?? BACKGROUND_SYNC_BYTES,
    );
  }

  /** Syncs started in the background so far. */
  get backgroundSyncs(): number {
    return this.#syncs.started;
  }

  /**
   * Opens (or resumes) the `.part` file of an offered file in `init.dir`: {@linkcode openNow},
   * then {@linkcode resume} when the file holds bytes.
   *
   * @throws {FileIoError} `unwritable` when the folder or the file cannot be written.
   */
  static async open(init: IncomingFileInit): Promise<IncomingFile> {
    const incoming = IncomingFile.openNow(init);
    if (incoming.resuming) await incoming.resume();
    return incoming;
  }

  /**
   * Opens the `.part` file of an offered file in `init.dir` synchronously. A new one (or
   * an empty one, or one longer than announced, emptied) is ready at once; the bytes of
   * one that holds some are hashed by {@linkcode resume} first ({@linkcode resuming}
   * until then: nothing can be written meanwhile), which may take a while.
   *
   * @example
   * ```ts ignore
   * const file = IncomingFile.openNow({ dir: "dl", offeredName: "a.bin", size: 3, sha256: null, key });
   * if (file.resuming) await file.resume(); // file.offset: the bytes held, hashed
   * ```
   *
   * @throws {FileIoError} `unwritable` when the folder or the file cannot be written.
   */
  static openNow(init: IncomingFileInit): IncomingFile {
    const dir = resolve(init.dir);
    const safeName = safeFileName(init.offeredName, MAX_SAFE_NAME_BYTES);
    const partPath = join(dir, partFileName(safeName, partKey(init)));
    let file: Deno.FsFile;
    let created: boolean;
    // The folder, the `.part` file and its size synchronously: metadata, where each
    // asynchronous call costs a hop to another thread and back (~0.5-1 ms on a virtual
    // machine here), five of them between an offer and its accept. A resumed prefix is
    // hashed asynchronously (it may be large: `resume`). A new `.part` file is created
    // exclusively (which never follows a link) and is empty: nothing to look up before
    // or after, where the first lookups of a process cost ~1 ms here (a missing file's
    // error, the first file information built).
    try {
      Deno.mkdirSync(dir, { recursive: true });
      const fresh = createNewOrNull(partPath);
      created = fresh !== null;
      if (fresh !== null) {
        file = fresh;
      } else {
        const existing = lstatOrNull(partPath);
        if (existing !== null && !existing.isFile) {
          throw new FileIoError("unwritable", `${partPath} exists and is not a regular file`);
        }
        file = Deno.openSync(partPath, { read: true, write: true, create: true });
      }
    } catch (err) {
      throw describeWriteError(err, partPath);
    }
    const incoming = new IncomingFile(init, dir, safeName, file);
    if (created) return incoming;
    try {
      const have = file.statSync().size;
      if (have > init.size) file.truncateSync(0);
      else incoming.#held = have;
    } catch (err) {
      file.close();
      throw describeWriteError(err, partPath);
    }
    return incoming;
  }

  /**
   * Whether the bytes the `.part` file held when opened ({@linkcode openNow}) are still
   * to be hashed by {@linkcode resume}.
   */
  get resuming(): boolean {
    return this.#held > 0;
  }

  /**
   * Hashes the bytes the `.part` file held when opened, to write on after them:
   * {@linkcode offset} and {@linkcode resumedSha256} are theirs once it resolves. The
   * file is closed when it fails, and when `signal` is aborted before the bytes are all
   * hashed (rejected with the signal's reason; the `.part` file is left as it was).
   *
   * @throws {FileIoError} `unwritable` when the file cannot be read.
   */
  resume(signal?: AbortSignal): Promise<void> {
    return this.#serial(async () => {
      const have = this.#held;
      if (have === 0) return;
      const file = this.#file;
      if (file === null) throw new FileIoError("unwritable", `${this.partPath} is closed`);
      try {
        const hash = this.#hash ??= newSha256();
        this.#offset = await hashPrefix(file, hash, have, undefined, signal);
        if (this.#offset > 0) this.resumedSha256 = hash.copy().digest("hex");
        file.seekSync(this.#offset, Deno.SeekMode.Start);
        this.#held = 0;
      } catch (err) {
        file.close();
        this.#file = null;
        if (signal?.aborted && err === signal.reason) throw err;
        throw describeWriteError(err, this.partPath);
      }
    });
  }

  /** Bytes received and written so far: the offset to ask the sender for. */
  get offset(): number {
    return this.#offset;
  }

  /** Whether every announced byte is written. */
  get complete(): boolean {
    return this.#offset === this.size;
  }

  /**
   * Writes bytes received for position `offset`. Bytes already written (a resent
   * chunk) are skipped; a gap is refused.
   *
   * @throws {FileIoError} `bad_offset` (a gap), `too_long`, `unwritable`.
   */
  write(offset: number, bytes: Uint8Array): Promise<void> {
    return this.#serial(() => {
      const file = this.#open();
      if (offset > this.#offset) {
        throw new FileIoError(
          "bad_offset",
          `data for offset ${offset} arrived while ${this.#offset} bytes are written`,
        );
      }
      const fresh = bytes.subarray(Math.min(bytes.length, this.#offset - offset));
      if (fresh.length === 0) return;
      if (this.#offset + fresh.length > this.size) {
        throw new FileIoError(
          "too_long",
          `more data than the ${this.size} bytes announced`,
        );
      }
      // Written synchronously: a copy into the page cache, about as long as the SHA-256
      // update after it on this thread, where an asynchronous write costs a hop to
      // another thread and back per chunk (15 ms of CPU per 32 MiB here, on the busiest
      // side of a transfer). The disk is reached by the syncs (in the background, then
      // before the rename). A write that fails may leave part of the bytes in the file,
      // so this file fails for good; opening it again resumes from the bytes on disk,
      // hashed again.
      try {
        for (let at = 0; at < fresh.length;) at += file.writeSync(fresh.subarray(at));
      } catch (err) {
        this.#failure = describeWriteError(err, this.partPath);
        throw this.#failure;
      }
      if (this.hashing) this.#hash!.update(fresh);
      this.#offset += fresh.length;
      this.#syncs.wrote(fresh.length);
    });
  }

  /** Starts over from byte 0 (after a SHA-256 mismatch). */
  restart(): Promise<void> {
    return this.#serial(async () => {
      const file = this.#open();
      try {
        await file.truncate(0);
        await file.seek(0, Deno.SeekMode.Start);
      } catch (err) {
        throw describeWriteError(err, this.partPath);
      }
      this.#hash = this.hashing ? newSha256() : null;
      this.#offset = 0;
      this.resumedSha256 = null;
    });
  }

  /**
   * Checks the SHA-256 of the complete file (`expected`, or the one announced at the
   * offer; nothing to check without {@linkcode IncomingFileInit.hashing}, whose caller
   * passes null) and moves it to its final name; returns the final path. On a mismatch the
   * `.part` file is emptied (ready for {@linkcode IncomingFile.restart}) and `corrupt`
   * is thrown.
   *
   * @throws {FileIoError} `corrupt`, `bad_offset` (not complete), `no_free_name`, `unwritable`.
   */
  finish(expected: string | null = this.sha256): Promise<string> {
    return this.#serial(async () => {
      const file = this.#open();
      if (this.#offset !== this.size) {
        throw new FileIoError(
          "bad_offset",
          `only ${this.#offset} of ${this.size} bytes are received`,
        );
      }
      if (expected === null && this.hashing) {
        throw new RangeError("no SHA-256 to check the file against");
      }
      const digest = expected === null ? null : (this.#hash ?? newSha256()).copy().digest("hex");
      if (digest !== expected) {
        await file.truncate(0);
        await file.seek(0, Deno.SeekMode.Start);
        this.#hash = this.hashing ? newSha256() : null;
        this.#offset = 0;
        throw new FileIoError(
          "corrupt",
          `SHA-256 mismatch: received ${digest}, announced ${expected}`,
        );
      }
      try {
        await this.#syncs.syncFinally(file);
      } catch (err) {
        // The bytes may not be on the disk: the file is not saved (the .part stays).
        throw describeWriteError(err, this.partPath);
      }
      file.close();
      this.#file = null;
      let target: string | null = null;
      try {
        target = await claimFreeName(this.dir, this.safeName);
        await Deno.rename(this.partPath, target);
        return target;
      } catch (err) {
        if (target !== null) await Deno.remove(target).catch(() => {});
        throw describeWriteError(err, this.partPath);
      }
    });
  }

  /** Closes the `.part` file, keeping it for a later resume. */
  close(): Promise<void> {
    return this.#serial(async () => {
      await this.#syncs.settle();
      this.#file?.close();
      this.#file = null;
    });
  }

  /** Closes and deletes the `.part` file (a declined or abandoned transfer). */
  discard(): Promise<void> {
    return this.#serial(async () => {
      await this.#syncs.settle();
      this.#file?.close();
      this.#file = null;
      await Deno.remove(this.partPath).catch(() => {});
    });
  }

  #open(): Deno.FsFile {
    if (this.#failure !== null) throw this.#failure;
    if (this.#held > 0) throw new RangeError(`${this.partPath}: the bytes held are not hashed yet`);
    if (this.#file === null) {
      throw new FileIoError("unwritable", `${this.partPath} is closed`);
    }
    return this.#file;
  }

  #serial<T>(task: () => T | Promise<T>): Promise<T> {
    const run = this.#chain.then(task, task);
    this.#chain = run.catch(() => {});
    return run;
  }
}

/** What names an incoming file's `.part` file: its SHA-256, else its resume key. */
function partKey(init: IncomingFileInit): string {
  const key = init.sha256 ?? init.key;
  if (key === undefined) throw new RangeError("an incoming file needs its SHA-256 or a key");
  return key;
}

/**
 * Creates an empty file at the first free name among `name`, `name (1).ext`, ... in
 * `dir` (exclusive create: an existing file, or a link, is never touched) and returns
 * its path.
 *
 * @throws {FileIoError} `no_free_name`, or the system's error.
 */
export async function claimFreeName(dir: string, name: string): Promise<string> {
  for (let n = 0; n < MAX_NAME_ATTEMPTS; n++) {
    const path = join(dir, numberedFileName(name, n));
    try {
      const file = await Deno.open(path, { write: true, createNew: true });
      file.close();
      return path;
    } catch (err) {
      if (err instanceof Deno.errors.AlreadyExists) continue;
      throw err;
    }
  }
  throw new FileIoError("no_free_name", `no free name for ${name} in ${dir}`);
}

/** Creates the file at `path` exclusively; null when something (a file, a link) is there. */
function createNewOrNull(path: string): Deno.FsFile | null {
  try {
    return Deno.openSync(path, { read: true, write: true, createNew: true });
  } catch (err) {
    if (err instanceof Deno.errors.AlreadyExists) return null;
    throw err;
  }
}

function lstatOrNull(path: string): Deno.FileInfo | null {
  try {
    return Deno.lstatSync(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
}

/**
 * The default download folder: `Downloads` in the user's home folder (`HOME`, or
 * `USERPROFILE` on Windows); the current folder's `Downloads` when neither is known.
 */
export function defaultDownloadDir(): string {
  const home = envVar("HOME") ?? envVar("USERPROFILE");
  return home !== undefined && home !== "" ? join(home, "Downloads") : resolve("Downloads");
}

function envVar(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined; // no permission to read it
  }
}
