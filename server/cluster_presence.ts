/**
 * Who is online on every node of a cluster: a replica kept on each node.
 *
 * Each node owns its share of every account (how many sessions it has there, whether
 * hidden) and tells the others of each change on the `presence` topic of the
 * {@linkcode ClusterBus}; it applies its own changes at once. An account is online while
 * some node has a session of it, and visible unless hidden. Each node derives presence
 * notices for its own sessions from the transitions of its replica (visible anywhere /
 * nowhere), so an account with sessions on two nodes is announced once, and offline at
 * its last logout anywhere.
 *
 * Liveness: every node sends a heartbeat each `heartbeatMs`; a node not heard from for
 * {@linkcode MISSED_HEARTBEATS} of them is dropped with all its shares. A starting node
 * (or one that hears of a node it does not know) asks for everyone's full lists
 * (`sync`); each answers with its shares (`full`). A node whose bus reconnects sends its
 * own full list and asks for the others'.
 *
 * Blocks travel with the replica (visibility depends on them both ways): an account's
 * blocks are taken whole when it first appears, then changed by deltas, at most
 * {@linkcode MAX_SHARED_BLOCKS} of them.
 *
 * On one server (a {@linkcode LocalClusterBus} alone) only the node's own shares exist:
 * the replica is the single server's online list.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { ClusterApplied } from "./cluster_applied.ts";
import type { ClusterBus, ClusterMessage } from "./cluster_bus.ts";
import { MISSED_HEARTBEATS } from "./config.ts";
import { EMPTY_KEYS, withKey, withoutKey } from "./key_set.ts";
import { PresenceShares } from "./presence_shares.ts";

const log = getLogger(["chat", "server", "cluster_presence"]);

/** The bus topic of presence. */
export const PRESENCE_TOPIC = "presence";

/** Blocks of one account carried by the replica (more are left out, with a warning). */
export const MAX_SHARED_BLOCKS = 10_000;

/** One node's share of an account: replaced, never changed in place. */
interface Share {
  readonly sessions: number;
  readonly hidden: boolean;
  /** The account's away message on that node, if away. */
  readonly away?: string;
}

/**
 * The share of most accounts (one session, not hidden, not away): one object for all of
 * them, not one each.
 */
const ONE_SESSION: Share = Object.freeze({ sessions: 1, hidden: false });

/** An account online somewhere. */
export interface PresenceEntry {
  /** Account key. */
  readonly key: string;
  /** Display nick. */
  nick: string;
  /** Per node id: its sessions there (a lone one held as itself). */
  readonly shares: PresenceShares<Share>;
  /** Keys of the accounts it blocks: replaced, never changed in place (see `key_set.ts`). */
  blocks: ReadonlySet<string>;
}

/** A transition: an account became visible somewhere, or is visible nowhere any more. */
export interface PresenceChange {
  /** Account key. */
  readonly key: string;
  /** Display nick. */
  readonly nick: string;
  /** Visible now. */
  readonly online: boolean;
  /** Keys it blocks (not told). */
  readonly blocks: ReadonlySet<string>;
  /** Keys of the online accounts that block it (not told). */
  readonly blockedBy: ReadonlySet<string>;
}

/** What a node tells the others of one account (its share). */
interface ShareRecord {
  key: string;
  nick: string;
  sessions: number;
  hidden: boolean;
  blocks: string[];
  /** The away message, when the account is away there (absent: not away). */
  away?: string;
}

/** The messages on the presence topic. */
type PresenceMessage =
  | ({ t: "share" } & ShareRecord)
  | { t: "block"; key: string; target: string; blocked: boolean }
  | { t: "hide"; key: string; hidden: boolean }
  | { t: "away"; key: string; away: string | null }
  | { t: "beat" }
  | { t: "sync" }
  | { t: "full"; shares: ShareRecord[] }
  | { t: "bye" };

/** What the replica calls back on the hub. */
export interface PresenceHooks {
  /** A transition (see {@linkcode PresenceChange}); its promise is awaited by local changes. */
  changed(change: PresenceChange): Promise<void>;
  /** Another node changed an account's blocks: apply to the local account, if any. */
  blocked(key: string, target: string, blocked: boolean): void;
  /** Another node hid or revealed an account: apply to the local account, if any. */
  hidden(key: string, hidden: boolean): void;
  /** Another node set (or cleared: null) an account's away status: apply it locally. */
  away?(key: string, away: string | null): void;
}

/**
 * The replica of who is online on every node.
 *
 * @example
 * ```ts
 * import { LocalClusterNetwork } from "./cluster_bus.ts";
 * import { ClusterPresence } from "./cluster_presence.ts";
 * const network = new LocalClusterNetwork();
 * const hooks = { changed: () => Promise.resolve(), blocked() {}, hidden() {} };
 * const a = new ClusterPresence(network.bus("a"), 1000, hooks);
 * const b = new ClusterPresence(network.bus("b"), 1000, hooks);
 * await a.start();
 * await b.start();
 * await a.setLocal("ann", "Ann", 1, false, []);
 * b.isVisible("ann"); // true
 * a.close();
 * b.close();
 * ```
 */
export class ClusterPresence {
  readonly #bus: ClusterBus;
  readonly #heartbeatMs: number;
  readonly #hooks: PresenceHooks;
  readonly #entries = new Map<string, PresenceEntry>();
  /** Per account key: the keys of the present accounts that block it. */
  readonly #blockedBy = new Map<string, Set<string>>();
  /** Per other node: when it was last heard from (performance clock). */
  readonly #heard = new Map<string, number>();
  #timer: ReturnType<typeof setInterval> | undefined;
  /** When this node last beat (performance clock). */
  #lastBeat = 0;
  #stop: (() => void) | undefined;
  #closed = false;
  /** Blocks wait until the nodes this one hears from applied them. */
  readonly #applied: ClusterApplied;
  readonly #nodeGoneListeners: ((node: string) => void)[] = [];

  /** A replica over `bus`, beating every `heartbeatMs`. */
  constructor(bus: ClusterBus, heartbeatMs: number, hooks: PresenceHooks) {
    this.#bus = bus;
    this.#heartbeatMs = heartbeatMs;
    this.#hooks = hooks;
    this.#applied = new ClusterApplied(bus, PRESENCE_TOPIC, {
      peers: () => this.#heard.keys(),
      // A node that does not answer is taken for dead by then.
      timeoutMs: MISSED_HEARTBEATS * heartbeatMs,
    });
  }

  /** This node's id. */
  get nodeId(): string {
    return this.#bus.nodeId;
  }

  /** Listens, asks the others for their lists and starts beating. */
  async start(): Promise<void> {
    this.#stop = await this.#bus.listen(PRESENCE_TOPIC, (message) => this.#receive(message));
    // Cut off, both sides may have missed changes: tell ours, ask for theirs.
    this.#bus.onReconnect(() => {
      this.#send({ t: "full", shares: this.#ownShares() });
      this.#send({ t: "sync" });
    });
    this.#send({ t: "sync" });
    this.#lastBeat = performance.now();
    this.#timer = setInterval(() => this.#beat(), this.#heartbeatMs);
  }

  /** Stops beating and listening; tells the others this node is gone. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    this.#applied.close();
    this.#send({ t: "bye" });
    this.#stop?.();
  }

  /**
   * Calls `listener` with the id of each node taken for dead or gone (after its
   * sessions went offline here).
   */
  onNodeGone(listener: (node: string) => void): void {
    this.#nodeGoneListeners.push(listener);
  }

  /** The other nodes this one hears from (taken for alive), by id. */
  get nodes(): string[] {
    return [...this.#heard.keys()];
  }

  /** How many accounts are online somewhere (hidden ones too). */
  get size(): number {
    return this.#entries.size;
  }

  /** Every account online somewhere. */
  entries(): IterableIterator<PresenceEntry> {
    return this.#entries.values();
  }

  /** The entry of an account online somewhere. */
  entry(key: string): PresenceEntry | undefined {
    return this.#entries.get(key);
  }

  /** Whether the account has a session on some node. */
  isOnline(key: string): boolean {
    return this.#entries.has(key);
  }

  /** Whether the account is hidden (on any node). */
  isHidden(key: string): boolean {
    const entry = this.#entries.get(key);
    return entry !== undefined && hiddenIn(entry);
  }

  /** Whether the account is online and not hidden. */
  isVisible(key: string): boolean {
    const entry = this.#entries.get(key);
    return entry !== undefined && !hiddenIn(entry);
  }

  /** The account's away message (from any node's share), or null when not away. */
  awayOf(key: string): string | null {
    for (const share of this.#entries.get(key)?.shares.values() ?? []) {
      if (share.away !== undefined) return share.away;
    }
    return null;
  }

  /** Whether the account has a session on a node other than this one. */
  isOnlineElsewhere(key: string): boolean {
    const shares = this.#entries.get(key)?.shares;
    return shares !== undefined && (shares.size > 1 || !shares.has(this.nodeId));
  }

  /** Sessions of the account on every node. */
  sessionCount(key: string): number {
    let n = 0;
    for (const share of this.#entries.get(key)?.shares.values() ?? []) n += share.sessions;
    return n;
  }

  /** Keys of the online accounts that block `key`. */
  blockedBy(key: string): ReadonlySet<string> {
    return this.#blockedBy.get(key) ?? EMPTY;
  }

  /** Whether `a` and `b` block each other either way, as far as online accounts go. */
  blockedBetween(a: string, b: string): boolean {
    return (this.#entries.get(a)?.blocks.has(b) ?? false) ||
      (this.#entries.get(b)?.blocks.has(a) ?? false);
  }

  /**
   * Sets this node's share of an account (`sessions` 0: none) and tells the others;
   * resolves once the notices of a resulting transition are out. `blocks` are taken
   * when the account was not online anywhere. `away`: its away message here, if away.
   */
  setLocal(
    key: string,
    nick: string,
    sessions: number,
    hidden: boolean,
    blocks: Iterable<string>,
    away: string | null = null,
  ): Promise<void> {
    const record: ShareRecord = { key, nick, sessions, hidden, blocks: boundBlocks(key, blocks) };
    if (away !== null) record.away = away;
    const change = this.#applyShare(this.nodeId, record);
    this.#send({ t: "share", ...record });
    return change ?? Promise.resolve();
  }

  /**
   * An account's block changed here: applied and told to the others; resolves once they
   * applied it too (a message sent on any node next is filtered by it).
   */
  async setBlock(key: string, target: string, blocked: boolean): Promise<void> {
    this.#applyBlock(key, target, blocked);
    await this.#applied.send({ t: "block", key, target, blocked });
  }

  /** An account's away status changed here: the others apply it to their sessions of it. */
  setAway(key: string, away: string | null): void {
    this.#send({ t: "away", key, away });
  }

  /** An account was hidden or revealed here: the others apply it to their sessions of it. */
  setHidden(key: string, hidden: boolean): void {
    this.#send({ t: "hide", key, hidden });
  }

  #send(message: PresenceMessage): void {
    this.#bus.send(PRESENCE_TOPIC, message);
  }

  #beat(): void {
    this.#send({ t: "beat" });
    const now = performance.now();
    const late = now - this.#lastBeat > 2 * this.#heartbeatMs;
    this.#lastBeat = now;
    // This node was stalled (a pause, a starved CPU): the others' beats may be waiting
    // to be read. Judge them at the next beat, not now.
    if (late) return;
    const deadline = now - MISSED_HEARTBEATS * this.#heartbeatMs;
    for (const [node, at] of this.#heard) {
      if (at >= deadline) continue;
      log.warn("node {node} was not heard from for {ms} ms: its sessions are offline", {
        node,
        ms: Math.round(now - at),
      });
      this.#dropNode(node);
    }
  }

  #receive(received: ClusterMessage): void {
    const { from, data } = received;
    if (from === this.nodeId || this.#closed) return;
    const message = data as PresenceMessage;
    const known = this.#heard.has(from);
    this.#heard.set(from, performance.now());
    if (this.#applied.receive(received)) return;
    switch (message.t) {
      case "share":
        this.#applyShare(from, message)?.catch(logFailure);
        break;
      case "block":
        this.#applyBlock(message.key, message.target, message.blocked);
        this.#hooks.blocked(message.key, message.target, message.blocked);
        this.#applied.applied(received);
        break;
      case "hide":
        this.#hooks.hidden(message.key, message.hidden);
        break;
      case "away":
        this.#hooks.away?.(message.key, message.away);
        break;
      case "sync":
        this.#send({ t: "full", shares: this.#ownShares() });
        break;
      case "full":
        this.#replaceNode(from, message.shares);
        break;
      case "bye":
        this.#dropNode(from);
        break;
      case "beat":
        // A node this one dropped (or never heard): its shares may be missing.
        if (!known) this.#send({ t: "sync" });
        break;
    }
  }

  #ownShares(): ShareRecord[] {
    const out: ShareRecord[] = [];
    for (const entry of this.#entries.values()) {
      const share = entry.shares.get(this.nodeId);
      if (share === undefined) continue;
      out.push({
        key: entry.key,
        nick: entry.nick,
        sessions: share.sessions,
        hidden: share.hidden,
        blocks: boundBlocks(entry.key, entry.blocks),
        ...(share.away !== undefined ? { away: share.away } : {}),
      });
    }
    return out;
  }

  /** Applies a node's share; returns the notices of a transition, if any. */
  #applyShare(node: string, record: ShareRecord): Promise<void> | undefined {
    let entry = this.#entries.get(record.key);
    const before = entry !== undefined && !hiddenIn(entry);
    if (record.sessions <= 0) {
      if (entry === undefined || !entry.shares.delete(node)) return undefined;
      if (entry.shares.size === 0) this.#remove(entry);
    } else {
      if (entry === undefined) {
        entry = {
          key: record.key,
          nick: record.nick,
          shares: new PresenceShares(),
          blocks: EMPTY_KEYS,
        };
        this.#entries.set(entry.key, entry);
        for (const target of record.blocks) this.#applyBlock(entry.key, target, true);
      }
      entry.nick = record.nick;
      const away = typeof record.away === "string";
      entry.shares.set(
        node,
        record.sessions === 1 && !record.hidden && !away ? ONE_SESSION : {
          sessions: record.sessions,
          hidden: record.hidden,
          ...(away ? { away: record.away } : {}),
        },
      );
    }
    return this.#transition(entry, before);
  }

  #transition(entry: PresenceEntry, before: boolean): Promise<void> | undefined {
    const after = this.#entries.get(entry.key) === entry && !hiddenIn(entry);
    if (before === after) return undefined;
    return this.#hooks.changed({
      key: entry.key,
      nick: entry.nick,
      online: after,
      // Never changed in place: the change keeps the blocks of this moment.
      blocks: entry.blocks,
      blockedBy: new Set(this.blockedBy(entry.key)),
    });
  }

  #remove(entry: PresenceEntry): void {
    this.#entries.delete(entry.key);
    for (const target of entry.blocks) this.#unindex(entry.key, target);
  }

  #applyBlock(key: string, target: string, blocked: boolean): void {
    const entry = this.#entries.get(key);
    if (entry === undefined) return;
    if (blocked) {
      if (entry.blocks.has(target)) return;
      entry.blocks = withKey(entry.blocks, target);
      let by = this.#blockedBy.get(target);
      if (by === undefined) this.#blockedBy.set(target, by = new Set());
      by.add(key);
    } else if (entry.blocks.has(target)) {
      entry.blocks = withoutKey(entry.blocks, target);
      this.#unindex(key, target);
    }
  }

  #unindex(key: string, target: string): void {
    const by = this.#blockedBy.get(target);
    by?.delete(key);
    if (by?.size === 0) this.#blockedBy.delete(target);
  }

  /** Replaces every share of `node` with `shares` (its full list). */
  #replaceNode(node: string, shares: ShareRecord[]): void {
    const listed = new Set(shares.map((s) => s.key));
    for (const entry of [...this.#entries.values()]) {
      if (entry.shares.has(node) && !listed.has(entry.key)) {
        this.#applyShare(node, { ...shareOf(entry), sessions: 0 })?.catch(logFailure);
      }
    }
    for (const share of shares) this.#applyShare(node, share)?.catch(logFailure);
  }

  /** Drops every share of a node taken for dead or gone. */
  #dropNode(node: string): void {
    this.#heard.delete(node);
    this.#replaceNode(node, []);
    for (const listener of this.#nodeGoneListeners) {
      try {
        listener(node);
      } catch (err) {
        log.error("a node-gone listener failed: {err}", { err });
      }
    }
  }
}

const EMPTY: ReadonlySet<string> = new Set();

function hiddenIn(entry: PresenceEntry): boolean {
  for (const share of entry.shares.values()) if (share.hidden) return true;
  return false;
}

function shareOf(entry: PresenceEntry): ShareRecord {
  return { key: entry.key, nick: entry.nick, sessions: 0, hidden: false, blocks: [] };
}

function boundBlocks(key: string, blocks: Iterable<string>): string[] {
  const out: string[] = [];
  for (const target of blocks) {
    if (out.length >= MAX_SHARED_BLOCKS) {
      log.warn("{key} blocks more than {max} accounts: the others are not shared", {
        key,
        max: MAX_SHARED_BLOCKS,
      });
      break;
    }
    out.push(target);
  }
  return out;
}

function logFailure(err: unknown): void {
  log.error("presence notices failed: {err}", { err });
}
