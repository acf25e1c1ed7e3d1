/**
 * An in-memory {@linkcode Store}, for tests and for servers run without a data folder.
 *
 * It follows the same contract as the SQLite store (both pass `store_conformance.ts`):
 * message ids increase from 1, `(fromKey, clientId)` is unique, records handed out are
 * copies. Nothing survives the process.
 *
 * @module
 */

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

interface StoredMessage {
  id: number;
  ts: number;
  clientId: string;
  fromKey: string;
  from: string;
  roomKey: string | null;
  toKey: string | null;
  to: string | null;
  text: string;
  delivered: boolean;
  read: boolean;
}

interface Session {
  accountKey: string;
  loginTs: number;
  logoutTs: number | null;
}

/** Options of {@linkcode MemoryStore}. */
export interface MemoryStoreOptions {
  /**
   * Most room messages kept per room; the oldest are forgotten (a sixteenth of them at a
   * time), after which history and `sync` reach no further back and a resend of one is
   * stored again. Direct messages are all kept.
   * Default: every message. (A long benchmark on the memory store otherwise measures its
   * garbage collector walking an ever larger heap, which a SQLite server does not hold.)
   */
  roomHistory?: number;
}

/**
 * A {@linkcode Store} kept in memory.
 *
 * @example
 * ```ts
 * import { MemoryStore } from "./memory_store.ts";
 * const store = new MemoryStore();
 * await store.createRoom({ key: "lobby", name: "Lobby", topic: "", topicBy: "", createdAt: 0 });
 * const { message } = await store.appendMessage({
 *   fromKey: "alice", from: "Alice", room: "lobby", text: "hi", ts: Date.now(), clientId: "1",
 * });
 * message.id; // 1
 * ```
 */
export class MemoryStore implements Store {
  #closed = false;
  #accounts = new Map<string, AccountRecord>();
  #rooms = new Map<string, RoomRecord>();
  /** room key → member account keys */
  #members = new Map<string, Set<string>>();
  /** account key → room keys */
  #memberOf = new Map<string, Set<string>>();
  /**
   * The direct messages, by id, in id order. A room message is held by its room's thread
   * alone (one push; a forgotten one leaves nothing behind, not a slot per message ever
   * sent).
   */
  #direct = new Map<number, StoredMessage>();
  /** The highest id given so far. */
  #lastId = 0;
  readonly #roomHistory: number;
  /** room key → its messages, by id */
  #roomThreads = new Map<string, StoredMessage[]>();
  /** DM pair key → its messages, by id */
  #pairThreads = new Map<string, StoredMessage[]>();
  /**
   * sender's account key → client id → message: keys the strings a message carries (their
   * hashes kept in them), not a string made per lookup.
   */
  #byClientId = new Map<string, Map<string, StoredMessage>>();
  #blocks = new Map<string, Set<string>>();
  #contacts = new Map<string, Set<string>>();
  #sessions: Session[] = [];
  /** token hash → token */
  #tokens = new Map<string, TokenRecord>();

  /** An empty store. */
  constructor(options: MemoryStoreOptions = {}) {
    const roomHistory = options.roomHistory ?? Infinity;
    if (!(roomHistory >= 1)) throw new RangeError("roomHistory must be at least 1");
    this.#roomHistory = roomHistory;
  }

  /**
   * Messages held now: what the rooms keep and every direct message. A forgotten room
   * message holds nothing (not even a slot): a long run keeps a steady heap.
   */
  get heldMessages(): number {
    let held = this.#direct.size;
    for (const list of this.#roomThreads.values()) held += list.length;
    return held;
  }

  // ---- accounts

  /** The account with this key, or null. */
  getAccount(key: string): Promise<AccountRecord | null> {
    return this.#run(() => {
      const account = this.#accounts.get(key);
      return account === undefined ? null : { ...account };
    });
  }

  /** Every account's key. */
  accountKeys(): Promise<string[]> {
    return this.#run(() => [...this.#accounts.keys()]);
  }

  /** Creates the account; false (and nothing written) when the key exists. */
  createAccount(account: AccountRecord): Promise<boolean> {
    return this.#run(() => {
      if (this.#accounts.has(account.key)) return false;
      this.#accounts.set(account.key, { ...account });
      return true;
    });
  }

  /** Replaces an account's password hash; `not_found` when there is no such account. */
  setPasswordHash(key: string, passwordHash: string): Promise<void> {
    return this.#run(() => {
      const account = this.#accounts.get(key);
      if (account === undefined) throw new StoreError("not_found", `no account "${key}"`);
      account.passwordHash = passwordHash;
      this.#removeTokens(key);
    });
  }

  // ---- rooms and memberships

  /** The room with this key, or null. */
  getRoom(key: string): Promise<RoomRecord | null> {
    return this.#run(() => {
      const room = this.#rooms.get(key);
      return room === undefined ? null : { ...room };
    });
  }

  /** Creates the room; false when the key exists. */
  createRoom(room: RoomRecord): Promise<boolean> {
    return this.#run(() => {
      if (this.#rooms.has(room.key)) return false;
      this.#rooms.set(room.key, { ...room });
      return true;
    });
  }

  /** Every room with its member count, ordered by key. */
  listRooms(): Promise<RoomSummary[]> {
    return this.#run(() =>
      [...this.#rooms.values()]
        .map((room) => ({ ...room, members: this.#members.get(room.key)?.size ?? 0 }))
        .sort((a, b) => compare(a.key, b.key))
    );
  }

  /** Sets a room's topic; `not_found` when there is no such room. */
  setTopic(roomKey: string, topic: string, by: string): Promise<void> {
    return this.#run(() => {
      const room = this.#rooms.get(roomKey);
      if (room === undefined) throw new StoreError("not_found", `no room "${roomKey}"`);
      room.topic = topic;
      room.topicBy = by;
    });
  }

  /** Adds a member; false when already a member, `not_found` when there is no such room. */
  addMember(roomKey: string, accountKey: string): Promise<boolean> {
    return this.#run(() => {
      if (!this.#rooms.has(roomKey)) throw new StoreError("not_found", `no room "${roomKey}"`);
      const members = setOf(this.#members, roomKey);
      if (members.has(accountKey)) return false;
      members.add(accountKey);
      setOf(this.#memberOf, accountKey).add(roomKey);
      return true;
    });
  }

  /** Removes a member; false when not a member. */
  removeMember(roomKey: string, accountKey: string): Promise<boolean> {
    return this.#run(() => {
      if (!(this.#members.get(roomKey)?.delete(accountKey) ?? false)) return false;
      this.#memberOf.get(accountKey)?.delete(roomKey);
      return true;
    });
  }

  /** Account keys of a room's members, sorted. */
  roomMembers(roomKey: string): Promise<string[]> {
    return this.#run(() => sorted(this.#members.get(roomKey)));
  }

  /** Room keys an account is a member of, sorted. */
  accountRooms(accountKey: string): Promise<string[]> {
    return this.#run(() => sorted(this.#memberOf.get(accountKey)));
  }

  // ---- messages

  /**
   * Appends a message with the next id, or returns the earlier one for a resend (the
   * commit is the append: `onCommitted` is told at once).
   */
  appendMessage(message: NewMessage, options?: AppendOptions): Promise<AppendResult> {
    return this.#run(() => this.#append(message, options));
  }

  #append(message: NewMessage, options: AppendOptions | undefined): AppendResult {
    const result = this.#insert(message);
    tellCommitted(options, result, (error) => {
      log.error("onCommitted failed: {error}", { error });
    });
    return result;
  }

  #insert(message: NewMessage): AppendResult {
    checkNewMessage(message);
    let sent = this.#byClientId.get(message.fromKey);
    const earlier = sent?.get(message.clientId);
    if (earlier !== undefined) {
      checkResend(earlier, message);
      return { message: this.#toChat(earlier), duplicate: true };
    }
    if (message.room !== undefined && !this.#rooms.has(message.room)) {
      throw new StoreError("not_found", `no room "${message.room}"`);
    }
    const stored: StoredMessage = {
      id: ++this.#lastId,
      ts: message.ts,
      clientId: message.clientId,
      fromKey: message.fromKey,
      from: message.from,
      roomKey: message.room ?? null,
      toKey: message.toKey ?? null,
      to: message.to ?? null,
      text: message.text,
      delivered: false,
      read: false,
    };
    let list: StoredMessage[] | undefined;
    if (stored.roomKey !== null) {
      list = this.#roomThreads.get(stored.roomKey);
      if (list === undefined) this.#roomThreads.set(stored.roomKey, list = []);
    } else {
      this.#direct.set(stored.id, stored);
      const pair = pairThread(stored.fromKey, stored.toKey!);
      list = this.#pairThreads.get(pair);
      if (list === undefined) this.#pairThreads.set(pair, list = []);
    }
    list.push(stored);
    if (sent === undefined) this.#byClientId.set(stored.fromKey, sent = new Map());
    sent.set(stored.clientId, stored);
    if (stored.roomKey !== null && list.length > this.#roomHistory) {
      // Forget the room's oldest (a batch at a time: shifting one by one is quadratic).
      const forgotten = list.splice(
        0,
        list.length - this.#roomHistory + (this.#roomHistory >> 4),
      );
      for (const m of forgotten) {
        this.#byClientId.get(m.fromKey)?.delete(m.clientId);
      }
    }
    return { message: this.#toChat(stored), duplicate: false };
  }

  /** The newest `limit` messages matching `query`, oldest first. */
  history(query: HistoryQuery): Promise<ChatMessage[]> {
    return this.#run(() => {
      checkHistoryQuery(query);
      const list = (query.room !== undefined
        ? this.#roomThreads.get(query.room)
        : this.#pairThreads.get(pairThread(query.between![0], query.between![1]))) ?? [];
      const { before, after, beforeTs, afterTs } = historyBounds(query);
      const start = firstAtLeast(list, after + 1);
      const end = firstAtLeast(list, before);
      const blocked = query.room !== undefined && query.viewer !== undefined
        ? this.#blocks.get(query.viewer)
        : undefined;
      const wanted = (m: (typeof list)[number]) =>
        m.ts < beforeTs && m.ts > afterTs && !(blocked?.has(m.fromKey) ?? false);
      const out: ChatMessage[] = [];
      if (query.oldest === true) {
        for (let i = start; i < end && out.length < query.limit; i++) {
          if (wanted(list[i])) {
            out.push(this.#toChat(list[i]));
          }
        }
        return out;
      }
      for (let i = end - 1; i >= start && out.length < query.limit; i--) {
        if (wanted(list[i])) {
          out.push(this.#toChat(list[i]));
        }
      }
      return out.reverse();
    });
  }

  /** The highest message id stored so far; 0 when none. */
  lastMessageId(): Promise<number> {
    return this.#run(() => this.#lastId);
  }

  /** The direct conversations of `accountKey` active in a time window, latest first. */
  directConversations(
    accountKey: string,
    query: { afterTs: number; beforeTs: number; limit: number },
  ): Promise<{ key: string; ts: number }[]> {
    return this.#run(() => {
      checkCount("limit", query.limit);
      const latest = new Map<string, number>();
      for (const m of this.#direct.values()) {
        if (m.ts <= query.afterTs || m.ts >= query.beforeTs) continue;
        const other = m.fromKey === accountKey
          ? m.toKey
          : m.toKey === accountKey
          ? m.fromKey
          : null;
        if (other === null) continue;
        latest.set(other, Math.max(latest.get(other) ?? -Infinity, m.ts));
      }
      return [...latest].map(([key, ts]) => ({ key, ts }))
        .sort((a, b) => b.ts - a.ts || (a.key < b.key ? -1 : 1))
        .slice(0, query.limit);
    });
  }

  /** Messages above `afterId` that `accountKey` may see now, oldest first, at most `limit`. */
  messagesAfter(accountKey: string, afterId: number, limit: number): Promise<ChatMessage[]> {
    return this.#run(() => {
      checkCount("afterId", afterId);
      checkCount("limit", limit);
      const rooms = this.#memberOf.get(accountKey);
      const blocked = this.#blocks.get(accountKey);
      // The first `limit` of each room and of the direct messages, then the first of all.
      const found: StoredMessage[] = [];
      for (const roomKey of rooms ?? []) {
        const list = this.#roomThreads.get(roomKey) ?? [];
        let taken = 0;
        for (let i = firstAtLeast(list, afterId + 1); i < list.length && taken < limit; i++) {
          if (blocked?.has(list[i].fromKey) ?? false) continue;
          found.push(list[i]);
          taken++;
        }
      }
      let taken = 0;
      for (const m of this.#direct.values()) {
        if (taken >= limit) break;
        if (m.id > afterId && (m.fromKey === accountKey || m.toKey === accountKey)) {
          found.push(m);
          taken++;
        }
      }
      found.sort((a, b) => a.id - b.id);
      return found.slice(0, limit).map((m) => this.#toChat(m));
    });
  }

  /** Direct messages to `accountKey` not delivered yet, oldest first (a page of them). */
  undelivered(accountKey: string, query: UndeliveredQuery = {}): Promise<DirectMessage[]> {
    return this.#run(() => {
      const { after, through, limit } = checkUndeliveredQuery(query);
      const out: DirectMessage[] = [];
      for (const m of this.#direct.values()) {
        if (m.id > through || out.length >= limit) break;
        if (m.id > after && m.toKey === accountKey && !m.delivered) {
          out.push(this.#toChat(m) as DirectMessage);
        }
      }
      return out;
    });
  }

  /** How many direct messages to `accountKey` up to `throughId` are undelivered. */
  countUndelivered(accountKey: string, throughId: number): Promise<number> {
    return this.#run(() => {
      checkCount("throughId", throughId);
      let n = 0;
      for (const m of this.#direct.values()) {
        if (m.id > throughId) break;
        if (m.toKey === accountKey && !m.delivered) n++;
      }
      return n;
    });
  }

  /** Marks direct messages delivered; returns those newly delivered (unknown ids and room messages are ignored). */
  markDelivered(ids: number[]): Promise<number[]> {
    return this.#run(() => {
      for (const id of ids) checkCount("id", id);
      const newly: number[] = [];
      for (const id of ids) {
        const m = this.#direct.get(id);
        if (m !== undefined && m.toKey !== null && !m.delivered) {
          m.delivered = true;
          newly.push(id);
        }
      }
      return newly.sort((a, b) => a - b);
    });
  }

  /**
   * Marks direct messages to `accountKey` read (and delivered); returns those newly
   * read, by id.
   */
  markRead(accountKey: string, ids: number[]): Promise<DirectMessage[]> {
    return this.#run(() => {
      for (const id of ids) checkCount("id", id);
      const out: DirectMessage[] = [];
      for (const id of [...new Set(ids)].sort((a, b) => a - b)) {
        const m = this.#direct.get(id);
        if (m === undefined || m.toKey !== accountKey || m.read) continue;
        m.read = true;
        m.delivered = true;
        out.push(this.#toChat(m) as DirectMessage);
      }
      return out;
    });
  }

  // ---- blocks and contacts

  /** Records that `accountKey` blocks `targetKey`; false when already blocked. */
  addBlock(accountKey: string, targetKey: string): Promise<boolean> {
    return this.#run(() => addTo(this.#blocks, accountKey, targetKey));
  }

  /** Removes a block; false when there was none. */
  removeBlock(accountKey: string, targetKey: string): Promise<boolean> {
    return this.#run(() => this.#blocks.get(accountKey)?.delete(targetKey) ?? false);
  }

  /** Account keys that `accountKey` blocks, sorted. */
  blocksOf(accountKey: string): Promise<string[]> {
    return this.#run(() => sorted(this.#blocks.get(accountKey)));
  }

  /** Adds a contact; false when already one. */
  addContact(accountKey: string, targetKey: string): Promise<boolean> {
    return this.#run(() => addTo(this.#contacts, accountKey, targetKey));
  }

  /** Removes a contact; false when there was none. */
  removeContact(accountKey: string, targetKey: string): Promise<boolean> {
    return this.#run(() => this.#contacts.get(accountKey)?.delete(targetKey) ?? false);
  }

  /** Account keys in `accountKey`'s contact list, sorted. */
  contactsOf(accountKey: string): Promise<string[]> {
    return this.#run(() => sorted(this.#contacts.get(accountKey)));
  }

  /** Account keys that have `targetKey` as a contact, sorted. */
  watchersOf(targetKey: string): Promise<string[]> {
    return this.#run(() => {
      const out: string[] = [];
      for (const [key, set] of this.#contacts) if (set.has(targetKey)) out.push(key);
      return out.sort(compare);
    });
  }

  // ---- session tokens

  /** Stores a token; drops the account's expired and oldest beyond the cap. */
  addToken(token: TokenRecord): Promise<void> {
    return this.#run(() => {
      this.#tokens.set(token.hash, { ...token });
      const mine = [...this.#tokens.values()]
        .filter((t) => t.accountKey === token.accountKey)
        .sort((a, b) => b.createdAt - a.createdAt || (a.hash < b.hash ? -1 : 1));
      mine.forEach((t, i) => {
        if (t.expiresAt <= token.createdAt || i >= MAX_TOKENS_PER_ACCOUNT) {
          this.#tokens.delete(t.hash);
        }
      });
    });
  }

  /** The token with this hash, or null. */
  getToken(hash: string): Promise<TokenRecord | null> {
    return this.#run(() => {
      const token = this.#tokens.get(hash);
      return token === undefined ? null : { ...token };
    });
  }

  /** Revokes the token if it is `accountKey`'s. */
  removeToken(hash: string, accountKey: string): Promise<boolean> {
    return this.#run(() =>
      this.#tokens.get(hash)?.accountKey === accountKey && this.#tokens.delete(hash)
    );
  }

  /** Revokes every token of `accountKey`. */
  removeTokens(accountKey: string): Promise<number> {
    return this.#run(() => this.#removeTokens(accountKey));
  }

  #removeTokens(accountKey: string): number {
    let count = 0;
    for (const [hash, token] of this.#tokens) {
      if (token.accountKey === accountKey && this.#tokens.delete(hash)) count++;
    }
    return count;
  }

  // ---- login history

  /** Records a session start; returns its id (from 1). */
  recordLogin(accountKey: string, ts: number): Promise<number> {
    return this.#run(() => this.#sessions.push({ accountKey, loginTs: ts, logoutTs: null }));
  }

  /** Records a session end; an unknown or already ended session is left alone. */
  recordLogout(sessionId: number, ts: number): Promise<void> {
    return this.#run(() => {
      const session = this.#sessions[sessionId - 1];
      if (session !== undefined && session.logoutTs === null) session.logoutTs = ts;
    });
  }

  /** Ends every open session at `ts`. */
  closeOpenSessions(ts: number): Promise<void> {
    return this.#run(() => {
      for (const session of this.#sessions) session.logoutTs ??= ts;
    });
  }

  /** Account keys with a session open now or ended at or after `since`, sorted. */
  onlineSince(since: number): Promise<string[]> {
    return this.#run(() => {
      const keys = new Set<string>();
      for (const s of this.#sessions) {
        if (s.logoutTs === null || s.logoutTs >= since) keys.add(s.accountKey);
      }
      return sorted(keys);
    });
  }

  /** Marks the store closed: every later call rejects with a `closed` {@linkcode StoreError}. */
  close(): Promise<void> {
    this.#closed = true;
    return Promise.resolve();
  }

  // ---- internals

  #run<T>(fn: () => T): Promise<T> {
    try {
      if (this.#closed) throw new StoreError("closed", "the store is closed");
      return Promise.resolve(fn());
    } catch (error) {
      return Promise.reject(error);
    }
  }

  #toChat(m: StoredMessage): ChatMessage {
    if (m.roomKey !== null) {
      const room = this.#rooms.get(m.roomKey)?.name ?? m.roomKey;
      return { type: "msg", id: m.id, ts: m.ts, room, from: m.from, text: m.text };
    }
    return { type: "dm", id: m.id, ts: m.ts, from: m.from, to: m.to!, text: m.text };
  }
}

function pairThread(a: string, b: string): string {
  return a < b ? `@${a}\n${b}` : `@${b}\n${a}`;
}

/** Index of the first message with an id ≥ `id` in a list ordered by id. */
function firstAtLeast(list: StoredMessage[], id: number): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (list[mid].id < id) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function setOf(map: Map<string, Set<string>>, key: string): Set<string> {
  let set = map.get(key);
  if (set === undefined) map.set(key, set = new Set());
  return set;
}

function addTo(map: Map<string, Set<string>>, key: string, value: string): boolean {
  const set = setOf(map, key);
  if (set.has(value)) return false;
  set.add(value);
  return true;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function sorted(set: Set<string> | undefined): string[] {
  return set === undefined ? [] : [...set].sort(compare);
}
