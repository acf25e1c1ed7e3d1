/**
 * The chat state: who is online, their sessions, rooms and their members, blocks,
 * and the login and logout of sessions. It knows nothing about sockets: a session
 * reaches its client through a {@linkcode SessionPort}, and storage and fan-out sit
 * behind the {@linkcode Store} and {@linkcode Broker} interfaces.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { encodeFrame } from "../protocol/frame.ts";
import type { ServerMessage } from "../protocol/messages.ts";
import { MIN_PASSWORD_LENGTH, nameKey, nameProblem } from "../protocol/names.ts";
import type { NoticeCode, ReplyMap } from "../protocol/replies.ts";
import type { OutboundProgress } from "../transport/buffer_pool.ts";
import {
  ALL_SUBJECT,
  type Broker,
  type Publication,
  roomSubject,
  type Subscriber,
  userSubject,
} from "./broker.ts";
import type { ServerConfig } from "./config.ts";
import { isDiskFull } from "./disk_space.ts";
import { CommandError } from "./errors.ts";
import { HashQueue, HashQueueFullError } from "./hash_queue.ts";
import { Lockout } from "./lockout.ts";
import { ServerMetrics } from "./metrics.ts";
import { KeyedBuckets, TokenBucket } from "./rate_limit.ts";
import { hashPassword, verifyPassword } from "./password.ts";
import { PresenceBatcher } from "./presence.ts";
import { confirmDelivered, deliverHeld, HeldWindow } from "./held_delivery.ts";
import { NickSkeletons } from "./nick_skeletons.ts";
import type { RoomRecord, Store } from "./store.ts";

const log = getLogger(["chat", "server", "hub"]);

/** Login refusals counted as authentication failures. */
const AUTH_FAILURES: ReadonlySet<string> = new Set(["wrong_password", "locked", "rate_limited"]);

/** The room every account joins at its first login. */
export const DEFAULT_ROOM = "lobby";

/** How a session reaches its client; implemented by the connection layer. */
export interface SessionPort {
  /** The client's address and port, for logs. */
  readonly remote: string;
  /** The client's IP address, for per-address limits. */
  readonly ip: string;
  /** Queues an encoded frame; false when refused (the port then cuts the client off). */
  send(frame: Uint8Array): boolean;
  /**
   * Where the outbound stream stands (frames leave in the order queued), when the port
   * knows: file reads then reuse a frame's buffer once it is written.
   */
  outbound?(): OutboundProgress;
  /**
   * Resolves true once the first `offset` bytes of the outbound stream are written
   * (see {@linkcode outbound}), false if they never will be (the connection ended or
   * dropped them). Held direct messages count as delivered only then.
   */
  whenWritten?(offset: number): Promise<boolean>;
  /** Ends the connection, after an optional notice. */
  end(notice?: { code: NoticeCode; text: string }): void;
}

/** An account with at least one session. */
export interface OnlineAccount {
  /** Account key. */
  readonly key: string;
  /** Display nick. */
  readonly nick: string;
  /** Its sessions. */
  readonly sessions: Set<Session>;
  /** Keys of the accounts it blocks. */
  readonly blocks: Set<string>;
  /** Keys of the rooms it is a member of. */
  readonly rooms: Set<string>;
  /**
   * Hidden (`/hide`): it appears offline to everyone (presence, lists, contacts) and its
   * reads send no receipts.
   */
  hidden: boolean;
}

/** A room's cached state. */
export interface RoomState {
  /** Room key. */
  readonly key: string;
  /** Display name. */
  readonly name: string;
  /** Topic; empty when none. */
  topic: string;
  /** Who set the topic. */
  topicBy: string;
  /** Keys of member accounts. */
  readonly members: Set<string>;
}

let sessionCounter = 0;

/**
 * One logged-in client session: a subscriber that filters what its account blocks.
 */
export class Session implements Subscriber {
  /** Unique id within this server. */
  readonly id: string;
  /** The account it belongs to. */
  readonly account: OnlineAccount;
  /** The way to its client. */
  readonly port: SessionPort;
  /** Login-history record id. */
  loginId = 0;
  /** When it last sent a command (ms, performance clock). */
  lastCommandAt: number = performance.now();
  /** Whether it has ended. */
  ended = false;
  /**
   * While a held direct message may reach it both live and as held: those it was sent,
   * so as not to send one twice.
   */
  held: HeldWindow | null = null;
  /** Whether its client acknowledges held direct messages (`login` with `ack: true`). */
  acksHeld = false;

  /** Creates a session. */
  constructor(account: OnlineAccount, port: SessionPort) {
    this.id = `s${++sessionCounter}`;
    this.account = account;
    this.port = port;
  }

  /** Its account's key. */
  get accountKey(): string {
    return this.account.key;
  }

  /** Whether a publication reaches this session (not ended, not filtered, not blocked). */
  accepts(publication: Publication): boolean {
    if (this.ended || publication.exceptSession === this.id) return false;
    if (publication.except !== undefined && publication.except.has(this.account.key)) return false;
    if (publication.from !== undefined && this.account.blocks.has(publication.from)) return false;
    return this.held === null || this.held.admit(publication.event);
  }

  /** Queues encoded frames unless the session has ended. */
  sendEncoded(frames: Uint8Array): boolean {
    return !this.ended && this.port.send(frames);
  }

  /** Sends one event to this session only. */
  send(event: ServerMessage): boolean {
    if (this.ended) return false;
    return this.port.send(encodeFrame(event));
  }
}

/** What a successful login returns to the connection layer. */
export interface LoginResult {
  /** The new session. */
  session: Session;
  /** The data of the `ok` reply. */
  reply: ReplyMap["login"];
  /**
   * Direct messages held while offline with an id up to this are sent after the reply
   * ({@linkcode ChatHub.deliverPending}); later ones reach the session live.
   */
  heldThrough: number;
}

/**
 * The chat state shared by every connection of one server.
 */
export class ChatHub {
  /** Storage. */
  readonly store: Store;
  /** Fan-out. */
  readonly broker: Broker;
  /** Settings. */
  readonly config: ServerConfig;
  /** Counters and latencies, for `/metrics`. */
  readonly metrics: ServerMetrics;
  /** Set when the server drains: logouts are no longer announced. */
  draining = false;
  /** Wall clock (ms since the epoch); replaceable in tests. */
  now: () => number = Date.now;
  readonly #online = new Map<string, OnlineAccount>();
  readonly #rooms = new Map<string, RoomState>();
  readonly #nicks = new Map<string, string>();
  /** Per account key: the keys of the online accounts that block it (the reverse of `blocks`). */
  readonly #blockedBy = new Map<string, Set<string>>();
  readonly #lockout: Lockout;
  readonly #loginFailures: KeyedBuckets;
  readonly #registrationsPerIp: KeyedBuckets;
  readonly #registrations: TokenBucket;
  /** Password hashes run through it: bounded concurrency, bounded and fair waiting. */
  readonly passwordHashes: HashQueue;
  readonly #accountLocks = new Map<string, Promise<unknown>>();
  readonly #sessionEndListeners: ((session: Session) => void)[] = [];
  readonly #presence: PresenceBatcher;
  /** Per recipient account key: direct messages being stored and published. */
  readonly #sendingDirect = new Map<string, Set<Promise<unknown>>>();
  /** Reserved and look-alike nicks refused at registration (server/nick_skeletons.ts). */
  readonly #skeletons: NickSkeletons;

  /** Creates the hub. */
  constructor(store: Store, broker: Broker, config: ServerConfig, metrics = new ServerMetrics()) {
    this.metrics = metrics;
    this.store = store;
    this.broker = broker;
    this.config = config;
    this.#presence = new PresenceBatcher(broker, ALL_SUBJECT);
    this.#lockout = new Lockout(config.blockDurationSec * 1000, config.lockoutScope);
    this.#skeletons = new NickSkeletons(store);
    const perMinute = config.loginFailuresPerMinutePerIp;
    this.#loginFailures = new KeyedBuckets(perMinute / 60, perMinute);
    const perIp = config.registrationsPerMinutePerIp;
    this.#registrationsPerIp = new KeyedBuckets(perIp / 60, perIp);
    const all = config.registrationsPerMinute;
    this.#registrations = new TokenBucket(all / 60, all, this.now());
    this.passwordHashes = new HashQueue(config.passwordHashConcurrency, config.passwordHashQueue);
    const hashes = this.passwordHashes;
    metrics.addGauge(
      "chat_password_hashes_running",
      "Password hashes being computed.",
      () => hashes.running,
    );
    metrics.addGauge(
      "chat_password_hashes_queued",
      "Logins waiting for a password hash.",
      () => hashes.queued,
    );
    metrics.addGauge(
      "chat_password_hashes_peak",
      "The most password hashes computed at once since the start.",
      () => hashes.peakRunning,
    );
  }

  /** Stops the hub's own timers (pending presence changes are dropped); the server is stopping. */
  close(): void {
    this.#presence.close();
  }

  /** Every online account. */
  get onlineAccounts(): IterableIterator<OnlineAccount> {
    return this.#online.values();
  }

  /** Number of live sessions. */
  get sessionCount(): number {
    let n = 0;
    for (const account of this.#online.values()) n += account.sessions.size;
    return n;
  }

  /** The online account with this key, if any. */
  online(key: string): OnlineAccount | undefined {
    return this.#online.get(key);
  }

  /**
   * Whether the account appears online: online and not hidden, and, to `viewer` (an
   * online account's key), only when neither of the two blocks the other. A block hides
   * presence both ways: the blocked user sees nothing of the blocker, and the blocker is
   * not told of the one it blocked.
   */
  isVisible(key: string, viewer?: string): boolean {
    const account = this.#online.get(key);
    if (account === undefined || account.hidden) return false;
    return viewer === undefined || !this.#blockedBetween(account, viewer);
  }

  /**
   * Whether `viewer` may see the account `key` online or in a recent-logins list: like
   * {@linkcode isVisible}, but for an account that may be offline (its blocks read from
   * the store).
   */
  async mayList(key: string, viewer: string): Promise<boolean> {
    if (this.#online.get(key)?.hidden) return false;
    if (this.#online.get(viewer)?.blocks.has(key)) return false;
    return !(await this.blocksOf(key)).has(viewer);
  }

  /**
   * `account` blocks `targetKey`: stored, cached, and each of the two, if they saw each
   * other online, is told the other went offline. False when it was already blocked.
   */
  async block(account: OnlineAccount, targetKey: string): Promise<boolean> {
    if (!await this.store.addBlock(account.key, targetKey)) return false;
    const target = this.#online.get(targetKey);
    const saw = target !== undefined && !this.#blockedBetween(account, targetKey);
    account.blocks.add(targetKey);
    if (this.#online.get(account.key) === account) this.#noteBlocks(account.key, [targetKey]);
    if (saw) await this.#presenceBetween(account, target, false);
    return true;
  }

  /**
   * `account` no longer blocks `targetKey`: stored, cached, and each of the two, if they
   * now see each other online, is told the other is online. False when it was not blocked.
   */
  async unblock(account: OnlineAccount, targetKey: string): Promise<boolean> {
    if (!await this.store.removeBlock(account.key, targetKey)) return false;
    account.blocks.delete(targetKey);
    this.#forgetBlocks(account.key, [targetKey]);
    const target = this.#online.get(targetKey);
    if (target !== undefined && !this.#blockedBetween(account, targetKey)) {
      await this.#presenceBetween(account, target, true);
    }
    return true;
  }

  /** Imports `nick password` credentials: creates or updates the accounts, hashed. */
  async importCredentials(credentials: { nick: string; password: string }[]): Promise<number> {
    let count = 0;
    for (const { nick, password } of credentials) {
      const problem = nameProblem(nick);
      if (problem !== null) throw new Error(`credentials: bad nick "${nick}": ${problem}`);
      const key = nameKey(nick);
      const hash = await hashPassword(password, { cost: this.config.passwordCost });
      const existing = await this.store.getAccount(key);
      if (existing === null) {
        await this.#createAccount(key, nick, hash);
      } else {
        await this.store.setPasswordHash(key, hash);
      }
      count++;
    }
    return count;
  }

  /** The display nick of an account key (from cache or store); the key itself if unknown. */
  async displayNick(key: string): Promise<string> {
    const cached = this.#online.get(key)?.nick ?? this.#nicks.get(key);
    if (cached !== undefined) return cached;
    const account = await this.store.getAccount(key);
    const nick = account?.nick ?? key;
    this.#nicks.set(key, nick);
    return nick;
  }

  /**
   * Resolves a nick named in a request to an existing account.
   *
   * @throws {CommandError} `bad_name` or `unknown_user`.
   */
  async requireAccount(nick: string): Promise<{ key: string; nick: string }> {
    const problem = nameProblem(nick);
    if (problem !== null) throw new CommandError("bad_name", `bad nick "${nick}": ${problem}`);
    const key = nameKey(nick);
    const online = this.#online.get(key);
    if (online !== undefined) return { key, nick: online.nick };
    const account = await this.store.getAccount(key);
    if (account === null) throw new CommandError("unknown_user", `no user named "${nick}"`);
    this.#nicks.set(key, account.nick);
    return { key, nick: account.nick };
  }

  /** Keys the account blocks (cached while it is online). */
  async blocksOf(key: string): Promise<ReadonlySet<string>> {
    const online = this.#online.get(key);
    if (online !== undefined) return online.blocks;
    return new Set(await this.store.blocksOf(key));
  }

  /** The room's state, loading it from the store; undefined when it does not exist. */
  async room(key: string): Promise<RoomState | undefined> {
    const cached = this.#rooms.get(key);
    if (cached !== undefined) return cached;
    const record = await this.store.getRoom(key);
    if (record === null) return undefined;
    return this.#cacheRoom(record, await this.store.roomMembers(key));
  }

  /** The cached room state, if loaded. */
  cachedRoom(key: string): RoomState | undefined {
    return this.#rooms.get(key);
  }

  /**
   * Resolves a room named in a request.
   *
   * @throws {CommandError} `bad_name` or `unknown_room`.
   */
  async requireRoom(name: string): Promise<RoomState> {
    const key = roomKeyOf(name);
    const room = await this.room(key);
    if (room === undefined) throw new CommandError("unknown_room", `no room named "${name}"`);
    return room;
  }

  /** Creates the room if it does not exist; returns its state. */
  async ensureRoom(name: string): Promise<RoomState> {
    const key = roomKeyOf(name);
    const existing = await this.room(key);
    if (existing !== undefined) return existing;
    const record: RoomRecord = {
      key,
      name: name.replace(/^#/, ""),
      topic: "",
      topicBy: "",
      createdAt: this.now(),
    };
    await this.store.createRoom(record);
    return (await this.room(key))!;
  }

  /** Adds an account to a room, subscribing its sessions. False when already a member. */
  async addMember(room: RoomState, accountKey: string): Promise<boolean> {
    const added = await this.store.addMember(room.key, accountKey);
    room.members.add(accountKey);
    const online = this.#online.get(accountKey);
    if (online !== undefined) {
      online.rooms.add(room.key);
      for (const session of online.sessions) {
        this.broker.subscribe(roomSubject(room.key), session);
      }
    }
    return added;
  }

  /** Removes an account from a room, unsubscribing its sessions. False when not a member. */
  async removeMember(room: RoomState, accountKey: string): Promise<boolean> {
    const removed = await this.store.removeMember(room.key, accountKey);
    room.members.delete(accountKey);
    const online = this.#online.get(accountKey);
    if (online !== undefined) {
      online.rooms.delete(room.key);
      for (const session of online.sessions) {
        this.broker.unsubscribe(roomSubject(room.key), session);
      }
    }
    return removed;
  }

  /**
   * Logs a client in, registering an unknown nick in password mode unless `register` is
   * false (then `no_account`).
   *
   * @throws {CommandError} `bad_name`, `bad_password`, `wrong_password`, `locked`,
   * `nick_in_use`, `no_account`.
   */
  login(
    port: SessionPort,
    nick: string,
    password: string | undefined,
    { register = true }: { register?: boolean } = {},
  ): Promise<LoginResult> {
    const problem = nameProblem(nick);
    if (problem !== null) {
      return Promise.reject(new CommandError("bad_name", `bad nick "${nick}": ${problem}`));
    }
    const key = nameKey(nick);
    return this.#withAccountLock(key, async () => {
      if (
        !register && this.config.auth === "password" && await this.store.getAccount(key) === null
      ) {
        throw new CommandError("no_account", `there is no account named ${nick} here`);
      }
      return await this.#guardNewNick(key, nick, () => this.#login(port, key, nick, password));
    }).then(
      (result) => {
        this.metrics.counters.logins++;
        return result;
      },
      (err) => {
        if (err instanceof CommandError && AUTH_FAILURES.has(err.code)) {
          this.metrics.counters.authFailures++;
        }
        throw err;
      },
    );
  }

  /** Calls `listener` whenever a session ends, once it is out of its account. */
  onSessionEnded(listener: (session: Session) => void): void {
    this.#sessionEndListeners.push(listener);
  }

  /** Ends a session (logout, drop, timeout): presence and contact notices when it was the last. */
  endSession(session: Session): Promise<void> {
    if (session.ended) return Promise.resolve();
    session.ended = true;
    const account = session.account;
    return this.#withAccountLock(account.key, async () => {
      account.sessions.delete(session);
      for (const listener of this.#sessionEndListeners) {
        try {
          listener(session);
        } catch (err) {
          log.error("a session-end listener failed: {err}", { err });
        }
      }
      this.#unsubscribeAll(session);
      const ts = this.now();
      try {
        await this.store.recordLogout(session.loginId, ts);
      } catch (err) {
        log.error("recording logout of {nick} failed: {err}", { nick: account.nick, err });
      }
      if (account.sessions.size > 0) return;
      this.#online.delete(account.key);
      this.#forgetBlocks(account.key, account.blocks);
      // While draining everyone is leaving: n sessions telling n others is n² for nothing.
      if (!account.hidden && !this.draining) await this.announcePresence(account, false);
    });
  }

  /**
   * Tells others that an account went online or offline (not those it blocks nor those
   * that block it): every session at the end of the turn, with the other changes of that
   * turn ({@linkcode PresenceBatcher}); its contacts' watchers at once.
   */
  async announcePresence(account: OnlineAccount, online: boolean): Promise<void> {
    const blockedBy = this.#blockedBy.get(account.key);
    this.#presence.announce(
      { key: account.key, nick: account.nick, blocks: account.blocks, blockedBy },
      online,
      this.now(),
    );
    const watchers = await this.store.watchersOf(account.key);
    for (const watcher of watchers) {
      if (!this.#online.has(watcher) || this.#blockedBetween(account, watcher)) continue;
      await this.broker.publish(userSubject(watcher), {
        event: { type: "contact", nick: account.nick, online },
      });
    }
  }

  /**
   * Sends the direct messages held for a new session's account, up to `throughId`, paced
   * by its connection; marks delivered (and tells their senders) those written. Resolves
   * once all are written or the session ended. See `held_delivery.ts`.
   */
  async deliverPending(session: Session, throughId: number): Promise<void> {
    const port = session.port;
    try {
      await deliverHeld({
        get nick() {
          return session.account.nick;
        },
        get ended() {
          return session.ended;
        },
        acks: session.acksHeld,
        send: (frame) => session.sendEncoded(frame),
        ...(port.outbound && port.whenWritten
          ? { outbound: () => port.outbound!(), whenWritten: (end) => port.whenWritten!(end) }
          : {}),
      }, {
        store: this.store,
        broker: this.broker,
        accountKey: session.account.key,
        throughId,
        ...(session.held !== null ? { window: session.held } : {}),
        maxQueuedBytes: Math.max(1, Math.floor(this.config.maxQueueBytes / 4)),
        now: this.now,
      });
    } finally {
      await session.held?.settled;
      session.held = null;
    }
  }

  /**
   * Counts as delivered the held direct messages among `ids` that the session was sent
   * and its client now acknowledges; tells their senders. Resolves to how many were
   * newly delivered (others were already, or are not held messages of this session).
   */
  acknowledgeHeld(session: Session, ids: readonly number[]): Promise<number> {
    const messages = session.held?.acknowledge(ids) ?? [];
    return confirmDelivered(messages, session.account.nick, this);
  }

  /**
   * Runs `send`, which stores a direct message to `toKey` and publishes it, tracked
   * until it is done: a session logging in meanwhile may get that message both live and
   * as held, and holds its {@linkcode HeldWindow} open until then.
   */
  sendDirect<T>(toKey: string, send: () => Promise<T>): Promise<T> {
    const promise = send();
    let sending = this.#sendingDirect.get(toKey);
    if (sending === undefined) this.#sendingDirect.set(toKey, sending = new Set());
    sending.add(promise);
    const done = () => {
      sending.delete(promise);
      if (sending.size === 0 && this.#sendingDirect.get(toKey) === sending) {
        this.#sendingDirect.delete(toKey);
      }
    };
    promise.then(done, done);
    return promise;
  }

  /**
   * Runs `login`; when `key` has no account yet (a registration), only if its nick is
   * not reserved and reads like no registered one.
   */
  async #guardNewNick<T>(key: string, nick: string, login: () => Promise<T>): Promise<T> {
    if (await this.store.getAccount(key) !== null) return await login();
    const problem = await this.#skeletons.claim(key, nick);
    if (problem !== null) throw new CommandError("bad_name", `the nick "${nick}" ${problem}`);
    try {
      return await login();
    } finally {
      await this.#skeletons.settle(key);
    }
  }

  async #login(
    port: SessionPort,
    key: string,
    nick: string,
    password: string | undefined,
  ): Promise<LoginResult> {
    let registered = false;
    if (this.config.auth === "password") {
      registered = await this.#checkPassword(port.ip, key, nick, password);
    } else {
      if (this.#online.has(key)) {
        throw new CommandError("nick_in_use", `the nick "${nick}" is in use`);
      }
      const existing = await this.store.getAccount(key);
      if (existing !== null && existing.passwordHash !== null) {
        // Nick-only logins cannot check a password: an account that has one stays closed.
        log.warn("refused a nick-only login as {nick} from {remote}: the account has a password", {
          nick: existing.nick,
          remote: port.remote,
        });
        throw new CommandError(
          "bad_password",
          `${existing.nick} has a password and this server (--auth none) cannot check it`,
        );
      }
      if (existing === null) {
        this.#admitRegistration(port.ip);
        await this.#createAccount(key, nick, null);
        registered = true;
      }
    }
    // Checked once authenticated: a stranger learns nothing about the account's sessions.
    const max = this.config.maxSessionsPerAccount;
    const sessions = this.#online.get(key)?.sessions.size ?? 0;
    if (max > 0 && sessions >= max) {
      throw new CommandError(
        "too_many_sessions",
        `${nick} already has ${sessions} sessions, the most allowed`,
      );
    }
    let account = this.#online.get(key);
    const first = account === undefined;
    if (account === undefined) {
      const record = await this.store.getAccount(key);
      account = {
        key,
        nick: record?.nick ?? nick,
        sessions: new Set(),
        blocks: new Set(await this.store.blocksOf(key)),
        rooms: new Set(await this.store.accountRooms(key)),
        hidden: false,
      };
      for (const roomKey of account.rooms) await this.room(roomKey);
      this.#online.set(key, account);
      this.#noteBlocks(key, account.blocks);
    }
    const session = new Session(account, port);
    // Open from the subscription on: a held message may reach it live before it is read.
    const held = session.held = new HeldWindow(key);
    account.sessions.add(session);
    this.broker.subscribe(userSubject(key), session);
    this.broker.subscribe(ALL_SUBJECT, session);
    for (const roomKey of account.rooms) this.broker.subscribe(roomSubject(roomKey), session);
    // Subscribed first: anything stored after `lastId` reaches this session live.
    const lastId = await this.store.lastMessageId();
    held.through(lastId);
    // Direct messages stored by now (ids up to lastId) and not yet published may still
    // come live; those stored later have larger ids.
    held.settled = Promise.allSettled([...this.#sendingDirect.get(key) ?? []]);
    session.loginId = await this.#recordLogin(key);
    log.info("{nick} logged in from {remote}{registered}", {
      nick: account.nick,
      remote: port.remote,
      registered: registered ? " (registered)" : "",
    });
    if (first) await this.announcePresence(account, true);
    else this.#tellOtherSessions(session);
    const pending = await this.store.countUndelivered(key, lastId);
    const rooms: string[] = [];
    for (const roomKey of account.rooms) rooms.push(this.#rooms.get(roomKey)?.name ?? roomKey);
    return {
      session,
      reply: { nick: account.nick, rooms, lastId, pending },
      heldThrough: lastId,
    };
  }

  /** Tells an account's other sessions that `session` (a new one) logged in, and from where. */
  #tellOtherSessions(session: Session): void {
    const { account, port } = session;
    const text = `${account.nick} logged in again from ${port.ip} ` +
      `(${account.sessions.size} sessions now)`;
    for (const other of account.sessions) {
      if (other !== session) other.send({ type: "notice", code: "session_login", text });
    }
  }

  /**
   * Records a login in the store's session log; on a full disk the login goes on
   * unrecorded (id 0, whose logout records nothing) rather than fail.
   */
  async #recordLogin(key: string): Promise<number> {
    try {
      return await this.store.recordLogin(key, this.now());
    } catch (err) {
      if (!isDiskFull(err)) throw err;
      log.warn("the disk is full: the login of {key} is not recorded", { key });
      return 0;
    }
  }

  /** Verifies or registers; returns true when the account was just registered. */
  async #checkPassword(
    ip: string,
    key: string,
    nick: string,
    password: string | undefined,
  ): Promise<boolean> {
    const now = this.now();
    const throttled = this.#loginFailures.waitSeconds(ip, now);
    if (throttled > 0) {
      const seconds = Math.ceil(throttled);
      throw new CommandError(
        "rate_limited",
        `too many failed logins from ${ip}; try again in ${seconds} s`,
        seconds,
      );
    }
    const lockedMs = this.#lockout.remainingMs(key, ip, now);
    if (lockedMs > 0) {
      const seconds = Math.ceil(lockedMs / 1000);
      throw new CommandError(
        "locked",
        `${nick} is blocked after too many failed logins; try again in ${seconds} s`,
        seconds,
      );
    }
    if (password === undefined || password.length === 0) {
      throw new CommandError("bad_password", "a password is required");
    }
    const account = await this.store.getAccount(key);
    if (account !== null && account.passwordHash === null) {
      // Made without a password (--auth none): whoever logs in first must not claim it.
      log.warn(
        "refused a password login as {nick} from {remote}: the account has no password " +
          "(made under --auth none); set one with --credentials",
        { nick: account.nick, remote: ip },
      );
      throw new CommandError(
        "bad_password",
        `${account.nick} was made without a password; the server's operator must set one`,
      );
    }
    if (account === null) {
      if (password.length < MIN_PASSWORD_LENGTH) {
        throw new CommandError(
          "bad_password",
          `a new account needs a password of at least ${MIN_PASSWORD_LENGTH} characters`,
        );
      }
      this.#admitRegistration(ip);
      const cost = this.config.passwordCost;
      const hash = await this.#hashing(ip, () => hashPassword(password, { cost }));
      await this.#createAccount(key, nick, hash);
      this.#lockout.succeed(key, ip);
      return true;
    }
    const stored = account.passwordHash!;
    if (await this.#hashing(ip, () => verifyPassword(password, stored))) {
      this.#lockout.succeed(key, ip);
      return false;
    }
    this.#loginFailures.take(ip, now);
    const locked = this.#lockout.fail(key, ip, this.now());
    log.warn("wrong password for {nick} from {ip}{locked}", {
      nick: account.nick,
      ip,
      locked: locked ? ": locked" : "",
    });
    if (locked) {
      const seconds = this.config.blockDurationSec;
      throw new CommandError(
        "locked",
        `wrong password; ${account.nick} is now blocked for ${seconds} s`,
        seconds,
      );
    }
    throw new CommandError("wrong_password", "wrong password");
  }

  /**
   * Takes a registration from `ip`'s budget and the server's.
   *
   * @throws {CommandError} `rate_limited` when either is spent.
   */
  #admitRegistration(ip: string): void {
    const now = this.now();
    const fromIp = this.#registrationsPerIp.waitSeconds(ip, now);
    const inAll = this.#registrations.waitSeconds(1, now);
    if (fromIp > 0 || inAll > 0) {
      const seconds = Math.ceil(Math.max(fromIp, inAll));
      log.warn("refused a registration from {ip}: too many new accounts {where}", {
        ip,
        where: fromIp > 0 ? "from this address" : "on the server",
      });
      throw new CommandError(
        "rate_limited",
        `too many new accounts ${
          fromIp > 0 ? `from ${ip}` : "on this server"
        }; try again in ${seconds} s`,
        seconds,
      );
    }
    this.#registrationsPerIp.take(ip, now);
    this.#registrations.take(1, now);
  }

  /** Runs a password hash through {@linkcode ChatHub.passwordHashes}, in `ip`'s turn. */
  async #hashing<T>(ip: string, job: () => Promise<T>): Promise<T> {
    try {
      return await this.passwordHashes.run(ip, job);
    } catch (err) {
      if (!(err instanceof HashQueueFullError)) throw err;
      this.metrics.counters.passwordHashesRefused++;
      throw new CommandError(
        "rate_limited",
        "the server is busy checking passwords; try again in 1 s",
        1,
      );
    }
  }

  async #createAccount(key: string, nick: string, passwordHash: string | null): Promise<void> {
    const created = await this.store.createAccount({
      key,
      nick,
      passwordHash,
      createdAt: this.now(),
    });
    if (!created) return;
    this.#nicks.set(key, nick);
    const lobby = await this.ensureRoom(DEFAULT_ROOM);
    await this.store.addMember(lobby.key, key);
    lobby.members.add(key);
  }

  #cacheRoom(record: RoomRecord, members: string[]): RoomState {
    const existing = this.#rooms.get(record.key);
    if (existing !== undefined) return existing;
    const state: RoomState = {
      key: record.key,
      name: record.name,
      topic: record.topic,
      topicBy: record.topicBy,
      members: new Set(members),
    };
    this.#rooms.set(record.key, state);
    return state;
  }

  /** Whether the online `account` and the online account `otherKey` block each other either way. */
  #blockedBetween(account: OnlineAccount, otherKey: string): boolean {
    return account.blocks.has(otherKey) || (this.#blockedBy.get(account.key)?.has(otherKey) ??
      false);
  }

  /** Records in the reverse index that the online account `key` blocks `targets`. */
  #noteBlocks(key: string, targets: Iterable<string>): void {
    for (const target of targets) {
      let by = this.#blockedBy.get(target);
      if (by === undefined) this.#blockedBy.set(target, by = new Set());
      by.add(key);
    }
  }

  /** Removes from the reverse index that `key` blocks `targets`. */
  #forgetBlocks(key: string, targets: Iterable<string>): void {
    for (const target of targets) {
      const by = this.#blockedBy.get(target);
      by?.delete(key);
      if (by?.size === 0) this.#blockedBy.delete(target);
    }
  }

  /**
   * Tells each of two online accounts that the other (unless hidden) is `online`: a
   * `presence` notice, and a `contact` one when it has the other as a contact.
   */
  async #presenceBetween(a: OnlineAccount, b: OnlineAccount, online: boolean): Promise<void> {
    const ts = this.now();
    for (const [to, about] of [[a, b], [b, a]]) {
      if (about.hidden) continue;
      await this.broker.publish(userSubject(to.key), {
        event: { type: "presence", nick: about.nick, online, ts },
      });
      if ((await this.store.watchersOf(about.key)).includes(to.key)) {
        await this.broker.publish(userSubject(to.key), {
          event: { type: "contact", nick: about.nick, online },
        });
      }
    }
  }

  #unsubscribeAll(session: Session): void {
    this.broker.unsubscribe(userSubject(session.account.key), session);
    this.broker.unsubscribe(ALL_SUBJECT, session);
    for (const roomKey of session.account.rooms) {
      this.broker.unsubscribe(roomSubject(roomKey), session);
    }
  }

  /** Runs `fn` after every earlier login/logout of the same account has finished. */
  #withAccountLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.#accountLocks.get(key) ?? Promise.resolve();
    const next = previous.then(fn, fn);
    const settled = next.then(() => {}, () => {});
    this.#accountLocks.set(key, settled);
    settled.then(() => {
      if (this.#accountLocks.get(key) === settled) this.#accountLocks.delete(key);
    });
    return next;
  }
}

/**
 * The key of a room name (a leading `#` is allowed and ignored).
 *
 * @throws {CommandError} `bad_name`.
 */
export function roomKeyOf(name: string): string {
  const bare = name.startsWith("#") ? name.slice(1) : name;
  const problem = nameProblem(bare);
  if (problem !== null) throw new CommandError("bad_name", `bad room name "${name}": ${problem}`);
  return nameKey(bare);
}
