/**
 * The storage interface of the chat server.
 *
 * Chat logic talks to storage only through {@linkcode Store}: every method returns a
 * Promise, so that an implementation may live in another process (PostgreSQL, say)
 * without touching chat logic. The embedded implementation is SQLite
 * (`sqlite_store.ts`), which batches message appends into group commits; tests may use
 * the in-memory one (`memory_store.ts`). Both pass the same conformance suite.
 *
 * Keys: accounts and rooms are addressed by their case-insensitive key
 * (`nameKey(name)`), and keep their display name alongside.
 *
 * @module
 */

import type { ChatMessage, DirectMessage } from "../protocol/messages.ts";

/** A stored account. */
export interface AccountRecord {
  /** Case-insensitive key (lower-cased nick). */
  key: string;
  /** Display nick, as registered. */
  nick: string;
  /** Encoded password hash (see `password.ts`), or `null` for nick-only accounts. */
  passwordHash: string | null;
  /** Registration time, ms since the epoch. */
  createdAt: number;
}

/**
 * A session token ("remember me"), as stored: only its SHA-256, never the token itself
 * (see `session_tokens.ts`).
 */
export interface TokenRecord {
  /** SHA-256 of the token, lowercase hex. */
  hash: string;
  /** The account it logs in to. */
  accountKey: string;
  /** When it was issued, ms since the epoch. */
  createdAt: number;
  /** When it stops working, ms since the epoch. */
  expiresAt: number;
}

/**
 * Tokens kept per account: issuing one more drops the oldest. Every page login issues
 * one (for its reconnects) whether remembered or not: room for a remembered device to
 * outlive many such logins.
 */
export const MAX_TOKENS_PER_ACCOUNT = 100;

/** A stored room. */
export interface RoomRecord {
  /** Case-insensitive key (lower-cased name). */
  key: string;
  /** Display name, as created. */
  name: string;
  /** Current topic; empty when none. */
  topic: string;
  /** Display nick of who set the topic; empty when none. */
  topicBy: string;
  /** Creation time, ms since the epoch. */
  createdAt: number;
}

/** A room with its member count, for listings. */
export interface RoomSummary extends RoomRecord {
  /** Number of member accounts. */
  members: number;
}

/** A message to append. Exactly one of `room` / `to` is set. */
export interface NewMessage {
  /** Sender's account key. */
  fromKey: string;
  /** Sender's display nick. */
  from: string;
  /** Room key, for a room message. */
  room?: string;
  /** Recipient's account key, for a direct message. */
  toKey?: string;
  /** Recipient's display nick, for a direct message. */
  to?: string;
  /** The text. */
  text: string;
  /** Server time, ms since the epoch. */
  ts: number;
  /** The client's request id: (fromKey, clientId) is unique, making resends idempotent. */
  clientId: string;
}

/** Where a stored message went and what it said: what a resend must repeat. */
export interface StoredTarget {
  /** Room key, or null for a direct message. */
  roomKey: string | null;
  /** Recipient's account key, or null for a room message. */
  toKey: string | null;
  /** The text. */
  text: string;
}

/**
 * Checks that `message` repeats the message stored earlier under the same
 * `(fromKey, clientId)`: a true resend. Stores call it when the id is taken.
 *
 * @throws {StoreError} `conflict` when it is another message under a reused id.
 *
 * @example
 * ```ts
 * import { checkResend } from "./store.ts";
 * const earlier = { roomKey: "lobby", toKey: null, text: "hi" };
 * checkResend(earlier, { fromKey: "a", from: "A", room: "lobby", text: "hi", ts: 1, clientId: "1" });
 * ```
 */
export function checkResend(earlier: StoredTarget, message: NewMessage): void {
  const sameTarget = earlier.roomKey === (message.room ?? null) &&
    earlier.toKey === (message.toKey ?? null);
  if (sameTarget && earlier.text === message.text) return;
  const what = earlier.roomKey !== null ? "a room message" : "a direct message";
  const how = !sameTarget ? "to another destination" : "with another text";
  throw new StoreError(
    "conflict",
    `request id "${message.clientId}" was already used for ${what}; this one goes ${how}`,
  );
}

/** The outcome of {@linkcode Store.appendMessage}. */
export interface AppendResult {
  /** The stored message with its server id (the earlier one, for a duplicate). */
  message: ChatMessage;
  /** True when (fromKey, clientId) was stored before: nothing new was written. */
  duplicate: boolean;
}

/** Options of {@linkcode Store.appendMessage}. */
export interface AppendOptions {
  /**
   * Called once the message is committed: others can read it, and it survives a kill of
   * the server's process, but it may not be durable yet (survive a power loss or a crash
   * of the machine), which the append's promise waits for. A receiver may be sent the
   * message from here; its sender is acknowledged once the promise resolves. Called at
   * most once, before the promise resolves, and only for an append that succeeds (a
   * resend's earlier copy too, with `duplicate`); never when it fails before its commit.
   * Must not throw (what it throws is logged and ignored). Called as a method of the
   * options (`options.onCommitted(result)`, see {@linkcode tellCommitted}): an object
   * per append can carry its state without a closure.
   */
  onCommitted?(result: AppendResult): void;
}

/**
 * Calls `options.onCommitted` with `result`, as a method of `options`; what it throws is
 * reported to `onError`.
 */
export function tellCommitted(
  options: AppendOptions | undefined,
  result: AppendResult,
  onError: (error: unknown) => void,
): void {
  if (options?.onCommitted === undefined) return;
  try {
    options.onCommitted(result);
  } catch (error) {
    onError(error);
  }
}

/** What {@linkcode Store.history} reads. Exactly one of `room` / `between` is set. */
export interface HistoryQuery {
  /** Room key. */
  room?: string;
  /** The two account keys of a direct conversation. */
  between?: [string, string];
  /** Only messages with an id below this. */
  before?: number;
  /** Only messages with an id above this. */
  after?: number;
  /** Only messages stored at a time (`ts`, ms) above this. */
  afterTs?: number;
  /** Only messages stored at a time (`ts`, ms) below this. */
  beforeTs?: number;
  /**
   * At most this many: the newest ones matching (the oldest ones with `oldest`), returned
   * oldest first either way.
   */
  limit: number;
  /** Take the oldest `limit` messages matching instead of the newest (paging forward). */
  oldest?: boolean;
  /**
   * The account reading, when there is one: room messages from accounts it blocks are
   * left out (the limit counts only those returned).
   */
  viewer?: string;
}

/** A page of {@linkcode Store.undelivered}. */
export interface UndeliveredQuery {
  /** Only messages with an id above this. */
  after?: number;
  /** Only messages with an id up to this. */
  through?: number;
  /** At most this many: the oldest ones. */
  limit?: number;
}

/** Storage of accounts, rooms, messages, blocks, contacts and login history. */
export interface Store {
  // ---- accounts
  /** The account with this key, or null. */
  getAccount(key: string): Promise<AccountRecord | null>;
  /** Creates the account; false (and nothing written) when the key exists. */
  createAccount(account: AccountRecord): Promise<boolean>;
  /**
   * Replaces an account's password hash (credentials import) and revokes its session
   * tokens, in one write.
   */
  setPasswordHash(key: string, passwordHash: string): Promise<void>;
  /** Every account's key (for the look-alike nick check at registration). */
  accountKeys(): Promise<string[]>;

  // ---- rooms and memberships
  /** The room with this key, or null. */
  getRoom(key: string): Promise<RoomRecord | null>;
  /** Creates the room; false when the key exists. */
  createRoom(room: RoomRecord): Promise<boolean>;
  /** Every room with its member count, by name. */
  listRooms(): Promise<RoomSummary[]>;
  /** Sets a room's topic. */
  setTopic(roomKey: string, topic: string, by: string): Promise<void>;
  /** Adds a member; false when already a member. */
  addMember(roomKey: string, accountKey: string): Promise<boolean>;
  /** Removes a member; false when not a member. */
  removeMember(roomKey: string, accountKey: string): Promise<boolean>;
  /** Account keys of a room's members. */
  roomMembers(roomKey: string): Promise<string[]>;
  /** Room keys an account is a member of. */
  accountRooms(accountKey: string): Promise<string[]>;

  // ---- messages
  /**
   * Appends a message durably and gives it a new server id (ids increase, with gaps allowed, in
   * commit order across all rooms and conversations). Resolves only once the commit is
   * durable; `options.onCommitted` hears of the commit as soon as it is made (which may
   * be earlier: see {@linkcode AppendOptions}). Implementations batch concurrent appends
   * into one transaction. A resend
   * (same `fromKey` and `clientId`) resolves with the earlier message and `duplicate`;
   * a different message under a used `clientId` rejects with a `conflict` StoreError.
   * An id a receiver may have been told of (through `onCommitted`) is never given to
   * another message, even after the machine stopped before the commit was durable.
   */
  appendMessage(message: NewMessage, options?: AppendOptions): Promise<AppendResult>;
  /** The newest (or, with `oldest`, the oldest) `limit` messages matching `query`, oldest first. */
  history(query: HistoryQuery): Promise<ChatMessage[]>;
  /**
   * Messages with an id above `afterId` that `accountKey` may see (its rooms' messages
   * but those from accounts it blocks, and its direct messages, sent or received),
   * oldest first, at most `limit`.
   */
  messagesAfter(accountKey: string, afterId: number, limit: number): Promise<ChatMessage[]>;
  /** The highest message id stored so far (committing pending appends first); 0 when none. */
  lastMessageId(): Promise<number>;
  /**
   * The accounts `accountKey` exchanged direct messages with, sent or received, at a time
   * in (`afterTs`, `beforeTs`): each with the time of its latest such message, the
   * `limit` latest conversations, latest first.
   */
  directConversations(
    accountKey: string,
    query: { afterTs: number; beforeTs: number; limit: number },
  ): Promise<{ key: string; ts: number }[]>;
  /**
   * Direct messages to `accountKey` not yet delivered to any of its sessions, oldest
   * first: all of them, or a page of them as `query` says.
   */
  undelivered(accountKey: string, query?: UndeliveredQuery): Promise<DirectMessage[]>;
  /** How many direct messages to `accountKey` with an id up to `throughId` are undelivered. */
  countUndelivered(accountKey: string, throughId: number): Promise<number>;
  /**
   * Marks direct messages delivered; returns the ids that were not delivered before, in
   * increasing order (their senders get a receipt), ignoring room messages and unknown ids.
   */
  markDelivered(ids: number[]): Promise<number[]>;
  /**
   * Marks direct messages to `accountKey` read; returns those that were not read before
   * (so their senders can be told), ignoring ids that are not its direct messages.
   */
  markRead(accountKey: string, ids: number[]): Promise<DirectMessage[]>;

  // ---- blocks and contacts
  /** Records that `accountKey` blocks `targetKey`; false when already blocked. */
  addBlock(accountKey: string, targetKey: string): Promise<boolean>;
  /** Removes a block; false when there was none. */
  removeBlock(accountKey: string, targetKey: string): Promise<boolean>;
  /** Account keys that `accountKey` blocks. */
  blocksOf(accountKey: string): Promise<string[]>;
  /** Adds a contact; false when already one. */
  addContact(accountKey: string, targetKey: string): Promise<boolean>;
  /** Removes a contact; false when there was none. */
  removeContact(accountKey: string, targetKey: string): Promise<boolean>;
  /** Account keys in `accountKey`'s contact list. */
  contactsOf(accountKey: string): Promise<string[]>;
  /** Account keys that have `targetKey` as a contact. */
  watchersOf(targetKey: string): Promise<string[]>;

  // ---- session tokens ("remember me")
  /**
   * Stores a token. The account's tokens expired by `token.createdAt` are dropped, and
   * its oldest ones beyond {@linkcode MAX_TOKENS_PER_ACCOUNT}.
   */
  addToken(token: TokenRecord): Promise<void>;
  /** The token with this hash (expired or not: the caller checks), or null. */
  getToken(hash: string): Promise<TokenRecord | null>;
  /** Revokes the token with this hash if it is `accountKey`'s; false when there was none. */
  removeToken(hash: string, accountKey: string): Promise<boolean>;
  /** Revokes every token of `accountKey`; returns how many there were. */
  removeTokens(accountKey: string): Promise<number>;

  // ---- login history (for `whoelse --since`)
  /** Records a session start; returns its id for {@linkcode Store.recordLogout}. */
  recordLogin(accountKey: string, ts: number): Promise<number>;
  /** Records a session end. */
  recordLogout(sessionId: number, ts: number): Promise<void>;
  /**
   * Ends every session left open (by a crash) at `ts`; called at start. A store shared by
   * several servers (PostgreSQL) ends only this server's sessions.
   */
  closeOpenSessions(ts: number): Promise<void>;
  /** Account keys with a session that overlapped [since, now]. */
  onlineSince(since: number): Promise<string[]>;

  /** Commits what is pending and releases the storage. */
  close(): Promise<void>;
}

/**
 * Stable codes of {@linkcode StoreError}.
 *
 * - `closed`: the store was closed; nothing more can be read or written.
 * - `open_failed`: the storage could not be opened (unwritable folder, newer schema…).
 * - `not_found`: the room, account or session named does not exist.
 * - `invalid`: the arguments are malformed (both or neither of `room`/`toKey`, a bad limit…).
 * - `failed`: the storage failed while reading or writing (disk full, I/O error…).
 * - `conflict`: a message reuses its sender's `clientId` for a different message (another
 *   kind, room, recipient or text); nothing was written.
 * - `unavailable`: a storage server (PostgreSQL) cannot be reached, is restarting or did not
 *   answer in time; the call may succeed when retried. A write that fails so may or may not
 *   have been committed (resending a message with the same `clientId` is safe).
 */
export type StoreErrorCode =
  | "closed"
  | "open_failed"
  | "not_found"
  | "invalid"
  | "failed"
  | "conflict"
  | "unavailable";

/**
 * A failure of a {@linkcode Store}, with a stable {@linkcode StoreErrorCode}.
 *
 * @example
 * ```ts
 * import { StoreError } from "./store.ts";
 * const err = new StoreError("closed", "store is closed");
 * err.code; // "closed"
 * ```
 */
export class StoreError extends Error {
  /** The stable, machine-readable reason. */
  readonly code: StoreErrorCode;

  /** Creates an error with a stable code and a human-readable message. */
  constructor(code: StoreErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "StoreError";
    this.code = code;
  }
}

/**
 * Checks the shape of a {@linkcode NewMessage} the way every store does.
 *
 * @throws {StoreError} `invalid` when both or neither of `room` / `toKey` are set, a
 * direct message lacks the recipient's display nick, or `clientId` is empty.
 */
export function checkNewMessage(message: NewMessage): void {
  const isRoom = message.room !== undefined;
  const isDirect = message.toKey !== undefined;
  if (isRoom === isDirect) {
    throw new StoreError("invalid", "a message needs exactly one of room or toKey");
  }
  if (isDirect && !message.to) {
    throw new StoreError("invalid", "a direct message needs the recipient's display nick (to)");
  }
  if (!message.clientId) throw new StoreError("invalid", "a message needs a clientId");
  if (!Number.isFinite(message.ts)) throw new StoreError("invalid", "a message needs a finite ts");
}

/**
 * Checks a {@linkcode HistoryQuery} the way every store does.
 *
 * @throws {StoreError} `invalid` when both or neither of `room` / `between` are set, or
 * `limit` / `before` are not non-negative integers.
 */
export function checkHistoryQuery(query: HistoryQuery): void {
  if ((query.room === undefined) === (query.between === undefined)) {
    throw new StoreError("invalid", "a history query needs exactly one of room or between");
  }
  checkCount("limit", query.limit);
  if (query.before !== undefined) checkCount("before", query.before);
  if (query.after !== undefined) checkCount("after", query.after);
  if (query.afterTs !== undefined) checkCount("afterTs", query.afterTs);
  if (query.beforeTs !== undefined) checkCount("beforeTs", query.beforeTs);
}

/**
 * The bounds of a checked {@linkcode HistoryQuery}, with their defaults (no bound):
 * ids in (after, before), times in (afterTs, beforeTs).
 */
export function historyBounds(
  query: HistoryQuery,
): { before: number; after: number; beforeTs: number; afterTs: number } {
  return {
    before: query.before ?? Number.MAX_SAFE_INTEGER,
    after: query.after ?? 0,
    beforeTs: query.beforeTs ?? Number.MAX_SAFE_INTEGER,
    afterTs: query.afterTs ?? -1,
  };
}

/**
 * Checks an {@linkcode UndeliveredQuery} the way every store does; returns it with its
 * defaults (everything: after 0, through the largest id, no limit).
 *
 * @throws {StoreError} `invalid` when a bound is not a non-negative integer.
 */
export function checkUndeliveredQuery(query: UndeliveredQuery): Required<UndeliveredQuery> {
  const after = query.after ?? 0;
  const through = query.through ?? Number.MAX_SAFE_INTEGER;
  checkCount("after", after);
  checkCount("through", through);
  if (query.limit !== undefined) checkCount("limit", query.limit);
  return { after, through, limit: query.limit ?? Infinity };
}

/**
 * Checks that `value` is a non-negative safe integer (a limit, an id).
 *
 * @throws {StoreError} `invalid` otherwise.
 */
export function checkCount(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new StoreError("invalid", `${name} must be a non-negative integer, got ${value}`);
  }
}
