/**
 * The PostgreSQL {@linkcode FileBytes}: held files' bytes as chunk rows, shared by every
 * node using the database, so that a file uploaded on one node is read, and its upload
 * resumed, on another, and no byte lives only on one node's disk.
 *
 * Chunk rows `held_file_chunks (file_id, off, bytes bytea)` of at most
 * {@linkcode MAX_CHUNK_ROW_BYTES} (an upload's chunk is one row), uncompressed and out of
 * line, under a row per file in `held_file_bytes (file_id, size, complete)` (schema in
 * `postgres_files.ts`). Chosen over large objects (`lo_put` / `lo_get`): measured with
 * `deno run -A bench/file_bytes.ts` (figures in its module doc), they are as fast as each
 * other within this machine's noise, as both send the bytes as hex text through
 * postgres.js (results come back binary) and store them in ~2 KiB pages (TOAST or
 * `pg_largeobject`); but chunk rows
 * - are dropped with their file by a plain `DELETE` (`ON DELETE CASCADE`): large objects
 *   need `lo_unlink`, and are orphaned (kept forever) by any path that forgets it;
 * - append atomically with the size check in one statement (two nodes appending to the
 *   same file cannot interleave: the second gets `conflict`);
 * - need no large-object privileges, and are dumped and replicated as ordinary rows.
 *
 * - An append is one statement: it moves `held_file_bytes.size` from the offset it
 *   writes at to its end (only when the size is that offset) and inserts the row. It
 *   commits without waiting for the WAL to reach the disk (`synchronous_commit` off for
 *   that transaction: 23.6 -> 38.2 MiB/s measured here, idle machine), as a chunk on disk is acknowledged once
 *   written, before any fsync: a database crash may lose the last acknowledged chunks,
 *   never tear one (size and row commit together), and offering the file again resumes
 *   from what was kept. {@linkcode PostgresFileBytes.complete} commits synchronously,
 *   which makes every earlier append durable, before the record says "uploaded", and
 *   marks the bytes complete only when the size held is the file's: a crash that lost
 *   the last appends while the server still counted them (acknowledged, then PostgreSQL
 *   restarted before `complete` ran) is refused there, and the upload resumes from the
 *   bytes kept, never recorded "uploaded" short.
 * - A read of a range selects the rows it overlaps (the last starting at or before its
 *   start, through the primary key) and only the bytes wanted from each (`substring` of
 *   an uncompressed value reads only the TOAST pages it needs).
 * - A reader on another node waiting for an upload's next bytes asks for the size held
 *   every {@linkcode PostgresFileBytes.pollMs} (100 ms by default): a bounded poll of the
 *   database (one primary-key lookup per waiting reader per interval), which a
 *   notification could replace later without changing the `FileBytes` interface.
 * - Free space is PostgreSQL's business: not measured here (`--min-free-space` does not
 *   apply; `--files-budget` and the quotas do, counted over every node's files). A full
 *   disk on the database server fails the append with SQLSTATE 53100, whose message says
 *   "No space left on device": the upload stops with `storage_full`, and resumes later.
 *
 * @example
 * ```ts ignore
 * import { PostgresFileBytes } from "./postgres_file_bytes.ts";
 * const bytes = await PostgresFileBytes.open("postgres://chat@127.0.0.1/chat");
 * const writer = await bytes.openWriter(7, 5);
 * await writer.append(new TextEncoder().encode("hello"));
 * writer.close();
 * await bytes.close();
 * ```
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import {
  type FileBytes,
  type FileBytesReader,
  type FileBytesWriter,
  type FreeSpaceGauge,
  UNKNOWN_FREE_SPACE,
} from "./file_bytes.ts";
import {
  connectPostgresFiles,
  filesError,
  MAX_CHUNK_ROW_BYTES,
  type PostgresFilesOptions,
  type PostgresHandle,
  type Sql,
} from "./postgres_files.ts";
import { StoreError } from "./store.ts";

const log = getLogger(["chat", "server", "files"]);

/** How often a reader waiting for another node's upload asks again, by default (ms). */
export const DEFAULT_POLL_MS = 100;

/** Options of {@linkcode PostgresFileBytes}. */
export interface PostgresFileBytesOptions {
  /** See {@linkcode PostgresFileBytes.pollMs}; default {@linkcode DEFAULT_POLL_MS}. */
  pollMs?: number | undefined;
}

/** Held files' bytes in PostgreSQL chunk rows (see the module doc). */
export class PostgresFileBytes implements FileBytes {
  /**
   * How often a reader waiting for an upload's next bytes asks for them again (ms):
   * another node may be writing them.
   */
  readonly pollMs: number;
  readonly free: FreeSpaceGauge = UNKNOWN_FREE_SPACE;
  readonly #handle: PostgresHandle;
  #closed = false;

  /** Bytes on an open handle (see `postgres_files.ts`), released at close. */
  constructor(handle: PostgresHandle, options: PostgresFileBytesOptions = {}) {
    this.#handle = handle;
    this.pollMs = options.pollMs ?? DEFAULT_POLL_MS;
  }

  /**
   * Connects to `url` (a pool of its own), creating or migrating the schema.
   *
   * @throws {StoreError} `open_failed`.
   */
  static async open(
    url: string,
    options: PostgresFilesOptions & PostgresFileBytesOptions = {},
  ): Promise<PostgresFileBytes> {
    return new PostgresFileBytes(await connectPostgresFiles(url, options), options);
  }

  get where(): string {
    return `PostgreSQL ${this.#handle.where}`;
  }

  openWriter(id: number, maxSize: number): Promise<FileBytesWriter> {
    return this.#run(`opening file #${id} to write`, async (sql) => {
      await sql`INSERT INTO held_file_bytes (file_id) VALUES (${id}) ON CONFLICT DO NOTHING`;
      const [held] = await sql`SELECT size, complete FROM held_file_bytes WHERE file_id = ${id}`;
      let size = held === undefined ? 0 : Number(held.size);
      if (size > maxSize) {
        size = await this.#restart(sql, id);
      } else if (held?.complete === true && size < maxSize) {
        // Marked complete with bytes missing (before `complete` checked the size held:
        // a crash of PostgreSQL lost the last appends before it ran): not complete,
        // appended to from its end.
        log.warn("file #{id}: {size} of its {maxSize} bytes were marked complete: resuming", {
          id,
          size,
          maxSize,
        });
        await sql`
          UPDATE held_file_bytes SET complete = false
          WHERE file_id = ${id} AND size = ${size} AND complete`;
      }
      return new PostgresWriter(this, id, size);
    });
  }

  /**
   * Marks the bytes complete only when `size` bytes are held, in one statement committed
   * synchronously: its WAL flush makes every append before it durable, and a crash of
   * PostgreSQL that lost the last appends (committed with `synchronous_commit` off) before
   * it ran leaves fewer bytes than `size`, which it refuses (`conflict`).
   */
  complete(id: number, size: number): Promise<void> {
    return this.#run(`completing file #${id}`, async (sql) => {
      const { count } = await sql`
        UPDATE held_file_bytes SET complete = true WHERE file_id = ${id} AND size = ${size}`;
      if (count > 0) return;
      const held = await this.#size(sql, id);
      if (held === null) throw new StoreError("not_found", `file #${id} has no bytes held`);
      throw new StoreError(
        "conflict",
        `file #${id} holds ${held} of its ${size} bytes (the last were lost): not complete`,
      );
    });
  }

  /** `complete` does not matter here: the rows are the same before and after. */
  openReader(id: number, _complete?: boolean): Promise<FileBytesReader | null> {
    return this.#run(`opening file #${id} to read`, async (sql) => {
      const size = await this.#size(sql, id);
      return size === null ? null : new PostgresReader(this, id);
    });
  }

  size(id: number): Promise<number | null> {
    return this.#run(`reading the size of file #${id}`, (sql) => this.#size(sql, id));
  }

  remove(id: number): Promise<void> {
    return this.#run(`dropping file #${id}`, async (sql) => {
      await sql`DELETE FROM held_file_bytes WHERE file_id = ${id}`;
    });
  }

  removeOrphans(known: () => Promise<ReadonlySet<number>>): Promise<void> {
    return this.#run("dropping orphaned files", async (sql) => {
      const held = (await sql`SELECT file_id FROM held_file_bytes`).map((r) => Number(r.file_id));
      const ids = await known();
      const orphans = held.filter((id) => !ids.has(id));
      if (orphans.length > 0) {
        await sql`DELETE FROM held_file_bytes WHERE file_id = ANY(${orphans}::bigint[])`;
      }
    });
  }

  used(): Promise<number> {
    return this.#run("adding up the bytes held", async (sql) => {
      const [row] = await sql`SELECT coalesce(sum(size), 0) AS used FROM held_file_bytes`;
      return Number(row.used);
    });
  }

  /** Lets go of the connection (ends the pool when no one else uses it). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#handle.release();
  }

  /**
   * Appends `bytes` to file `id` whose size is `at`, in rows of at most
   * {@linkcode MAX_CHUNK_ROW_BYTES}.
   */
  async append(id: number, at: number, bytes: Uint8Array): Promise<void> {
    await this.#run(`writing file #${id}`, async (sql) => {
      for (let done = 0; done < bytes.length; done += MAX_CHUNK_ROW_BYTES) {
        const row = bytes.subarray(done, done + MAX_CHUNK_ROW_BYTES);
        const off = at + done;
        const { count } = await sql`
          WITH grown AS (
            UPDATE held_file_bytes SET size = size + ${row.length}
            WHERE file_id = ${id} AND size = ${off} AND NOT complete
            RETURNING file_id)
          INSERT INTO held_file_chunks (file_id, off, bytes)
          SELECT file_id, ${off}, ${row}
          FROM grown, (SELECT set_config('synchronous_commit', 'off', true)) AS asynchronous`;
        if (count === 0) {
          throw new StoreError(
            "conflict",
            `file #${id} is not ${off} bytes long any more: written elsewhere, or dropped`,
          );
        }
      }
    });
  }

  /** Reads the bytes of file `id` from `offset` into `into`; returns how many. */
  read(id: number, offset: number, into: Uint8Array): Promise<number> {
    const end = offset + into.length;
    if (into.length === 0) return Promise.resolve(0);
    return this.#run(`reading file #${id}`, async (sql) => {
      const rows = await sql`
        SELECT off, substring(bytes FROM (greatest(${offset}::bigint - off, 0) + 1)::int
          FOR (least(off + octet_length(bytes), ${end}::bigint)
            - greatest(off, ${offset}::bigint))::int) AS part
        FROM held_file_chunks
        WHERE file_id = ${id} AND off < ${end}::bigint AND off >= coalesce((
          SELECT max(off) FROM held_file_chunks WHERE file_id = ${id} AND off <= ${offset}::bigint
        ), 0)
        ORDER BY off`;
      let filled = 0;
      for (const row of rows) {
        const start = Math.max(Number(row.off), offset);
        const part = row.part as Uint8Array;
        if (start !== offset + filled || part.length === 0) {
          if (start + part.length <= offset + filled) continue; // before the range
          break; // a gap: nothing past it
        }
        into.set(part.subarray(0, into.length - filled), filled);
        filled += Math.min(part.length, into.length - filled);
      }
      return filled;
    });
  }

  async #size(sql: Sql, id: number): Promise<number | null> {
    const [row] = await sql`SELECT size FROM held_file_bytes WHERE file_id = ${id}`;
    return row === undefined ? null : Number(row.size);
  }

  async #restart(sql: Sql, id: number): Promise<number> {
    await sql.begin(async (tx) => {
      await tx`DELETE FROM held_file_chunks WHERE file_id = ${id}`;
      await tx`UPDATE held_file_bytes SET size = 0, complete = false WHERE file_id = ${id}`;
    });
    return 0;
  }

  async #run<T>(what: string, fn: (sql: Sql) => Promise<T>): Promise<T> {
    if (this.#closed) throw new StoreError("closed", "the file bytes store is closed");
    try {
      return await fn(this.#handle.sql);
    } catch (error) {
      throw filesError(error, `${what} failed on PostgreSQL ${this.#handle.where}`);
    }
  }
}

class PostgresWriter implements FileBytesWriter {
  readonly #bytes: PostgresFileBytes;
  readonly #id: number;
  #size: number;
  #closed = false;

  constructor(bytes: PostgresFileBytes, id: number, size: number) {
    this.#bytes = bytes;
    this.#id = id;
    this.#size = size;
  }

  get size(): number {
    return this.#size;
  }

  async append(bytes: Uint8Array): Promise<void> {
    if (this.#closed) throw new StoreError("closed", `file #${this.#id} is closed`);
    await this.#bytes.append(this.#id, this.#size, bytes);
    this.#size += bytes.length;
  }

  /**
   * Nothing to do: appends commit without waiting for the WAL flush, and
   * {@linkcode PostgresFileBytes.complete}'s synchronous commit flushes them all.
   */
  sync(): Promise<void> {
    return Promise.resolve();
  }

  close(): void {
    this.#closed = true;
  }
}

class PostgresReader implements FileBytesReader {
  readonly #bytes: PostgresFileBytes;
  readonly #id: number;

  constructor(bytes: PostgresFileBytes, id: number) {
    this.#bytes = bytes;
    this.#id = id;
  }

  read(offset: number, into: Uint8Array): Promise<number> {
    return this.#bytes.read(this.#id, offset, into);
  }

  close(): void {}
}
