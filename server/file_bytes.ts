/**
 * Storage of the bytes of files held by the server for their recipients, behind a small
 * interface (their metadata is a {@linkcode FileStore}'s, see `file_store.ts`):
 *
 * - the embedded default keeps them as files in the server's file folder
 *   (`disk_file_bytes.ts`: `<id>.part` while uploading, `<id>.file` once complete);
 * - several servers share them through PostgreSQL (`postgres_file_bytes.ts`), so that a
 *   file uploaded on one node is read, and resumed, on another.
 *
 * Uploads only ever append: a writer opened on a file's bytes carries on from the bytes
 * held (resuming an interrupted upload) and adds the next chunk at the end. Readers read
 * any range of what is held, also while the upload goes on.
 *
 * A reader waiting for bytes still being uploaded is woken by the writer when both are on
 * the same server (`files.ts`). When another server may be writing them,
 * {@linkcode FileBytes.pollMs} says how often the reader asks again for the size held: a
 * bounded poll of the store, which a notification (e.g. from a cluster bus) could later
 * replace without changing this interface.
 *
 * @module
 */

/** The bytes of one file being uploaded, open for appending. */
export interface FileBytesWriter {
  /** Bytes held so far: where the next {@linkcode FileBytesWriter.append} writes. */
  readonly size: number;
  /**
   * Writes `bytes` at {@linkcode FileBytesWriter.size}. The array may be reused once the
   * promise settles. After a failure the writer is unusable: close it, and open the file
   * again to resume from the bytes held (a full disk rejects with an error that
   * `isDiskFull` recognises).
   *
   * @throws {StoreError} `conflict` when another writer appended to the same file meanwhile.
   */
  append(bytes: Uint8Array): Promise<void>;
  /** Makes the bytes written durable (best effort). */
  sync(): Promise<void>;
  /** Lets go of the file, keeping its bytes. */
  close(): void;
}

/** The bytes of one file, open for reading. */
export interface FileBytesReader {
  /**
   * Reads the bytes held from `offset` into `into`, until it is full or the bytes held
   * end; returns how many it read.
   */
  read(offset: number, into: Uint8Array): Promise<number>;
  /** Lets go of the file. */
  close(): void;
}

/**
 * Free space where the bytes are written, as well as known (`disk_space.ts`'s
 * `FreeSpace` for a folder; unknown for a database server's disk).
 */
export interface FreeSpaceGauge {
  /**
   * Bytes free now, as well as known; null when unknown. `fresh` measures now (an
   * estimate may err low), before a refusal.
   */
  bytes(fresh?: boolean): Promise<number | null>;
  /** The last answer of {@linkcode FreeSpaceGauge.bytes}. */
  readonly last: number | null;
  /** Counts `n` bytes written since the last measure. */
  wrote(n: number): void;
}

/** A gauge for storage whose free space cannot be measured from here. */
export const UNKNOWN_FREE_SPACE: FreeSpaceGauge = {
  bytes: () => Promise.resolve(null),
  last: null,
  wrote: () => {},
};

/** Storage of held files' bytes, by file id. */
export interface FileBytes {
  /** Where the bytes are, for messages and logs (a folder, or "PostgreSQL"). */
  readonly where: string;
  /**
   * How often a reader waiting for an upload's next bytes asks for them again, in ms,
   * when another server may be writing them; null when only this server writes them (the
   * writer wakes its readers).
   */
  readonly pollMs: number | null;
  /** Free space where the bytes are written (checked against `--min-free-space`). */
  readonly free: FreeSpaceGauge;
  /**
   * Opens the bytes of file `id` to append to, creating them (empty) when missing. When
   * more than `maxSize` bytes are held, they are dropped and the file starts over; the
   * bytes kept are not read again (an upload resumed carries on from their size: the
   * server does not hash them, the recipient checks the SHA-256 end to end). Opened on
   * complete bytes (the server stopped between {@linkcode FileBytes.complete} and
   * recording the file uploaded), the writer holds them all and refuses to append
   * (`conflict`); bytes marked complete that are fewer than `maxSize` are not complete:
   * they are appended to from their end.
   */
  openWriter(id: number, maxSize: number): Promise<FileBytesWriter>;
  /**
   * Marks the bytes of file `id` complete, once all the announced bytes (`size`) are held
   * and their writer closed (a file of zero bytes is opened for writing and closed
   * first), and makes them durable first. Completing them again changes nothing.
   *
   * The bytes held are checked in the step that marks them: a writer's appends may be
   * acknowledged before they are durable, and a crash of the storage in between loses
   * them (PostgreSQL commits an append without waiting for its WAL flush) while the
   * writer still counts them. Bytes marked complete are never fewer than `size`.
   *
   * @throws {StoreError} `conflict` when not `size` bytes are held (a crash of the storage
   * lost the last ones: the upload resumes from those held); an error when they are gone
   * (dropped meanwhile).
   */
  complete(id: number, size: number): Promise<void>;
  /**
   * Opens the bytes of file `id` to read; null when none are held (dropped).
   * `complete` says whether the file's record says it is complete (a hint: a file may
   * complete meanwhile).
   */
  openReader(id: number, complete: boolean): Promise<FileBytesReader | null>;
  /** Bytes held for file `id`; null when none are (never written, or dropped). */
  size(id: number): Promise<number | null>;
  /**
   * Drops the bytes of file `id`, if any: from then on they are not held (no reader
   * opens them, `size` is null), though their space may be freed only once
   * {@linkcode FileBytes.purge} is called.
   */
  remove(id: number): Promise<void>;
  /** Starts freeing the space of the bytes dropped so far, in the background. */
  purge?(): void;
  /** Frees the space of the bytes dropped so far; resolves once it is free. */
  freed?(): Promise<void>;
  /**
   * Drops the bytes of every file that `known` (asked after listing the bytes held, so
   * that a file recorded meanwhile is kept) does not name.
   */
  removeOrphans(known: () => Promise<ReadonlySet<number>>): Promise<void>;
  /** Bytes held, all files together. */
  used(): Promise<number>;
  /** Lets go of the storage (not of the bytes). */
  close(): Promise<void>;
}
