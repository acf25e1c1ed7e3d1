/**
 * Storage of the metadata of files held by the server for their recipients, behind a
 * Promise-returning interface like {@linkcode Store}'s (the bytes themselves live in
 * files in the server's file folder, see `files.ts`). The embedded implementation is
 * SQLite (`sqlite_file_store.ts`, `files.db` in the file folder); tests and servers
 * without a data folder use {@linkcode MemoryFileStore}. Both pass the same conformance
 * suite (`file_store_test.ts`).
 *
 * @module
 */

import { StoreError } from "./store.ts";

/**
 * Whether the recipient has answered: `offered` (not yet) or `accepted` (it may read).
 * Whether the bytes are all in is {@linkcode FileRecord.uploaded}, apart: a file can be
 * accepted and read while it is still being uploaded.
 */
export type FileState = "offered" | "accepted";

/** A file held for its recipient. */
export interface FileRecord {
  /** Server-wide id, from 1. */
  id: number;
  /** Sender's account key. */
  fromKey: string;
  /** Sender's display nick. */
  from: string;
  /** Recipient's account key. */
  toKey: string;
  /** Recipient's display nick. */
  to: string;
  /** The name as offered (unsafe: receivers make it safe). */
  name: string;
  /** Bytes announced. */
  size: number;
  /**
   * What offering the same file again is recognized by (its resume identity), 64 hex
   * digits: the sender's resume key (`FileSource.resumeKey`), or the SHA-256 when the
   * offer carried it (older clients).
   */
  key: string;
  /**
   * The SHA-256 the sender gave, lowercase hex: with the upload's last chunk (the
   * sender hashes while it sends), or in the offer (older clients, and files of zero
   * bytes); null until then. The recipient checks it (the server does not hash).
   */
  sha256: string | null;
  /** Where it stands. */
  state: FileState;
  /** Whether every announced byte is held (and its SHA-256 known). */
  uploaded: boolean;
  /** When it was offered, ms since the epoch. */
  createdAt: number;
  /** When it is dropped if still held, ms since the epoch. */
  expiresAt: number;
}

/** A count of held files and their announced bytes. */
export interface HeldFiles {
  /** Files held. */
  files: number;
  /** Their announced sizes, added up. */
  bytes: number;
}

/** What {@linkcode FileStore.update} may change. */
export type FileChanges = Partial<
  Pick<FileRecord, "state" | "uploaded" | "expiresAt"> & { sha256: string }
>;

/** A file to record: everything but the id. */
export type NewFileRecord = Omit<FileRecord, "id">;

/**
 * How a file's transfer ended: its recipient received it (`file_done`), declined it,
 * either side cancelled it (`corrupt`: the recipient's copy did not match), or it
 * expired.
 */
export type FileEnding = "received" | "declined" | "cancelled" | "corrupt" | "expired";

/**
 * A file no longer held, kept a while after its end (see {@linkcode FileStore.recordEnd}):
 * its sender, coming back after a dropped connection or a crash with chunks to resend,
 * learns what became of it instead of offering it again as a new file.
 */
export interface EndedFile {
  /** The file's id. */
  id: number;
  /** Sender's account key. */
  fromKey: string;
  /** Recipient's display nick. */
  to: string;
  /** The name as offered. */
  name: string;
  /** Bytes announced. */
  size: number;
  /** How it ended. */
  ending: FileEnding;
  /** Who ended it: the recipient's or sender's nick, or `server` (expiry). */
  by: string;
  /** When, ms since the epoch. */
  endedAt: number;
}

/** Ended files kept per sender at most (the oldest go first). */
export const MAX_ENDED_PER_SENDER = 1000;
/**
 * Ended files kept at most, from every sender: past it, the oldest of the sender holding
 * the most go first (see {@linkcode EndedBounds}).
 */
export const MAX_ENDED_FILES = 100_000;

/**
 * How many ended files a store remembers ({@linkcode FileStore.recordEnd}): at most
 * `perSender` of one sender (its oldest go first) and `total` in all. Past `total`, the
 * oldest record of the sender holding the most goes (of two holding as many, the one whose
 * oldest is older): each sender keeps a fair share, and one account ending many files
 * cannot push out the others' records.
 *
 * @example
 * ```ts
 * import { MemoryFileStore } from "./file_store.ts";
 * const store = new MemoryFileStore({ perSender: 4, total: 10 }); // small, for tests
 * ```
 */
export interface EndedBounds {
  /** Records kept per sender. */
  perSender: number;
  /** Records kept in all. */
  total: number;
}

/** The bounds stores use unless told otherwise. */
export const ENDED_BOUNDS: Readonly<EndedBounds> = {
  perSender: MAX_ENDED_PER_SENDER,
  total: MAX_ENDED_FILES,
};

/** Storage of held files' metadata. */
export interface FileStore {
  /** Records a new file and gives it the next id. */
  create(record: NewFileRecord): Promise<FileRecord>;
  /** The file with this id, or null. */
  get(id: number): Promise<FileRecord | null>;
  /**
   * The held file from `fromKey` to `toKey` with this resume key (`FileRecord.key`) and
   * name, if any: offering the same file again resumes it instead of starting over.
   */
  find(
    fromKey: string,
    toKey: string,
    key: string,
    size: number,
    name: string,
  ): Promise<FileRecord | null>;
  /**
   * Changes a file's state, upload flag, expiry and SHA-256 (set once, at the end of the
   * upload); false when there is no such file.
   */
  update(id: number, changes: FileChanges): Promise<boolean>;
  /** Forgets a file; false when there was none. */
  remove(id: number): Promise<boolean>;
  /** Files held for `toKey`, oldest first. */
  incoming(toKey: string): Promise<FileRecord[]>;
  /**
   * How many files are held and their total announced bytes: those from `fromKey` (its
   * quota use), or all of them (the server's budget) without it.
   */
  held(fromKey?: string): Promise<HeldFiles>;
  /** Files whose expiry is at or before `now`. */
  expired(now: number): Promise<FileRecord[]>;
  /** Ids of every file held. */
  ids(): Promise<number[]>;
  /**
   * Remembers how a file ended (before its record is removed); a file already
   * remembered keeps its first ending. Bounded ({@linkcode EndedBounds}, by default
   * {@linkcode MAX_ENDED_PER_SENDER} per sender and {@linkcode MAX_ENDED_FILES} in all): a
   * sender's oldest go first, and past the total, the oldest of the sender holding the most.
   */
  recordEnd(ended: EndedFile): Promise<void>;
  /** How file `id` ended, if it is remembered. */
  ended(id: number): Promise<EndedFile | null>;
  /** Forgets the files that ended before `before` (ms since the epoch). */
  forgetEnded(before: number): Promise<void>;
  /** Releases the storage. */
  close(): Promise<void>;
}

const HEX64 = /^[0-9a-f]{64}$/;

/**
 * Checks a SHA-256 given to a file store.
 *
 * @throws {StoreError} `invalid` unless it is 64 lowercase hex digits.
 */
export function checkSha256(sha256: string): void {
  if (!HEX64.test(sha256)) {
    throw new StoreError("invalid", "a file's SHA-256 is 64 lowercase hex digits");
  }
}

/**
 * Checks a {@linkcode NewFileRecord} the way every file store does.
 *
 * @throws {StoreError} `invalid` for a negative or fractional size, a bad digest or an
 * empty key.
 */
export function checkNewFileRecord(record: NewFileRecord): void {
  if (!Number.isSafeInteger(record.size) || record.size < 0) {
    throw new StoreError("invalid", `a file size must be a non-negative integer`);
  }
  if (!HEX64.test(record.key)) {
    throw new StoreError("invalid", "a file needs a key of 64 lowercase hex digits");
  }
  if (record.sha256 !== null) checkSha256(record.sha256);
  if (!record.fromKey || !record.toKey) {
    throw new StoreError("invalid", "a file needs a sender and a recipient");
  }
}

/**
 * A {@linkcode FileStore} in memory (nothing survives a restart).
 *
 * @example
 * ```ts
 * import { MemoryFileStore } from "./file_store.ts";
 * const store = new MemoryFileStore();
 * const record = await store.create({
 *   fromKey: "alice", from: "alice", toKey: "bob", to: "bob", name: "a.txt", size: 1,
 *   key: "0".repeat(64), sha256: null, state: "offered", uploaded: false, createdAt: 0, expiresAt: 1,
 * });
 * record.id; // 1
 * ```
 */
export class MemoryFileStore implements FileStore {
  readonly #files = new Map<number, FileRecord>();
  /** Ended files, oldest first (insertion order), each with its place in that order. */
  readonly #ended = new Map<number, { ended: EndedFile; seq: number }>();
  #endedSeq = 0;
  /** Ids of the ended files by sender, oldest first. */
  readonly #endedBySender = new Map<string, Set<number>>();
  readonly #endedBounds: EndedBounds;
  #nextId = 1;
  #closed = false;

  /** An empty store remembering ended files within `endedBounds`. */
  constructor(endedBounds: EndedBounds = ENDED_BOUNDS) {
    this.#endedBounds = { ...endedBounds };
  }

  /** Records a new file. */
  create(record: NewFileRecord): Promise<FileRecord> {
    return this.#run(() => {
      checkNewFileRecord(record);
      const stored = { ...record, id: this.#nextId++ };
      this.#files.set(stored.id, stored);
      return { ...stored };
    });
  }

  /** The file with this id, or null. */
  get(id: number): Promise<FileRecord | null> {
    return this.#run(() => {
      const found = this.#files.get(id);
      return found === undefined ? null : { ...found };
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
      for (const record of this.#files.values()) {
        if (
          record.fromKey === fromKey && record.toKey === toKey && record.key === key &&
          record.size === size && record.name === name
        ) return { ...record };
      }
      return null;
    });
  }

  /** Changes a file's state, upload flag, expiry or SHA-256. */
  update(id: number, changes: FileChanges): Promise<boolean> {
    return this.#run(() => {
      if (changes.sha256 !== undefined) checkSha256(changes.sha256);
      const record = this.#files.get(id);
      if (record === undefined) return false;
      if (changes.state !== undefined) record.state = changes.state;
      if (changes.uploaded !== undefined) record.uploaded = changes.uploaded;
      if (changes.expiresAt !== undefined) record.expiresAt = changes.expiresAt;
      if (changes.sha256 !== undefined) record.sha256 = changes.sha256;
      return true;
    });
  }

  /** Forgets a file. */
  remove(id: number): Promise<boolean> {
    return this.#run(() => this.#files.delete(id));
  }

  /** Files held for `toKey`, oldest first. */
  incoming(toKey: string): Promise<FileRecord[]> {
    return this.#run(() =>
      [...this.#files.values()].filter((r) => r.toKey === toKey).map((r) => ({ ...r }))
    );
  }

  /** Files held from `fromKey` (from anyone without it) and their bytes. */
  held(fromKey?: string): Promise<HeldFiles> {
    return this.#run(() => {
      const total = { files: 0, bytes: 0 };
      for (const record of this.#files.values()) {
        if (fromKey !== undefined && record.fromKey !== fromKey) continue;
        total.files++;
        total.bytes += record.size;
      }
      return total;
    });
  }

  /** Files expired at `now`. */
  expired(now: number): Promise<FileRecord[]> {
    return this.#run(() =>
      [...this.#files.values()].filter((r) => r.expiresAt <= now).map((r) => ({ ...r }))
    );
  }

  /** Ids of every file held. */
  ids(): Promise<number[]> {
    return this.#run(() => [...this.#files.keys()]);
  }

  /** Remembers how a file ended (its first ending), within the bounds. */
  recordEnd(ended: EndedFile): Promise<void> {
    return this.#run(() => {
      if (this.#ended.has(ended.id)) return;
      this.#ended.set(ended.id, { ended: { ...ended }, seq: this.#endedSeq++ });
      let mine = this.#endedBySender.get(ended.fromKey);
      if (mine === undefined) this.#endedBySender.set(ended.fromKey, mine = new Set());
      mine.add(ended.id);
      while (mine.size > this.#endedBounds.perSender) this.#forgetOldestOf(ended.fromKey);
      while (this.#ended.size > this.#endedBounds.total) {
        // The sender holding the most; of two holding as many, the one whose oldest is older.
        let most: string | null = null;
        let mostCount = 0;
        let mostOldest = 0;
        for (const [fromKey, ids] of this.#endedBySender) {
          const oldest = this.#ended.get(ids.values().next().value!)!.seq;
          if (ids.size > mostCount || (ids.size === mostCount && oldest < mostOldest)) {
            [most, mostCount, mostOldest] = [fromKey, ids.size, oldest];
          }
        }
        this.#forgetOldestOf(most!);
      }
    });
  }

  /** Forgets the oldest ended file of `fromKey`. */
  #forgetOldestOf(fromKey: string): void {
    const ids = this.#endedBySender.get(fromKey)!;
    const oldest: number = ids.values().next().value!;
    this.#forgetEndedFile(oldest);
  }

  #forgetEndedFile(id: number): void {
    const fromKey = this.#ended.get(id)?.ended.fromKey;
    if (fromKey === undefined) return;
    this.#ended.delete(id);
    const ids = this.#endedBySender.get(fromKey)!;
    ids.delete(id);
    if (ids.size === 0) this.#endedBySender.delete(fromKey);
  }

  /** How file `id` ended, if remembered. */
  ended(id: number): Promise<EndedFile | null> {
    return this.#run(() => {
      const found = this.#ended.get(id);
      return found === undefined ? null : { ...found.ended };
    });
  }

  /** Forgets the files that ended before `before`. */
  forgetEnded(before: number): Promise<void> {
    return this.#run(() => {
      for (const [id, e] of this.#ended) if (e.ended.endedAt < before) this.#forgetEndedFile(id);
    });
  }

  /** Closes the store. */
  close(): Promise<void> {
    this.#closed = true;
    return Promise.resolve();
  }

  #run<T>(fn: () => T): Promise<T> {
    if (this.#closed) return Promise.reject(new StoreError("closed", "file store is closed"));
    try {
      return Promise.resolve(fn());
    } catch (err) {
      return Promise.reject(err);
    }
  }
}
