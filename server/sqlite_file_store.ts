/**
 * The embedded {@linkcode FileStore}: `files.db` (SQLite, through `node:sqlite`) in the
 * server's file folder, next to the files' bytes. WAL journal with `synchronous=FULL`:
 * a file whose offer has been answered is still known after a crash.
 *
 * @module
 */

import { join } from "node:path";
import { DatabaseSync, type StatementSync } from "node:sqlite";
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
import { makePrivateDatabase } from "./file_modes.ts";
import { StoreError } from "./store.ts";

/** Name of the database file inside the file folder. */
export const FILE_DATABASE = "files.db";

/** Schema migrations: entry `i` brings `PRAGMA user_version` from `i` to `i + 1`. */
const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE files (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    from_key TEXT NOT NULL,
    from_nick TEXT NOT NULL,
    to_key TEXT NOT NULL,
    to_nick TEXT NOT NULL,
    name TEXT NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    state TEXT NOT NULL,
    uploaded INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
  );
  CREATE INDEX files_to ON files (to_key, id);
  CREATE INDEX files_from ON files (from_key);
  CREATE INDEX files_expiry ON files (expires_at);
  `,
  // 2: senders hash while they send: an offer names its file by a resume key
  // (\`file_key\`), the SHA-256 comes with the last chunk (null until then). Files
  // offered before carried their SHA-256 as their key.
  `
  ALTER TABLE files RENAME COLUMN sha256 TO file_key;
  ALTER TABLE files ADD COLUMN sha256 TEXT;
  UPDATE files SET sha256 = file_key;
  `,
  // 3: how files ended, kept a while (bounded) for senders coming back to resend.
  `
  CREATE TABLE ended_files (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id INTEGER NOT NULL UNIQUE,
    from_key TEXT NOT NULL,
    to_nick TEXT NOT NULL,
    name TEXT NOT NULL,
    size INTEGER NOT NULL,
    ending TEXT NOT NULL,
    by_nick TEXT NOT NULL,
    ended_at INTEGER NOT NULL
  );
  CREATE INDEX ended_files_from ON ended_files (from_key, seq);
  CREATE INDEX ended_files_at ON ended_files (ended_at);
  `,
  // 4: each sender's count of ended files and its oldest, kept by triggers: past the bound
  // in all, the oldest of the sender holding the most goes, found without counting them all.
  `
  CREATE TABLE ended_senders (
    from_key TEXT PRIMARY KEY,
    n INTEGER NOT NULL,
    first_seq INTEGER NOT NULL
  );
  CREATE INDEX ended_senders_most ON ended_senders (n DESC, first_seq);
  INSERT INTO ended_senders (from_key, n, first_seq)
    SELECT from_key, count(*), min(seq) FROM ended_files GROUP BY from_key;
  CREATE TRIGGER ended_files_added AFTER INSERT ON ended_files BEGIN
    INSERT INTO ended_senders (from_key, n, first_seq) VALUES (NEW.from_key, 1, NEW.seq)
      ON CONFLICT (from_key) DO UPDATE SET n = n + 1;
  END;
  CREATE TRIGGER ended_files_removed AFTER DELETE ON ended_files BEGIN
    DELETE FROM ended_senders WHERE from_key = OLD.from_key AND n = 1;
    UPDATE ended_senders SET n = n - 1, first_seq = coalesce(
      (SELECT min(seq) FROM ended_files WHERE from_key = OLD.from_key), 0)
      WHERE from_key = OLD.from_key;
  END;
  `,
];

interface FileRow {
  id: number;
  from_key: string;
  from_nick: string;
  to_key: string;
  to_nick: string;
  name: string;
  size: number;
  file_key: string;
  sha256: string | null;
  state: string;
  uploaded: number;
  created_at: number;
  expires_at: number;
}

function toRecord(row: FileRow): FileRecord {
  return {
    id: row.id,
    fromKey: row.from_key,
    from: row.from_nick,
    toKey: row.to_key,
    to: row.to_nick,
    name: row.name,
    size: row.size,
    key: row.file_key,
    sha256: row.sha256,
    state: row.state as FileState,
    uploaded: row.uploaded !== 0,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
  };
}

/**
 * File metadata in SQLite.
 *
 * @example
 * ```ts ignore
 * import { SqliteFileStore } from "./sqlite_file_store.ts";
 * const store = SqliteFileStore.open("./chat-data/files");
 * console.log(await store.ids());
 * await store.close();
 * ```
 */
export class SqliteFileStore implements FileStore {
  /** The database file's path. */
  readonly path: string;
  readonly #db: DatabaseSync;
  readonly #statements = new Map<string, StatementSync>();
  #closed = false;

  readonly #endedBounds: EndedBounds;
  /** Ended files recorded, once counted (null until the first end, or after a failure). */
  #endedCount: number | null = null;

  private constructor(db: DatabaseSync, path: string, endedBounds: EndedBounds) {
    this.#db = db;
    this.path = path;
    this.#endedBounds = { ...endedBounds };
  }

  /** The prepared statement of `sql`, prepared once. */
  #sql(sql: string): StatementSync {
    let statement = this.#statements.get(sql);
    if (statement === undefined) {
      statement = this.#db.prepare(sql);
      this.#statements.set(sql, statement);
    }
    return statement;
  }

  /**
   * Opens (creating if needed, mode `0600`) `files.db` in `dir`, which must exist,
   * remembering ended files within `endedBounds`.
   *
   * @throws {StoreError} `open_failed` naming the file.
   */
  static open(dir: string, endedBounds: EndedBounds = ENDED_BOUNDS): SqliteFileStore {
    const path = join(dir, FILE_DATABASE);
    let db: DatabaseSync | undefined;
    try {
      makePrivateDatabase(path);
      db = new DatabaseSync(path);
      db.exec("PRAGMA busy_timeout = 5000");
      db.prepare("PRAGMA journal_mode = WAL").get();
      db.exec("PRAGMA synchronous = FULL");
      const row = db.prepare("PRAGMA user_version").get() as { user_version: number };
      if (row.user_version > MIGRATIONS.length) {
        throw new StoreError(
          "open_failed",
          `${path} has schema version ${row.user_version}, newer than this program's ${MIGRATIONS.length}`,
        );
      }
      for (let version = row.user_version; version < MIGRATIONS.length; version++) {
        db.exec("BEGIN IMMEDIATE");
        try {
          db.exec(MIGRATIONS[version]);
          db.exec(`PRAGMA user_version = ${version + 1}`);
          db.exec("COMMIT");
        } catch (error) {
          db.exec("ROLLBACK");
          throw error;
        }
      }
      return new SqliteFileStore(db, path, endedBounds);
    } catch (error) {
      try {
        db?.close();
      } catch {
        // the first error is the one to report
      }
      if (error instanceof StoreError) throw error;
      throw new StoreError("open_failed", `cannot open ${path}: ${messageOf(error)}`, {
        cause: error,
      });
    }
  }

  /** Records a new file. */
  create(record: NewFileRecord): Promise<FileRecord> {
    return this.#run(() => {
      checkNewFileRecord(record);
      const result = this.#sql(
        `INSERT INTO files (from_key, from_nick, to_key, to_nick, name, size, file_key, sha256,
           state, uploaded, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ).run(
        record.fromKey,
        record.from,
        record.toKey,
        record.to,
        record.name,
        record.size,
        record.key,
        record.sha256,
        record.state,
        record.uploaded ? 1 : 0,
        record.createdAt,
        record.expiresAt,
      );
      return { ...record, id: Number(result.lastInsertRowid) };
    });
  }

  /** The file with this id, or null. */
  get(id: number): Promise<FileRecord | null> {
    return this.#run(() => {
      const row = this.#sql("SELECT * FROM files WHERE id = ?").get(id) as
        | FileRow
        | undefined;
      return row === undefined ? null : toRecord(row);
    });
  }

  /** The held file with this sender, recipient, resume key and name. */
  find(
    fromKey: string,
    toKey: string,
    key: string,
    size: number,
    name: string,
  ): Promise<FileRecord | null> {
    return this.#run(() => {
      const row = this.#sql(
        `SELECT * FROM files WHERE from_key = ? AND to_key = ? AND file_key = ? AND size = ?
           AND name = ? ORDER BY id LIMIT 1`,
      ).get(fromKey, toKey, key, size, name) as FileRow | undefined;
      return row === undefined ? null : toRecord(row);
    });
  }

  /** Changes a file's state, upload flag, expiry or SHA-256. */
  update(id: number, changes: FileChanges): Promise<boolean> {
    return this.#run(() => {
      if (changes.sha256 !== undefined) checkSha256(changes.sha256);
      const result = this.#sql(
        `UPDATE files SET state = coalesce(?, state), uploaded = coalesce(?, uploaded),
           expires_at = coalesce(?, expires_at), sha256 = coalesce(?, sha256) WHERE id = ?`,
      ).run(
        changes.state ?? null,
        changes.uploaded === undefined ? null : changes.uploaded ? 1 : 0,
        changes.expiresAt ?? null,
        changes.sha256 ?? null,
        id,
      );
      return Number(result.changes) > 0;
    });
  }

  /** Forgets a file. */
  remove(id: number): Promise<boolean> {
    return this.#run(() => Number(this.#sql("DELETE FROM files WHERE id = ?").run(id).changes) > 0);
  }

  /** Files held for `toKey`, oldest first. */
  incoming(toKey: string): Promise<FileRecord[]> {
    return this.#run(() =>
      (this.#sql("SELECT * FROM files WHERE to_key = ? ORDER BY id").all(
        toKey,
      ) as unknown as FileRow[]).map(toRecord)
    );
  }

  /** Files held from `fromKey` (from anyone without it) and their bytes. */
  held(fromKey?: string): Promise<HeldFiles> {
    return this.#run(() => {
      const row = (fromKey === undefined
        ? this.#sql("SELECT count(*) AS files, coalesce(sum(size), 0) AS bytes FROM files").get()
        : this.#sql(
          "SELECT count(*) AS files, coalesce(sum(size), 0) AS bytes FROM files WHERE from_key = ?",
        ).get(fromKey)) as { files: number; bytes: number };
      return { files: Number(row.files), bytes: Number(row.bytes) };
    });
  }

  /** Files expired at `now`. */
  expired(now: number): Promise<FileRecord[]> {
    return this.#run(() =>
      (this.#sql("SELECT * FROM files WHERE expires_at <= ? ORDER BY id").all(
        now,
      ) as unknown as FileRow[]).map(toRecord)
    );
  }

  /** Ids of every file held. */
  ids(): Promise<number[]> {
    return this.#run(() =>
      (this.#sql("SELECT id FROM files").all() as unknown as { id: number }[]).map((r) => r.id)
    );
  }

  /** Remembers how a file ended (its first ending), within the bounds. */
  recordEnd(ended: EndedFile): Promise<void> {
    const counted = this.#endedCount;
    this.#endedCount = null; // counted again if this fails
    return this.#run(() =>
      this.#transaction(() => {
        const added = this.#sql(
          `INSERT OR IGNORE INTO ended_files (id, from_key, to_nick, name, size, ending, by_nick,
           ended_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
        ).run(
          ended.id,
          ended.fromKey,
          ended.to,
          ended.name,
          ended.size,
          ended.ending,
          ended.by,
          ended.endedAt,
        );
        if (Number(added.changes) === 0) return;
        // Counted once, then kept here: this process alone writes the file.
        let count = counted ?? Number(
              (this.#sql("SELECT count(*) AS n FROM ended_files").get() as { n: number }).n,
            ) - 1;
        count += 1 - Number(
          this.#sql(
            `DELETE FROM ended_files WHERE from_key = ? AND seq <= (SELECT seq FROM ended_files
               WHERE from_key = ? ORDER BY seq DESC LIMIT 1 OFFSET ?)`,
          ).run(ended.fromKey, ended.fromKey, this.#endedBounds.perSender).changes,
        );
        for (let over = count - this.#endedBounds.total; over > 0; over--) {
          // The oldest of the sender holding the most (of two, the one whose oldest is older).
          count -= Number(
            this.#sql(
              `DELETE FROM ended_files WHERE seq =
                 (SELECT first_seq FROM ended_senders ORDER BY n DESC, first_seq LIMIT 1)`,
            ).run().changes,
          );
        }
        this.#endedCount = count;
      })
    );
  }

  /** How file `id` ended, if remembered. */
  ended(id: number): Promise<EndedFile | null> {
    return this.#run(() => {
      const row = this.#sql("SELECT * FROM ended_files WHERE id = ?").get(id) as
        | Record<string, unknown>
        | undefined;
      return row === undefined ? null : {
        id: Number(row.id),
        fromKey: row.from_key as string,
        to: row.to_nick as string,
        name: row.name as string,
        size: Number(row.size),
        ending: row.ending as FileEnding,
        by: row.by_nick as string,
        endedAt: Number(row.ended_at),
      };
    });
  }

  /** Forgets the files that ended before `before`. */
  forgetEnded(before: number): Promise<void> {
    return this.#run(() => {
      const { changes } = this.#sql("DELETE FROM ended_files WHERE ended_at < ?").run(before);
      if (this.#endedCount !== null) this.#endedCount -= Number(changes);
    });
  }

  /** Closes the database; later calls reject with `closed`. */
  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    try {
      this.#db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
    } catch {
      // closing anyway
    }
    this.#db.close();
    return Promise.resolve();
  }

  /** Runs `fn` in one transaction (one commit, one sync), rolled back if it throws. */
  #transaction<T>(fn: () => T): T {
    this.#db.exec("BEGIN IMMEDIATE");
    try {
      const result = fn();
      this.#db.exec("COMMIT");
      return result;
    } catch (error) {
      this.#db.exec("ROLLBACK");
      throw error;
    }
  }

  #run<T>(fn: () => T): Promise<T> {
    if (this.#closed) {
      return Promise.reject(new StoreError("closed", `the file store ${this.path} is closed`));
    }
    try {
      return Promise.resolve(fn());
    } catch (error) {
      if (error instanceof StoreError) return Promise.reject(error);
      return Promise.reject(
        new StoreError("failed", `file store failure: ${messageOf(error)}`, { cause: error }),
      );
    }
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
