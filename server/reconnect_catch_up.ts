/**
 * Catching up from the store after a node was cut off from NATS. While a node cannot
 * reach NATS, what other nodes publish does not reach it (NATS core keeps nothing), yet
 * those messages are committed in PostgreSQL. When the link is back (the bus's
 * `onReconnect`, run once the subscriptions are confirmed again), it asks every node
 * over the bus to catch up since its cut began: each reads, for every account with
 * sessions on it, the messages committed since then (after the highest id it had seen
 * by then, less a margin: ids follow commit order) and sends its sessions those that
 * never reached the node, in id order. The node that was cut off gets what the others
 * published; the others get what it published while cut off (it never left it). Nothing is sent twice: the node remembers the ids of the messages that reached
 * its sessions lately (a message reaches every session of a node at once, so one set per
 * node is enough).
 *
 * It sits between the hub and the node's {@linkcode Broker}: {@linkcode CatchUpBroker}
 * wraps each subscriber to see the message ids it accepts. A single server (in-process
 * fan-out, never cut off) does not use it.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { encodeFrame } from "../protocol/frame.ts";
import type { ChatMessage } from "../protocol/messages.ts";
import { nameKey } from "../protocol/names.ts";
import { briefOf, type Broker, type Publication, type Subscriber } from "./broker.ts";
import type { ClusterBus } from "./cluster_bus.ts";
import { MISSED_HEARTBEATS } from "./config.ts";
import type { Store } from "./store.ts";

const log = getLogger(["chat", "server", "catch-up"]);

/** Milliseconds between two samples of the highest message id seen. */
const SAMPLE_MS = 250;
/**
 * How far back (ms) a catch-up starts before the cut: a message committed just before
 * it may still have been on its way. Also covers clocks of nodes a little apart.
 */
const MARGIN_MS = 3000;
/** How long samples and seen ids are kept (ms): a longer cut catches up from there. */
const RETAIN_MS = 120_000;
/** Milliseconds between two prunings of the seen ids. */
const PRUNE_MS = 5000;
/** Messages read per page while catching up. */
const PAGE = 500;
/** The bus topic on which a node back on NATS asks every node to catch up. */
export const CATCH_UP_TOPIC = "catch-up";

/** Whether a publication carries a stored message (it has an id in the store). */
function storedId(publication: Publication): number | undefined {
  const event = briefOf(publication);
  return (event.type === "msg" || event.type === "dm") && typeof event.id === "number"
    ? event.id
    : undefined;
}

/**
 * A {@linkcode Broker} that remembers which stored messages reached this node's
 * sessions, and can send them what they missed while the node was cut off.
 *
 * @example
 * ```ts ignore
 * import { CatchUpBroker } from "./reconnect_catch_up.ts";
 * const broker = new CatchUpBroker(natsBroker, store, () => link.connected);
 * await broker.listenOn(bus);
 * ```
 */
export class CatchUpBroker implements Broker {
  readonly #inner: Broker;
  readonly #store: Store;
  readonly #connected: () => boolean;
  /** The wrapper of each subscriber (one per session, whatever its subjects). */
  readonly #wrappers = new Map<Subscriber, Wrapped>();
  /** Subjects each wrapper is subscribed to. */
  readonly #subjects = new Map<Wrapped, Set<string>>();
  /** Ids of stored messages that reached this node's sessions (above the oldest sample). */
  readonly #seen = new Set<number>();
  /** The highest stored message id seen, and samples of it over time. */
  #highest = 0;
  #samples: { at: number; highest: number }[] = [];
  /** Wall-clock time of the last sample taken while connected. */
  #lastUpAt = Date.now();
  #lastPrune = Date.now();
  /** {@linkcode lastUpAt} when a sample first found the link down; cleared at reconnect. */
  #downSince: number | undefined;
  readonly #timer: ReturnType<typeof setInterval>;
  #running: Promise<void> | null = null;

  /** Wraps `inner`; `connected` says whether the node reaches the others now. */
  constructor(inner: Broker, store: Store, connected: () => boolean) {
    this.#inner = inner;
    this.#store = store;
    this.#connected = connected;
    this.#timer = setInterval(() => this.#sample(), SAMPLE_MS);
    Deno.unrefTimer(this.#timer);
  }

  /** When this node was last seen connected (ms since the epoch). */
  get lastUpAt(): number {
    return this.#lastUpAt;
  }

  /**
   * Catches up with the others over `bus`: when this node is back on NATS it asks every
   * node (itself too) to catch up since its cut began; what it published meanwhile never
   * left it, what the others published never reached it.
   */
  async listenOn(bus: ClusterBus): Promise<void> {
    await bus.listen(CATCH_UP_TOPIC, (message) => {
      const since = (message.data as { since?: unknown } | null)?.since;
      if (typeof since === "number" && Number.isFinite(since)) void this.catchUp(since);
    });
    bus.onReconnect(() => {
      const since = this.#downSince ?? this.#lastUpAt;
      this.#downSince = undefined;
      bus.send(CATCH_UP_TOPIC, { since });
    });
  }

  /**
   * An id below every message committed after `time`: the highest this node had seen
   * by then (ids follow commit order). The oldest kept when `time` is older.
   */
  markAt(time: number): number {
    let mark = this.#samples.length > 0 ? this.#samples[0].highest : 0;
    for (const sample of this.#samples) {
      if (sample.at > time) break;
      mark = sample.highest;
    }
    return mark;
  }

  #sample(): void {
    const now = Date.now();
    if (this.#connected()) this.#lastUpAt = now;
    else this.#downSince ??= this.#lastUpAt;
    this.#samples.push({ at: now, highest: this.#highest });
    while (this.#samples.length > 1 && this.#samples[1].at <= now - RETAIN_MS) {
      this.#samples.shift();
    }
    if (now - this.#lastPrune >= PRUNE_MS) {
      this.#lastPrune = now;
      const oldest = this.#samples[0].highest;
      for (const id of this.#seen) if (id <= oldest) this.#seen.delete(id);
    }
  }

  #note(id: number): void {
    this.#seen.add(id);
    if (id > this.#highest) this.#highest = id;
  }

  #wrap(subscriber: Subscriber): Wrapped {
    let wrapped = this.#wrappers.get(subscriber);
    if (wrapped === undefined) {
      wrapped = new Wrapped(subscriber, (id) => this.#note(id));
      this.#wrappers.set(subscriber, wrapped);
      this.#subjects.set(wrapped, new Set());
    }
    return wrapped;
  }

  /** Subscribes through the wrapper of `subscriber`. */
  subscribe(subject: string, subscriber: Subscriber): Promise<void> {
    const wrapped = this.#wrap(subscriber);
    this.#subjects.get(wrapped)!.add(subject);
    return this.#inner.subscribe(subject, wrapped);
  }

  /** Unsubscribes; forgets the wrapper once it has no subject left. */
  unsubscribe(subject: string, subscriber: Subscriber): void {
    const wrapped = this.#wrappers.get(subscriber);
    if (wrapped === undefined) return;
    this.#inner.unsubscribe(subject, wrapped);
    const subjects = this.#subjects.get(wrapped)!;
    subjects.delete(subject);
    if (subjects.size === 0) {
      this.#subjects.delete(wrapped);
      this.#wrappers.delete(subscriber);
    }
  }

  publish(subject: string, publication: Publication): Promise<number> {
    const id = storedId(publication);
    if (id !== undefined) this.#note(id);
    return this.#inner.publish(subject, publication);
  }

  publishBatch(subject: string, publications: readonly Publication[]): Promise<number> {
    for (const p of publications) {
      const id = storedId(p);
      if (id !== undefined) this.#note(id);
    }
    return this.#inner.publishBatch(subject, publications);
  }

  publishLocal(subject: string, publication: Publication): Promise<number> {
    return this.#inner.publishLocal(subject, publication);
  }

  publishLocalBatch(subject: string, publications: readonly Publication[]): Promise<number> {
    return this.#inner.publishLocalBatch(subject, publications);
  }

  /**
   * Sends this node's sessions the stored messages committed since about `since` (ms
   * since the epoch, less a margin) that never reached this node, in id order, each
   * once. Runs one at a time (another asked meanwhile runs after it).
   */
  catchUp(since: number): Promise<void> {
    const after = this.markAt(since - MARGIN_MS);
    const run = (this.#running ?? Promise.resolve()).then(() => this.#catchUp(after)).catch((
      err,
    ) => log.error("catching up after a reconnect failed: {err}", { err }));
    this.#running = run;
    return run;
  }

  async #catchUp(after: number): Promise<void> {
    const byAccount = new Map<string, Wrapped[]>();
    for (const wrapped of this.#subjects.keys()) {
      const key = wrapped.accountKey;
      const list = byAccount.get(key);
      if (list === undefined) byAccount.set(key, [wrapped]);
      else list.push(wrapped);
    }
    let sent = 0;
    const caughtUp: number[] = [];
    for (const [accountKey, sessions] of byAccount) {
      let from = after;
      for (;;) {
        const page: ChatMessage[] = await this.#store.messagesAfter(accountKey, from, PAGE);
        for (const message of page) {
          if (this.#seen.has(message.id)) continue;
          const publication: Publication = { event: message, from: nameKey(message.from) };
          let frame: Uint8Array | undefined;
          caughtUp.push(message.id);
          for (const session of sessions) {
            if (!session.accepts(publication)) continue;
            frame ??= encodeFrame(message);
            if (session.sendEncoded(frame, 1, [publication], 0)) sent++;
          }
        }
        if (page.length < PAGE) break;
        from = page[page.length - 1].id;
      }
    }
    // Delivered now (after every account had its turn): a later catch-up skips them.
    for (const id of caughtUp) this.#note(id);
    log.info("caught up after a cut: {sent} deliveries of messages after id {after}", {
      sent,
      after,
    });
  }

  /**
   * Catches up when `presence` takes a node for dead: what it committed and had no time
   * to publish before it died (`heartbeatMs`: the cluster's heartbeat; a node is taken
   * for dead after a few missed, and what it published since then is read again).
   */
  watchNodes(
    presence: { onNodeGone(listener: (node: string) => void): void },
    heartbeatMs: number,
  ): void {
    presence.onNodeGone(() =>
      void this.catchUp(Date.now() - (MISSED_HEARTBEATS + 2) * heartbeatMs)
    );
  }

  /** Stops sampling and closes the inner broker. */
  close(): Promise<void> {
    clearInterval(this.#timer);
    return this.#inner.close();
  }
}

/** A session as the inner broker sees it: notes the ids of the messages it accepts. */
class Wrapped implements Subscriber {
  readonly #subscriber: Subscriber;
  readonly #note: (id: number) => void;

  constructor(subscriber: Subscriber, note: (id: number) => void) {
    this.#subscriber = subscriber;
    this.#note = note;
  }

  get accountKey(): string {
    return this.#subscriber.accountKey;
  }

  get readsEvents(): boolean {
    return this.#subscriber.readsEvents === true;
  }

  accepts(publication: Publication): boolean {
    if (!this.#subscriber.accepts(publication)) return false;
    const id = storedId(publication);
    if (id !== undefined) this.#note(id);
    return true;
  }

  sendEncoded(
    frames: Uint8Array,
    count?: number,
    publications?: readonly Publication[],
    first?: number,
  ): boolean {
    return this.#subscriber.sendEncoded(frames, count, publications, first);
  }
}
