/**
 * The embedded {@linkcode Store}: one SQLite file (`chat.db`) in the data folder, through
 * Deno's built-in `node:sqlite`.
 *
 * Durability: a message whose append has resolved survives a kill of the process and a
 * power loss. The WAL journal is committed without an fsync (`synchronous=NORMAL`) and the
 * WAL file is then synced off the event loop ({@linkcode DurabilityBarrier}): every write
 * resolves only after a sync that began after its commit, the guarantee of
 * `synchronous=FULL` without stopping every connection for each fsync (a slow disk delays
 * acknowledgements, not the server). Without WAL, where the file system refuses it,
 * `synchronous=FULL` syncs inside each commit.
 *
 * Appends share commits and syncs: {@linkcode SqliteStore.appendMessage} queues a message
 * and the queue is committed once the work of the turn that queued it is done (a
 * microtask), even while a sync runs, so that every message of a burst (a connection's
 * pipelined says) shares one commit; a queue of {@linkcode SqliteStoreOptions.maxBatch}
 * messages commits at once; its room messages are written several rows per INSERT
 * statement ({@linkcode ROOM_INSERT_ROWS}). The append's `onCommitted` is told right after
 * the commit (the server delivers the message to receivers from there: it survives a kill
 * of the process once committed), and the append resolves once a sync that began after the commit
 * has ended (the sender's acknowledgement). A message arriving while a sync runs thus
 * reaches its receivers at once, and its sender after the next sync (which a commit
 * made during a sync needs in any case). At most {@linkcode MAX_UNDURABLE_IDS} ids are
 * told of and not yet durable; a run that the machine stopped (see `startRun`) moves the
 * ids on by as many at the next open, so that none is given twice. (Before, messages
 * waited for the running sync's end before their commit and were delivered only once
 * durable: each waited for a sync and most of another, 3.2–4.3 ms at p50 at 500,000
 * deliveries/s offered, 1.65–2.5 ms after; `deno task bench --only fixed`.)
 *
 * Every other write, and every read that could see messages, first commits the queue, so
 * operations take effect in call order; such a read also waits for the sync of the last
 * commit that wrote messages (appends, delivered and read marks), so no one is shown a
 * message that could still be lost, but not for other writes' syncs: a login's
 * `lastMessageId` in a storm of logins does not wait for the others' account rows.
 * Other writes made while a sync runs share one open transaction (each in a savepoint, so
 * a failing one undoes only itself), committed when that sync ends, right before the next
 * one that covers them: a login storm's account, membership and login rows cost one
 * commit per sync, not three commits per login. When that commit fails, the next sync
 * fails with its error, so none of them is acknowledged.
 *
 * `DatabaseSync` is synchronous: every statement, and every commit, runs on the calling
 * thread; transactions are kept short.
 *
 * @module
 */

import { roundStages, Stage } from "../transport/round_stages.ts";
import { join } from "node:path";
import { DatabaseSync, type StatementSync } from "node:sqlite";
import { getLogger } from "@logtape/logtape";
import { isDiskFull } from "./disk_space.ts";
import { DurabilityBarrier } from "./durability.ts";
import { makePrivateDatabase, makePrivateDir } from "./file_modes.ts";
import { type CheckpointResult, WalCheckpointer } from "./wal_checkpointer.ts";
import type { ChatMessage, DirectMessage } from "../protocol/messages.ts";
import {
  type AccountRecord,
  type AppendOptions,
  type AppendResult,
  checkCount,
  checkHistoryQuery,
  checkNewMessage,
  checkResend,
  checkUndeliveredQuery,
  historyBounds,
  type HistoryQuery,
  MAX_TOKENS_PER_ACCOUNT,
  type NewMessage,
  type RoomRecord,
  type RoomSummary,
  type Store,
  StoreError,
  tellCommitted,
  type TokenRecord,
  type UndeliveredQuery,
} from "./store.ts";

const log = getLogger(["chat", "store"]);

/** Name of the database file inside the data folder. */
export const DATABASE_FILE = "chat.db";

/** Options of {@linkcode SqliteStore.open}. */
export interface SqliteStoreOptions {
  /** Most messages written by one group commit; a full queue commits at once. Default 1000. */
  maxBatch?: number;
  /** Milliseconds SQLite waits for a lock held by another connection. Default 5000. */
  busyTimeoutMs?: number;
  /**
   * Syncs the WAL file to disk; default `wal.syncData()`. Tests wrap it to hold a sync
   * open and see what is committed meanwhile.
   */
  syncWal?: (wal: Deno.FsFile) => Promise<void>;
  /**
   * Milliseconds between WAL checkpoints while commits come (each in a worker, off the
   * event loop; see `wal_checkpointer.ts`), once 64 commits or more were made since the
   * last; also after every 1,000 commits. Default 500.
   */
  checkpointIntervalMs?: number;
  /**
   * WAL frames (pages) past which, when the worker's checkpoints do not catch up with the
   * commits (the WAL can only start over after a checkpoint that copied everything), the
   * store checkpoints on its own thread once, between two commits. Default 16,384 (64 MiB
   * of 4 KiB pages): the bound on the WAL's size.
   */
  maxWalFrames?: number;
  /**
   * Runs one pass of a WAL checkpoint in the worker (`run`); default `run()`. `held` says
   * whether appends wait for it (the last pass: see `#checkpointDue`). Tests wrap it to
   * hold a pass and see what is committed meanwhile.
   */
  checkpointPass?: (
    run: () => Promise<CheckpointResult>,
    held: boolean,
  ) => Promise<CheckpointResult>;
  /**
   * The machine's boot (Linux's `/proc/sys/kernel/random/boot_id`; `null` where there is
   * none), read at open by default. Tests give one to stand for a reboot.
   */
  bootId?: string | null;
  /**
   * Least milliseconds from one group commit of appends to the next (the server's
   * `--commit-gap`, in microseconds); default 0: every turn's appends commit when its work is done. An
   * append after a quiet spell still commits at once; one within the gap waits for the
   * first turn past it (or a timer). Each commit's messages reach every receiver in one
   * write, so under a steady load the gap sets how often every receiver is written to:
   * fewer writes and commits per second, each message delivered later by up to the gap.
   */
  commitGapMs?: number;
}

/**
 * Most message ids committed and possibly told to receivers (see `onCommitted`) but not
 * yet durable at any time; past it, appends are told at their sync, as they resolve. After
 * the machine stopped during a run (a power loss: the last commits may be lost), the next
 * open moves the id sequence on by as many, so that no id a receiver may have seen is
 * given to another message.
 */
export const MAX_UNDURABLE_IDS = 100_000;

/** Commits after which a checkpoint is due, whatever the interval. */
const CHECKPOINT_COMMITS = 1000;
/**
 * Commits without which none is due, whatever the interval: a WAL of a few commits costs
 * nothing, and a store that never gets that many (a test's) starts no worker.
 */
const CHECKPOINT_MIN_COMMITS = 64;
/**
 * Most passes of a checkpoint made while appends commit (each copies what was committed
 * during the one before), before the pass they wait for.
 */
const CATCH_UP_PASSES = 4;
/**
 * A pass that copied no more frames than this (1 MiB of 4 KiB pages) is followed by the
 * pass appends wait for: what was committed meanwhile is fewer frames still.
 */
const FINAL_PASS_FRAMES = 256;

/** Counters of {@linkcode SqliteStore.appendMessage}'s group commits. */
export interface SqliteStoreStats {
  /** Appends handled by committed batches (duplicates and refused ones included). */
  readonly appends: number;
  /** Transactions committed for appends. */
  readonly commits: number;
  /** Most appends committed in one transaction. */
  readonly largestBatch: number;
  /**
   * Milliseconds each committed append waited from `appendMessage` to the start of its
   * commit, summed (per append: `heldMs / appends`; the appends of one turn count from the
   * turn's first): what the group commit, and a commit gap, add to a message's delivery
   * before its round of writes.
   */
  readonly heldMs: number;
  /** Appends queued now, not committed yet. */
  readonly queued: number;
  /** Syncs of the WAL file (each covers every commit before it). */
  readonly walSyncs: number;
  /** WAL checkpoint passes done by the worker (a checkpoint makes one or more). */
  readonly checkpoints: number;
  /** Checkpoints done on the store's own thread (the worker's fell behind). */
  readonly blockingCheckpoints: number;
  /** Frames in the WAL at the last checkpoint. */
  readonly walFrames: number;
  /**
   * Commits of the writes (other than appends) made while a sync ran, each shared by all
   * of them and made when that sync ended.
   */
  readonly writeGroups: number;
}

/**
 * Schema migrations: entry `i` brings `PRAGMA user_version` from `i` to `i + 1`.
 * Never edit a released entry; append a new one.
 */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE accounts (
    key TEXT PRIMARY KEY,
    nick TEXT NOT NULL,
    password_hash TEXT,
    created_at INTEGER NOT NULL
  ) WITHOUT ROWID;

  CREATE TABLE rooms (
    key TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    topic TEXT NOT NULL DEFAULT '',
    topic_by TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL
  ) WITHOUT ROWID;

  CREATE TABLE memberships (
    room_key TEXT NOT NULL REFERENCES rooms (key),
    account_key TEXT NOT NULL,
    PRIMARY KEY (room_key, account_key)
  ) WITHOUT ROWID;
  CREATE INDEX memberships_by_account ON memberships (account_key, room_key);

  CREATE TABLE messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts INTEGER NOT NULL,
    from_key TEXT NOT NULL,
    from_nick TEXT NOT NULL,
    room_key TEXT REFERENCES rooms (key),
    to_key TEXT,
    to_nick TEXT,
    -- for direct messages: min(from_key, to_key) || char(10) || max(from_key, to_key)
    dm_pair TEXT,
    text TEXT NOT NULL,
    client_id TEXT NOT NULL,
    delivered INTEGER NOT NULL DEFAULT 0,
    read INTEGER NOT NULL DEFAULT 0,
    UNIQUE (from_key, client_id),
    CHECK ((room_key IS NULL) <> (to_key IS NULL))
  );
  CREATE INDEX messages_by_room ON messages (room_key, id) WHERE room_key IS NOT NULL;
  CREATE INDEX messages_by_pair ON messages (dm_pair, id) WHERE dm_pair IS NOT NULL;
  CREATE INDEX messages_dm_to ON messages (to_key, id) WHERE to_key IS NOT NULL;
  CREATE INDEX messages_dm_from ON messages (from_key, id) WHERE to_key IS NOT NULL;
  CREATE INDEX messages_undelivered ON messages (to_key, id)
    WHERE to_key IS NOT NULL AND delivered = 0;

  CREATE TABLE blocks (
    account_key TEXT NOT NULL,
    target_key TEXT NOT NULL,
    PRIMARY KEY (account_key, target_key)
  ) WITHOUT ROWID;

  CREATE TABLE contacts (
    account_key TEXT NOT NULL,
    target_key TEXT NOT NULL,
    PRIMARY KEY (account_key, target_key)
  ) WITHOUT ROWID;
  CREATE INDEX contacts_by_target ON contacts (target_key, account_key);

  CREATE TABLE login_sessions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account_key TEXT NOT NULL,
    login_ts INTEGER NOT NULL,
    logout_ts INTEGER
  );
  CREATE INDEX login_sessions_by_logout ON login_sessions (logout_ts);
  `,
  // 2: messages without AUTOINCREMENT. Messages are never deleted, so the next id is
  // max(id) + 1 either way, and an append no longer updates sqlite_sequence (about
  // half of its cost: `deno task bench --only durable`).
  `
  CREATE TABLE messages_v2 (
    id INTEGER PRIMARY KEY,
    ts INTEGER NOT NULL,
    from_key TEXT NOT NULL,
    from_nick TEXT NOT NULL,
    room_key TEXT REFERENCES rooms (key),
    to_key TEXT,
    to_nick TEXT,
    -- for direct messages: min(from_key, to_key) || char(10) || max(from_key, to_key)
    dm_pair TEXT,
    text TEXT NOT NULL,
    client_id TEXT NOT NULL,
    delivered INTEGER NOT NULL DEFAULT 0,
    read INTEGER NOT NULL DEFAULT 0,
    UNIQUE (from_key, client_id),
    CHECK ((room_key IS NULL) <> (to_key IS NULL))
  );
  INSERT INTO messages_v2 SELECT * FROM messages;
  DROP TABLE messages;
  ALTER TABLE messages_v2 RENAME TO messages;
  CREATE INDEX messages_by_room ON messages (room_key, id) WHERE room_key IS NOT NULL;
  CREATE INDEX messages_by_pair ON messages (dm_pair, id) WHERE dm_pair IS NOT NULL;
  CREATE INDEX messages_dm_to ON messages (to_key, id) WHERE to_key IS NOT NULL;
  CREATE INDEX messages_dm_from ON messages (from_key, id) WHERE to_key IS NOT NULL;
  CREATE INDEX messages_undelivered ON messages (to_key, id)
    WHERE to_key IS NOT NULL AND delivered = 0;
  `,
  // 3: session tokens ("remember me"), by their SHA-256 only.
  `
  CREATE TABLE session_tokens (
    hash TEXT PRIMARY KEY,
    account_key TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
  ) WITHOUT ROWID;
  CREATE INDEX session_tokens_by_account ON session_tokens (account_key, created_at);
  `,
  // 4: the last run (see startRun): whether it is still running (or did not close), on
  // which boot of the machine, and the least id the next message may take.
  `
  CREATE TABLE server_run (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    running INTEGER NOT NULL,
    boot_id TEXT,
    id_floor INTEGER NOT NULL DEFAULT 0
  );
  `,
  // 5: the resend key (sender, request id) indexed request id first. Request ids are in
  // time order (UUID v7), so a group commit's messages from many senders land on the
  // index's last page together; sender first, each sender's went to a page of its own
  // (a commit of 8 messages from 4 senders wrote 10.2 WAL pages, now 6.5:
  // bench/commit_cpu.ts). A table rebuild: SQLite cannot drop a table's UNIQUE.
  `
  CREATE TABLE messages_v3 (
    id INTEGER PRIMARY KEY,
    ts INTEGER NOT NULL,
    from_key TEXT NOT NULL,
    from_nick TEXT NOT NULL,
    room_key TEXT REFERENCES rooms (key),
    to_key TEXT,
    to_nick TEXT,
    -- for direct messages: min(from_key, to_key) || char(10) || max(from_key, to_key)
    dm_pair TEXT,
    text TEXT NOT NULL,
    client_id TEXT NOT NULL,
    delivered INTEGER NOT NULL DEFAULT 0,
    read INTEGER NOT NULL DEFAULT 0,
    UNIQUE (client_id, from_key),
    CHECK ((room_key IS NULL) <> (to_key IS NULL))
  );
  INSERT INTO messages_v3 SELECT * FROM messages;
  DROP TABLE messages;
  ALTER TABLE messages_v3 RENAME TO messages;
  CREATE INDEX messages_by_room ON messages (room_key, id) WHERE room_key IS NOT NULL;
  CREATE INDEX messages_by_pair ON messages (dm_pair, id) WHERE dm_pair IS NOT NULL;
  CREATE INDEX messages_dm_to ON messages (to_key, id) WHERE to_key IS NOT NULL;
  CREATE INDEX messages_dm_from ON messages (from_key, id) WHERE to_key IS NOT NULL;
  CREATE INDEX messages_undelivered ON messages (to_key, id)
    WHERE to_key IS NOT NULL AND delivered = 0;
  `,
];

/**
 * Rows of the multi-row INSERT statements that store the room messages of a group commit,
 * largest first: a run of room messages is written 64 rows per statement, then 8, then one
 * by one (with 180 messages in a commit, 4 statements instead of 180). Each statement costs
 * a crossing into SQLite, its bindings and a step: one row per statement cost about a
 * quarter more (bare node:sqlite, 180-row commits: 9.8 µs per row against 7.4 with 64/8/1;
 * through the store, CPU per append without the WAL sync 6.45 against 5.79 µs, with it
 * 9.31 against 8.39, the least of nine rounds each). 64/8 measured better than 128/16 and
 * 32/4.
 */
export const ROOM_INSERT_ROWS: readonly number[] = [64, 8];

/** Columns bound per row by the room message inserts. */
const ROOM_INSERT_COLUMNS = 6;

/** The INSERT of `rows` room messages (ids from SQLite: the next ones, in row order). */
function roomInsertSql(rows: number): string {
  return "INSERT INTO messages (ts, from_key, from_nick, room_key, text, client_id) VALUES " +
    Array.from({ length: rows }, () => "(?, ?, ?, ?, ?, ?)").join(", ") +
    " ON CONFLICT (client_id, from_key) DO NOTHING";
}

/** Columns every message query selects, for {@linkcode toChat}. */
const MESSAGE_COLUMNS =
  "m.id, m.ts, m.from_nick, m.room_key, r.name AS room_name, m.to_nick, m.text";

/** A room's history, newest first (`DESC`) or oldest first (`ASC`); see the statements. */
function roomHistorySql(order: "ASC" | "DESC"): string {
  return `SELECT ${MESSAGE_COLUMNS} FROM messages m JOIN rooms r ON r.key = m.room_key ` +
    "WHERE m.room_key = ?1 AND m.id < ?2 AND m.id > ?3 AND m.ts < ?4 AND m.ts > ?5 " +
    "AND m.from_key NOT IN (SELECT target_key FROM blocks WHERE account_key = ?7) " +
    `ORDER BY m.id ${order} LIMIT ?6`;
}

/** A direct conversation's history, as {@linkcode roomHistorySql}. */
function pairHistorySql(order: "ASC" | "DESC"): string {
  return `SELECT ${MESSAGE_COLUMNS} FROM messages m LEFT JOIN rooms r ON r.key = m.room_key ` +
    "WHERE m.dm_pair = ?1 AND m.id < ?2 AND m.id > ?3 AND m.ts < ?4 AND m.ts > ?5 " +
    `ORDER BY m.id ${order} LIMIT ?6`;
}

interface MessageRow {
  id: number;
  ts: number;
  from_nick: string;
  room_key: string | null;
  room_name: string | null;
  to_nick: string | null;
  text: string;
}

interface AccountRow {
  key: string;
  nick: string;
  password_hash: string | null;
  created_at: number;
}

interface TokenRow {
  hash: string;
  account_key: string;
  created_at: number;
  expires_at: number;
}

interface RoomRow {
  key: string;
  name: string;
  topic: string;
  topic_by: string;
  created_at: number;
  members?: number;
}

interface Pending {
  /** Null once inserted: an append waiting for its sync holds no copy of its message. */
  message: NewMessage | null;
  options: AppendOptions | undefined;
  resolve: (result: AppendResult) => void;
  reject: (error: Error) => void;
}

/** Every prepared statement, prepared once at open. */
function prepareAll(db: DatabaseSync) {
  const p = (sql: string): StatementSync => db.prepare(sql);
  return {
    begin: p("BEGIN IMMEDIATE"),
    commit: p("COMMIT"),
    savepoint: p("SAVEPOINT grouped"),
    release: p("RELEASE grouped"),
    rollbackTo: p("ROLLBACK TO grouped"),
    getAccount: p("SELECT key, nick, password_hash, created_at FROM accounts WHERE key = ?"),
    accountKeys: p("SELECT key FROM accounts"),
    createAccount: p(
      "INSERT INTO accounts (key, nick, password_hash, created_at) VALUES (?, ?, ?, ?) " +
        "ON CONFLICT DO NOTHING",
    ),
    setPasswordHash: p("UPDATE accounts SET password_hash = ? WHERE key = ?"),
    getRoom: p("SELECT key, name, topic, topic_by, created_at FROM rooms WHERE key = ?"),
    roomName: p("SELECT name FROM rooms WHERE key = ?"),
    createRoom: p(
      "INSERT INTO rooms (key, name, topic, topic_by, created_at) VALUES (?, ?, ?, ?, ?) " +
        "ON CONFLICT DO NOTHING",
    ),
    listRooms: p(
      "SELECT r.key, r.name, r.topic, r.topic_by, r.created_at, " +
        "(SELECT count(*) FROM memberships m WHERE m.room_key = r.key) AS members " +
        "FROM rooms r ORDER BY r.key",
    ),
    setTopic: p("UPDATE rooms SET topic = ?, topic_by = ? WHERE key = ?"),
    addMember: p(
      "INSERT INTO memberships (room_key, account_key) VALUES (?, ?) ON CONFLICT DO NOTHING",
    ),
    removeMember: p("DELETE FROM memberships WHERE room_key = ? AND account_key = ?"),
    roomMembers: p(
      "SELECT account_key AS k FROM memberships WHERE room_key = ? ORDER BY account_key",
    ),
    accountRooms: p(
      "SELECT room_key AS k FROM memberships WHERE account_key = ? ORDER BY room_key",
    ),
    byClientId: p(
      `SELECT ${MESSAGE_COLUMNS}, m.to_key FROM messages m LEFT JOIN rooms r ON r.key = m.room_key ` +
        "WHERE m.client_id = ?2 AND m.from_key = ?1",
    ),
    // Two statements: a room message binds only its own columns (fewer bindings: about
    // 15% of an append's SQLite time).
    insertRoomMessage: p(
      "INSERT INTO messages (id, ts, from_key, from_nick, room_key, text, client_id) " +
        "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (client_id, from_key) DO NOTHING",
    ),
    // Several room messages at once (see #insertRooms), by rows per statement.
    insertRoomMessages: new Map(
      ROOM_INSERT_ROWS.map((rows) => [rows, p(roomInsertSql(rows))] as const),
    ),
    insertDirectMessage: p(
      "INSERT INTO messages (id, ts, from_key, from_nick, to_key, to_nick, dm_pair, text, " +
        "client_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (client_id, from_key) DO NOTHING",
    ),
    // ?1 room or pair, ?2 before id, ?3 after id, ?4 before ts, ?5 after ts, ?6 limit (?7 viewer).
    roomHistory: p(roomHistorySql("DESC")),
    roomHistoryOldest: p(roomHistorySql("ASC")),
    pairHistory: p(pairHistorySql("DESC")),
    pairHistoryOldest: p(pairHistorySql("ASC")),
    lastMessageId: p("SELECT COALESCE(MAX(id), 0) AS id FROM messages"),
    // ?1 account key, ?2 after ts, ?3 before ts, ?4 limit. Each branch walks one index.
    directConversations: p(
      `SELECT other, MAX(ts) AS ts FROM (
         SELECT to_key AS other, ts FROM messages
           WHERE from_key = ?1 AND to_key IS NOT NULL AND ts > ?2 AND ts < ?3
         UNION ALL
         SELECT from_key AS other, ts FROM messages
           WHERE to_key = ?1 AND ts > ?2 AND ts < ?3
       ) GROUP BY other ORDER BY ts DESC, other LIMIT ?4`,
    ),
    // ?1 account key, ?2 after id, ?3 limit. Each branch walks one index from ?2 on.
    messagesAfter: p(
      `SELECT ${MESSAGE_COLUMNS} FROM (
         SELECT id FROM (
           SELECT m.id FROM memberships s JOIN messages m ON m.room_key = s.room_key
           WHERE s.account_key = ?1 AND m.id > ?2 AND m.from_key NOT IN
             (SELECT target_key FROM blocks WHERE account_key = ?1)
           ORDER BY m.id LIMIT ?3)
         UNION
         SELECT id FROM (
           SELECT id FROM messages WHERE to_key = ?1 AND id > ?2 ORDER BY id LIMIT ?3)
         UNION
         SELECT id FROM (
           SELECT id FROM messages WHERE from_key = ?1 AND to_key IS NOT NULL AND id > ?2
           ORDER BY id LIMIT ?3)
       ) v JOIN messages m ON m.id = v.id LEFT JOIN rooms r ON r.key = m.room_key
       ORDER BY m.id LIMIT ?3`,
    ),
    // ?1 account key, ?2 after id, ?3 through id, ?4 limit (-1: none).
    undelivered: p(
      `SELECT ${MESSAGE_COLUMNS} FROM messages m LEFT JOIN rooms r ON r.key = m.room_key ` +
        "WHERE m.to_key = ?1 AND m.to_key IS NOT NULL AND m.delivered = 0 " +
        "AND m.id > ?2 AND m.id <= ?3 ORDER BY m.id LIMIT ?4",
    ),
    countUndelivered: p(
      "SELECT count(*) AS n FROM messages " +
        "WHERE to_key = ? AND to_key IS NOT NULL AND delivered = 0 AND id <= ?",
    ),
    markDelivered: p(
      "UPDATE messages SET delivered = 1 " +
        "WHERE id IN (SELECT value FROM json_each(?)) AND to_key IS NOT NULL AND delivered = 0 " +
        "RETURNING id",
    ),
    markRead: p(
      "UPDATE messages SET read = 1, delivered = 1 " +
        "WHERE id IN (SELECT value FROM json_each(?)) AND to_key = ? AND read = 0 " +
        "RETURNING id, ts, from_nick, NULL AS room_key, NULL AS room_name, to_nick, text",
    ),
    addBlock: p(
      "INSERT INTO blocks (account_key, target_key) VALUES (?, ?) ON CONFLICT DO NOTHING",
    ),
    removeBlock: p("DELETE FROM blocks WHERE account_key = ? AND target_key = ?"),
    blocksOf: p("SELECT target_key AS k FROM blocks WHERE account_key = ? ORDER BY target_key"),
    addContact: p(
      "INSERT INTO contacts (account_key, target_key) VALUES (?, ?) ON CONFLICT DO NOTHING",
    ),
    removeContact: p("DELETE FROM contacts WHERE account_key = ? AND target_key = ?"),
    contactsOf: p(
      "SELECT target_key AS k FROM contacts WHERE account_key = ? ORDER BY target_key",
    ),
    watchersOf: p(
      "SELECT account_key AS k FROM contacts WHERE target_key = ? ORDER BY account_key",
    ),
    addToken: p(
      "INSERT INTO session_tokens (hash, account_key, created_at, expires_at) VALUES (?, ?, ?, ?)",
    ),
    // ?1 account key, ?2 now, ?3 tokens kept.
    pruneTokens: p(
      "DELETE FROM session_tokens WHERE account_key = ?1 AND (expires_at <= ?2 OR hash NOT IN " +
        "(SELECT hash FROM session_tokens WHERE account_key = ?1 " +
        "ORDER BY created_at DESC, hash LIMIT ?3))",
    ),
    getToken: p(
      "SELECT hash, account_key, created_at, expires_at FROM session_tokens WHERE hash = ?",
    ),
    removeToken: p("DELETE FROM session_tokens WHERE hash = ? AND account_key = ?"),
    removeTokens: p("DELETE FROM session_tokens WHERE account_key = ?"),
    recordLogin: p("INSERT INTO login_sessions (account_key, login_ts) VALUES (?, ?)"),
    recordLogout: p(
      "UPDATE login_sessions SET logout_ts = ? WHERE id = ? AND logout_ts IS NULL",
    ),
    closeOpenSessions: p("UPDATE login_sessions SET logout_ts = ? WHERE logout_ts IS NULL"),
    onlineSince: p(
      "SELECT DISTINCT account_key AS k FROM login_sessions " +
        "WHERE logout_ts IS NULL OR logout_ts >= ? ORDER BY account_key",
    ),
  };
}

type Statements = ReturnType<typeof prepareAll>;

/**
 * The SQLite {@linkcode Store}, with group commit of message appends.
 *
 * @example
 * ```ts
 * import { SqliteStore } from "./sqlite_store.ts";
 * const store = await SqliteStore.open(await Deno.makeTempDir());
 * await store.createRoom({ key: "lobby", name: "Lobby", topic: "", topicBy: "", createdAt: 0 });
 * const { message } = await store.appendMessage({
 *   fromKey: "alice", from: "Alice", room: "lobby", text: "hi", ts: Date.now(), clientId: "1",
 * });
 * await store.close();
 * ```
 */
export class SqliteStore implements Store {
  /** Absolute or relative path of the database file. */
  readonly path: string;
  #db: DatabaseSync;
  #st: Statements;
  readonly #roomNames = new Map<string, string>();
  #maxBatch: number;
  #queue: Pending[] = [];
  #closed = false;
  readonly #wal: Deno.FsFile | null;
  readonly #barrier: DurabilityBarrier;
  readonly #checkpointer: WalCheckpointer | null;
  readonly #checkpointIntervalMs: number;
  readonly #maxWalFrames: number;
  #commitsSinceCheckpoint = 0;
  #lastCheckpointAt = performance.now();
  #walFrames = 0;
  /** The worker's last checkpoint left frames behind in a WAL past `#maxWalFrames`. */
  #walBehind = false;
  /** A checkpoint's last pass runs in the worker: appends wait for its end (see `#checkpointDue`). */
  #checkpointing = false;
  /** A checkpoint (any of its passes, or between two) is under way in the worker. */
  #checkpointRunning = false;
  readonly #checkpointPass: (
    run: () => Promise<CheckpointResult>,
    held: boolean,
  ) => Promise<CheckpointResult>;
  /** The worker could not run a checkpoint: every checkpoint runs here (logged once). */
  #workerFailed = false;
  #blockingCheckpoints = 0;
  #appends = 0;
  /**
   * The id the next message takes, when above the last one's + 1 (see startRun); 0 once
   * a message took it.
   */
  #idFloor: number;
  /** Message ids committed (and maybe told of) but not durable yet. */
  #undurableIds = 0;
  /** The barrier's count after the last commit that wrote messages (see `#readCommitted`). */
  #messagesCommitted = 0;
  #commits = 0;
  #largestBatch = 0;
  #heldMs = 0;
  /** The `performance.now()` of each queued append, summed (see `heldMs`). */
  #queuedAtSum = 0;
  /** When the first append of the current turn came (see `appendMessage`). */
  #turnAt = 0;
  /**
   * Writes made while a sync runs share one open transaction, committed when the sync
   * ends, right before the next one starts (see `#durably`).
   */
  #grouping = false;
  /** The commit of the writes grouped during a sync failed: the next sync fails with it. */
  #groupFailure: unknown = undefined;
  #groupCommits = 0;
  /** See {@linkcode SqliteStoreOptions.commitGapMs}. */
  #commitGapMs = 0;
  /** When the last group commit of appends began (`performance.now()`). */
  #lastCommitAt = -Infinity;
  /** A commit of the queue is due at the end of this turn (a microtask is queued). */
  #flushQueued = false;
  /** The timer that commits the queue once the gap has passed, when no turn did. */
  #gapTimer: ReturnType<typeof setTimeout> | undefined = undefined;

  private constructor(
    db: DatabaseSync,
    path: string,
    maxBatch: number,
    wal: Deno.FsFile | null,
    syncWal: (wal: Deno.FsFile) => Promise<void>,
    checkpoints: {
      intervalMs: number;
      maxWalFrames: number;
      pass?: (run: () => Promise<CheckpointResult>, held: boolean) => Promise<CheckpointResult>;
    },
    idFloor: number,
  ) {
    this.#checkpointPass = checkpoints.pass ?? ((run) => run());
    this.#db = db;
    this.#idFloor = idFloor;
    this.#checkpointer = wal === null ? null : new WalCheckpointer(path);
    this.#checkpointIntervalMs = checkpoints.intervalMs;
    this.#maxWalFrames = checkpoints.maxWalFrames;
    this.path = path;
    this.#st = prepareAll(db);
    this.#maxBatch = maxBatch;
    this.#wal = wal;
    // Without a WAL file to sync, SQLite synced each commit itself (FULL).
    this.#barrier = new DurabilityBarrier(
      () => {
        // The grouped writes this sync was to cover were rolled back: their waiters fail.
        if (this.#groupFailure !== undefined) {
          const failure = this.#groupFailure;
          this.#groupFailure = undefined;
          return Promise.reject(failure);
        }
        return wal === null ? Promise.resolve() : syncWal(wal);
      },
      { onSyncEnd: () => this.#afterSync(), schedule: afterTheJobsWrites },
    );
  }

  /**
   * Opens (creating if needed) the data folder and its `chat.db`, and brings the schema
   * up to date.
   *
   * @throws {StoreError} `open_failed`, naming the folder, when the folder cannot be
   * created or written, or the database cannot be opened or is of a newer schema.
   */
  static async open(dataDir: string, options: SqliteStoreOptions = {}): Promise<SqliteStore> {
    const maxBatch = options.maxBatch ?? 1000;
    if (!Number.isSafeInteger(maxBatch) || maxBatch < 1) {
      throw new StoreError("invalid", `maxBatch must be a positive integer, got ${maxBatch}`);
    }
    const busyTimeoutMs = options.busyTimeoutMs ?? 5000;
    checkCount("busyTimeoutMs", busyTimeoutMs);
    const bootId = options.bootId !== undefined ? options.bootId : await readBootId();
    const checkpoints = {
      intervalMs: options.checkpointIntervalMs ?? 500,
      maxWalFrames: options.maxWalFrames ?? 16_384,
      ...(options.checkpointPass ? { pass: options.checkpointPass } : {}),
    };
    const commitGapMs = options.commitGapMs ?? 0;
    if (!Number.isFinite(commitGapMs) || commitGapMs < 0 || commitGapMs > 60_000) {
      throw new StoreError(
        "invalid",
        `commitGapMs must be a number of milliseconds from 0 to 60,000, got ${commitGapMs}`,
      );
    }
    checkCount("checkpointIntervalMs", checkpoints.intervalMs);
    checkCount("maxWalFrames", checkpoints.maxWalFrames);
    try {
      const info = await Deno.stat(dataDir).catch(() => null);
      if (info !== null && !info.isDirectory) throw new Error("it exists and is not a folder");
      makePrivateDir(dataDir);
    } catch (error) {
      throw new StoreError(
        "open_failed",
        `cannot use data folder "${dataDir}": ${messageOf(error)}`,
        { cause: error },
      );
    }
    const path = join(dataDir, DATABASE_FILE);
    let db: DatabaseSync | undefined;
    let wal: Deno.FsFile | null = null;
    try {
      makePrivateDatabase(path);
      db = new DatabaseSync(path);
      db.exec(`PRAGMA busy_timeout = ${busyTimeoutMs}`);
      const mode = db.prepare("PRAGMA journal_mode = WAL").get() as { journal_mode: string };
      if (mode.journal_mode.toLowerCase() !== "wal") {
        log.warn("SQLite refused WAL mode for {path}; using {mode}", {
          path,
          mode: mode.journal_mode,
        });
      }
      // FULL while opening: the WAL's creation and the migrations are synced by SQLite.
      db.exec("PRAGMA synchronous = FULL");
      db.exec("PRAGMA foreign_keys = ON");
      // A statement that writes several rows and could fail half-way (the multi-row
      // inserts of room messages: a foreign key, a CHECK) keeps a statement journal to
      // undo itself; in memory rather than in a temporary file (measured: the file doubled
      // what the inserts cost). Temporary tables and sorts are small here (LIMITed reads).
      db.exec("PRAGMA temp_store = MEMORY");
      const version = migrate(db);
      const idFloor = startRun(db, version, path, bootId);
      if (mode.journal_mode.toLowerCase() === "wal") {
        wal = await Deno.open(`${path}-wal`, { read: true, write: true });
        db.exec("PRAGMA synchronous = NORMAL");
        // Not inside commits: a worker checkpoints (#checkpointDue).
        db.exec("PRAGMA wal_autocheckpoint = 0");
      }
      log.debug("opened {path} (schema version {version})", { path, version });
      const store = new SqliteStore(
        db,
        path,
        maxBatch,
        wal,
        options.syncWal ?? ((file) => file.syncData()),
        checkpoints,
        idFloor,
      );
      store.#commitGapMs = commitGapMs;
      return store;
    } catch (error) {
      try {
        wal?.close();
        db?.close();
      } catch {
        // already failing: the first error is the one to report
      }
      if (error instanceof StoreError) throw error;
      throw new StoreError(
        "open_failed",
        `cannot open the chat database in data folder "${dataDir}" (${path}): ${messageOf(error)}`,
        { cause: error },
      );
    }
  }

  /** Group-commit counters (a snapshot). */
  get stats(): SqliteStoreStats {
    return {
      appends: this.#appends,
      commits: this.#commits,
      largestBatch: this.#largestBatch,
      heldMs: this.#heldMs,
      queued: this.#queue.length,
      walSyncs: this.#barrier.syncs,
      checkpoints: this.#checkpointer?.checkpoints ?? 0,
      blockingCheckpoints: this.#blockingCheckpoints,
      walFrames: this.#walFrames,
      writeGroups: this.#groupCommits,
    };
  }

  // ---- accounts

  /** The account with this key, or null. */
  getAccount(key: string): Promise<AccountRecord | null> {
    return this.#read(() => {
      const row = this.#st.getAccount.get(key) as AccountRow | undefined;
      return row === undefined ? null : {
        key: row.key,
        nick: row.nick,
        passwordHash: row.password_hash,
        createdAt: row.created_at,
      };
    });
  }

  /** Every account's key. */
  accountKeys(): Promise<string[]> {
    return this.#read(() =>
      (this.#st.accountKeys.all() as { key: string }[]).map((row) => row.key)
    );
  }

  /** Creates the account; false (and nothing written) when the key exists. */
  createAccount(account: AccountRecord): Promise<boolean> {
    return this.#write(() =>
      this.#st.createAccount.run(
        account.key,
        account.nick,
        account.passwordHash,
        account.createdAt,
      ).changes === 1
    );
  }

  /** Replaces an account's password hash; `not_found` when there is no such account. */
  setPasswordHash(key: string, passwordHash: string): Promise<void> {
    return this.#write(() => {
      this.#transaction(() => {
        if (this.#st.setPasswordHash.run(passwordHash, key).changes === 0) {
          throw new StoreError("not_found", `no account "${key}"`);
        }
        this.#st.removeTokens.run(key);
      });
    });
  }

  // ---- rooms and memberships

  /** The room with this key, or null. */
  getRoom(key: string): Promise<RoomRecord | null> {
    return this.#read(() => {
      const row = this.#st.getRoom.get(key) as RoomRow | undefined;
      return row === undefined ? null : toRoom(row);
    });
  }

  /** Creates the room; false when the key exists. */
  createRoom(room: RoomRecord): Promise<boolean> {
    return this.#write(() =>
      this.#st.createRoom.run(room.key, room.name, room.topic, room.topicBy, room.createdAt)
        .changes === 1
    );
  }

  /** Every room with its member count, ordered by key. */
  listRooms(): Promise<RoomSummary[]> {
    return this.#read(() =>
      (this.#st.listRooms.all() as unknown as RoomRow[]).map((row) => ({
        ...toRoom(row),
        members: row.members ?? 0,
      }))
    );
  }

  /** Sets a room's topic; `not_found` when there is no such room. */
  setTopic(roomKey: string, topic: string, by: string): Promise<void> {
    return this.#write(() => {
      if (this.#st.setTopic.run(topic, by, roomKey).changes === 0) {
        throw new StoreError("not_found", `no room "${roomKey}"`);
      }
    });
  }

  /** Adds a member; false when already a member, `not_found` when there is no such room. */
  addMember(roomKey: string, accountKey: string): Promise<boolean> {
    return this.#write(() => {
      if (this.#st.roomName.get(roomKey) === undefined) {
        throw new StoreError("not_found", `no room "${roomKey}"`);
      }
      return this.#st.addMember.run(roomKey, accountKey).changes === 1;
    });
  }

  /** Removes a member; false when not a member. */
  removeMember(roomKey: string, accountKey: string): Promise<boolean> {
    return this.#write(() => this.#st.removeMember.run(roomKey, accountKey).changes === 1);
  }

  /** Account keys of a room's members, sorted. */
  roomMembers(roomKey: string): Promise<string[]> {
    return this.#read(() => keys(this.#st.roomMembers, roomKey));
  }

  /** Room keys an account is a member of, sorted. */
  accountRooms(accountKey: string): Promise<string[]> {
    return this.#read(() => keys(this.#st.accountRooms, accountKey));
  }

  // ---- messages

  /**
   * Commits a message, at once or with the next group (see the module's notes); resolves
   * once that commit is durable, with its id (or with the earlier message and
   * `duplicate: true` for a resend). Rejects with
   * `invalid` or `not_found` (unknown room) for this message alone, and with `failed`
   * for every message of the batch when the transaction fails (nothing of it is kept).
   */
  appendMessage(message: NewMessage, options?: AppendOptions): Promise<AppendResult> {
    try {
      this.#checkOpen();
      checkNewMessage(message);
    } catch (error) {
      return Promise.reject(error);
    }
    const { promise, resolve, reject } = Promise.withResolvers<AppendResult>();
    this.#queue.push({ message: { ...message }, options, resolve, reject });
    // One clock read per turn: the appends of a turn whose commit is due at its end count
    // from its first (`#flushQueued` is set then), not one read each.
    this.#queuedAtSum += this.#flushQueued ? this.#turnAt : (this.#turnAt = performance.now());
    // The appends of this turn's work share a commit, made once it is done (with a commit
    // gap, once it is done in the first turn past the gap); while a checkpoint runs, at its
    // end (#checkpointDue).
    if (this.#queue.length >= this.#maxBatch) this.#flush();
    else if (!this.#flushQueued && !this.#checkpointing) this.#commitSoon();
    return promise;
  }

  /**
   * Commits the queue at the end of this turn, or, within the commit gap of the last
   * commit, arms the timer that commits it once the gap has passed (a later turn's append
   * past the gap commits it sooner).
   */
  #commitSoon(): void {
    const wait = this.#commitGapMs === 0
      ? 0
      : this.#commitGapMs - (performance.now() - this.#lastCommitAt);
    if (wait <= 0) {
      this.#flushQueued = true;
      queueMicrotask(this.#flushSoon);
    } else if (this.#gapTimer === undefined) {
      this.#gapTimer = setTimeout(this.#gapEnd, wait);
    }
  }

  /** {@linkcode #flush} from a microtask (the queue may have been committed meanwhile). */
  readonly #flushSoon = (): void => {
    this.#flushQueued = false;
    if (!this.#closed && !this.#checkpointing) this.#flush();
  };

  /** The commit gap has passed and no turn committed the queue. */
  readonly #gapEnd = (): void => {
    this.#gapTimer = undefined;
    if (!this.#closed && !this.#checkpointing) this.#flush();
  };

  /** The newest `limit` messages matching `query`, oldest first. */
  history(query: HistoryQuery): Promise<ChatMessage[]> {
    return this.#readCommitted(() => {
      checkHistoryQuery(query);
      const { before, after, beforeTs, afterTs } = historyBounds(query);
      const bounds = [before, after, beforeTs, afterTs, query.limit] as const;
      const oldest = query.oldest === true;
      const rows = query.room !== undefined
        ? (oldest ? this.#st.roomHistoryOldest : this.#st.roomHistory)
          .all(query.room, ...bounds, query.viewer ?? "")
        : (oldest ? this.#st.pairHistoryOldest : this.#st.pairHistory)
          .all(pairKey(query.between![0], query.between![1]), ...bounds);
      const messages = (rows as unknown as MessageRow[]).map(toChat);
      return oldest ? messages : messages.reverse();
    });
  }

  /** The highest message id stored so far (after committing pending appends); 0 when none. */
  lastMessageId(): Promise<number> {
    return this.#readCommitted(() => Number((this.#st.lastMessageId.get() as { id: number }).id));
  }

  /** The direct conversations of `accountKey` active in a time window, latest first. */
  directConversations(
    accountKey: string,
    query: { afterTs: number; beforeTs: number; limit: number },
  ): Promise<{ key: string; ts: number }[]> {
    return this.#readCommitted(() => {
      checkCount("limit", query.limit);
      const rows = this.#st.directConversations.all(
        accountKey,
        query.afterTs,
        query.beforeTs,
        query.limit,
      ) as unknown as { other: string; ts: number }[];
      return rows.map((row) => ({ key: row.other, ts: Number(row.ts) }));
    });
  }

  /** Messages above `afterId` that `accountKey` may see now, oldest first, at most `limit`. */
  messagesAfter(accountKey: string, afterId: number, limit: number): Promise<ChatMessage[]> {
    return this.#readCommitted(() => {
      checkCount("afterId", afterId);
      checkCount("limit", limit);
      if (limit === 0) return [];
      const rows = this.#st.messagesAfter.all(accountKey, afterId, limit);
      return (rows as unknown as MessageRow[]).map(toChat);
    });
  }

  /** Direct messages to `accountKey` not delivered yet, oldest first (a page of them). */
  undelivered(accountKey: string, query: UndeliveredQuery = {}): Promise<DirectMessage[]> {
    return this.#readCommitted(() => {
      const { after, through, limit } = checkUndeliveredQuery(query);
      const rows = this.#st.undelivered.all(
        accountKey,
        after,
        through,
        limit === Infinity ? -1 : limit,
      ) as unknown as MessageRow[];
      return rows.map((row) => toChat(row) as DirectMessage);
    });
  }

  /** How many direct messages to `accountKey` up to `throughId` are undelivered. */
  countUndelivered(accountKey: string, throughId: number): Promise<number> {
    // Every message up to `throughId` is durable already (a login reads it from
    // lastMessageId, which waited for the sync): no commit of appends, no sync to wait
    // for. A delivery marked since and not yet synced may be left out: the count is a hint.
    return this.#read(() => {
      checkCount("throughId", throughId);
      return Number((this.#st.countUndelivered.get(accountKey, throughId) as { n: number }).n);
    });
  }

  /** Marks direct messages delivered; returns those newly delivered (unknown ids and room messages are ignored). */
  markDelivered(ids: number[]): Promise<number[]> {
    return this.#writeMessages(() => {
      for (const id of ids) checkCount("id", id);
      if (ids.length === 0) return [];
      const rows = this.#st.markDelivered.all(JSON.stringify(ids)) as unknown as { id: number }[];
      return rows.map((row) => Number(row.id)).sort((a, b) => a - b);
    });
  }

  /**
   * Marks direct messages to `accountKey` read (and delivered); returns those newly
   * read, by id.
   */
  markRead(accountKey: string, ids: number[]): Promise<DirectMessage[]> {
    return this.#writeMessages(() => {
      for (const id of ids) checkCount("id", id);
      if (ids.length === 0) return [];
      const rows = this.#st.markRead.all(
        JSON.stringify(ids),
        accountKey,
      ) as unknown as MessageRow[];
      return rows.sort((a, b) => a.id - b.id).map((row) => toChat(row) as DirectMessage);
    });
  }

  // ---- blocks and contacts

  /** Records that `accountKey` blocks `targetKey`; false when already blocked. */
  addBlock(accountKey: string, targetKey: string): Promise<boolean> {
    return this.#write(() => this.#st.addBlock.run(accountKey, targetKey).changes === 1);
  }

  /** Removes a block; false when there was none. */
  removeBlock(accountKey: string, targetKey: string): Promise<boolean> {
    return this.#write(() => this.#st.removeBlock.run(accountKey, targetKey).changes === 1);
  }

  /** Account keys that `accountKey` blocks, sorted. */
  blocksOf(accountKey: string): Promise<string[]> {
    return this.#read(() => keys(this.#st.blocksOf, accountKey));
  }

  /** Adds a contact; false when already one. */
  addContact(accountKey: string, targetKey: string): Promise<boolean> {
    return this.#write(() => this.#st.addContact.run(accountKey, targetKey).changes === 1);
  }

  /** Removes a contact; false when there was none. */
  removeContact(accountKey: string, targetKey: string): Promise<boolean> {
    return this.#write(() => this.#st.removeContact.run(accountKey, targetKey).changes === 1);
  }

  /** Account keys in `accountKey`'s contact list, sorted. */
  contactsOf(accountKey: string): Promise<string[]> {
    return this.#read(() => keys(this.#st.contactsOf, accountKey));
  }

  /** Account keys that have `targetKey` as a contact, sorted. */
  watchersOf(targetKey: string): Promise<string[]> {
    return this.#read(() => keys(this.#st.watchersOf, targetKey));
  }

  // ---- session tokens

  /** Stores a token; drops the account's expired ones and the oldest beyond the cap. */
  addToken(token: TokenRecord): Promise<void> {
    return this.#write(() =>
      this.#transaction(() => {
        this.#st.addToken.run(token.hash, token.accountKey, token.createdAt, token.expiresAt);
        this.#st.pruneTokens.run(token.accountKey, token.createdAt, MAX_TOKENS_PER_ACCOUNT);
      })
    );
  }

  /** The token with this hash, or null. */
  getToken(hash: string): Promise<TokenRecord | null> {
    return this.#read(() => {
      const row = this.#st.getToken.get(hash) as TokenRow | undefined;
      return row === undefined ? null : {
        hash: row.hash,
        accountKey: row.account_key,
        createdAt: row.created_at,
        expiresAt: row.expires_at,
      };
    });
  }

  /** Revokes the token if it is `accountKey`'s. */
  removeToken(hash: string, accountKey: string): Promise<boolean> {
    return this.#write(() => this.#st.removeToken.run(hash, accountKey).changes === 1);
  }

  /** Revokes every token of `accountKey`. */
  removeTokens(accountKey: string): Promise<number> {
    return this.#write(() => Number(this.#st.removeTokens.run(accountKey).changes));
  }

  // ---- login history

  /** Records a session start; returns its id. */
  recordLogin(accountKey: string, ts: number): Promise<number> {
    return this.#write(() => Number(this.#st.recordLogin.run(accountKey, ts).lastInsertRowid));
  }

  /** Records a session end; an unknown or already ended session is left alone. */
  recordLogout(sessionId: number, ts: number): Promise<void> {
    return this.#write(() => {
      this.#st.recordLogout.run(ts, sessionId);
    });
  }

  /** Ends every open session at `ts`. */
  closeOpenSessions(ts: number): Promise<void> {
    return this.#write(() => {
      this.#st.closeOpenSessions.run(ts);
    });
  }

  /** Account keys with a session open now or ended at or after `since`, sorted. */
  onlineSince(since: number): Promise<string[]> {
    return this.#read(() => keys(this.#st.onlineSince, since));
  }

  /**
   * Commits queued appends, waits for them to be durable, checkpoints the WAL into the
   * database file and closes it. Later calls reject with a `closed`
   * {@linkcode StoreError}; closing again does nothing.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    try {
      this.#commitGroup();
      this.#flush();
    } finally {
      this.#closed = true;
    }
    await this.#barrier.durable().catch((error) =>
      log.error("syncing the WAL at close failed: {error}", { error: messageOf(error) })
    );
    await this.#checkpointer?.close();
    this.#wal?.close();
    try {
      // The run ended here: everything it committed is durable (see startRun).
      this.#db.exec("UPDATE server_run SET running = 0");
    } catch (error) {
      log.warn("recording the end of the run failed: {error}", { error: messageOf(error) });
    }
    try {
      this.#db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
    } catch (error) {
      log.warn("WAL checkpoint at close failed: {error}", { error: messageOf(error) });
    }
    this.#db.close();
    log.debug("closed {path}", { path: this.path });
  }

  // ---- internals

  #checkOpen(): void {
    if (this.#closed) throw new StoreError("closed", `the store ${this.path} is closed`);
  }

  /** Runs a read that cannot observe queued appends. */
  #read<T>(fn: () => T): Promise<T> {
    try {
      this.#checkOpen();
      return Promise.resolve(fn());
    } catch (error) {
      return Promise.reject(wrap(error));
    }
  }

  /**
   * Runs `fn` in one transaction (rolled back when it throws); inside the open group of
   * writes made during a sync, as a savepoint of it.
   */
  #transaction<T>(fn: () => T): T {
    if (this.#grouping) return this.#savepoint(fn);
    this.#st.begin.run();
    try {
      const result = fn();
      this.#st.commit.run();
      return result;
    } catch (error) {
      if (this.#db.isTransaction) this.#db.exec("ROLLBACK");
      throw error;
    }
  }

  /** Commits queued appends first, then runs a write; resolves once it is durable. */
  #write<T>(fn: () => T): Promise<T> {
    return this.#durably(fn, "write");
  }

  /** {@linkcode #write} of a change to messages (what `#readCommitted` waits for). */
  #writeMessages<T>(fn: () => T): Promise<T> {
    return this.#durably(fn, "messages");
  }

  /**
   * Commits queued appends first, then runs a read that could observe them; resolves once
   * the messages it could see are durable (the last commit that wrote messages, not
   * later commits of other writes).
   */
  #readCommitted<T>(fn: () => T): Promise<T> {
    return this.#durably(fn, "read");
  }

  /** Runs `fn` as a savepoint of the open group: a failing write undoes only itself. */
  #savepoint<T>(fn: () => T): T {
    this.#st.savepoint.run();
    try {
      const result = fn();
      this.#st.release.run();
      return result;
    } catch (error) {
      if (this.#db.isTransaction) {
        this.#st.rollbackTo.run();
        this.#st.release.run();
      }
      throw error;
    }
  }

  /**
   * Opens the group of writes made during a sync when one runs (they need the next sync
   * anyway, so one commit at its start costs them nothing: a login storm's account,
   * membership and login rows otherwise commit one by one). False when no sync runs: a
   * lone write commits at once.
   */
  #joinGroup(): boolean {
    if (this.#grouping) return true;
    if (!this.#barrier.syncing || this.#wal === null || this.#db.isTransaction) return false;
    this.#st.begin.run();
    this.#grouping = true;
    return true;
  }

  /**
   * Commits the writes grouped during the sync that just ended, before the next starts;
   * when the commit fails they are rolled back and the next sync, meant to cover them,
   * fails (their callers hear the error, none is acknowledged).
   */
  #commitGroup(): void {
    if (!this.#grouping) return;
    this.#grouping = false;
    try {
      this.#st.commit.run();
      this.#groupCommits++;
    } catch (error) {
      if (this.#db.isTransaction) this.#db.exec("ROLLBACK");
      log.error("committing the writes made during a sync failed: {error}", {
        error: messageOf(error),
      });
      this.#groupFailure = error;
    }
  }

  #durably<T>(fn: () => T, kind: "write" | "messages" | "read"): Promise<T> {
    let result: T;
    let upTo: number;
    try {
      this.#checkOpen();
      this.#flush();
      if (kind !== "read" && this.#joinGroup()) result = this.#savepoint(fn);
      else result = fn();
      if (kind === "read") upTo = this.#messagesCommitted;
      else upTo = this.#committed();
      if (kind === "messages") this.#messagesCommitted = upTo;
    } catch (error) {
      return Promise.reject(wrap(error));
    }
    return this.#barrier.durable(upTo).then(
      () => result,
      (error) => Promise.reject(syncFailed(error)),
    );
  }

  /** Records a commit with the barrier; returns its number. */
  #committed(): number {
    this.#commitsSinceCheckpoint++;
    return this.#barrier.committed();
  }

  /**
   * A sync ended: the appends queued while it ran are committed for the next one, and a
   * checkpoint starts when one is due.
   */
  #afterSync(): void {
    this.#commitGroup();
    if (this.#closed) return;
    // Within the commit gap, the queue waits for its timer or a turn past it.
    if (!this.#checkpointing && this.#gapTimer === undefined) this.#flush();
    this.#checkpointDue();
  }

  /**
   * Starts a checkpoint in the worker when {@linkcode CHECKPOINT_MIN_COMMITS} commits came
   * since the last one, and either `checkpointIntervalMs` passed or
   * {@linkcode CHECKPOINT_COMMITS} commits were made. When
   * the worker's last one left frames behind in a WAL past `maxWalFrames` (commits kept
   * coming while it ran, so the WAL could never start over), checkpoints here instead,
   * once, between two commits: the next commit then starts the WAL over.
   *
   * A checkpoint runs in passes. The first ones copy the WAL while appends commit as
   * usual, each what was committed during the one before (fewer frames each time, see
   * {@linkcode CATCH_UP_PASSES} and {@linkcode FINAL_PASS_FRAMES}). During the last pass,
   * appends are queued as during a sync, so that it copies every frame and the next commit
   * starts the WAL over (SQLite restarts the WAL only after a checkpoint that left nothing
   * behind): otherwise steady appends keep the WAL growing, and each sync of a growing
   * file also writes its new size (measured: a lone writer's ack p50 doubled). Only that
   * short pass delays the messages that arrive during it: a single pass held them for the
   * whole copy of up to 500 ms of commits, the fan-out's p99 at a steady load. Other
   * writes commit meanwhile; when they keep the WAL growing, the bound above applies.
   */
  #checkpointDue(): void {
    const checkpointer = this.#checkpointer;
    if (
      checkpointer === null || this.#checkpointRunning || checkpointer.running ||
      this.#commitsSinceCheckpoint < CHECKPOINT_MIN_COMMITS
    ) return;
    const now = performance.now();
    if (
      this.#commitsSinceCheckpoint < CHECKPOINT_COMMITS &&
      now - this.#lastCheckpointAt < this.#checkpointIntervalMs
    ) return;
    this.#commitsSinceCheckpoint = 0;
    this.#lastCheckpointAt = now;
    if (this.#walBehind || this.#workerFailed) {
      this.#walBehind = false;
      this.#blockingCheckpoints++;
      try {
        const row = this.#db.prepare("PRAGMA wal_checkpoint(PASSIVE)").get() as {
          log: number;
        };
        this.#walFrames = row.log;
      } catch (error) {
        log.warn("WAL checkpoint failed: {error}", { error: messageOf(error) });
      }
      return;
    }
    this.#checkpointRunning = true;
    this.#runPass(checkpointer, 1, 0, Infinity);
  }

  /**
   * Runs pass `pass` of a checkpoint (see {@linkcode #checkpointDue}); `backfilled`: the
   * frames the passes before it copied in all, `lastCopied` the last one alone.
   */
  #runPass(
    checkpointer: WalCheckpointer,
    pass: number,
    backfilled: number,
    lastCopied: number,
  ): void {
    const held = pass > CATCH_UP_PASSES || lastCopied <= FINAL_PASS_FRAMES;
    if (held) this.#checkpointing = true;
    const run = () => checkpointer.checkpoint();
    let outcome: Promise<CheckpointResult>;
    try {
      outcome = this.#checkpointPass(run, held);
    } catch (error) {
      outcome = Promise.reject(error);
    }
    outcome.then(({ walFrames, checkpointed }) => {
      if (!held) {
        if (this.#closed) return this.#checkpointEnded();
        // What this pass copied (the WAL started over meanwhile: all it copied).
        const copied = checkpointed >= backfilled ? checkpointed - backfilled : checkpointed;
        this.#runPass(checkpointer, pass + 1, checkpointed, copied);
        return;
      }
      this.#walFrames = walFrames;
      this.#walBehind = checkpointed < walFrames && walFrames >= this.#maxWalFrames;
      this.#checkpointEnded();
    }, (error) => {
      this.#checkpointEnded();
      if (this.#closed) return;
      // No worker (a build without its file, say): checkpoints here, the WAL bounded still.
      log.warn("WAL checkpoint in a worker failed; checkpointing between commits: {error}", {
        error: messageOf(error),
      });
      this.#workerFailed = true;
    });
  }

  /** A checkpoint ended (or failed): the appends queued during its last pass are committed. */
  #checkpointEnded(): void {
    const held = this.#checkpointing;
    this.#checkpointing = false;
    this.#checkpointRunning = false;
    if (held && !this.#closed) this.#flush();
  }

  /**
   * Writes the queued appends in one transaction, tells their `onCommitted` (at once while
   * fewer than {@linkcode MAX_UNDURABLE_IDS} ids are committed and not durable, else once
   * durable), then settles their promises once the commit is durable.
   */
  #flush(): void {
    if (this.#gapTimer !== undefined) {
      clearTimeout(this.#gapTimer);
      this.#gapTimer = undefined;
    }
    const batch = this.#queue;
    if (batch.length === 0) return;
    this.#queue = [];
    this.#lastCommitAt = performance.now();
    // Each waited from its append to now: the sum of the waits, with no time kept per append.
    const held = batch.length * this.#lastCommitAt - this.#queuedAtSum;
    this.#queuedAtSum = 0;
    // Writes grouped during a running sync are committed first: the appends' own commit
    // must not be a savepoint of a transaction still open.
    this.#commitGroup();
    if (roundStages.on) roundStages.commitStart(batch.length);
    const outcomes: (AppendResult | StoreError)[] = new Array(batch.length);
    const idFloor = this.#idFloor;
    try {
      this.#transaction(() => this.#insertBatch(batch, outcomes));
    } catch (error) {
      this.#idFloor = idFloor;
      const failure = new StoreError(
        "failed",
        `could not store ${batch.length} message(s): ${messageOf(error)}`,
        { cause: error },
      );
      log.error("group commit of {count} message(s) failed: {error}", {
        count: batch.length,
        error: messageOf(error),
      });
      for (const item of batch) item.reject(failure);
      return;
    }
    for (const item of batch) item.message = null;
    if (roundStages.on) roundStages.mark(Stage.CommitEnd);
    this.#messagesCommitted = this.#committed();
    this.#commits++;
    this.#appends += batch.length;
    this.#heldMs += held;
    this.#largestBatch = Math.max(this.#largestBatch, batch.length);
    let inserted = 0;
    for (const outcome of outcomes) {
      if (!(outcome instanceof StoreError) && !outcome.duplicate) inserted++;
    }
    const toldEarly = this.#undurableIds + inserted <= MAX_UNDURABLE_IDS;
    if (toldEarly) {
      this.#undurableIds += inserted;
      this.#tellCommitted(batch, outcomes);
    }
    const upTo = this.#messagesCommitted;
    const settle = (failure?: StoreError) => {
      if (toldEarly) {
        // Durable, or its sync failed: counted until a later sync covers it.
        const release = () => this.#undurableIds -= inserted;
        if (failure === undefined) release();
        else this.#barrier.durable(upTo).then(release, () => {});
      } else if (failure === undefined) this.#tellCommitted(batch, outcomes);
      for (let i = 0; i < batch.length; i++) {
        const outcome = outcomes[i];
        if (outcome instanceof StoreError) batch[i].reject(outcome);
        else if (failure !== undefined) batch[i].reject(failure);
        else batch[i].resolve(outcome);
      }
    };
    this.#barrier.durable(upTo).then(() => settle(), (error) => {
      log.error("syncing {count} message(s) failed: {error}", {
        count: batch.length,
        error: messageOf(error),
      });
      settle(syncFailed(error));
    });
  }

  /** Tells each stored (or found) message of a committed batch to its `onCommitted`. */
  #tellCommitted(batch: Pending[], outcomes: (AppendResult | StoreError)[]): void {
    for (let i = 0; i < batch.length; i++) {
      const outcome = outcomes[i];
      if (outcome instanceof StoreError) continue;
      tellCommitted(batch[i].options, outcome, (error) => {
        log.error("onCommitted failed: {error}", { error: messageOf(error) });
      });
    }
  }

  /**
   * The stored copy of a resent message (its insert hit the unique client id), or a
   * `conflict` when the id was used for another message.
   */
  #earlier(message: NewMessage): AppendResult | StoreError {
    const row = this.#st.byClientId.get(message.fromKey, message.clientId) as unknown as
      & MessageRow
      & { to_key: string | null };
    try {
      checkResend({ roomKey: row.room_key, toKey: row.to_key, text: row.text }, message);
    } catch (error) {
      if (error instanceof StoreError) return error;
      throw error;
    }
    return { message: toChat(row), duplicate: true };
  }

  /** A room's display name, cached: rooms are never renamed or removed. */
  #roomName(key: string): string | undefined {
    let name = this.#roomNames.get(key);
    if (name === undefined) {
      name = (this.#st.roomName.get(key) as { name: string } | undefined)?.name;
      if (name !== undefined) this.#roomNames.set(key, name);
    }
    return name;
  }

  /**
   * Inserts a batch inside its transaction, in order: each run of room messages with the
   * multi-row statements ({@linkcode #insertRooms}), direct messages (and a room message
   * that takes the id floor) one by one; `outcomes[i]` is `batch[i]`'s.
   */
  #insertBatch(batch: Pending[], outcomes: (AppendResult | StoreError)[]): void {
    // The highest id so far (this connection alone writes messages, in this transaction),
    // once known: read when a multi-row statement needs it, then kept up to date.
    let lastId: number | null = null;
    const rooms: number[] = [];
    const names: string[] = [];
    const insertRooms = () => {
      if (rooms.length === 0) return;
      lastId = this.#insertRooms(batch, rooms, names, lastId, outcomes);
      rooms.length = 0;
      names.length = 0;
    };
    for (let i = 0; i < batch.length; i++) {
      const message = batch[i].message!;
      if (message.room !== undefined && this.#idFloor === 0) {
        const name = this.#roomName(message.room);
        if (name === undefined) {
          outcomes[i] = new StoreError("not_found", `no room "${message.room}"`);
        } else {
          rooms.push(i);
          names.push(name);
        }
        continue;
      }
      insertRooms();
      const outcome = this.#insert(message);
      if (!(outcome instanceof StoreError) && !outcome.duplicate) lastId = outcome.message.id;
      outcomes[i] = outcome;
    }
    insertRooms();
  }

  /** The highest message id stored (in the open transaction). */
  #lastId(): number {
    return Number((this.#st.lastMessageId.get() as { id: number }).id);
  }

  /**
   * Inserts the room messages `batch[at[k]]` (in rooms named `names[k]`) with the
   * multi-row statements, largest first; `lastId`: the highest message id before them
   * (`null`: not known yet). Returns the highest after them, when known.
   *
   * A statement that stored all of its `n` rows gave them the ids after `lastId` in row
   * order (SQLite gives a row without one the highest id + 1); otherwise (a resend, also
   * of a message earlier in the same statement) each row is looked up by its client id:
   * stored now when its id is above `lastId` and it is the first of its client id here,
   * else a duplicate.
   */
  #insertRooms(
    batch: Pending[],
    at: readonly number[],
    names: readonly string[],
    lastId: number | null,
    outcomes: (AppendResult | StoreError)[],
  ): number | null {
    let k = 0;
    while (k < at.length) {
      const left = at.length - k;
      const rows = ROOM_INSERT_ROWS.find((n) => n <= left) ?? 1;
      if (rows === 1) {
        const outcome = this.#insert(batch[at[k]].message!);
        if (!(outcome instanceof StoreError) && !outcome.duplicate) lastId = outcome.message.id;
        outcomes[at[k]] = outcome;
        k++;
        continue;
      }
      lastId ??= this.#lastId();
      const args: (string | number)[] = new Array(rows * ROOM_INSERT_COLUMNS);
      for (let r = 0; r < rows; r++) {
        const m = batch[at[k + r]].message!;
        const o = r * ROOM_INSERT_COLUMNS;
        args[o] = m.ts;
        args[o + 1] = m.fromKey;
        args[o + 2] = m.from;
        args[o + 3] = m.room!;
        args[o + 4] = m.text;
        args[o + 5] = m.clientId;
      }
      const { lastInsertRowid, changes } = this.#st.insertRoomMessages.get(rows)!.run(...args);
      const last = Number(lastInsertRowid);
      if (changes === rows && last - rows === lastId) {
        for (let r = 0; r < rows; r++) {
          const m = batch[at[k + r]].message!;
          outcomes[at[k + r]] = {
            message: {
              type: "msg",
              id: lastId + 1 + r,
              ts: m.ts,
              room: names[k + r],
              from: m.from,
              text: m.text,
            },
            duplicate: false,
          };
        }
      } else {
        const seen = new Set<string>();
        for (let r = 0; r < rows; r++) {
          const m = batch[at[k + r]].message!;
          const key = `${m.fromKey}\n${m.clientId}`;
          if (!seen.has(key)) {
            seen.add(key);
            const row = this.#st.byClientId.get(m.fromKey, m.clientId) as MessageRow | undefined;
            if (row !== undefined && row.id > lastId) {
              outcomes[at[k + r]] = { message: toChat(row), duplicate: false };
              continue;
            }
          }
          outcomes[at[k + r]] = this.#earlier(m);
        }
      }
      if (changes > 0) lastId = Math.max(lastId, last);
      k += rows;
    }
    return lastId;
  }

  /**
   * Inserts one message inside the batch transaction, or finds its earlier copy (also one
   * earlier in the same batch: the transaction sees its own rows).
   */
  #insert(message: NewMessage): AppendResult | StoreError {
    let chat: ChatMessage;
    if (message.room !== undefined) {
      const roomName = this.#roomName(message.room);
      if (roomName === undefined) return new StoreError("not_found", `no room "${message.room}"`);
      const { lastInsertRowid, changes } = this.#st.insertRoomMessage.run(
        this.#idFloor || null,
        message.ts,
        message.fromKey,
        message.from,
        message.room,
        message.text,
        message.clientId,
      );
      if (changes === 0) return this.#earlier(message);
      this.#idFloor = 0;
      chat = {
        type: "msg",
        id: Number(lastInsertRowid),
        ts: message.ts,
        room: roomName,
        from: message.from,
        text: message.text,
      };
    } else {
      const { lastInsertRowid, changes } = this.#st.insertDirectMessage.run(
        this.#idFloor || null,
        message.ts,
        message.fromKey,
        message.from,
        message.toKey!,
        message.to!,
        pairKey(message.fromKey, message.toKey!),
        message.text,
        message.clientId,
      );
      if (changes === 0) return this.#earlier(message);
      this.#idFloor = 0;
      chat = {
        type: "dm",
        id: Number(lastInsertRowid),
        ts: message.ts,
        from: message.from,
        to: message.to!,
        text: message.text,
      };
    }
    return { message: chat, duplicate: false };
  }
}

/** Applies the pending migrations; returns the schema version. */
function migrate(db: DatabaseSync): number {
  const row = db.prepare("PRAGMA user_version").get() as { user_version: number };
  const current = row.user_version;
  if (current > MIGRATIONS.length) {
    throw new StoreError(
      "open_failed",
      `the chat database has schema version ${current}, newer than this program's ${MIGRATIONS.length}`,
    );
  }
  for (let version = current; version < MIGRATIONS.length; version++) {
    db.exec("BEGIN IMMEDIATE");
    try {
      db.exec(MIGRATIONS[version]);
      db.exec(`PRAGMA user_version = ${version + 1}`);
      db.exec("COMMIT");
    } catch (error) {
      if (db.isTransaction) db.exec("ROLLBACK");
      throw error;
    }
    log.info("migrated the chat database to schema version {version}", {
      version: version + 1,
    });
  }
  return MIGRATIONS.length;
}

/**
 * Records the run that starts (the machine's boot), and fails at open, rather than at the
 * first message, when the database cannot be written (SQLite opens a read-only file
 * without complaint), except on a full disk, which is logged. Rewrites the schema version.
 *
 * A run that did not close (its row is still there) on another boot of the machine, or
 * where boots cannot be told apart, may have lost its last commits with the machine,
 * after receivers were told of them (`onCommitted`): the id sequence moves on by
 * {@linkcode MAX_UNDURABLE_IDS} so that none of their ids is given again. A run killed
 * on the same boot lost nothing (its commits were in the system's cache): ids go on.
 */
function startRun(
  db: DatabaseSync,
  version: number,
  path: string,
  bootId: string | null,
): number {
  let idFloor = 0;
  let lastId = 0;
  db.exec("BEGIN IMMEDIATE");
  try {
    const last = db.prepare("SELECT running, boot_id, id_floor FROM server_run WHERE id = 1")
      .get() as { running: number; boot_id: string | null; id_floor: number } | undefined;
    lastId = Number(
      (db.prepare("SELECT coalesce(max(id), 0) AS id FROM messages").get() as { id: number }).id,
    );
    idFloor = Number(last?.id_floor ?? 0);
    if (last?.running === 1 && (last.boot_id === null || last.boot_id !== bootId)) {
      idFloor = Math.max(idFloor, lastId + 1 + MAX_UNDURABLE_IDS);
      log.warn(
        "the last run of {path} ended with the machine (a power loss or a crash of the " +
          "system) and may have lost messages its receivers saw: message ids go on from " +
          "{floor}, past any it may have given",
        { path, floor: idFloor },
      );
    }
    db.prepare(
      "INSERT OR REPLACE INTO server_run (id, running, boot_id, id_floor) VALUES (1, 1, ?, ?)",
    ).run(bootId, idFloor);
    db.exec(`PRAGMA user_version = ${version}`);
    db.exec("COMMIT");
  } catch (error) {
    if (db.isTransaction) db.exec("ROLLBACK");
    // A full disk is no reason not to start: what is stored can still be read, and
    // writes succeed again once there is space (they fail with `storage_full` until then).
    if (!isDiskFull(error)) throw error;
    // Nothing can be written (no message either) until the disk has room again.
    log.error(
      "the disk of {path} is full: nothing can be stored until space is freed; " +
        "serving what is stored",
      { path },
    );
  }
  return idFloor > lastId ? idFloor : 0;
}

/**
 * Starts a WAL sync after the writes of the job that committed: a commit tells its
 * messages to the broker, which delivers them on a microtask, and the sockets' writers
 * start on the next (the outbound line, `transport/outbound_queue.ts`); the sync starts
 * on the one after. Starting it costs the event loop 35-60 µs (Deno hands `syncData` to
 * a blocking thread, on the server's own core when it is pinned to one): before the
 * writes, every delivery of every round waited for it (issue #16, the latency floor).
 * Delivery still follows the commit, and acknowledgements the sync, as before.
 */
function afterTheJobsWrites(start: () => void): void {
  queueMicrotask(() => queueMicrotask(start));
}

/** This boot of the machine (Linux), or `null` where it cannot be read. */
async function readBootId(): Promise<string | null> {
  try {
    return (await Deno.readTextFile("/proc/sys/kernel/random/boot_id")).trim() || null;
  } catch {
    return null;
  }
}

/** The error of a write whose commit could not be made durable. */
function syncFailed(error: unknown): StoreError {
  return new StoreError("failed", `could not sync the database to disk: ${messageOf(error)}`, {
    cause: error,
  });
}

/** The normalized key of a direct conversation. */
function pairKey(a: string, b: string): string {
  return a < b ? `${a}\n${b}` : `${b}\n${a}`;
}

function toChat(row: MessageRow): ChatMessage {
  if (row.room_key !== null) {
    return {
      type: "msg",
      id: row.id,
      ts: row.ts,
      room: row.room_name ?? row.room_key,
      from: row.from_nick,
      text: row.text,
    };
  }
  return {
    type: "dm",
    id: row.id,
    ts: row.ts,
    from: row.from_nick,
    to: row.to_nick ?? "",
    text: row.text,
  };
}

function toRoom(row: RoomRow): RoomRecord {
  return {
    key: row.key,
    name: row.name,
    topic: row.topic,
    topicBy: row.topic_by,
    createdAt: row.created_at,
  };
}

function keys(statement: StatementSync, arg: string | number): string[] {
  return (statement.all(arg) as unknown as { k: string }[]).map((row) => row.k);
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function wrap(error: unknown): Error {
  if (error instanceof StoreError) return error;
  return new StoreError("failed", `storage failure: ${messageOf(error)}`, { cause: error });
}
