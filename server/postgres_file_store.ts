/**
 * The PostgreSQL {@linkcode FileStore}: held files' records in the table `held_files`
 * (schema in `postgres_files.ts`), shared by every node using the database, so that a
 * file offered on one node is listed, accepted, read and resumed on another. Ids come
 * from an identity sequence: global across nodes, never reused. Passes the conformance
 * suite of `file_store_test.ts`.
 *
 * @example
 * ```ts ignore
 * import { PostgresFileStore } from "./postgres_file_store.ts";
 * const store = await PostgresFileStore.open("postgres://chat@127.0.0.1/chat");
 * console.log(await store.held());
 * await store.close();
 * ```
 *
 * @module
 */

import {
  checkNewFileRecord,
  checkSha256,
  ENDED_BOUNDS,
  type EndedBounds,
  type EndedFile,
  type FileChanges,
  type FileEnding,
  type FileRecord,
  type FileState,
  type FileStore,
  type HeldFiles,
  type NewFileRecord,
} from "./file_store.ts";
import {
  connectPostgresFiles,
  ENDED_FILES_LOCK,
  filesError,
  type PostgresFilesOptions,
  type PostgresHandle,
  type Sql,
} from "./postgres_files.ts";
import { StoreError } from "./store.ts";

type Row = Record<string, unknown>;

function toRecord(row: Row): FileRecord {
  return {
    id: Number(row.id),
    fromKey: row.from_key as string,
    from: row.from_nick as string,
    toKey: row.to_key as string,
    to: row.to_nick as string,
    name: JSON.parse(row.name as string) as string,
    size: Number(row.size),
    key: row.file_key as string,
    sha256: (row.sha256 as string | null) ?? null,
    state: row.state as FileState,
    uploaded: row.uploaded as boolean,
    createdAt: Number(row.created_at),
    expiresAt: Number(row.expires_at),
  };
}

/** Held files' records in PostgreSQL. */
export class PostgresFileStore implements FileStore {
  readonly #handle: PostgresHandle;
  readonly #endedBounds: EndedBounds;
  #closed = false;

  /**
   * A store on an open handle (see `postgres_files.ts`), released at close, remembering
   * ended files within `endedBounds`.
   */
  constructor(handle: PostgresHandle, endedBounds: EndedBounds = ENDED_BOUNDS) {
    this.#handle = handle;
    this.#endedBounds = { ...endedBounds };
  }

  /**
   * Connects to `url` (a pool of its own), creating or migrating the schema.
   *
   * @throws {StoreError} `open_failed`.
   */
  static async open(
    url: string,
    options?: PostgresFilesOptions,
    endedBounds: EndedBounds = ENDED_BOUNDS,
  ): Promise<PostgresFileStore> {
    return new PostgresFileStore(await connectPostgresFiles(url, options), endedBounds);
  }

  /** Where it connects, without the password. */
  get where(): string {
    return this.#handle.where;
  }

  create(record: NewFileRecord): Promise<FileRecord> {
    return this.#run("recording a file", async (sql) => {
      checkNewFileRecord(record);
      const [row] = await sql`
        INSERT INTO held_files (from_key, from_nick, to_key, to_nick, name, size, file_key,
          sha256, state, uploaded, created_at, expires_at)
        VALUES (${record.fromKey}, ${record.from}, ${record.toKey}, ${record.to},
          ${JSON.stringify(record.name)}, ${record.size}, ${record.key}, ${record.sha256},
          ${record.state},
          ${record.uploaded}, ${record.createdAt}, ${record.expiresAt})
        RETURNING id`;
      return { ...record, id: Number(row.id) };
    });
  }

  get(id: number): Promise<FileRecord | null> {
    return this.#run("reading a file's record", async (sql) => {
      const [row] = await sql`SELECT * FROM held_files WHERE id = ${id}`;
      return row === undefined ? null : toRecord(row);
    });
  }

  find(
    fromKey: string,
    toKey: string,
    key: string,
    size: number,
    name: string,
  ): Promise<FileRecord | null> {
    return this.#run("finding a file", async (sql) => {
      const [row] = await sql`
        SELECT * FROM held_files WHERE from_key = ${fromKey} AND to_key = ${toKey}
          AND file_key = ${key} AND size = ${size} AND name = ${JSON.stringify(name)}
        ORDER BY id LIMIT 1`;
      return row === undefined ? null : toRecord(row);
    });
  }

  update(id: number, changes: FileChanges): Promise<boolean> {
    return this.#run("updating a file's record", async (sql) => {
      if (changes.sha256 !== undefined) checkSha256(changes.sha256);
      const { count } = await sql`
        UPDATE held_files SET state = coalesce(${changes.state ?? null}::text, state),
          uploaded = coalesce(${changes.uploaded ?? null}::boolean, uploaded),
          expires_at = coalesce(${changes.expiresAt ?? null}::bigint, expires_at),
          sha256 = coalesce(${changes.sha256 ?? null}::text, sha256)
        WHERE id = ${id}`;
      return count > 0;
    });
  }

  remove(id: number): Promise<boolean> {
    return this.#run("removing a file's record", async (sql) => {
      const { count } = await sql`DELETE FROM held_files WHERE id = ${id}`;
      return count > 0;
    });
  }

  incoming(toKey: string): Promise<FileRecord[]> {
    return this.#run(
      "listing files",
      async (sql) =>
        (await sql`SELECT * FROM held_files WHERE to_key = ${toKey} ORDER BY id`).map(toRecord),
    );
  }

  held(fromKey?: string): Promise<HeldFiles> {
    return this.#run("counting files", async (sql) => {
      const [row] = fromKey === undefined
        ? await sql`SELECT count(*) AS files, coalesce(sum(size), 0) AS bytes FROM held_files`
        : await sql`
          SELECT count(*) AS files, coalesce(sum(size), 0) AS bytes FROM held_files
          WHERE from_key = ${fromKey}`;
      return { files: Number(row.files), bytes: Number(row.bytes) };
    });
  }

  expired(now: number): Promise<FileRecord[]> {
    return this.#run(
      "listing expired files",
      async (sql) =>
        (await sql`SELECT * FROM held_files WHERE expires_at <= ${now} ORDER BY id`).map(
          toRecord,
        ),
    );
  }

  ids(): Promise<number[]> {
    return this.#run(
      "listing files",
      async (sql) => (await sql`SELECT id FROM held_files`).map((row) => Number(row.id)),
    );
  }

  recordEnd(ended: EndedFile): Promise<void> {
    const { perSender, total } = this.#endedBounds;
    return this.#run("recording how a file ended", async (sql) => {
      await sql.begin(async (tx) => {
        // One node at a time: the count below and the evictions after it agree.
        await tx`SELECT pg_advisory_xact_lock(${ENDED_FILES_LOCK})`;
        const { count } = await tx`
          INSERT INTO ended_files (id, from_key, to_nick, name, size, ending, by_nick, ended_at)
          VALUES (${ended.id}, ${ended.fromKey}, ${ended.to}, ${JSON.stringify(ended.name)},
            ${ended.size}, ${ended.ending}, ${ended.by}, ${ended.endedAt})
          ON CONFLICT (id) DO NOTHING`;
        if (count === 0) return;
        await tx`
          DELETE FROM ended_files WHERE from_key = ${ended.fromKey} AND seq <= (
            SELECT seq FROM ended_files WHERE from_key = ${ended.fromKey}
            ORDER BY seq DESC LIMIT 1 OFFSET ${perSender})`;
        const [{ n }] = await tx`SELECT coalesce(sum(n), 0)::int AS n FROM ended_senders`;
        for (let over = Number(n) - total; over > 0; over--) {
          // The oldest of the sender holding the most (of two, the one whose oldest is older).
          await tx`
            DELETE FROM ended_files WHERE seq =
              (SELECT first_seq FROM ended_senders ORDER BY n DESC, first_seq LIMIT 1)`;
        }
      });
    });
  }

  ended(id: number): Promise<EndedFile | null> {
    return this.#run("reading how a file ended", async (sql) => {
      const [row] = await sql`SELECT * FROM ended_files WHERE id = ${id}`;
      return row === undefined ? null : {
        id: Number(row.id),
        fromKey: row.from_key as string,
        to: row.to_nick as string,
        name: JSON.parse(row.name as string) as string,
        size: Number(row.size),
        ending: row.ending as FileEnding,
        by: row.by_nick as string,
        endedAt: Number(row.ended_at),
      };
    });
  }

  forgetEnded(before: number): Promise<void> {
    return this.#run("forgetting ended files", async (sql) => {
      await sql.begin(async (tx) => {
        // Not beside a recordEnd: each sender's count and oldest stay exact.
        await tx`SELECT pg_advisory_xact_lock(${ENDED_FILES_LOCK})`;
        await tx`DELETE FROM ended_files WHERE ended_at < ${before}`;
      });
    });
  }

  /** Lets go of the connection (ends the pool when no one else uses it). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#handle.release();
  }

  async #run<T>(what: string, fn: (sql: Sql) => Promise<T>): Promise<T> {
    if (this.#closed) throw new StoreError("closed", "the file store is closed");
    try {
      return await fn(this.#handle.sql);
    } catch (error) {
      throw filesError(error, `${what} failed on PostgreSQL ${this.#handle.where}`);
    }
  }
}
