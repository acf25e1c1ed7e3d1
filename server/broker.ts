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

/** A publication on its way to subscribers, with its frame encoded once for all of them. */
export interface Delivery extends Publication {
  /** The encoded frame; computed on first use and shared by every receiver. */
  frame(): Uint8Array;
}

/** A receiver of deliveries (a session). */
export interface Subscriber {
  /** Takes a delivery; returns whether it was accepted (not filtered or refused). */
  deliver(delivery: Delivery): boolean;
}

/** Subject-based fan-out. */
export interface Broker {
  /** Adds a subscriber to a subject (idempotent). */
  subscribe(subject: string, subscriber: Subscriber): void;
  /** Removes a subscriber from a subject (idempotent). */
  unsubscribe(subject: string, subscriber: Subscriber): void;
  /** Delivers to every subscriber of `subject`; resolves to how many accepted it. */
  publish(subject: string, publication: Publication): Promise<number>;
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

/**
 * In-process fan-out: one map from subject to subscribers, frames encoded once.
 *
 * @example
 * ```ts
 * import { LocalBroker } from "./broker.ts";
 * const broker = new LocalBroker();
 * broker.subscribe("room.lobby", { deliver: (d) => d.frame().length > 0 });
 * await broker.publish("room.lobby", { event: { type: "notice", code: "info", text: "hi" } });
 * ```
 */
export class LocalBroker implements Broker {
  readonly #subjects = new Map<string, Set<Subscriber>>();

  /** Adds a subscriber to a subject. */
  subscribe(subject: string, subscriber: Subscriber): void {
    let set = this.#subjects.get(subject);
    if (set === undefined) {
      set = new Set();
      this.#subjects.set(subject, set);
    }
    set.add(subscriber);
  }

  /** Removes a subscriber from a subject. */
  unsubscribe(subject: string, subscriber: Subscriber): void {
    const set = this.#subjects.get(subject);
    if (set === undefined) return;
    set.delete(subscriber);
    if (set.size === 0) this.#subjects.delete(subject);
  }

  /** Delivers synchronously to every subscriber; resolves to the accepted count. */
  publish(subject: string, publication: Publication): Promise<number> {
    return Promise.resolve(this.publishNow(subject, publication));
  }

  /** The synchronous core of {@linkcode publish}. */
  publishNow(subject: string, publication: Publication): number {
    const set = this.#subjects.get(subject);
    if (set === undefined || set.size === 0) return 0;
    let frame: Uint8Array | undefined;
    const delivery: Delivery = {
      ...publication,
      frame: () => frame ??= encodeFrame(publication.event),
    };
    let accepted = 0;
    // Copy: a delivery may cut a slow consumer off, which unsubscribes it.
    for (const subscriber of [...set]) {
      if (subscriber.deliver(delivery)) accepted++;
    }
    return accepted;
  }

  /** Number of subscribers of a subject. */
  subscriberCount(subject: string): number {
    return this.#subjects.get(subject)?.size ?? 0;
  }

  /** Drops every subscription. */
  close(): Promise<void> {
    this.#subjects.clear();
    return Promise.resolve();
  }
}
