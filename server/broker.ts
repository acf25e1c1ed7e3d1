/**
 * Message fan-out behind a small asynchronous interface.
 *
 * Chat logic publishes events to subjects (`user.<key>`, `room.<key>`, `all`) and
 * sessions subscribe to the subjects they should hear. {@linkcode LocalBroker} fans out
 * in process; a broker over NATS or Redis can implement the same interface so that
 * several servers share rooms without changing chat logic.
 *
 * @module
 */

import { encodeFrame } from "../protocol/frame.ts";
import { concatBytes } from "../protocol/bytes.ts";
import type { ServerMessage } from "../protocol/messages.ts";

/** What a publisher hands to {@linkcode Broker.publish}. */
export interface Publication {
  /** The event to deliver. */
  readonly event: ServerMessage;
  /** Account key of the originator: receivers that block it skip the event. */
  readonly from?: string;
  /** Account keys that must not receive the event. */
  readonly except?: ReadonlySet<string>;
  /** A session that must not receive the event (the sender's own). */
  readonly exceptSession?: string;
}

/** A receiver of publications (a session). */
export interface Subscriber {
  /** Its account's key, which `except` names. */
  readonly accountKey: string;
  /** Whether `publication` reaches this subscriber (not filtered for it). */
  accepts(publication: Publication): boolean;
  /**
   * Takes one or more whole encoded frames of publications it accepts; returns whether
   * they were queued (false when it is gone or was cut off).
   */
  sendEncoded(frames: Uint8Array): boolean;
}

/** Subject-based fan-out. */
export interface Broker {
  /**
   * Adds a subscriber to a subject (idempotent); resolves once the engine has confirmed
   * it: anything published after that reaches the subscriber.
   */
  subscribe(subject: string, subscriber: Subscriber): Promise<void>;
  /** Removes a subscriber from a subject (idempotent). */
  unsubscribe(subject: string, subscriber: Subscriber): void;
  /** Delivers to every subscriber of `subject`; resolves to how many accepted it. */
  publish(subject: string, publication: Publication): Promise<number>;
  /**
   * Delivers several publications in order as one unit: each subscriber gets those it
   * accepts, together. Resolves to how many subscribers accepted at least one.
   */
  publishBatch(subject: string, publications: readonly Publication[]): Promise<number>;
  /**
   * Delivers to this node's subscribers of `subject` only, never to other nodes (what
   * every node derives on its own, such as presence notices from its replica of who is
   * online: `cluster_presence.ts`). Resolves to how many accepted it. On one server it is
   * {@linkcode publish}.
   */
  publishLocal(subject: string, publication: Publication): Promise<number>;
  /** {@linkcode publishBatch} to this node's subscribers only (see {@linkcode publishLocal}). */
  publishLocalBatch(subject: string, publications: readonly Publication[]): Promise<number>;
  /** Stops fan-out and releases resources. */
  close(): Promise<void>;
}

/** The subject of an account's sessions. */
export function userSubject(accountKey: string): string {
  return `user.${accountKey}`;
}

/** The subject of a room's member sessions. */
export function roomSubject(roomKey: string): string {
  return `room.${roomKey}`;
}

/** The subject every logged-in session hears (broadcasts, presence). */
export const ALL_SUBJECT = "all";

const NONE: readonly Subscriber[] = [];

/**
 * In-process fan-out: one map from subject to subscribers, frames encoded once.
 *
 * @example
 * ```ts
 * import { LocalBroker } from "./broker.ts";
 * const broker = new LocalBroker();
 * broker.subscribe("room.lobby", {
 *   accountKey: "ann",
 *   accepts: () => true,
 *   sendEncoded: (frames) => frames.length > 0,
 * });
 * await broker.publish("room.lobby", { event: { type: "notice", code: "info", text: "hi" } });
 * ```
 */
export class LocalBroker implements Broker {
  /**
   * Per subject its subscribers: a lone one as itself (each account's own subject: no
   * set per account), several in a set.
   */
  readonly #subjects = new Map<string, Subscriber | Set<Subscriber>>();

  /** Adds a subscriber to a subject; in process it is confirmed at once. */
  subscribe(subject: string, subscriber: Subscriber): Promise<void> {
    const held = this.#subjects.get(subject);
    if (held === undefined) this.#subjects.set(subject, subscriber);
    else if (held instanceof Set) held.add(subscriber);
    else if (held !== subscriber) this.#subjects.set(subject, new Set([held, subscriber]));
    return Promise.resolve();
  }

  /** Removes a subscriber from a subject. */
  unsubscribe(subject: string, subscriber: Subscriber): void {
    const held = this.#subjects.get(subject);
    if (held === undefined) return;
    if (!(held instanceof Set)) {
      if (held === subscriber) this.#subjects.delete(subject);
      return;
    }
    held.delete(subscriber);
    if (held.size === 0) this.#subjects.delete(subject);
  }

  /**
   * The subscribers of a subject, copied: a delivery may cut a slow consumer off, which
   * unsubscribes it.
   */
  #subscribers(subject: string): readonly Subscriber[] {
    const held = this.#subjects.get(subject);
    if (held === undefined) return NONE;
    return held instanceof Set ? [...held] : [held];
  }

  /** Delivers synchronously to every subscriber; resolves to the accepted count. */
  publish(subject: string, publication: Publication): Promise<number> {
    return Promise.resolve(this.publishNow(subject, publication));
  }

  /** The synchronous core of {@linkcode publish}. */
  publishNow(subject: string, publication: Publication): number {
    const subscribers = this.#subscribers(subject);
    if (subscribers.length === 0) return 0;
    let frame: Uint8Array | undefined;
    let accepted = 0;
    for (const subscriber of subscribers) {
      if (!subscriber.accepts(publication)) continue;
      if (subscriber.sendEncoded(frame ??= encodeFrame(publication.event))) accepted++;
    }
    return accepted;
  }

  /** Delivers a batch synchronously; resolves to how many accepted some of it. */
  publishBatch(subject: string, publications: readonly Publication[]): Promise<number> {
    return Promise.resolve(this.publishBatchNow(subject, publications));
  }

  /**
   * The synchronous core of {@linkcode publishBatch}. The batch is encoded once into one
   * buffer; a subscriber that accepts all of it gets that buffer, the others get views
   * of the runs of frames they accept. Only subscribers named in some `except`, or every
   * one when a publication filters by `from` or `exceptSession`, are checked one by one.
   */
  publishBatchNow(subject: string, publications: readonly Publication[]): number {
    const subscribers = this.#subscribers(subject);
    if (subscribers.length === 0 || publications.length === 0) return 0;
    const frames = publications.map((p) => encodeFrame(p.event));
    const bytes = concatBytes(frames);
    const offsets = [0];
    for (const frame of frames) offsets.push(offsets[offsets.length - 1] + frame.length);
    const named = new Set<string>();
    let checkEach = false;
    for (const p of publications) {
      if (p.from !== undefined || p.exceptSession !== undefined) checkEach = true;
      if (p.except !== undefined) { for (const key of p.except) named.add(key); }
    }
    let accepted = 0;
    for (const subscriber of subscribers) {
      if (!checkEach && !named.has(subscriber.accountKey)) {
        if (subscriber.sendEncoded(bytes)) accepted++;
        continue;
      }
      let queued = false;
      let runStart = -1;
      for (let i = 0; i <= publications.length; i++) {
        const takes = i < publications.length && subscriber.accepts(publications[i]);
        if (takes && runStart < 0) runStart = i;
        if (!takes && runStart >= 0) {
          const run = runStart === 0 && i === publications.length
            ? bytes
            : bytes.subarray(offsets[runStart], offsets[i]);
          if (subscriber.sendEncoded(run)) queued = true;
          runStart = -1;
        }
      }
      if (queued) accepted++;
    }
    return accepted;
  }

  /** In process every subscriber is local: {@linkcode publish}. */
  publishLocal(subject: string, publication: Publication): Promise<number> {
    return Promise.resolve(this.publishNow(subject, publication));
  }

  /** In process every subscriber is local: {@linkcode publishBatch}. */
  publishLocalBatch(subject: string, publications: readonly Publication[]): Promise<number> {
    return Promise.resolve(this.publishBatchNow(subject, publications));
  }

  /** Number of subscribers of a subject. */
  subscriberCount(subject: string): number {
    const held = this.#subjects.get(subject);
    return held === undefined ? 0 : held instanceof Set ? held.size : 1;
  }

  /** Drops every subscription. */
  close(): Promise<void> {
    this.#subjects.clear();
    return Promise.resolve();
  }
}
