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
import { MAX_AWAY_LENGTH, MIN_PASSWORD_LENGTH, nameKey, nameProblem } from "../protocol/names.ts";
import type { NoticeCode, ReplyMap } from "../protocol/replies.ts";
import type { OutboundProgress } from "../transport/buffer_pool.ts";
import {
  ALL_SUBJECT,
  type BatchFilter,
  type Broker,
  type Publication,
  roomSubject,
  type Subscriber,
  userSubject,
} from "./broker.ts";
import { type ClusterBus, LocalClusterBus } from "./cluster_bus.ts";
import { ClusterPresence, type PresenceChange } from "./cluster_presence.ts";
import { RoomCache } from "./room_cache.ts";
import { LoginLimits } from "./cluster_limits.ts";
import { MISSED_HEARTBEATS, type ServerConfig } from "./config.ts";
import { isDiskFull } from "./disk_space.ts";
import { CommandError } from "./errors.ts";
import { HashQueue, HashQueueFullError } from "./hash_queue.ts";
import { ServerMetrics } from "./metrics.ts";
import { hashPassword, verifyPassword } from "./password.ts";
import { PresenceBatcher } from "./presence.ts";
import { confirmDelivered, deliverHeld, HeldWindow } from "./held_delivery.ts";
import { NickSkeletons } from "./nick_skeletons.ts";
import { SessionTokens } from "./session_tokens.ts";
import { keySet, sharedKeySet, withKey, withoutKey } from "./key_set.ts";
import type { RoomRecord, Store } from "./store.ts";
import { wholeMs } from "./whole_ms.ts";

const log = getLogger(["chat", "server", "hub"]);

/** Login refusals counted as authentication failures. */
const AUTH_FAILURES: ReadonlySet<string> = new Set([
  "wrong_password",
  "bad_token",
  "locked",
  "rate_limited",
]);

/** The sessions of an account that has none yet (shared). */
const NO_SESSIONS: readonly Session[] = Object.freeze([]);

/** `sessions` without `session`, as a new array of just the rest (see {@linkcode OnlineAccount.sessions}). */
function withoutSession(sessions: readonly Session[], session: Session): readonly Session[] {
  const at = sessions.indexOf(session);
  if (at < 0) return sessions;
  if (sessions.length === 1) return NO_SESSIONS;
  return sessions.slice(0, at).concat(sessions.slice(at + 1));
}

/** The room every account joins at its first login. */
export const DEFAULT_ROOM = "lobby";

/** How a session reaches its client; implemented by the connection layer. */
export interface SessionPort {
  /** The client's address and port, for logs. */
  readonly remote: string;
  /** The client's IP address, for per-address limits. */
  readonly ip: string;
  /**
   * Queues encoded frames (`count` of them, default 1); false when refused (the port
   * then cuts the client off). `publications[first .. first + count)`, when given, are
   * the publications the frames are of (see {@linkcode Subscriber.sendEncoded}): a port
   * that reads events takes theirs instead of decoding the frames.
   */
  send(
    frame: Uint8Array,
    count?: number,
    publications?: readonly Publication[],
    first?: number,
  ): boolean;
  /**
   * Whether it reads the publications handed with `send`, never the frames (see
   * {@linkcode Subscriber.readsEvents}): it is then handed empty frames when a fan-out
   * encoded none. Optional: default false.
   */
  readonly readsEvents?: boolean;
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
  /**
   * Its sessions on this node, in login order: replaced, never changed in place. A few
   * at most (`--max-sessions`): an array of just their number (made by `concat` and
   * `slice`: `push`, spread and `filter` make room for 17), lighter than a set for the
   * many accounts online at once.
   */
  sessions: readonly Session[];
  /**
   * Keys of the accounts it blocks: replaced, never changed in place (see
   * {@linkcode withKey}), the shared empty set for most accounts.
   */
  blocks: ReadonlySet<string>;
  /**
   * Keys of the rooms it is a member of: replaced, never changed in place (see
   * {@linkcode sharedKeySet}), one set shared by the accounts in the lobby alone.
   */
  rooms: ReadonlySet<string>;
  /**
   * Hidden (`/hide`): it appears offline to everyone (presence, lists, contacts) and its
   * reads send no receipts.
   */
  hidden: boolean;
  /**
   * Its away message (a presence status: online, but not at the keyboard), set on this
   * node; null when not away. Ends with its last session.
   */
  away: string | null;
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

/**
 * One logged-in client session: a subscriber that filters what its account blocks.
 */
export class Session implements Subscriber {
  /** Unique in the cluster: the node's id and a number (`node:s7`). */
  readonly id: string;
  /** The account it belongs to. */
  readonly account: OnlineAccount;
  /** The way to its client. */
  readonly port: SessionPort;
  /** Login-history record id. */
  loginId = 0;
  /** When it last sent a command (ms, performance clock). */
  lastCommandAt: number = wholeMs(performance.now());
  /** Whether it has ended. */
  ended = false;
  /**
   * While a held direct message may reach it both live and as held: those it was sent,
   * so as not to send one twice.
   */
  held: HeldWindow | null = null;
  /** Whether its client acknowledges held direct messages (`login` with `ack: true`). */
  acksHeld = false;

  /** Creates a session with the id `id` (see {@linkcode ChatHub.newSessionId}). */
  constructor(account: OnlineAccount, port: SessionPort, id: string) {
    this.id = id;
    this.account = account;
    this.port = port;
  }

  /** Its account's key. */
  get accountKey(): string {
    return this.account.key;
  }

  /** Whether its port reads the publications' events, never their frames (IRC's). */
  get readsEvents(): boolean {
    return this.port.readsEvents === true;
  }

  /** Whether a publication reaches this session (not ended, not filtered, not blocked). */
  accepts(publication: Publication): boolean {
    if (this.ended || publication.exceptSession === this.id) return false;
    if (publication.except !== undefined && publication.except.has(this.account.key)) return false;
    if (publication.from !== undefined && this.account.blocks.has(publication.from)) return false;
    return this.held === null || this.held.admit(publication.event);
  }

  /**
   * Whether it accepts every publication of a batch at once: not ended, no held window
   * open (it must see each direct message), not excepted, blocking none of the senders.
   */
  acceptsAll(filter: BatchFilter): boolean {
    if (this.ended || this.held !== null || filter.exceptSessions.has(this.id)) return false;
    const account = this.account;
    if (filter.except.has(account.key)) return false;
    const blocks = account.blocks;
    if (blocks.size === 0 || filter.from.size === 0) return true;
    for (const from of filter.from) if (blocks.has(from)) return false;
    return true;
  }

  /**
   * Queues encoded frames (`count` of them) unless the session has ended; the
   * publications they are of, when given, go with them (see {@linkcode SessionPort.send}).
   */
  sendEncoded(
    frames: Uint8Array,
    count = 1,
    publications?: readonly Publication[],
    first?: number,
  ): boolean {
    return !this.ended && this.port.send(frames, count, publications, first);
  }

  /**
   * Sends one event to this session only: its frame, or to a port that reads events
   * ({@linkcode SessionPort.readsEvents}) the event alone, no frame encoded.
   */
  send(event: ServerMessage): boolean {
    if (this.ended) return false;
    if (this.port.readsEvents === true) return this.port.send(NO_FRAMES, 1, [{ event }], 0);
    return this.port.send(encodeFrame(event));
  }
}

/** The frames {@linkcode Session.send} hands a port that reads events: none. */
const NO_FRAMES: Uint8Array = new Uint8Array(0);

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
  /** Node-to-node messages (a cluster's; alone on one server). */
  readonly bus: ClusterBus;
  /** Who is online on every node (on one server: here). */
  readonly presence: ClusterPresence;
  /** Settings. */
  readonly config: ServerConfig;
  /** Counters and latencies, for `/metrics`. */
  readonly metrics: ServerMetrics;
  /** Set when the server drains: logouts are no longer announced. */
  draining = false;
  /** Wall clock (ms since the epoch); replaceable in tests. */
  now: () => number = Date.now;
  readonly #online = new Map<string, OnlineAccount>();
  /** Display nicks of accounts looked up while offline (online ones: the presence entry's). */
  readonly #nicks = new Map<string, string>();
  #sessionCounter = 0;
  /** Rooms in memory, coherent with the other nodes. */
  readonly #rooms: RoomCache;
  /** Lockout, failed-login throttle, registration budgets: shared by the nodes. */
  readonly #limits: LoginLimits;
  /** Password hashes run through it: bounded concurrency, bounded and fair waiting. */
  readonly passwordHashes: HashQueue;
  readonly #accountLocks = new Map<string, Promise<unknown>>();
  readonly #sessionEndListeners: ((session: Session) => void)[] = [];
  /** Presence notices to this node's sessions, batched. */
  readonly #presenceNotices: PresenceBatcher;
  /** Per recipient account key: direct messages being stored and published. */
  readonly #sendingDirect = new Map<string, Set<Promise<unknown>>>();
  /** Reserved and look-alike nicks refused at registration (server/nick_skeletons.ts). */
  readonly #skeletons: NickSkeletons;
  /** Session tokens ("remember me"): server/session_tokens.ts. */
  readonly tokens: SessionTokens;

  /**
   * Creates the hub; {@linkcode start} it. Nodes of a cluster share `store` and each
   * has its `broker` and `bus` onto the cluster's engines.
   */
  constructor(
    store: Store,
    broker: Broker,
    config: ServerConfig,
    metrics = new ServerMetrics(),
    bus: ClusterBus = new LocalClusterBus(),
  ) {
    this.metrics = metrics;
    this.store = store;
    this.broker = broker;
    this.bus = bus;
    this.config = config;
    this.#presenceNotices = new PresenceBatcher(broker, ALL_SUBJECT);
    this.presence = new ClusterPresence(bus, config.clusterHeartbeatMs, {
      changed: (change) => this.#presenceChanged(change),
      blocked: (key, target, blocked) => this.#remoteBlock(key, target, blocked),
      hidden: (key, hidden) => this.#remoteHide(key, hidden),
      away: (key, away) => this.#remoteAway(key, away),
    });
    // Changes wait for the nodes this one hears from; one that does not answer is taken
    // for dead within the heartbeats' TTL anyway.
    const applied = {
      peers: () => this.presence.nodes,
      timeoutMs: MISSED_HEARTBEATS * config.clusterHeartbeatMs,
    };
    this.#rooms = new RoomCache({
      store,
      broker,
      bus,
      online: (key) => this.#online.get(key),
      applied,
    });
    this.#limits = new LoginLimits(bus, config, () => this.now(), applied);
    this.#skeletons = new NickSkeletons(store);
    this.tokens = new SessionTokens({
      store,
      bus,
      ttlSec: config.tokenTtlSec,
      online: (key) => this.#online.get(key),
      now: () => this.now(),
    });
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

  /** Joins the cluster's presence (on one server: starts its heartbeat timer). */
  async start(): Promise<void> {
    await this.#rooms.start();
    await this.#limits.start();
    await this.tokens.start();
    await this.presence.start();
  }

  /** Stops the hub's own timers (pending presence changes are dropped); the server is stopping. */
  close(): void {
    this.#rooms.close();
    this.#limits.close();
    this.tokens.close();
    this.presence.close();
    this.#presenceNotices.close();
  }

  /** A session id unique in the cluster. */
  newSessionId(): string {
    return `${this.bus.nodeId}:s${++this.#sessionCounter}`;
  }

  /** Every account with a session on this node (see {@linkcode presence} for all nodes). */
  get onlineAccounts(): IterableIterator<OnlineAccount> {
    return this.#online.values();
  }

  /** Number of live sessions. */
  get sessionCount(): number {
    let n = 0;
    for (const account of this.#online.values()) n += account.sessions.length;
    return n;
  }

  /** The account with this key if it has a session on this node. */
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
    if (!this.presence.isVisible(key)) return false;
    return viewer === undefined || !this.presence.blockedBetween(key, viewer);
  }

  /**
   * Whether `viewer` may see the account `key` online or in a recent-logins list: like
   * {@linkcode isVisible}, but for an account that may be offline (its blocks read from
   * the store).
   */
  async mayList(key: string, viewer: string): Promise<boolean> {
    if (this.presence.isHidden(key)) return false;
    if (this.presence.entry(viewer)?.blocks.has(key)) return false;
    return !(await this.blocksOf(key)).has(viewer);
  }

  /**
   * `account` blocks `targetKey`: stored, cached, and each of the two, if they saw each
   * other online, is told the other went offline. False when it was already blocked.
   */
  async block(account: OnlineAccount, targetKey: string): Promise<boolean> {
    if (!await this.store.addBlock(account.key, targetKey)) return false;
    const target = this.presence.entry(targetKey);
    const saw = target !== undefined && !this.presence.blockedBetween(account.key, targetKey);
    account.blocks = withKey(account.blocks, targetKey);
    await this.presence.setBlock(account.key, targetKey, true);
    if (saw) await this.#presenceBetween(account.key, targetKey, false);
    return true;
  }

  /**
   * `account` no longer blocks `targetKey`: stored, cached, and each of the two, if they
   * now see each other online, is told the other is online. False when it was not blocked.
   */
  async unblock(account: OnlineAccount, targetKey: string): Promise<boolean> {
    if (!await this.store.removeBlock(account.key, targetKey)) return false;
    account.blocks = withoutKey(account.blocks, targetKey);
    await this.presence.setBlock(account.key, targetKey, false);
    const target = this.presence.entry(targetKey);
    if (target !== undefined && !this.presence.blockedBetween(account.key, targetKey)) {
      await this.#presenceBetween(account.key, targetKey, true);
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
    const cached = this.presence.entry(key)?.nick ?? this.#nicks.get(key);
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
    const online = this.presence.entry(key);
    if (online !== undefined) return { key, nick: online.nick };
    const account = await this.store.getAccount(key);
    if (account === null) throw new CommandError("unknown_user", `no user named "${nick}"`);
    this.#nicks.set(key, account.nick);
    return { key, nick: account.nick };
  }

  /** Keys the account blocks (cached while it is online on some node). */
  async blocksOf(key: string): Promise<ReadonlySet<string>> {
    const online = this.#online.get(key) ?? this.presence.entry(key);
    if (online !== undefined) return online.blocks;
    return new Set(await this.store.blocksOf(key));
  }

  /** The room's state, loading it from the store; undefined when it does not exist. */
  room(key: string): Promise<RoomState | undefined> {
    return this.#rooms.room(key);
  }

  /** The cached room state, if loaded. */
  cachedRoom(key: string): RoomState | undefined {
    return this.#rooms.cached(key);
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

  /**
   * Adds an account to a room, subscribing its sessions (on every node). False when
   * already a member.
   */
  addMember(room: RoomState, accountKey: string): Promise<boolean> {
    return this.#rooms.addMember(room, accountKey);
  }

  /**
   * Removes an account from a room, unsubscribing its sessions (on every node). False
   * when not a member.
   */
  removeMember(room: RoomState, accountKey: string): Promise<boolean> {
    return this.#rooms.removeMember(room, accountKey);
  }

  /** Sets a room's topic (stored, and cached on every node). */
  setTopic(room: RoomState, topic: string, by: string): Promise<void> {
    return this.#rooms.setTopic(room, topic, by);
  }

  /**
   * Logs a client in, registering an unknown nick in password mode unless `register` is
   * false (then `no_account`). With a session `token` (password mode) it logs in to the
   * token's account instead of checking a password, and never registers.
   *
   * @throws {CommandError} `bad_name`, `bad_password`, `wrong_password`, `bad_token`,
   * `locked`, `nick_in_use`, `no_account`.
   */
  login(
    port: SessionPort,
    nick: string,
    password: string | undefined,
    { register = true, token, authenticated = false }: {
      register?: boolean;
      token?: string;
      /** The password was checked already by {@linkcode authenticate} (SASL): not again. */
      authenticated?: boolean;
    } = {},
  ): Promise<LoginResult> {
    const problem = nameProblem(nick);
    if (problem !== null) {
      return Promise.reject(new CommandError("bad_name", `bad nick "${nick}": ${problem}`));
    }
    const key = nameKey(nick);
    return this.#withAccountLock(key, async () => {
      if (token !== undefined && this.config.auth === "password") {
        return await this.#login(port, key, nick, { token });
      }
      if (
        !register && this.config.auth === "password" && await this.store.getAccount(key) === null
      ) {
        throw new CommandError("no_account", `there is no account named ${nick} here`);
      }
      return await this.#guardNewNick(
        key,
        nick,
        () => this.#login(port, key, nick, { password, authenticated }),
      );
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

  /**
   * Checks a password as a login does, without starting a session (IRC's SASL, before
   * the client registers): the same lockout, throttles, registration of an unknown nick
   * (unless `register` is false) and failure counters. Resolves to the account's display
   * nick; the later {@linkcode login} passes `authenticated` so as not to check again.
   *
   * @throws {CommandError} as {@linkcode login}; `bad_password` under `--auth none`.
   */
  authenticate(
    ip: string,
    nick: string,
    password: string,
    { register = true }: { register?: boolean } = {},
  ): Promise<string> {
    const problem = nameProblem(nick);
    if (problem !== null) {
      return Promise.reject(new CommandError("bad_name", `bad nick "${nick}": ${problem}`));
    }
    if (this.config.auth !== "password") {
      return Promise.reject(
        new CommandError("bad_password", "this server takes no passwords (--auth none)"),
      );
    }
    const key = nameKey(nick);
    return this.#withAccountLock(key, async () => {
      if (!register && await this.store.getAccount(key) === null) {
        throw new CommandError("no_account", `there is no account named ${nick} here`);
      }
      await this.#guardNewNick(key, nick, () => this.#checkPassword(ip, key, nick, password));
      return await this.displayNick(key);
    }).catch((err) => {
      if (err instanceof CommandError && AUTH_FAILURES.has(err.code)) {
        this.metrics.counters.authFailures++;
      }
      throw err;
    });
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
      account.sessions = withoutSession(account.sessions, session);
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
      if (account.sessions.length === 0) this.#online.delete(account.key);
      await this.#shareSessions(account);
    });
  }

  /**
   * An account became visible on some node, or is visible on none any more: tells this
   * node's sessions (not those it blocks nor those that block it) at the end of the turn,
   * with the other changes of that turn ({@linkcode PresenceBatcher}); its contacts'
   * watchers here at once. Every node does so for its own sessions.
   */
  async #presenceChanged(change: PresenceChange): Promise<void> {
    // While draining everyone is leaving: n sessions telling n others is n² for nothing.
    if (!change.online && this.draining) return;
    const watching = this.store.watchersOf(change.key);
    // Many online: telling everyone of everyone is n² (hundreds of KB each in a storm).
    const targeted = this.presence.size > this.config.presenceAllMax;
    this.#presenceNotices.announce(
      change,
      change.online,
      this.now(),
      targeted ? this.#presenceTargets(change.key, watching) : undefined,
    );
    const watchers = await watching;
    for (const watcher of watchers) {
      if (!this.#online.has(watcher)) continue;
      if (change.blocks.has(watcher) || change.blockedBy.has(watcher)) continue;
      await this.broker.publishLocal(userSubject(watcher), {
        event: { type: "contact", nick: change.nick, online: change.online },
      });
    }
  }

  /**
   * Whom a presence change of `key` is told to above `--presence-all-max`: the accounts
   * online here that share a room of at most that many members with it, and those that
   * have it as a contact (`watching`). A bigger room is a crowd, like the whole server:
   * its members ask (`/who`, `/members`) instead of hearing of every arrival.
   */
  async #presenceTargets(key: string, watching: Promise<string[]>): Promise<Set<string>> {
    const targets = new Set<string>();
    const max = this.config.presenceAllMax;
    const rooms = this.#online.get(key)?.rooms ?? await this.store.accountRooms(key);
    for (const roomKey of rooms) {
      // Not in memory here: no member of it is online here.
      const room = this.#rooms.cached(roomKey);
      if (room === undefined || room.members.size > max) continue;
      for (const member of room.members) if (this.#online.has(member)) targets.add(member);
    }
    for (const watcher of await watching) if (this.#online.has(watcher)) targets.add(watcher);
    targets.delete(key);
    return targets;
  }

  /**
   * Sends the direct messages held for a new session's account, up to `throughId`, paced
   * by its connection; marks delivered (and tells their senders) those written. Resolves
   * once all are written or the session ended. See `held_delivery.ts`.
   */
  async deliverPending(session: Session, throughId: number): Promise<void> {
    const port = session.port;
    try {
      if (throughId <= 0) return;
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
    secret: { password?: string | undefined; token?: string; authenticated?: boolean },
  ): Promise<LoginResult> {
    let registered = false;
    /** The login's record, started early when the login registers (see below). */
    let recording: Promise<number> | undefined;
    if (this.config.auth === "password" && secret.token !== undefined) {
      await this.#checkToken(port.ip, key, nick, secret.token);
    } else if (this.config.auth === "password") {
      if (secret.authenticated !== true) {
        registered = await this.#checkPassword(port.ip, key, nick, secret.password);
      }
    } else {
      if (this.presence.isOnline(key)) {
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
        await this.#admitRegistration(port.ip);
        // Recorded with the account's creation: both commits share one sync of the store,
        // where one after the other would wait for two (a login storm of new nicks).
        recording = this.#recordLogin(key);
        recording.catch(() => {}); // awaited below, or closed if the login fails
        try {
          await this.#createAccount(key, nick, null);
        } catch (err) {
          this.#closeRecord(recording);
          throw err;
        }
        registered = true;
      }
    }
    try {
      return await this.#startSession(port, key, nick, registered, recording);
    } catch (err) {
      if (recording !== undefined) this.#closeRecord(recording);
      throw err;
    }
  }

  /**
   * Ends a login's record at once: the login failed after it was recorded. Logged, not
   * thrown: the login's own error is the one to report.
   */
  #closeRecord(recording: Promise<number>): void {
    recording.then((id) => id > 0 ? this.store.recordLogout(id, this.now()) : undefined).catch(
      (err) => log.error("closing the record of a failed login failed: {err}", { err }),
    );
  }

  /**
   * The rest of a login, once authenticated (and registered): the session, its
   * subscriptions, the login's record (`recording`, when started already) and presence.
   */
  async #startSession(
    port: SessionPort,
    key: string,
    nick: string,
    registered: boolean,
    recording: Promise<number> | undefined,
  ): Promise<LoginResult> {
    // Checked once authenticated: a stranger learns nothing about the account's sessions.
    const max = this.config.maxSessionsPerAccount;
    const sessions = this.presence.sessionCount(key);
    if (max > 0 && sessions >= max) {
      throw new CommandError(
        "too_many_sessions",
        `${nick} already has ${sessions} sessions, the most allowed`,
      );
    }
    let account = this.#online.get(key);
    if (account === undefined) {
      const record = await this.store.getAccount(key);
      account = {
        key,
        nick: record?.nick ?? nick,
        sessions: NO_SESSIONS,
        blocks: keySet(await this.store.blocksOf(key)),
        rooms: sharedKeySet(await this.store.accountRooms(key)),
        // Hidden on another node: hidden here too.
        hidden: this.presence.isHidden(key),
        away: null,
      };
      for (const roomKey of account.rooms) await this.room(roomKey);
      this.#online.set(key, account);
    }
    const session = new Session(account, port, this.newSessionId());
    // Open from the subscription on: a held message may reach it live before it is read.
    const held = session.held = new HeldWindow(key);
    account.sessions = account.sessions.concat(session);
    const subscribed = [
      this.broker.subscribe(userSubject(key), session),
      this.broker.subscribe(ALL_SUBJECT, session),
    ];
    for (const roomKey of account.rooms) {
      subscribed.push(this.broker.subscribe(roomSubject(roomKey), session));
    }
    // Subscribed (and confirmed) first: anything stored after `lastId` reaches this session live.
    await Promise.all(subscribed);
    // The login's record first, then the read: both wait for the same sync of the store
    // (a login in a storm otherwise waits for one sync after the other).
    const recorded = recording ?? this.#recordLogin(key);
    recorded.catch(() => {}); // awaited below
    const lastId = await this.store.lastMessageId();
    held.through(lastId);
    // Direct messages stored by now (ids up to lastId) and not yet published may still
    // come live; those stored later have larger ids.
    held.settled = Promise.allSettled([...this.#sendingDirect.get(key) ?? []]);
    session.loginId = await recorded;
    log.info("{nick} logged in from {remote}{registered}", {
      nick: account.nick,
      remote: port.remote,
      registered: registered ? " (registered)" : "",
    });
    const first = !this.presence.isOnline(key);
    await this.#shareSessions(account);
    if (!first) await this.#tellOtherSessions(session);
    const pending = await this.store.countUndelivered(key, lastId);
    const rooms: string[] = [];
    for (const roomKey of account.rooms) rooms.push(this.cachedRoom(roomKey)?.name ?? roomKey);
    return {
      session,
      reply: { nick: account.nick, rooms, lastId, pending },
      // None held up to lastId (none can become held again): nothing to look for.
      heldThrough: pending === 0 ? 0 : lastId,
    };
  }

  /**
   * Tells an account's other sessions, on every node, that `session` (a new one) logged
   * in, and from where.
   */
  async #tellOtherSessions(session: Session): Promise<void> {
    const { account, port } = session;
    const text = `${account.nick} logged in again from ${port.ip} ` +
      `(${this.presence.sessionCount(account.key)} sessions now)`;
    await this.broker.publish(userSubject(account.key), {
      event: { type: "notice", code: "session_login", text },
      exceptSession: session.id,
    });
  }

  /**
   * Shares this node's sessions of `account` with the replica (and so the other nodes);
   * resolves once the notices of an arrival or departure are out.
   */
  #shareSessions(account: OnlineAccount): Promise<void> {
    return this.presence.setLocal(
      account.key,
      account.nick,
      account.sessions.length,
      account.hidden,
      account.blocks,
      account.away,
    );
  }

  /**
   * Sets (`text`) or clears (null) an account's away status: shared with every node, and
   * told (unless hidden) to every session but its own, those it blocks and those that
   * block it, as a `presence` event with `away` (the text, or "" when back). A text is
   * cut to {@linkcode MAX_AWAY_LENGTH} characters and made one line.
   */
  async setAway(account: OnlineAccount, text: string | null): Promise<void> {
    const away = text === null ? null : text.replace(/[\r\n\0]+/g, " ").slice(0, MAX_AWAY_LENGTH);
    if (account.away === away && this.presence.awayOf(account.key) === away) return;
    account.away = away;
    // The account's sessions on other nodes take it too (back on one node: back everywhere).
    this.presence.setAway(account.key, away);
    await this.#shareSessions(account);
    if (account.hidden) return;
    await this.broker.publish(ALL_SUBJECT, {
      event: {
        type: "presence",
        nick: account.nick,
        online: true,
        ts: this.now(),
        away: away ?? "",
      },
      from: account.key,
      except: new Set([account.key, ...account.blocks]),
    });
  }

  /**
   * The away message of an account as `viewer` may see it: null when not away, or
   * offline or hidden to it (see {@linkcode isVisible}).
   */
  awayOf(key: string, viewer?: string): string | null {
    return this.isVisible(key, viewer) ? this.presence.awayOf(key) : null;
  }

  /** Hides (`/hide`) or reveals an account, on every node. */
  async setHidden(account: OnlineAccount, hidden: boolean): Promise<void> {
    if (account.hidden === hidden) return;
    account.hidden = hidden;
    this.presence.setHidden(account.key, hidden);
    await this.#shareSessions(account);
  }

  /** Another node hid or revealed an account that may have sessions here. */
  #remoteHide(key: string, hidden: boolean): void {
    const account = this.#online.get(key);
    if (account === undefined || account.hidden === hidden) return;
    account.hidden = hidden;
    this.#shareSessions(account).catch((err) =>
      log.error("sharing the sessions of {key} failed: {err}", { key, err })
    );
  }

  /** Another node set or cleared the away status of an account that may have sessions here. */
  #remoteAway(key: string, away: string | null): void {
    const account = this.#online.get(key);
    if (account === undefined || account.away === away) return;
    account.away = away;
    this.#shareSessions(account).catch((err) =>
      log.error("sharing the sessions of {key} failed: {err}", { key, err })
    );
  }

  /** Another node changed the blocks of an account that may have sessions here. */
  #remoteBlock(key: string, target: string, blocked: boolean): void {
    const account = this.#online.get(key);
    if (account === undefined) return;
    account.blocks = blocked ? withKey(account.blocks, target) : withoutKey(account.blocks, target);
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

  /**
   * Refuses a login attempt while `ip` is throttled or `key` is locked for it.
   *
   * @throws {CommandError} `rate_limited` or `locked`.
   */
  #checkLimits(ip: string, key: string, nick: string): void {
    const throttled = this.#limits.throttledSeconds(ip);
    if (throttled > 0) {
      const seconds = Math.ceil(throttled);
      throw new CommandError(
        "rate_limited",
        `too many failed logins from ${ip}; try again in ${seconds} s`,
        seconds,
      );
    }
    const lockedMs = this.#limits.lockedMs(key, ip);
    if (lockedMs > 0) {
      const seconds = Math.ceil(lockedMs / 1000);
      throw new CommandError(
        "locked",
        `${nick} is blocked after too many failed logins; try again in ${seconds} s`,
        seconds,
      );
    }
  }

  /**
   * Checks a session token for `key`; a wrong, expired or revoked one counts against the
   * lockout like a wrong password.
   *
   * @throws {CommandError} `rate_limited`, `locked` or `bad_token`.
   */
  async #checkToken(ip: string, key: string, nick: string, token: string): Promise<void> {
    this.#checkLimits(ip, key, nick);
    if (await this.tokens.accountOf(token) === key) {
      if ((await this.store.getAccount(key))?.passwordHash == null) {
        // Issued under --auth none: like a password login, it does not claim the account.
        throw new CommandError(
          "bad_password",
          `${nick} was made without a password; the server's operator must set one`,
        );
      }
      this.#limits.succeed(key, ip);
      return;
    }
    await this.#failedSecret(
      ip,
      key,
      nick,
      "session token",
      new CommandError(
        "bad_token",
        "the session token is wrong, expired or revoked: log in with the password",
      ),
    );
  }

  /**
   * A wrong secret (`what`: a password, a session token) counts against the lockout:
   * throws `locked` when this failure locks the account, else `error`.
   */
  async #failedSecret(
    ip: string,
    key: string,
    nick: string,
    what: string,
    error: CommandError,
  ): Promise<never> {
    const locked = await this.#limits.fail(key, ip);
    log.warn("wrong {what} for {nick} from {ip}{locked}", {
      what,
      nick,
      ip,
      locked: locked ? ": locked" : "",
    });
    if (locked) {
      const seconds = this.config.blockDurationSec;
      throw new CommandError(
        "locked",
        `wrong ${what}; ${nick} is now blocked for ${seconds} s`,
        seconds,
      );
    }
    throw error;
  }

  /** Verifies or registers; returns true when the account was just registered. */
  async #checkPassword(
    ip: string,
    key: string,
    nick: string,
    password: string | undefined,
  ): Promise<boolean> {
    this.#checkLimits(ip, key, nick);
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
      await this.#admitRegistration(ip);
      const cost = this.config.passwordCost;
      const hash = await this.#hashing(ip, () => hashPassword(password, { cost }));
      await this.#createAccount(key, nick, hash);
      this.#limits.succeed(key, ip);
      return true;
    }
    const stored = account.passwordHash!;
    if (await this.#hashing(ip, () => verifyPassword(password, stored))) {
      this.#limits.succeed(key, ip);
      return false;
    }
    return await this.#failedSecret(
      ip,
      key,
      account.nick,
      "password",
      new CommandError("wrong_password", "wrong password"),
    );
  }

  /**
   * Takes a registration from `ip`'s budget and the server's.
   *
   * @throws {CommandError} `rate_limited` when either is spent.
   */
  async #admitRegistration(ip: string): Promise<void> {
    const refused = await this.#limits.admitRegistration(ip);
    if (refused !== null) {
      const { fromIp } = refused;
      const seconds = Math.ceil(refused.waitSeconds);
      log.warn("refused a registration from {ip}: too many new accounts {where}", {
        ip,
        where: fromIp ? "from this address" : "on the server",
      });
      throw new CommandError(
        "rate_limited",
        `too many new accounts ${
          fromIp ? `from ${ip}` : "on this server"
        }; try again in ${seconds} s`,
        seconds,
      );
    }
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

  /**
   * Creates an account and makes it a member of the lobby. Both writes are issued before
   * either is awaited, so they share one sync of the store (one after the other waited for
   * two). When another node created the same account a moment before (`created` false),
   * the lobby membership was that one's to add, and adding it again changes nothing.
   */
  async #createAccount(key: string, nick: string, passwordHash: string | null): Promise<void> {
    const creating = this.store.createAccount({
      key,
      nick,
      passwordHash,
      createdAt: this.now(),
    });
    creating.catch(() => {}); // awaited below
    const lobby = await this.ensureRoom(DEFAULT_ROOM);
    const joining = this.addMember(lobby, key);
    joining.catch(() => {}); // awaited below
    await creating;
    await joining;
    // Not put in the nick cache: while it is online its presence entry has the nick, and
    // a login storm of new accounts would fill the cache with all of them.
  }

  /**
   * Tells each of two online accounts, on every node, that the other (unless hidden) is
   * `online`: a `presence` notice, and a `contact` one when it has the other as a contact.
   */
  async #presenceBetween(a: string, b: string, online: boolean): Promise<void> {
    const ts = this.now();
    for (const [to, about] of [[a, b], [b, a]]) {
      const entry = this.presence.entry(about);
      if (entry === undefined || this.presence.isHidden(about)) continue;
      await this.broker.publish(userSubject(to), {
        event: { type: "presence", nick: entry.nick, online, ts },
      });
      if ((await this.store.watchersOf(about)).includes(to)) {
        await this.broker.publish(userSubject(to), {
          event: { type: "contact", nick: entry.nick, online },
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
