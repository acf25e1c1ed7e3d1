/**
 * Delivery of the direct messages held for an account while it was offline, to a
 * session that just logged in.
 *
 * The held messages go out in id order, read from the store a page at a time, and paced
 * by the connection: at most a bounded number of bytes of them wait in the session's
 * outbound queue, the next leaving only as earlier ones are written. Each carries
 * `held: true`. A message counts as delivered (stored as such, and its sender gets a
 * `delivered` receipt) only once the client acknowledges it (`delivered {ids}`, when it
 * logged in with `ack: true`, as the client library does), or else once the connection
 * has written it to the socket; whatever was not when the session ends stays held for
 * the next login. However long the backlog, it never overflows the queue, so a login
 * never fails because of it.
 *
 * A direct message stored while the session logs in may reach it live as well as be read
 * as held: it is sent once, whichever way comes first ({@linkcode HeldWindow}).
 *
 * @module
 */

import { encodeFrame } from "../protocol/frame.ts";
import type { DirectMessage } from "../protocol/messages.ts";
import { nameKey } from "../protocol/names.ts";
import { type Broker, userSubject } from "./broker.ts";
import type { Store } from "./store.ts";

/** What a held message's delivery needs to remember of it: its id and its sender. */
export type HeldMessage = Pick<DirectMessage, "id" | "from">;

/** Held messages read from the store at a time. */
export const HELD_PAGE_SIZE = 64;

/**
 * The direct messages to one account sent to one of its sessions while that session may
 * get one both live and as a held message: from its subscription until its held
 * messages are sent and the direct messages that were being stored when it logged in
 * are published. Held messages are ids up to the last id stored at login: each of them
 * goes to the session once, whichever way comes first; later ids only arrive live.
 *
 * @example
 * ```ts
 * import { HeldWindow } from "./held_delivery.ts";
 * const window = new HeldWindow("bob");
 * const dm = { type: "dm", id: 7, ts: 1, from: "Alice", to: "Bob", text: "hi" };
 * window.admit(dm); // true: sent live
 * window.through(10);
 * window.claim(7); // false: not sent again as a held message
 * ```
 */
export class HeldWindow {
  readonly #accountKey: string;
  readonly #ids = new Set<number>();
  #through = Number.MAX_SAFE_INTEGER;
  /** Held messages sent and awaiting the client's acknowledgement: id → sender. */
  readonly #unacknowledged = new Map<number, string>();
  #wakeAcknowledged: (() => void) | null = null;
  /** Resolves once no direct message up to the last held id can arrive live any more. */
  settled: Promise<unknown> = Promise.resolve();

  /** A window for the sessions of `accountKey`. */
  constructor(accountKey: string) {
    this.#accountKey = accountKey;
  }

  /**
   * Whether a live event may go to the session: false for a held direct message it was
   * sent already. Notes the held direct messages it lets through.
   */
  admit(event: { type: string; id?: number; to?: string }): boolean {
    if (event.type !== "dm" || event.id === undefined || event.id > this.#through) return true;
    if (nameKey(event.to ?? "") !== this.#accountKey) return true;
    return this.claim(event.id);
  }

  /** Whether the held message with this id is still to be sent; notes it as sent. */
  claim(id: number): boolean {
    if (this.#ids.has(id)) return false;
    this.#ids.add(id);
    return true;
  }

  /** Records a held message sent, which the client is to acknowledge. */
  awaitAck(message: HeldMessage): void {
    this.#unacknowledged.set(message.id, message.from);
  }

  /** How many held messages sent await their acknowledgement. */
  get unacknowledged(): number {
    return this.#unacknowledged.size;
  }

  /** Resolves once every held message sent so far is acknowledged. */
  acknowledged(): Promise<void> {
    if (this.#unacknowledged.size === 0) return Promise.resolve();
    return new Promise((wake) => this.#wakeAcknowledged = wake);
  }

  /** The held messages among `ids` that awaited their acknowledgement (now done). */
  acknowledge(ids: readonly number[]): HeldMessage[] {
    const out: HeldMessage[] = [];
    for (const id of ids) {
      const from = this.#unacknowledged.get(id);
      if (from === undefined) continue;
      this.#unacknowledged.delete(id);
      out.push({ id, from });
    }
    if (this.#unacknowledged.size === 0) {
      this.#wakeAcknowledged?.();
      this.#wakeAcknowledged = null;
    }
    return out;
  }

  /** Held messages are those with ids up to `lastId`: later ones are only live. */
  through(lastId: number): void {
    this.#through = lastId;
    for (const id of this.#ids) if (id > lastId) this.#ids.delete(id);
  }
}

/** Where held messages go: one session's connection, as the delivery sees it. */
export interface HeldTarget {
  /** The recipient's display nick, for receipts. */
  readonly nick: string;
  /** Whether the session has ended (the delivery stops). */
  readonly ended: boolean;
  /**
   * Whether the client acknowledges held messages (`delivered`): they then count as
   * delivered on its acknowledgement ({@linkcode confirmDelivered}), not once written.
   * Needs a `window`.
   */
  readonly acks?: boolean;
  /** Queues an encoded frame; false when refused (the session is being cut off). */
  send(frame: Uint8Array): boolean;
  /** Bytes written so far and queued behind them; absent: a frame counts as written once queued. */
  outbound?(): { written: number; queued: number };
  /** Resolves true once `offset` bytes are written, false if the connection ends first. */
  whenWritten?(offset: number): Promise<boolean>;
}

/** What {@linkcode deliverHeld} needs. */
export interface HeldDeliveryOptions {
  /** Where the held messages are. */
  store: Store;
  /** How receipts reach the senders. */
  broker: Broker;
  /** The recipient's account key. */
  accountKey: string;
  /** Only messages with an id up to this (later ones reach the session live). */
  throughId: number;
  /** What the session got already: skipped, and noted as sent. */
  window?: HeldWindow;
  /** Most bytes of held messages queued at once (at least one message goes out at a time). */
  maxQueuedBytes: number;
  /** Messages read from the store at a time. Default {@linkcode HELD_PAGE_SIZE}. */
  pageSize?: number;
  /** Wall clock for receipts (ms since the epoch). */
  now: () => number;
}

/** A held message queued on the connection, and where the stream is once it is written. */
interface Queued {
  message: DirectMessage;
  end: number;
}

/**
 * Sends the held direct messages to `target`, paced by what its connection has written,
 * marking delivered (and telling their senders) those written. Resolves to how many were
 * delivered, once every held message was written or the session ended.
 */
export async function deliverHeld(
  target: HeldTarget,
  options: HeldDeliveryOptions,
): Promise<number> {
  const { store, accountKey, throughId, window, maxQueuedBytes } = options;
  const acks = target.acks === true && window !== undefined;
  const pageSize = options.pageSize ?? HELD_PAGE_SIZE;
  const inFlight: Queued[] = [];
  let delivered = 0;
  /**
   * Marks delivered what is written by now (after waiting for `waitFor` bytes to be);
   * false once the connection is gone. Once the session has ended, the connection may
   * have dropped its queue and written a last notice instead: only an offset it said
   * was written counts then.
   */
  const settle = async (waitFor?: number): Promise<boolean> => {
    let upTo = Infinity;
    if (waitFor !== undefined && target.whenWritten !== undefined) {
      if (!await target.whenWritten(waitFor)) return false;
      if (target.ended) upTo = waitFor;
    } else if (target.ended && target.outbound !== undefined) {
      return true;
    }
    if (upTo === Infinity) upTo = target.outbound?.().written ?? Infinity;
    let n = 0;
    while (n < inFlight.length && inFlight[n].end <= upTo) n++;
    if (n > 0) {
      const written = inFlight.splice(0, n).map((q) => q.message);
      delivered += await confirmDelivered(written, target.nick, options);
    }
    return true;
  };
  let after = 0;
  while (!target.ended) {
    const page = await store.undelivered(accountKey, {
      after,
      through: throughId,
      limit: pageSize,
    });
    if (page.length === 0) break;
    after = page[page.length - 1].id;
    for (const message of page) {
      if (target.ended) break;
      if (window !== undefined && !window.claim(message.id)) continue;
      const frame = encodeFrame({ ...message, held: true });
      // Wait for room: the held messages queued (and what else is queued) under the bound.
      while (target.outbound !== undefined && !target.ended) {
        const { written, queued } = target.outbound();
        if (queued === 0 || queued + frame.length <= maxQueuedBytes) break;
        const waitFor = inFlight.length > 0 ? inFlight[0].end : written + queued;
        if (!await settle(waitFor)) return delivered;
      }
      if (target.ended || !target.send(frame)) break;
      if (acks) {
        window!.awaitAck(message);
        continue;
      }
      const progress = target.outbound?.();
      inFlight.push({
        message,
        end: progress === undefined ? 0 : progress.written + progress.queued,
      });
    }
    await settle();
  }
  if (inFlight.length > 0) await settle(inFlight[inFlight.length - 1].end);
  if (acks && !target.ended && target.whenWritten !== undefined) {
    // Held open for the acknowledgements, until the connection ends.
    await Promise.race([window!.acknowledged(), target.whenWritten(Number.MAX_SAFE_INTEGER)]);
  }
  return delivered;
}

/**
 * Stores that `messages` were delivered to `nick`; sends receipts for those newly
 * delivered (not by another session of the account already). Resolves to their count.
 */
export async function confirmDelivered(
  messages: readonly HeldMessage[],
  nick: string,
  deps: { store: Store; broker: Broker; now: () => number },
): Promise<number> {
  if (messages.length === 0) return 0;
  const newly = new Set(await deps.store.markDelivered(messages.map((m) => m.id)));
  const ts = deps.now();
  for (const message of messages) {
    if (!newly.has(message.id)) continue;
    await deps.broker.publish(userSubject(nameKey(message.from)), {
      event: { type: "receipt", id: message.id, status: "delivered", by: nick, ts },
    });
  }
  return newly.size;
}
