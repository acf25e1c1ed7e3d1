/**
 * The PostgreSQL {@linkcode Store}, for several `chat serve` nodes sharing one database
 * (issue 15), through npm `postgres` (postgres.js).
 *
 * Message ids are global and increase in commit order across every node: an append batch
 * runs `chat_append_v1(...)`, a function that takes `pg_advisory_xact_lock(`{@linkcode
 * APPEND_LOCK}`)` before it takes ids from the `message_ids` sequence, and the lock is held
 * until the commit. So a batch's ids are taken only after every earlier batch (of any node)
 * committed, and a reader polling `id > last` never misses a row committed later with a
 * smaller id. The whole batch is one statement, one round trip, one transaction: the lock
 * is held for the inserts and the commit's WAL flush, not across network round trips.
 *
 * Group commit: {@linkcode PostgresStore.appendMessage} queues the message; the queue is
 * written by one call of the function once the current macrotask is done, at most
 * {@linkcode PostgresStoreOptions.maxBatch} at a time, one batch in flight per store (the
 * next batch gathers what arrives meanwhile). An append resolves only after its COMMIT.
 * Every other write, and every read that could see messages, first waits for the appends
 * queued before it, so one node's operations take effect in call order.
 *
 * Resends are idempotent through the unique `(from_key, client_id)`: a resend resolves with
 * the stored message and `duplicate`, another message under a used id rejects with
 * `conflict` ({@linkcode checkResend}), as with SQLite. `markDelivered` and `markRead` are
 * single `UPDATE … WHERE NOT delivered RETURNING` statements: when two nodes mark the same
 * message, one of them gets its id (one receipt).
 *
 * Login history: every session row carries the node id it was opened on;
 * {@linkcode PostgresStore.closeOpenSessions} closes this node's rows only (other nodes'
 * users are still online), {@linkcode PostgresStore.closeNodeSessions} those of a node
 * found dead.
 *
 * Failures: when PostgreSQL is unreachable, restarting or too slow, calls reject with a
 * StoreError `unavailable` (bounded by the timeouts below) and the store keeps working:
 * postgres.js reconnects on the next call, so calls succeed again once PostgreSQL is back.
 * An append that fails so may or may not have been committed; resending it with the same
 * `clientId` is safe.
 *
 * Connection settings (see {@linkcode PostgresStoreOptions}): a pool of `poolSize` (10)
 * connections; `connectTimeoutSeconds` (5) to connect; a call waits at most
 * `queueTimeoutSeconds` (10) for a free connection; the server cancels a statement after
 * `statementTimeoutMs` (15 s) and a lock wait after `lockTimeoutMs` (10 s), and closes a
 * session idle in a transaction for 30 s; postgres.js gives up on a query after
 * `queryTimeoutSeconds` (20, waiting and running together); reconnect attempts back off
 * from 50 ms to at most 2 s.
 *
 * Permissions: postgres.js reads the `PG*` environment variables (PGHOST, PGPASSWORD,
 * PGSSLMODE…, one per option), so Deno needs `--allow-env=PG*` besides `--allow-net`; a URL
 * without a user name also asks the OS for the current user (`--allow-sys=userInfo`).
 *
 * @example
 * ```ts ignore
 * import { PostgresStore } from "./postgres_store.ts";
 * const store = await PostgresStore.open({ url: "postgres://chat@127.0.0.1/chat", nodeId: "n1" });
 * await store.closeOpenSessions(Date.now()); // this node's sessions left open by a crash
 * await store.close();
 * ```
 *
 * @module
 */

import postgres from "postgres";
import { getLogger } from "@logtape/logtape";
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

/** The advisory lock key every append batch takes ("chat" in ASCII). */
export const APPEND_LOCK = 0x63686174;
/** The advisory lock key taken while the schema is created or migrated. */
export const SCHEMA_LOCK = 0x63686175;

/** Options of {@linkcode PostgresStore.open}. */
export interface PostgresStoreOptions {
  /**
   * Connection URL, `postgres://user:password@host:port/database` (with a user name: without
   * one, postgres.js asks the OS, which needs `--allow-sys=userInfo`).
   */
  url: string;
  /** This node's id, stored with its login sessions (non-empty). */
  nodeId: string;
  /** Most messages written by one group commit. Default 1000. */
  maxBatch?: number;
  /** Connections in the pool. Default 10. */
  poolSize?: number;
  /** Seconds to open a connection before `unavailable`. Default 5. */
  connectTimeoutSeconds?: number;
  /** Seconds a call waits for a free connection before `unavailable`. Default 10. */
  queueTimeoutSeconds?: number;
  /** Seconds a query may wait and run before it is canceled (`unavailable`). Default 20. */
  queryTimeoutSeconds?: number;
  /** The server's `statement_timeout` (ms) for this store's sessions. Default 15000. */
  statementTimeoutMs?: number;
  /** The server's `lock_timeout` (ms) for this store's sessions. Default 10000. */
  lockTimeoutMs?: number;
}

/** Counters of {@linkcode PostgresStore.appendMessage}'s group commits. */
export interface PostgresStoreStats {
  /** Appends handled by committed batches (duplicates and refused ones included). */
  readonly appends: number;
  /** Batches committed. */
  readonly commits: number;
  /** Most appends committed in one batch. */
  readonly largestBatch: number;
}

/**
 * Schema migrations: entry `i` brings `chat_schema.version` from `i` to `i + 1`. Never
 * edit a released entry; append a new one. Keys use the "C" collation: ordered by code
 * point, as SQLite orders them.
 */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE accounts (
    key TEXT COLLATE "C" PRIMARY KEY,
    nick TEXT NOT NULL,
    password_hash TEXT,
    created_at BIGINT NOT NULL
  );

  CREATE TABLE rooms (
    key TEXT COLLATE "C" PRIMARY KEY,
    name TEXT NOT NULL,
    topic TEXT NOT NULL DEFAULT '',
    topic_by TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL
  );

  CREATE TABLE memberships (
    room_key TEXT COLLATE "C" NOT NULL REFERENCES rooms (key),
    account_key TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (room_key, account_key)
  );
  CREATE INDEX memberships_by_account ON memberships (account_key, room_key);

  -- Taken only under the APPEND_LOCK advisory lock (chat_append_v1): ids in commit order.
  CREATE SEQUENCE message_ids AS BIGINT;

  CREATE TABLE messages (
    id BIGINT PRIMARY KEY,
    ts BIGINT NOT NULL,
    from_key TEXT COLLATE "C" NOT NULL,
    from_nick TEXT NOT NULL,
    room_key TEXT COLLATE "C" REFERENCES rooms (key),
    to_key TEXT COLLATE "C",
    to_nick TEXT,
    -- for direct messages: min(from_key, to_key) || E'\\n' || max(from_key, to_key)
    dm_pair TEXT COLLATE "C",
    text TEXT NOT NULL,
    client_id TEXT COLLATE "C" NOT NULL,
    delivered BOOLEAN NOT NULL DEFAULT false,
    read BOOLEAN NOT NULL DEFAULT false,
    UNIQUE (from_key, client_id),
    CHECK ((room_key IS NULL) <> (to_key IS NULL))
  );
  CREATE INDEX messages_by_room ON messages (room_key, id) WHERE room_key IS NOT NULL;
  CREATE INDEX messages_by_pair ON messages (dm_pair, id) WHERE dm_pair IS NOT NULL;
  CREATE INDEX messages_dm_to ON messages (to_key, id) WHERE to_key IS NOT NULL;
  CREATE INDEX messages_dm_from ON messages (from_key, id) WHERE to_key IS NOT NULL;
  CREATE INDEX messages_undelivered ON messages (to_key, id)
    WHERE to_key IS NOT NULL AND NOT delivered;

  CREATE TABLE blocks (
    account_key TEXT COLLATE "C" NOT NULL,
    target_key TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (account_key, target_key)
  );

  CREATE TABLE contacts (
    account_key TEXT COLLATE "C" NOT NULL,
    target_key TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (account_key, target_key)
  );
  CREATE INDEX contacts_by_target ON contacts (target_key, account_key);

  CREATE TABLE login_sessions (
    id BIGSERIAL PRIMARY KEY,
    node_id TEXT NOT NULL,
    account_key TEXT COLLATE "C" NOT NULL,
    login_ts BIGINT NOT NULL,
    logout_ts BIGINT
  );
  CREATE INDEX login_sessions_open ON login_sessions (node_id) WHERE logout_ts IS NULL;
  CREATE INDEX login_sessions_by_logout ON login_sessions (logout_ts);

  -- One group commit: row k of the arrays is one message. Returns one row per message, in
  -- order: 'stored' with its new id, 'duplicate' with the row stored earlier under its
  -- (from_key, client_id), or 'no_room'.
  CREATE FUNCTION chat_append_v1(
    p_ts BIGINT[], p_from_key TEXT[], p_from_nick TEXT[], p_room_key TEXT[],
    p_to_key TEXT[], p_to_nick TEXT[], p_dm_pair TEXT[], p_text TEXT[], p_client_id TEXT[]
  ) RETURNS TABLE (
    o_status TEXT, o_id BIGINT, o_ts BIGINT, o_from_nick TEXT, o_room_key TEXT,
    o_room_name TEXT, o_to_key TEXT, o_to_nick TEXT, o_text TEXT
  ) LANGUAGE plpgsql AS $fn$
  DECLARE
    k INT;
    earlier RECORD;
    v_room_name TEXT;
  BEGIN
    -- Held until the commit: ids are taken in commit order across every node.
    PERFORM pg_advisory_xact_lock(${APPEND_LOCK});
    FOR k IN 1 .. coalesce(array_length(p_from_key, 1), 0) LOOP
      SELECT m.id, m.ts, m.from_nick, m.room_key, r.name AS rname, m.to_key, m.to_nick, m.text
        INTO earlier
        FROM messages m LEFT JOIN rooms r ON r.key = m.room_key
        WHERE m.from_key = p_from_key[k] AND m.client_id = p_client_id[k];
      IF FOUND THEN
        o_status := 'duplicate'; o_id := earlier.id; o_ts := earlier.ts;
        o_from_nick := earlier.from_nick; o_room_key := earlier.room_key;
        o_room_name := earlier.rname; o_to_key := earlier.to_key;
        o_to_nick := earlier.to_nick; o_text := earlier.text;
        RETURN NEXT;
        CONTINUE;
      END IF;
      v_room_name := NULL;
      IF p_room_key[k] IS NOT NULL THEN
        SELECT r.name INTO v_room_name FROM rooms r WHERE r.key = p_room_key[k];
        IF NOT FOUND THEN
          o_status := 'no_room'; o_id := NULL; o_ts := NULL; o_from_nick := NULL;
          o_room_key := p_room_key[k]; o_room_name := NULL; o_to_key := NULL;
          o_to_nick := NULL; o_text := NULL;
          RETURN NEXT;
          CONTINUE;
        END IF;
      END IF;
      INSERT INTO messages
        (id, ts, from_key, from_nick, room_key, to_key, to_nick, dm_pair, text, client_id)
        VALUES (nextval('message_ids'), p_ts[k], p_from_key[k], p_from_nick[k], p_room_key[k],
          p_to_key[k], p_to_nick[k], p_dm_pair[k], p_text[k], p_client_id[k])
        RETURNING id INTO o_id;
      o_status := 'stored'; o_ts := p_ts[k]; o_from_nick := p_from_nick[k];
      o_room_key := p_room_key[k]; o_room_name := v_room_name; o_to_key := p_to_key[k];
      o_to_nick := p_to_nick[k]; o_text := p_text[k];
      RETURN NEXT;
    END LOOP;
  END
  $fn$;
  `,
  // 2: session tokens ("remember me"), by their SHA-256 only.
  `
  CREATE TABLE session_tokens (
    hash TEXT COLLATE "C" PRIMARY KEY,
    account_key TEXT COLLATE "C" NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
  );
  CREATE INDEX session_tokens_by_account ON session_tokens (account_key, created_at);
  `,
];

/** Columns every message query selects, for {@linkcode toChat}. */
const MESSAGE_COLUMNS =
  "m.id, m.ts, m.from_nick, m.room_key, r.name AS room_name, m.to_nick, m.text";

interface MessageRow {
  id: string | number;
  ts: string | number;
  from_nick: string;
  room_key: string | null;
  room_name: string | null;
  to_nick: string | null;
  text: string;
}

interface AppendRow {
  o_status: "stored" | "duplicate" | "no_room";
  o_id: string | null;
  o_ts: string | null;
  o_from_nick: string | null;
  o_room_key: string | null;
  o_room_name: string | null;
  o_to_key: string | null;
  o_to_nick: string | null;
  o_text: string | null;
}

interface Pending {
  seq: number;
  message: NewMessage;
  resolve: (result: AppendResult) => void;
  reject: (error: Error) => void;
}

type Sql = postgres.Sql;

/**
 * The PostgreSQL {@linkcode Store}; see the module doc.
 */
export class PostgresStore implements Store {
  /** This node's id (its login sessions carry it). */
  readonly nodeId: string;
  /** Where it connects, without the password (for messages). */
  readonly where: string;
  readonly #sql: Sql;
  readonly #maxBatch: number;
  #queue: Pending[] = [];
  #inFlight: Pending[] | null = null;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #seq = 0;
  #waiters: { seq: number; resolve: () => void }[] = [];
  #closed = false;
  #appends = 0;
  #commits = 0;
  #largestBatch = 0;

  private constructor(sql: Sql, nodeId: string, where: string, maxBatch: number) {
    this.#sql = sql;
    this.nodeId = nodeId;
    this.where = where;
    this.#maxBatch = maxBatch;
  }

  /**
   * Connects, and creates or migrates the schema (idempotent; several nodes may open the
   * same database at once: the schema is changed under an advisory lock).
   *
   * @throws {StoreError} `invalid` for bad options, `open_failed` when PostgreSQL cannot be
   * reached or the database is of a newer schema.
   */
  static async open(options: PostgresStoreOptions): Promise<PostgresStore> {
    const maxBatch = options.maxBatch ?? 1000;
    if (!Number.isSafeInteger(maxBatch) || maxBatch < 1) {
      throw new StoreError("invalid", `maxBatch must be a positive integer, got ${maxBatch}`);
    }
    if (!options.nodeId) throw new StoreError("invalid", "a PostgresStore needs a nodeId");
    const where = redact(options.url);
    const sql = postgres(options.url, {
      max: options.poolSize ?? 10,
      connect_timeout: options.connectTimeoutSeconds ?? 5,
      queue_timeout: options.queueTimeoutSeconds ?? 10,
      query_timeout: options.queryTimeoutSeconds ?? 20,
      cancel_timeout: 5,
      idle_timeout: 60,
      // Reconnect soon after an outage: 50 ms, doubling up to 2 s (the default grows to 20 s).
      backoff: (attempts: number) => Math.min(0.05 * 2 ** attempts, 2),
      onnotice: () => {},
      connection: {
        application_name: `chat ${options.nodeId}`.slice(0, 63),
        statement_timeout: options.statementTimeoutMs ?? 15_000,
        lock_timeout: options.lockTimeoutMs ?? 10_000,
        idle_in_transaction_session_timeout: 30_000,
      },
    });
    try {
      const version = await migrate(sql);
      log.debug("opened PostgreSQL {where} (schema version {version}) as node {node}", {
        where,
        version,
        node: options.nodeId,
      });
    } catch (error) {
      await sql.end({ timeout: 1 }).catch(() => {});
      if (error instanceof StoreError) throw error;
      throw new StoreError(
        "open_failed",
        `cannot open the chat database on PostgreSQL ${where}: ${messageOf(error)}`,
        { cause: error },
      );
    }
    return new PostgresStore(sql, options.nodeId, where, maxBatch);
  }

  /** Group-commit counters (a snapshot). */
  get stats(): PostgresStoreStats {
    return { appends: this.#appends, commits: this.#commits, largestBatch: this.#largestBatch };
  }

  // ---- accounts

  /** The account with this key, or null. */
  getAccount(key: string): Promise<AccountRecord | null> {
    return this.#read(async (sql) => {
      const [row] = await sql`
        SELECT key, nick, password_hash, created_at FROM accounts WHERE key = ${key}`;
      return row === undefined ? null : {
        key: row.key,
        nick: row.nick,
        passwordHash: row.password_hash,
        createdAt: Number(row.created_at),
      };
    });
  }

  /** Every account's key. */
  accountKeys(): Promise<string[]> {
    return this.#read(async (sql) => (await sql`SELECT key FROM accounts`).map((r) => r.key));
  }

  /** Creates the account; false (and nothing written) when the key exists. */
  createAccount(account: AccountRecord): Promise<boolean> {
    return this.#write(async (sql) =>
      (await sql`
        INSERT INTO accounts (key, nick, password_hash, created_at)
        VALUES (${account.key}, ${account.nick}, ${account.passwordHash}, ${account.createdAt})
        ON CONFLICT DO NOTHING`).count === 1
    );
  }

  /** Replaces an account's password hash; `not_found` when there is no such account. */
  setPasswordHash(key: string, passwordHash: string): Promise<void> {
    return this.#write(async (sql) => {
      // One statement: the tokens go with the old password, or neither changes.
      const { count } = await sql`
        WITH revoked AS (DELETE FROM session_tokens WHERE account_key = ${key})
        UPDATE accounts SET password_hash = ${passwordHash} WHERE key = ${key}`;
      if (count === 0) throw new StoreError("not_found", `no account "${key}"`);
    });
  }

  // ---- rooms and memberships

  /** The room with this key, or null. */
  getRoom(key: string): Promise<RoomRecord | null> {
    return this.#read(async (sql) => {
      const [row] = await sql`
        SELECT key, name, topic, topic_by, created_at FROM rooms WHERE key = ${key}`;
      return row === undefined ? null : toRoom(row);
    });
  }

  /** Creates the room; false when the key exists. */
  createRoom(room: RoomRecord): Promise<boolean> {
    return this.#write(async (sql) =>
      (await sql`
        INSERT INTO rooms (key, name, topic, topic_by, created_at)
        VALUES (${room.key}, ${room.name}, ${room.topic}, ${room.topicBy}, ${room.createdAt})
        ON CONFLICT DO NOTHING`).count === 1
    );
  }

  /** Every room with its member count, ordered by key. */
  listRooms(): Promise<RoomSummary[]> {
    return this.#read(async (sql) =>
      (await sql`
        SELECT r.key, r.name, r.topic, r.topic_by, r.created_at,
          (SELECT count(*) FROM memberships m WHERE m.room_key = r.key) AS members
        FROM rooms r ORDER BY r.key`).map((row) => ({
        ...toRoom(row),
        members: Number(row.members),
      }))
    );
  }

  /** Sets a room's topic; `not_found` when there is no such room. */
  setTopic(roomKey: string, topic: string, by: string): Promise<void> {
    return this.#write(async (sql) => {
      const { count } = await sql`
        UPDATE rooms SET topic = ${topic}, topic_by = ${by} WHERE key = ${roomKey}`;
      if (count === 0) throw new StoreError("not_found", `no room "${roomKey}"`);
    });
  }

  /** Adds a member; false when already a member, `not_found` when there is no such room. */
  addMember(roomKey: string, accountKey: string): Promise<boolean> {
    return this.#write(async (sql) => {
      const [row] = await sql`
        WITH room AS (SELECT key FROM rooms WHERE key = ${roomKey}),
        added AS (
          INSERT INTO memberships (room_key, account_key)
          SELECT key, ${accountKey} FROM room
          ON CONFLICT DO NOTHING RETURNING 1)
        SELECT (SELECT count(*) FROM room) AS rooms, (SELECT count(*) FROM added) AS added`;
      if (Number(row.rooms) === 0) throw new StoreError("not_found", `no room "${roomKey}"`);
      return Number(row.added) === 1;
    });
  }

  /** Removes a member; false when not a member. */
  removeMember(roomKey: string, accountKey: string): Promise<boolean> {
    return this.#write(async (sql) =>
      (await sql`
        DELETE FROM memberships WHERE room_key = ${roomKey} AND account_key = ${accountKey}`)
        .count === 1
    );
  }

  /** Account keys of a room's members, sorted. */
  roomMembers(roomKey: string): Promise<string[]> {
    return this.#read(async (sql) =>
      keys(
        await sql`
          SELECT account_key AS k FROM memberships WHERE room_key = ${roomKey}
          ORDER BY account_key`,
      )
    );
  }

  /** Room keys an account is a member of, sorted. */
  accountRooms(accountKey: string): Promise<string[]> {
    return this.#read(async (sql) =>
      keys(
        await sql`
          SELECT room_key AS k FROM memberships WHERE account_key = ${accountKey}
          ORDER BY room_key`,
      )
    );
  }

  // ---- messages

  /**
   * Queues a message for the next group commit; resolves after that commit with its id
   * (or with the earlier message and `duplicate: true` for a resend). Rejects with
   * `invalid` or `not_found` (unknown room) for this message alone, and with `failed` or
   * `unavailable` for every message of the batch when the batch fails.
   */
  appendMessage(message: NewMessage, options?: AppendOptions): Promise<AppendResult> {
    try {
      this.#checkOpen();
      checkNewMessage(message);
      checkNoNul(message);
    } catch (error) {
      return Promise.reject(error);
    }
    const { promise, resolve, reject } = Promise.withResolvers<AppendResult>();
    // A commit here is durable: `onCommitted` is told as the append resolves.
    const committed = (result: AppendResult) => {
      tellCommitted(options, result, (error) => {
        log.error("onCommitted failed: {error}", { error: messageOf(error) });
      });
      resolve(result);
    };
    this.#queue.push({ seq: ++this.#seq, message: { ...message }, resolve: committed, reject });
    this.#schedule(this.#queue.length >= this.#maxBatch);
    return promise;
  }

  /** The newest `limit` messages matching `query`, oldest first. */
  history(query: HistoryQuery): Promise<ChatMessage[]> {
    return this.#readCommitted(async (sql) => {
      checkHistoryQuery(query);
      const { before, after, beforeTs, afterTs } = historyBounds(query);
      const oldest = query.oldest === true;
      const order = sql.unsafe(oldest ? "ASC" : "DESC");
      const rows = query.room !== undefined
        ? await sql`
          SELECT ${sql.unsafe(MESSAGE_COLUMNS)} FROM messages m JOIN rooms r ON r.key = m.room_key
          WHERE m.room_key = ${query.room} AND m.id < ${before} AND m.id > ${after}
            AND m.ts < ${beforeTs} AND m.ts > ${afterTs} AND NOT EXISTS
            (SELECT 1 FROM blocks b WHERE b.account_key = ${query.viewer ?? ""}
              AND b.target_key = m.from_key)
          ORDER BY m.id ${order} LIMIT ${query.limit}`
        : await sql`
          SELECT ${sql.unsafe(MESSAGE_COLUMNS)} FROM messages m
          LEFT JOIN rooms r ON r.key = m.room_key
          WHERE m.dm_pair = ${pairKey(query.between![0], query.between![1])} AND m.id < ${before}
            AND m.id > ${after} AND m.ts < ${beforeTs} AND m.ts > ${afterTs}
          ORDER BY m.id ${order} LIMIT ${query.limit}`;
      const messages = (rows as unknown as MessageRow[]).map(toChat);
      return oldest ? messages : messages.reverse();
    });
  }

  /** The highest message id committed so far (after this store's pending appends); 0 when none. */
  lastMessageId(): Promise<number> {
    return this.#readCommitted(async (sql) => {
      const [row] = await sql`SELECT coalesce(max(id), 0) AS id FROM messages`;
      return Number(row.id);
    });
  }

  /** The direct conversations of `accountKey` active in a time window, latest first. */
  directConversations(
    accountKey: string,
    query: { afterTs: number; beforeTs: number; limit: number },
  ): Promise<{ key: string; ts: number }[]> {
    return this.#readCommitted(async (sql) => {
      checkCount("limit", query.limit);
      const { afterTs, beforeTs, limit } = query;
      const rows = await sql`
        SELECT other, max(ts) AS ts FROM (
          SELECT to_key AS other, ts FROM messages
            WHERE from_key = ${accountKey} AND to_key IS NOT NULL
              AND ts > ${afterTs} AND ts < ${beforeTs}
          UNION ALL
          SELECT from_key AS other, ts FROM messages
            WHERE to_key = ${accountKey} AND ts > ${afterTs} AND ts < ${beforeTs}
        ) v GROUP BY other ORDER BY ts DESC, other LIMIT ${limit}`;
      return rows.map((row) => ({ key: String(row.other), ts: Number(row.ts) }));
    });
  }

  /** Messages above `afterId` that `accountKey` may see now, oldest first, at most `limit`. */
  messagesAfter(accountKey: string, afterId: number, limit: number): Promise<ChatMessage[]> {
    return this.#readCommitted(async (sql) => {
      checkCount("afterId", afterId);
      checkCount("limit", limit);
      if (limit === 0) return [];
      // Each branch walks one index from afterId on.
      const rows = await sql`
        SELECT ${sql.unsafe(MESSAGE_COLUMNS)} FROM (
          (SELECT m.id FROM memberships s JOIN messages m ON m.room_key = s.room_key
            WHERE s.account_key = ${accountKey} AND m.id > ${afterId} AND NOT EXISTS
              (SELECT 1 FROM blocks b WHERE b.account_key = ${accountKey}
                AND b.target_key = m.from_key)
            ORDER BY m.id LIMIT ${limit})
          UNION
          (SELECT id FROM messages WHERE to_key = ${accountKey} AND id > ${afterId}
            ORDER BY id LIMIT ${limit})
          UNION
          (SELECT id FROM messages
            WHERE from_key = ${accountKey} AND to_key IS NOT NULL AND id > ${afterId}
            ORDER BY id LIMIT ${limit})
        ) v JOIN messages m ON m.id = v.id LEFT JOIN rooms r ON r.key = m.room_key
        ORDER BY m.id LIMIT ${limit}`;
      return (rows as unknown as MessageRow[]).map(toChat);
    });
  }

  /** Direct messages to `accountKey` not delivered yet, oldest first (a page of them). */
  undelivered(accountKey: string, query: UndeliveredQuery = {}): Promise<DirectMessage[]> {
    return this.#readCommitted(async (sql) => {
      const { after, through, limit } = checkUndeliveredQuery(query);
      const rows = await sql`
        SELECT ${sql.unsafe(MESSAGE_COLUMNS)} FROM messages m
        LEFT JOIN rooms r ON r.key = m.room_key
        WHERE m.to_key = ${accountKey} AND NOT m.delivered
          AND m.id > ${after} AND m.id <= ${through}
        ORDER BY m.id LIMIT ${limit === Infinity ? null : limit}`;
      return (rows as unknown as MessageRow[]).map((row) => toChat(row) as DirectMessage);
    });
  }

  /** How many direct messages to `accountKey` up to `throughId` are undelivered. */
  countUndelivered(accountKey: string, throughId: number): Promise<number> {
    return this.#readCommitted(async (sql) => {
      checkCount("throughId", throughId);
      const [row] = await sql`
        SELECT count(*) AS n FROM messages
        WHERE to_key = ${accountKey} AND NOT delivered AND id <= ${throughId}`;
      return Number(row.n);
    });
  }

  /**
   * Marks direct messages delivered; returns those newly delivered (unknown ids and room
   * messages are ignored). Atomic: of two nodes marking the same message, one gets its id.
   */
  markDelivered(ids: number[]): Promise<number[]> {
    return this.#write(async (sql) => {
      for (const id of ids) checkCount("id", id);
      if (ids.length === 0) return [];
      const rows = await sql`
        UPDATE messages SET delivered = true
        WHERE id = ANY(${ids}::bigint[]) AND to_key IS NOT NULL AND NOT delivered
        RETURNING id`;
      return rows.map((row) => Number(row.id)).sort((a, b) => a - b);
    });
  }

  /**
   * Marks direct messages to `accountKey` read (and delivered); returns those newly
   * read, by id.
   */
  markRead(accountKey: string, ids: number[]): Promise<DirectMessage[]> {
    return this.#write(async (sql) => {
      for (const id of ids) checkCount("id", id);
      if (ids.length === 0) return [];
      const rows = await sql`
        UPDATE messages SET read = true, delivered = true
        WHERE id = ANY(${ids}::bigint[]) AND to_key = ${accountKey} AND NOT read
        RETURNING id, ts, from_nick, NULL::text AS room_key, NULL::text AS room_name, to_nick, text`;
      return (rows as unknown as MessageRow[]).map((row) => toChat(row) as DirectMessage)
        .sort((a, b) => a.id - b.id);
    });
  }

  // ---- session tokens

  /** Stores a token; drops the account's expired ones and the oldest beyond the cap. */
  addToken(token: TokenRecord): Promise<void> {
    return this.#write(async (sql) => {
      await sql.begin(async (tx) => {
        await tx`
          INSERT INTO session_tokens (hash, account_key, created_at, expires_at)
          VALUES (${token.hash}, ${token.accountKey}, ${token.createdAt}, ${token.expiresAt})`;
        await tx`
          DELETE FROM session_tokens WHERE account_key = ${token.accountKey} AND (
            expires_at <= ${token.createdAt} OR hash NOT IN (
              SELECT hash FROM session_tokens WHERE account_key = ${token.accountKey}
              ORDER BY created_at DESC, hash LIMIT ${MAX_TOKENS_PER_ACCOUNT}))`;
      });
    });
  }

  /** The token with this hash, or null. */
  getToken(hash: string): Promise<TokenRecord | null> {
    return this.#read(async (sql) => {
      const [row] = await sql`
        SELECT hash, account_key, created_at, expires_at FROM session_tokens
        WHERE hash = ${hash}`;
      return row === undefined ? null : {
        hash: row.hash,
        accountKey: row.account_key,
        createdAt: Number(row.created_at),
        expiresAt: Number(row.expires_at),
      };
    });
  }

  /** Revokes the token if it is `accountKey`'s. */
  removeToken(hash: string, accountKey: string): Promise<boolean> {
    return this.#write(async (sql) =>
      (await sql`
        DELETE FROM session_tokens WHERE hash = ${hash} AND account_key = ${accountKey}`)
        .count === 1
    );
  }

  /** Revokes every token of `accountKey`. */
  removeTokens(accountKey: string): Promise<number> {
    return this.#write(async (sql) =>
      (await sql`DELETE FROM session_tokens WHERE account_key = ${accountKey}`).count
    );
  }

  // ---- blocks and contacts

  /** Records that `accountKey` blocks `targetKey`; false when already blocked. */
  addBlock(accountKey: string, targetKey: string): Promise<boolean> {
    return this.#write(async (sql) =>
      (await sql`
        INSERT INTO blocks (account_key, target_key) VALUES (${accountKey}, ${targetKey})
        ON CONFLICT DO NOTHING`).count === 1
    );
  }

  /** Removes a block; false when there was none. */
  removeBlock(accountKey: string, targetKey: string): Promise<boolean> {
    return this.#write(async (sql) =>
      (await sql`
        DELETE FROM blocks WHERE account_key = ${accountKey} AND target_key = ${targetKey}`)
        .count === 1
    );
  }

  /** Account keys that `accountKey` blocks, sorted. */
  blocksOf(accountKey: string): Promise<string[]> {
    return this.#read(async (sql) =>
      keys(
        await sql`
          SELECT target_key AS k FROM blocks WHERE account_key = ${accountKey}
          ORDER BY target_key`,
      )
    );
  }

  /** Adds a contact; false when already one. */
  addContact(accountKey: string, targetKey: string): Promise<boolean> {
    return this.#write(async (sql) =>
      (await sql`
        INSERT INTO contacts (account_key, target_key) VALUES (${accountKey}, ${targetKey})
        ON CONFLICT DO NOTHING`).count === 1
    );
  }

  /** Removes a contact; false when there was none. */
  removeContact(accountKey: string, targetKey: string): Promise<boolean> {
    return this.#write(async (sql) =>
      (await sql`
        DELETE FROM contacts WHERE account_key = ${accountKey} AND target_key = ${targetKey}`)
        .count === 1
    );
  }

  /** Account keys in `accountKey`'s contact list, sorted. */
  contactsOf(accountKey: string): Promise<string[]> {
    return this.#read(async (sql) =>
      keys(
        await sql`
          SELECT target_key AS k FROM contacts WHERE account_key = ${accountKey}
          ORDER BY target_key`,
      )
    );
  }

  /** Account keys that have `targetKey` as a contact, sorted. */
  watchersOf(targetKey: string): Promise<string[]> {
    return this.#read(async (sql) =>
      keys(
        await sql`
          SELECT account_key AS k FROM contacts WHERE target_key = ${targetKey}
          ORDER BY account_key`,
      )
    );
  }

  // ---- login history

  /** Records a session start on this node; returns its id. */
  recordLogin(accountKey: string, ts: number): Promise<number> {
    return this.#write(async (sql) => {
      const [row] = await sql`
        INSERT INTO login_sessions (node_id, account_key, login_ts)
        VALUES (${this.nodeId}, ${accountKey}, ${ts}) RETURNING id`;
      return Number(row.id);
    });
  }

  /** Records a session end; an unknown or already ended session is left alone. */
  recordLogout(sessionId: number, ts: number): Promise<void> {
    return this.#write(async (sql) => {
      await sql`
        UPDATE login_sessions SET logout_ts = ${ts} WHERE id = ${sessionId} AND logout_ts IS NULL`;
    });
  }

  /** Ends this node's open sessions at `ts` (left open by its crash); other nodes' stay. */
  closeOpenSessions(ts: number): Promise<void> {
    return this.closeNodeSessions(this.nodeId, ts);
  }

  /** Ends the open sessions of node `nodeId` (found dead) at `ts`. */
  closeNodeSessions(nodeId: string, ts: number): Promise<void> {
    return this.#write(async (sql) => {
      await sql`
        UPDATE login_sessions SET logout_ts = ${ts}
        WHERE node_id = ${nodeId} AND logout_ts IS NULL`;
    });
  }

  /** Account keys with a session (on any node) open now or ended at or after `since`, sorted. */
  onlineSince(since: number): Promise<string[]> {
    return this.#read(async (sql) =>
      keys(
        await sql`
          SELECT DISTINCT account_key AS k FROM login_sessions
          WHERE logout_ts IS NULL OR logout_ts >= ${since} ORDER BY account_key`,
      )
    );
  }

  /**
   * Commits queued appends, then closes the connections (waiting at most 5 s for queries
   * in flight). Later calls reject with a `closed` {@linkcode StoreError}; closing again
   * does nothing.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#settled();
    await this.#sql.end({ timeout: 5 }).catch((error) =>
      log.warn("closing the PostgreSQL connections failed: {error}", { error: messageOf(error) })
    );
    log.debug("closed PostgreSQL {where}", { where: this.where });
  }

  // ---- internals

  #checkOpen(): void {
    if (this.#closed) throw new StoreError("closed", `the store on ${this.where} is closed`);
  }

  /** Runs a read that cannot observe queued appends. */
  async #read<T>(fn: (sql: Sql) => Promise<T>): Promise<T> {
    this.#checkOpen();
    try {
      return await fn(this.#sql);
    } catch (error) {
      throw this.#wrap(error);
    }
  }

  /** Waits for the appends queued before it, then runs a write. */
  #write<T>(fn: (sql: Sql) => Promise<T>): Promise<T> {
    return this.#readCommitted(fn);
  }

  /** Waits for the appends queued before it, then runs a read that could observe them. */
  async #readCommitted<T>(fn: (sql: Sql) => Promise<T>): Promise<T> {
    this.#checkOpen();
    await this.#settled();
    try {
      return await fn(this.#sql);
    } catch (error) {
      throw this.#wrap(error);
    }
  }

  /** Resolves once every append queued so far has settled (committed or failed). */
  #settled(): Promise<void> {
    const seq = this.#seq;
    if (this.#unsettledFrom() > seq) return Promise.resolve();
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#waiters.push({ seq, resolve });
    this.#schedule(true);
    return promise;
  }

  /** The lowest seq of an append not settled yet (Infinity when none). */
  #unsettledFrom(): number {
    let lowest = Infinity;
    if (this.#inFlight !== null && this.#inFlight.length > 0) lowest = this.#inFlight[0].seq;
    if (this.#queue.length > 0) lowest = Math.min(lowest, this.#queue[0].seq);
    return lowest;
  }

  /** Starts a batch now (`now`) or once this macrotask is done, unless one is in flight. */
  #schedule(now: boolean): void {
    if (this.#inFlight !== null || this.#queue.length === 0) return;
    if (now) {
      if (this.#timer !== undefined) clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#flush();
    } else if (this.#timer === undefined) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.#flush();
      }, 0);
    }
  }

  /**
   * Writes up to maxBatch queued appends in one call of chat_append_v1 (one transaction),
   * then settles them, wakes the waiters and starts the next batch. A message whose
   * (fromKey, clientId) is already in the batch waits for the next one, where it is seen as
   * a resend of the stored row.
   */
  #flush(): void {
    const batch: Pending[] = [];
    const later: Pending[] = [];
    const inBatch = new Set<string>();
    let taken = 0;
    for (; taken < this.#queue.length && batch.length < this.#maxBatch; taken++) {
      const item = this.#queue[taken];
      const id = `${item.message.fromKey}\n${item.message.clientId}`;
      if (inBatch.has(id)) {
        later.push(item);
      } else {
        inBatch.add(id);
        batch.push(item);
      }
    }
    this.#queue = [...later, ...this.#queue.slice(taken)];
    this.#inFlight = batch;
    this.#writeBatch(batch).finally(() => {
      this.#inFlight = null;
      const from = this.#unsettledFrom();
      const waiting = this.#waiters;
      this.#waiters = [];
      for (const waiter of waiting) {
        if (waiter.seq < from) waiter.resolve();
        else this.#waiters.push(waiter);
      }
      // Go on at once: what queued meanwhile is the next group.
      this.#schedule(true);
    });
  }

  async #writeBatch(batch: Pending[]): Promise<void> {
    const m = batch.map((item) => item.message);
    let rows: AppendRow[];
    try {
      rows = await this.#sql`
        SELECT * FROM chat_append_v1(
          ${m.map((x) => x.ts)}::bigint[],
          ${m.map((x) => x.fromKey)}::text[],
          ${m.map((x) => x.from)}::text[],
          ${m.map((x) => x.room ?? null)}::text[],
          ${m.map((x) => x.toKey ?? null)}::text[],
          ${m.map((x) => x.to ?? null)}::text[],
          ${m.map((x) => x.toKey === undefined ? null : pairKey(x.fromKey, x.toKey))}::text[],
          ${m.map((x) => encodeText(x.text))}::text[],
          ${m.map((x) => x.clientId)}::text[])` as unknown as AppendRow[];
      if (rows.length !== batch.length) {
        throw new Error(`chat_append_v1 returned ${rows.length} rows for ${batch.length}`);
      }
    } catch (error) {
      const failure = this.#wrap(error, `could not store ${batch.length} message(s)`);
      log.error("group commit of {count} message(s) failed: {error}", {
        count: batch.length,
        error: failure.message,
      });
      for (const item of batch) item.reject(failure);
      return;
    }
    this.#commits++;
    this.#appends += batch.length;
    this.#largestBatch = Math.max(this.#largestBatch, batch.length);
    for (let i = 0; i < batch.length; i++) {
      const { message, resolve, reject } = batch[i];
      const row = rows[i];
      if (row.o_status === "no_room") {
        reject(new StoreError("not_found", `no room "${message.room}"`));
        continue;
      }
      const chat = toChat({
        id: row.o_id!,
        ts: row.o_ts!,
        from_nick: row.o_from_nick!,
        room_key: row.o_room_key,
        room_name: row.o_room_name,
        to_nick: row.o_to_nick,
        text: row.o_text!,
      });
      if (row.o_status === "stored") {
        resolve({ message: chat, duplicate: false });
        continue;
      }
      try {
        checkResend({ roomKey: row.o_room_key, toKey: row.o_to_key, text: chat.text }, message);
        resolve({ message: chat, duplicate: true });
      } catch (error) {
        reject(error as Error);
      }
    }
  }

  /** A StoreError for a failure: `unavailable` when PostgreSQL could not be reached in time. */
  #wrap(error: unknown, what = "storage failure"): StoreError {
    if (error instanceof StoreError) return error;
    if (this.#closed && (error as { code?: unknown })?.code === "CONNECTION_ENDED") {
      return new StoreError("closed", `the store on ${this.where} is closed`, { cause: error });
    }
    if (isUnavailable(error)) {
      return new StoreError(
        "unavailable",
        `PostgreSQL ${this.where} is unavailable (${messageOf(error)}); retry later`,
        { cause: error },
      );
    }
    return new StoreError("failed", `${what}: ${messageOf(error)}`, { cause: error });
  }
}

/** Client-side error codes of a connection that failed, was lost or timed out. */
const UNAVAILABLE_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EAI_AGAIN",
  "CONNECT_TIMEOUT",
  "CONNECTION_CLOSED",
  "CONNECTION_DESTROYED",
  "QUEUE_TIMEOUT",
  "QUERY_TIMEOUT",
  "CANCEL_UNANSWERED",
]);

/**
 * SQLSTATEs of a server that is shutting down, starting, overloaded or timed out: class 08
 * (connection exception), 53 (insufficient resources), 57P01–57P03 (shutdown, crash,
 * cannot connect now), 57014 (statement timeout, canceled), 55P03 (lock timeout).
 */
function isUnavailableState(code: string): boolean {
  return code.startsWith("08") || code.startsWith("53") || code.startsWith("57P") ||
    code === "57014" || code === "55P03";
}

/** Whether `error` means PostgreSQL could not be reached or answer in time. */
export function isUnavailable(error: unknown): boolean {
  if (typeof error !== "object" || error === null) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code !== "string") return false;
  if (error instanceof postgres.PostgresError) return isUnavailableState(code);
  return UNAVAILABLE_CODES.has(code) || /^\d{2}[0-9A-Z]{3}$/.test(code) && isUnavailableState(code);
}

/** Applies the pending migrations under {@linkcode SCHEMA_LOCK}; returns the schema version. */
async function migrate(sql: Sql): Promise<number> {
  return await sql.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(${SCHEMA_LOCK})`;
    await tx`CREATE TABLE IF NOT EXISTS chat_schema (version INT NOT NULL)`;
    const [row] = await tx`SELECT version FROM chat_schema`;
    let current = row === undefined ? 0 : Number(row.version);
    if (row === undefined) await tx`INSERT INTO chat_schema (version) VALUES (0)`;
    if (current > MIGRATIONS.length) {
      throw new StoreError(
        "open_failed",
        `the chat database has schema version ${current}, newer than this program's ${MIGRATIONS.length}`,
      );
    }
    for (; current < MIGRATIONS.length; current++) {
      await tx.unsafe(MIGRATIONS[current]);
      await tx`UPDATE chat_schema SET version = ${current + 1}`;
      log.info("migrated the chat database to schema version {version}", {
        version: current + 1,
      });
    }
    return current;
  });
}

/** The URL without its password. */
function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    return `${parsed.host}${parsed.pathname}`;
  } catch {
    return "(unparsable URL)";
  }
}

/** The normalized key of a direct conversation. */
function pairKey(a: string, b: string): string {
  return a < b ? `${a}\n${b}` : `${b}\n${a}`;
}

/** Marks a stored text that is {@linkcode encodeText}'s JSON (U+FFFF, a noncharacter). */
const ENCODED = "\uffff";

/**
 * The text as stored: PostgreSQL's text cannot hold U+0000, which a chat message may
 * contain, so such a text (and one starting with the marker) is stored as the marker and
 * its JSON, where U+0000 is the escape `\u0000`. Other texts are stored as they are.
 */
export function encodeText(text: string): string {
  return text.includes("\0") || text.startsWith(ENCODED) ? ENCODED + JSON.stringify(text) : text;
}

/** The text {@linkcode encodeText} stored. */
export function decodeText(stored: string): string {
  return stored.startsWith(ENCODED) ? JSON.parse(stored.slice(ENCODED.length)) : stored;
}

/**
 * Refuses a message with U+0000 in a key, nick or client id (PostgreSQL cannot store it,
 * and it would fail the whole batch); the text is encoded instead.
 *
 * @throws {StoreError} `invalid`.
 */
function checkNoNul(message: NewMessage): void {
  for (const field of ["fromKey", "from", "room", "toKey", "to", "clientId"] as const) {
    if (message[field]?.includes("\0")) {
      throw new StoreError("invalid", `a message's ${field} must not contain U+0000`);
    }
  }
}

function toChat(row: MessageRow): ChatMessage {
  if (row.room_key !== null) {
    return {
      type: "msg",
      id: Number(row.id),
      ts: Number(row.ts),
      room: row.room_name ?? row.room_key,
      from: row.from_nick,
      text: decodeText(row.text),
    };
  }
  return {
    type: "dm",
    id: Number(row.id),
    ts: Number(row.ts),
    from: row.from_nick,
    to: row.to_nick ?? "",
    text: decodeText(row.text),
  };
}

// deno-lint-ignore no-explicit-any
function toRoom(row: any): RoomRecord {
  return {
    key: row.key,
    name: row.name,
    topic: row.topic,
    topicBy: row.topic_by,
    createdAt: Number(row.created_at),
  };
}

function keys(rows: readonly { k?: string }[]): string[] {
  return rows.map((row) => row.k!);
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
