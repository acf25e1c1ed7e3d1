/**
 * Held files in PostgreSQL, for several `chat serve` nodes serving each other's files
 * (issue 15): the connection and schema shared by {@linkcode PostgresFileStore}
 * (`postgres_file_store.ts`, the records) and {@linkcode PostgresFileBytes}
 * (`postgres_file_bytes.ts`, the bytes), and {@linkcode openPostgresFiles}, which opens
 * both on one connection pool for a server (`ServerDeps.files`).
 *
 * The schema is created or migrated under an advisory lock ({@linkcode FILES_SCHEMA_LOCK}),
 * so nodes starting together may open the same database; its version is the row
 * `held_files` of `chat_component_schema`.
 *
 * @example
 * ```ts ignore
 * import { openPostgresFiles } from "./postgres_files.ts";
 * import { startServer } from "./server.ts";
 * const files = await openPostgresFiles("postgres://chat@db/chat");
 * const server = await startServer(config, { files }); // closes them at shutdown
 * ```
 *
 * @module
 */

import postgres from "postgres";
import type { FileServiceDeps } from "./files.ts";
import { PostgresFileBytes } from "./postgres_file_bytes.ts";
import { PostgresFileStore } from "./postgres_file_store.ts";
import { isUnavailable } from "./postgres_store.ts";
import { StoreError } from "./store.ts";

/** A postgres.js client. */
export type Sql = postgres.Sql;

/** The advisory lock taken while the held files' schema is created or migrated. */
export const FILES_SCHEMA_LOCK = 0x63686166; // "chaf"

/** The advisory lock taken while an ended file is recorded and the records kept bounded. */
export const ENDED_FILES_LOCK = 0x63686165; // "chae"

/**
 * Largest row of file bytes (`held_file_chunks.bytes`): appends are cut to it, so a read
 * of a range touches a bounded number of rows. Equal to the largest `file_chunk` body:
 * an upload's chunk is one row.
 */
export const MAX_CHUNK_ROW_BYTES = 512 * 1024;

/**
 * Schema migrations: entry `i` brings the version from `i` to `i + 1`. Never edit a
 * released entry; append a new one.
 *
 * - `held_files`: one row per file (`FileRecord`); ids from a sequence, global across
 *   nodes. `name` holds the offered name as a JSON string: a name may hold characters
 *   PostgreSQL text cannot (NUL, lone surrogates), and must come back exactly.
 * - `held_file_bytes`: per file whose bytes are held, their size so far (appends check
 *   and move it in the statement that inserts the chunk) and whether they are complete.
 * - `held_file_chunks`: the bytes, one row per appended chunk (at most
 *   {@linkcode MAX_CHUNK_ROW_BYTES}), keyed by the offset of its first byte; stored
 *   out of line uncompressed (`STORAGE EXTERNAL`): file chunks rarely compress, and a
 *   `substring` of such a value reads only the TOAST pages it needs.
 */
export const FILES_MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE held_files (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    from_key TEXT NOT NULL,
    from_nick TEXT NOT NULL,
    to_key TEXT NOT NULL,
    to_nick TEXT NOT NULL,
    name TEXT NOT NULL,
    size BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    state TEXT NOT NULL,
    uploaded BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
  );
  CREATE INDEX held_files_to ON held_files (to_key, id);
  CREATE INDEX held_files_from ON held_files (from_key);
  CREATE INDEX held_files_expiry ON held_files (expires_at);
  CREATE TABLE held_file_bytes (
    file_id BIGINT PRIMARY KEY,
    size BIGINT NOT NULL DEFAULT 0,
    complete BOOLEAN NOT NULL DEFAULT false
  );
  CREATE TABLE held_file_chunks (
    file_id BIGINT NOT NULL REFERENCES held_file_bytes (file_id) ON DELETE CASCADE,
    off BIGINT NOT NULL,
    bytes BYTEA NOT NULL,
    PRIMARY KEY (file_id, off)
  );
  ALTER TABLE held_file_chunks ALTER COLUMN bytes SET STORAGE EXTERNAL;
  `,
  // 2: senders hash while they send: an offer names its file by a resume key
  // (\`file_key\`), the SHA-256 comes with the last chunk (null until then). Files
  // offered before carried their SHA-256 as their key.
  `
  ALTER TABLE held_files RENAME COLUMN sha256 TO file_key;
  ALTER TABLE held_files ADD COLUMN sha256 TEXT;
  UPDATE held_files SET sha256 = file_key;
  `,
  // 3: how files ended, kept a while (bounded) for senders coming back to resend.
  `
  CREATE TABLE ended_files (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id BIGINT NOT NULL UNIQUE,
    from_key TEXT NOT NULL,
    to_nick TEXT NOT NULL,
    name TEXT NOT NULL,
    size BIGINT NOT NULL,
    ending TEXT NOT NULL,
    by_nick TEXT NOT NULL,
    ended_at BIGINT NOT NULL
  );
  CREATE INDEX ended_files_from ON ended_files (from_key, seq);
  CREATE INDEX ended_files_at ON ended_files (ended_at);
  `,
  // 4: each sender's count of ended files and its oldest, kept by a trigger: past the bound
  // in all, the oldest of the sender holding the most goes, found without counting them all.
  `
  CREATE TABLE ended_senders (
    from_key TEXT PRIMARY KEY,
    n INT NOT NULL,
    first_seq BIGINT NOT NULL
  );
  CREATE INDEX ended_senders_most ON ended_senders (n DESC, first_seq);
  INSERT INTO ended_senders (from_key, n, first_seq)
    SELECT from_key, count(*), min(seq) FROM ended_files GROUP BY from_key;
  CREATE FUNCTION chat_ended_senders_v1() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN
    IF TG_OP = 'INSERT' THEN
      INSERT INTO ended_senders (from_key, n, first_seq) VALUES (NEW.from_key, 1, NEW.seq)
        ON CONFLICT (from_key) DO UPDATE SET n = ended_senders.n + 1;
    ELSE
      DELETE FROM ended_senders WHERE from_key = OLD.from_key AND n = 1;
      UPDATE ended_senders SET n = n - 1, first_seq = coalesce(
        (SELECT min(seq) FROM ended_files WHERE from_key = OLD.from_key), 0)
        WHERE from_key = OLD.from_key;
    END IF;
    RETURN NULL;
  END $$;
  CREATE TRIGGER ended_files_senders AFTER INSERT OR DELETE ON ended_files
    FOR EACH ROW EXECUTE FUNCTION chat_ended_senders_v1();
  `,
];

/** Options of {@linkcode connectPostgresFiles}. */
export interface PostgresFilesOptions {
  /** Connections in the pool. Default 4. */
  poolSize?: number;
  /** Seconds to open a connection. Default 5. */
  connectTimeoutSeconds?: number;
  /** Seconds a query may wait and run before it is given up. Default 30. */
  queryTimeoutSeconds?: number;
}

/** A connection pool used by one or more holders; ended when the last lets go. */
export class PostgresHandle {
  /** The client. */
  readonly sql: Sql;
  /** Where it connects, without the password (for messages). */
  readonly where: string;
  #holders: number;
  readonly #owned: boolean;

  /**
   * Wraps `sql`, held by `holders`; with `owned`, the last {@linkcode PostgresHandle.release}
   * ends it.
   */
  constructor(sql: Sql, where: string, holders = 1, owned = true) {
    this.sql = sql;
    this.where = where;
    this.#holders = holders;
    this.#owned = owned;
  }

  /** Lets go of it; the last holder ends the pool (when owned). */
  async release(): Promise<void> {
    if (this.#holders <= 0) return;
    this.#holders--;
    if (this.#holders === 0 && this.#owned) await this.sql.end({ timeout: 5 });
  }
}

/**
 * Connects to `url` and creates or migrates the held files' schema; the handle is for
 * `holders` users.
 *
 * @throws {StoreError} `open_failed` naming the server (without the password).
 */
export async function connectPostgresFiles(
  url: string,
  options: PostgresFilesOptions = {},
  holders = 1,
): Promise<PostgresHandle> {
  const where = redactUrl(url);
  const sql = postgres(url, {
    max: options.poolSize ?? 4,
    connect_timeout: options.connectTimeoutSeconds ?? 5,
    query_timeout: options.queryTimeoutSeconds ?? 30,
    idle_timeout: 60,
    backoff: (attempts: number) => Math.min(0.05 * 2 ** attempts, 2),
    onnotice: () => {},
    connection: { application_name: "chat files" },
  });
  try {
    await migrateFilesSchema(sql);
  } catch (error) {
    await sql.end({ timeout: 1 }).catch(() => {});
    if (error instanceof StoreError) throw error;
    throw new StoreError(
      "open_failed",
      `cannot open the held files on PostgreSQL ${where}: ${messageOf(error)}`,
      { cause: error },
    );
  }
  return new PostgresHandle(sql, where, holders);
}

/**
 * Opens held files' records and bytes in the PostgreSQL database at `url`, sharing one
 * pool, for `startServer`'s `files` dependency (the server closes them).
 *
 * @throws {StoreError} `open_failed`.
 */
export async function openPostgresFiles(
  url: string,
  options: PostgresFilesOptions & { pollMs?: number } = {},
): Promise<FileServiceDeps> {
  const handle = await connectPostgresFiles(url, options, 2);
  return {
    store: new PostgresFileStore(handle),
    bytes: new PostgresFileBytes(handle, { pollMs: options.pollMs }),
  };
}

/** Applies the pending migrations under {@linkcode FILES_SCHEMA_LOCK}; returns the version. */
export async function migrateFilesSchema(sql: Sql): Promise<number> {
  return await sql.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(${FILES_SCHEMA_LOCK})`;
    await tx`CREATE TABLE IF NOT EXISTS chat_component_schema (
      component TEXT PRIMARY KEY, version INT NOT NULL)`;
    const [row] = await tx`
      SELECT version FROM chat_component_schema WHERE component = 'held_files'`;
    let current = row === undefined ? 0 : Number(row.version);
    if (current > FILES_MIGRATIONS.length) {
      throw new StoreError(
        "open_failed",
        `the held files' schema has version ${current}, newer than this program's ${FILES_MIGRATIONS.length}`,
      );
    }
    for (; current < FILES_MIGRATIONS.length; current++) {
      await tx.unsafe(FILES_MIGRATIONS[current]);
    }
    await tx`
      INSERT INTO chat_component_schema (component, version) VALUES ('held_files', ${current})
      ON CONFLICT (component) DO UPDATE SET version = excluded.version`;
    return current;
  });
}

/**
 * A StoreError for a PostgreSQL failure of the held files (`what` failed): `unavailable`
 * when PostgreSQL could not be reached or answer in time (as `PostgresStore`'s), else
 * `failed`; the cause is kept (a full disk stays recognisable by `isDiskFull`).
 */
export function filesError(error: unknown, what: string): StoreError {
  if (error instanceof StoreError) return error;
  if (isUnavailable(error)) {
    return new StoreError(
      "unavailable",
      `${what} (unavailable; retry later): ${messageOf(error)}`,
      {
        cause: error,
      },
    );
  }
  return new StoreError("failed", `${what}: ${messageOf(error)}`, { cause: error });
}

/** The URL without its user's password: `host:port/database`. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.host}${parsed.pathname}`;
  } catch {
    return "(unparsable URL)";
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
