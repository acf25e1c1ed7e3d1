/**
 * Catching up from the store after a node was cut off from NATS. While a node cannot
 * reach NATS, what other nodes publish does not reach it (NATS core keeps nothing), yet
 * those messages are committed in PostgreSQL. When the link is back (the bus's
 * `onReconnect`, run once the subscriptions are confirmed again), the node reads, for
 * each account with sessions here, the messages after the last id it had seen while
 * still connected, and sends its sessions those that never reached the node, in id
 * order. Nothing is sent twice: the node remembers the ids of the messages that reached
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
import type { Broker, Publication, Subscriber } from "./broker.ts";
import type { Store } from "./store.ts";

const log = getLogger(["chat", "server", "catch-up"]);

/** Milliseconds between two samples of the last id seen while connected. */
const SAMPLE_MS = 250;
/**
 * How far back (ms) the catch-up starts before the last moment the link was seen up: a
 * message committed just before the cut may still have been on its way.
 */
const MARGIN_MS = 3000;
/** Messages read per page while catching up. */
const PAGE = 500;

/** Whether a publication carries a stored message (it has an id in the store). */
function storedId(publication: Publication): number | undefined {
  const event = publication.event as { type: string; id?: unknown };
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
 * bus.onReconnect(() => void broker.catchUp());
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
  /** The highest stored message id seen, and samples of it while connected. */
  #highest = 0;
  #samples: { at: number; highest: number }[] = [];
  #lastConnectedMark = 0;
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

  /** The id after which the next catch-up reads. */
  get mark(): number {
    return this.#lastConnectedMark;
  }

  #sample(): void {
    if (!this.#connected()) return;
    const now = Date.now();
    this.#samples.push({ at: now, highest: this.#highest });
    while (this.#samples.length > 1 && this.#samples[1].at <= now - MARGIN_MS) {
      this.#samples.shift();
    }
    this.#lastConnectedMark = this.#samples[0].highest;
    for (const id of this.#seen) if (id <= this.#lastConnectedMark) this.#seen.delete(id);
  }

  #note(id: number): void {
    if (id <= this.#lastConnectedMark && this.#lastConnectedMark > 0) return;
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
   * Sends this node's sessions the stored messages they missed since {@linkcode mark},
   * in id order, each once. Runs one at a time (a reconnect during one runs after it).
   */
  catchUp(): Promise<void> {
    const run = (this.#running ?? Promise.resolve()).then(() => this.#catchUp()).catch((err) =>
      log.error("catching up after a reconnect failed: {err}", { err })
    );
    this.#running = run;
    return run;
  }

  async #catchUp(): Promise<void> {
    const after = this.#lastConnectedMark;
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
            if (session.sendEncoded(frame ??= encodeFrame(message))) sent++;
          }
        }
        if (page.length < PAGE) break;
        from = page[page.length - 1].id;
      }
    }
    // Delivered now (after every account had its turn): a later catch-up skips them.
    for (const id of caughtUp) this.#note(id);
    log.info("caught up after a reconnect: {sent} deliveries of messages after id {after}", {
      sent,
      after,
    });
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

  accepts(publication: Publication): boolean {
    if (!this.#subscriber.accepts(publication)) return false;
    const id = storedId(publication);
    if (id !== undefined) this.#note(id);
    return true;
  }

  sendEncoded(frames: Uint8Array): boolean {
    return this.#subscriber.sendEncoded(frames);
  }
}
