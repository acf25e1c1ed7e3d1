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
import { ClientIdIndex, type ClientIdKey } from "./client_id_index.ts";
import { RoomRing } from "./room_ring.ts";
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

/** A direct message (room messages are held in columns: {@linkcode RoomRing}). */
interface StoredMessage {
  id: number;
  ts: number;
  clientId: string;
  fromKey: string;
  from: string;
  toKey: string;
  to: string;
  text: string;
  delivered: boolean;
  read: boolean;
}

/** A message found by its position: in a room's ring, or a direct one. */
type Found = { id: number; ring: RoomRing; k: number } | {
  id: number;
  ring: null;
  m: StoredMessage;
};

interface Session {
  accountKey: string;
  loginTs: number;
  logoutTs: number | null;
}

/** Options of {@linkcode MemoryStore}. */
export interface MemoryStoreOptions {
  /**
   * Most room messages kept per room: the newest, each new one taking the oldest one's
   * place, after which history and `sync` reach no further back and a resend of one is
   * stored again. Direct messages are all kept.
   * Default: every message. (A long benchmark on the memory store otherwise measures its
   * garbage collector walking an ever larger heap, which a SQLite server does not hold.)
   */
  roomHistory?: number;
  /**
   * The key of the request-id index's hash (see `client_id_index.ts`). Default: a random
   * one, so that no client can choose request ids that collide. Fixed only by tests.
   */
  requestIdKey?: ClientIdKey;
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
   * The direct messages, by id, in id order. A room message is held by its room's ring
   * alone, in columns (no object per message; a forgotten one leaves nothing behind).
   */
  #direct = new Map<number, StoredMessage>();
  /** The highest id given so far. */
  #lastId = 0;
  readonly #roomHistory: number;
  /** room key → its newest messages */
  #roomThreads = new Map<string, RoomRing>();
  /** The rings by number (`RoomRing.index`), as the request-id index names them. */
  #rings: RoomRing[] = [];
  /** Held room messages by (sender, request id). */
  readonly #roomClientIds: ClientIdIndex;
  /** DM pair key → its messages, by id */
  #pairThreads = new Map<string, StoredMessage[]>();
  /**
   * sender's account key → client id → direct message: keys the strings a message carries
   * (their hashes kept in them), not a string made per lookup.
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
    this.#roomClientIds = new ClientIdIndex({ key: options.requestIdKey });
  }

  /**
   * Messages held now: what the rooms keep and every direct message. A forgotten room
   * message holds nothing (not even a slot): a long run keeps a steady heap.
   */
  get heldMessages(): number {
    let held = this.#direct.size;
    for (const ring of this.#rings) held += ring.length;
    return held;
  }

  /**
   * Request ids indexed for resends: one per held message (a forgotten room message's
   * leaves with it).
   */
  get indexedRequestIds(): number {
    let n = this.#roomClientIds.size;
    for (const sent of this.#byClientId.values()) n += sent.size;
    return n;
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
    const hash = this.#roomClientIds.hash(message.fromKey, message.clientId);
    const sent = this.#byClientId.get(message.fromKey);
    const earlierDirect = sent?.get(message.clientId);
    if (earlierDirect !== undefined) {
      checkResend({ roomKey: null, toKey: earlierDirect.toKey, text: earlierDirect.text }, message);
      return { message: this.#toChat(earlierDirect), duplicate: true };
    }
    const earlierRoom = this.#roomMessageOf(hash, message.fromKey, message.clientId);
    if (earlierRoom !== null) {
      const { ring, k } = earlierRoom;
      checkResend({ roomKey: ring.key, toKey: null, text: ring.textAt(k) }, message);
      return { message: this.#roomChat(ring, k), duplicate: true };
    }
    if (message.room !== undefined) return this.#insertRoom(message, message.room, hash);
    const stored: StoredMessage = {
      id: ++this.#lastId,
      ts: message.ts,
      clientId: message.clientId,
      fromKey: message.fromKey,
      from: message.from,
      toKey: message.toKey!,
      to: message.to!,
      text: message.text,
      delivered: false,
      read: false,
    };
    this.#direct.set(stored.id, stored);
    const pair = pairThread(stored.fromKey, stored.toKey);
    let list = this.#pairThreads.get(pair);
    if (list === undefined) this.#pairThreads.set(pair, list = []);
    list.push(stored);
    if (sent === undefined) {
      this.#byClientId.set(stored.fromKey, new Map([[stored.clientId, stored]]));
    } else sent.set(stored.clientId, stored);
    return { message: this.#toChat(stored), duplicate: false };
  }

  #insertRoom(message: NewMessage, roomKey: string, hash: number): AppendResult {
    const room = this.#rooms.get(roomKey);
    if (room === undefined) throw new StoreError("not_found", `no room "${roomKey}"`);
    let ring = this.#roomThreads.get(roomKey);
    if (ring === undefined) {
      ring = new RoomRing(roomKey, this.#rings.length, this.#roomHistory);
      this.#rings.push(ring);
      this.#roomThreads.set(roomKey, ring);
    }
    if (ring.full) {
      // The oldest is forgotten: a resend of it is a new message.
      this.#roomClientIds.remove(ring.hashAt(0), ring.idAt(0));
      ring.dropOldest();
    }
    const id = ++this.#lastId;
    ring.push(id, message.ts, message.fromKey, message.from, message.clientId, message.text, hash);
    this.#roomClientIds.add(hash, id, ring.index);
    return {
      message: {
        type: "msg",
        id,
        ts: message.ts,
        room: room.name,
        from: message.from,
        text: message.text,
      },
      duplicate: false,
    };
  }

  /** The held room message `fromKey` sent under `clientId` (its pair hashing to `hash`), or null. */
  #roomMessageOf(
    hash: number,
    fromKey: string,
    clientId: string,
  ): { ring: RoomRing; k: number } | null {
    const index = this.#roomClientIds;
    for (let slot = index.candidate(hash); slot >= 0; slot = index.candidate(hash, slot)) {
      const ring = this.#rings[index.ringAt(slot)];
      const k = ring.indexOf(index.idAt(slot));
      if (k >= 0 && ring.fromKeyAt(k) === fromKey && ring.clientIdAt(k) === clientId) {
        return { ring, k };
      }
    }
    return null;
  }

  /** The newest `limit` messages matching `query`, oldest first. */
  history(query: HistoryQuery): Promise<ChatMessage[]> {
    return this.#run(() => {
      checkHistoryQuery(query);
      const { before, after, beforeTs, afterTs } = historyBounds(query);
      if (query.room !== undefined) {
        const ring = this.#roomThreads.get(query.room);
        if (ring === undefined) return [];
        const blocked = query.viewer !== undefined ? this.#blocks.get(query.viewer) : undefined;
        return page(
          query,
          ring.firstAtLeast(after + 1),
          ring.firstAtLeast(before),
          (k) => {
            const ts = ring.tsAt(k);
            return ts < beforeTs && ts > afterTs && !(blocked?.has(ring.fromKeyAt(k)) ?? false);
          },
          (k) => this.#roomChat(ring, k),
        );
      }
      const list = this.#pairThreads.get(pairThread(query.between![0], query.between![1])) ?? [];
      return page(
        query,
        firstAtLeast(list, after + 1),
        firstAtLeast(list, before),
        (k) => list[k].ts < beforeTs && list[k].ts > afterTs,
        (k) => this.#toChat(list[k]),
      );
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
      const found: Found[] = [];
      for (const roomKey of rooms ?? []) {
        const ring = this.#roomThreads.get(roomKey);
        if (ring === undefined) continue;
        let taken = 0;
        for (let k = ring.firstAtLeast(afterId + 1); k < ring.length && taken < limit; k++) {
          if (blocked?.has(ring.fromKeyAt(k)) ?? false) continue;
          found.push({ id: ring.idAt(k), ring, k });
          taken++;
        }
      }
      let taken = 0;
      for (const m of this.#direct.values()) {
        if (taken >= limit) break;
        if (m.id > afterId && (m.fromKey === accountKey || m.toKey === accountKey)) {
          found.push({ id: m.id, ring: null, m });
          taken++;
        }
      }
      found.sort((a, b) => a.id - b.id);
      return found.slice(0, limit).map((f) =>
        f.ring === null ? this.#toChat(f.m) : this.#roomChat(f.ring, f.k)
      );
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
        if (m !== undefined && !m.delivered) {
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
    return { type: "dm", id: m.id, ts: m.ts, from: m.from, to: m.to, text: m.text };
  }

  #roomChat(ring: RoomRing, k: number): ChatMessage {
    return {
      type: "msg",
      id: ring.idAt(k),
      ts: ring.tsAt(k),
      room: this.#rooms.get(ring.key)?.name ?? ring.key,
      from: ring.fromAt(k),
      text: ring.textAt(k),
    };
  }
}

function pairThread(a: string, b: string): string {
  return a < b ? `@${a}\n${b}` : `@${b}\n${a}`;
}

/**
 * The newest `query.limit` positions in [start, end) that are `wanted` (the oldest ones
 * with `query.oldest`), oldest first, as messages.
 */
function page(
  query: HistoryQuery,
  start: number,
  end: number,
  wanted: (k: number) => boolean,
  chat: (k: number) => ChatMessage,
): ChatMessage[] {
  const out: ChatMessage[] = [];
  if (query.oldest === true) {
    for (let k = start; k < end && out.length < query.limit; k++) if (wanted(k)) out.push(chat(k));
    return out;
  }
  for (let k = end - 1; k >= start && out.length < query.limit; k--) {
    if (wanted(k)) out.push(chat(k));
  }
  return out.reverse();
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
