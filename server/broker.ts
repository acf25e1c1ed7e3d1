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

import { roundStages, Stage } from "../transport/round_stages.ts";
import { encodeFrame, encodeFrames } from "../protocol/frame.ts";
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
  /**
   * The event's frame as it is written (length prefix included), when it is encoded
   * already (it came from another node, or was encoded for NATS): {@linkcode LocalBroker}
   * sends these bytes instead of encoding the event.
   */
  readonly frame?: Uint8Array;
  /**
   * With a `frame`: the event's fields that filters read, so that they need not decode
   * the frame (see {@linkcode briefOf}).
   */
  readonly brief?: EventBrief;
}

/** The fields of an event that subscribers filter on. */
export interface EventBrief {
  /** The event's type. */
  readonly type: string;
  /** Its id when it has a numeric one (a stored message). */
  readonly id?: number;
  /** Its recipient when it names one (a direct message). */
  readonly to?: string;
}

/**
 * What filters read of a publication's event: its `brief` when it came encoded, else the
 * event itself (whose fields are a superset).
 */
export function briefOf(publication: Publication): EventBrief {
  return publication.brief ?? (publication.event as EventBrief);
}

/** A receiver of publications (a session). */
export interface Subscriber {
  /** Its account's key, which `except` names. */
  readonly accountKey: string;
  /** Whether `publication` reaches this subscriber (not filtered for it). */
  accepts(publication: Publication): boolean;
  /**
   * Whether it accepts every publication of a batch whose filters are `filter` (one
   * look instead of one per publication); false means: ask {@linkcode accepts} for each.
   * Optional: without it every publication is asked about.
   */
  acceptsAll?(filter: BatchFilter): boolean;
  /**
   * Whether it reads the publications' events handed with its deliveries, never their
   * frames (an IRC connection): a broker then encodes no frame for a fan-out whose
   * subscribers all read events, and hands such a subscriber empty `frames`. Optional:
   * default false.
   */
  readonly readsEvents?: boolean;
  /**
   * Takes one or more whole encoded frames (`count` of them, default 1) of publications
   * it accepts; returns whether they were queued (false when it is gone or was cut off).
   * `publications[first .. first + count)` are the publications the frames are of, when
   * the caller has them (a broker's fan-out does): a receiver that reads events (an IRC
   * connection) takes their `event` instead of decoding the frames.
   */
  sendEncoded(
    frames: Uint8Array,
    count?: number,
    publications?: readonly Publication[],
    first?: number,
  ): boolean;
}

/** What the publications of a batch filter on, gathered once for all its subscribers. */
export interface BatchFilter {
  /** Originators (`from`) of the publications: a subscriber that blocks one must be asked. */
  readonly from: ReadonlySet<string>;
  /** Sessions named by an `exceptSession`. */
  readonly exceptSessions: ReadonlySet<string>;
  /** Accounts named by an `except`. */
  readonly except: ReadonlySet<string>;
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

/**
 * In-process fan-out: one map from subject to subscribers, frames encoded once.
 *
 * {@linkcode publish} delivers at the end of the current job (a microtask): the
 * publications of one turn to one subject (the messages of a room that arrived together)
 * are encoded once into one buffer, and each subscriber that accepts them all gets that
 * same buffer, so a receiver costs one queued piece, and its writer one write of bytes
 * nobody copied, however many messages the turn brought. Publications reach the
 * subscribers a subject had when they were published: a change of subscriptions
 * delivers what is pending first.
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
  /** Publications waiting for the end of the job, per subject, subjects in order of their first. */
  #pending = new Map<string, PendingPublications>();
  #flushQueued = false;
  readonly #flush = () => this.flush();

  /** Adds a subscriber to a subject; in process it is confirmed at once. */
  subscribe(subject: string, subscriber: Subscriber): Promise<void> {
    this.flush();
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
    this.flush();
    if (!(held instanceof Set)) {
      if (held === subscriber) this.#subjects.delete(subject);
      return;
    }
    held.delete(subscriber);
    if (held.size === 0) this.#subjects.delete(subject);
  }

  /**
   * The subscribers of a subject, null when none: its set (whose iteration skips what a
   * delivery deletes from it: a slow consumer cut off is unsubscribed), or its lone one.
   */
  #subscribers(subject: string): Iterable<Subscriber> | null {
    const held = this.#subjects.get(subject);
    if (held === undefined) return null;
    return held instanceof Set ? held : [held];
  }

  /**
   * Delivers to every subscriber at the end of the current job, with the other
   * publications of that job to `subject`; resolves to the accepted count then.
   */
  publish(subject: string, publication: Publication): Promise<number> {
    if (!this.#subjects.has(subject)) return Promise.resolve(0);
    let pending = this.#pending.get(subject);
    if (pending === undefined) {
      pending = { publications: [], settle: [] };
      this.#pending.set(subject, pending);
    }
    if (!this.#flushQueued) {
      this.#flushQueued = true;
      queueMicrotask(this.#flush);
    }
    const { publications, settle } = pending;
    return new Promise((resolve) => {
      publications.push(publication);
      settle.push(resolve);
    });
  }

  /**
   * Delivers every publication waiting for the end of the job now (subscriptions change
   * only after it, so each reaches the subscribers its subject had when published).
   */
  flush(): void {
    this.#flushQueued = false;
    if (this.#pending.size === 0) return;
    if (roundStages.on) roundStages.markFirst(Stage.FanoutStart);
    const pending = this.#pending;
    this.#pending = new Map();
    for (const [subject, { publications, settle }] of pending) {
      if (publications.length === 1) {
        settle[0](this.publishNow(subject, publications[0]));
        continue;
      }
      const counts = this.#deliverBatch(subject, publications);
      for (let i = 0; i < settle.length; i++) settle[i](counts[i]);
    }
    if (roundStages.on) roundStages.mark(Stage.FanoutEnd);
  }

  /** The synchronous core of {@linkcode publish}, at once (without the job's others). */
  publishNow(subject: string, publication: Publication): number {
    if (this.#pending.size > 0) this.flush();
    const subscribers = this.#subscribers(subject);
    if (subscribers === null) return 0;
    let frame: Uint8Array | undefined;
    let alone: Publication[] | undefined;
    let accepted = 0;
    for (const subscriber of subscribers) {
      if (!subscriber.accepts(publication)) continue;
      const frames = subscriber.readsEvents === true
        ? NO_FRAMES
        : frame ??= publication.frame ?? encodeFrame(publication.event);
      if (subscriber.sendEncoded(frames, 1, alone ??= [publication], 0)) accepted++;
    }
    return accepted;
  }

  /** Delivers a batch (after what is pending); resolves to how many accepted some of it. */
  publishBatch(subject: string, publications: readonly Publication[]): Promise<number> {
    return Promise.resolve(this.publishBatchNow(subject, publications));
  }

  /**
   * The synchronous core of {@linkcode publishBatch}, after the publications pending for
   * the end of the job (they were published first). Resolves to how many subscribers
   * accepted at least one.
   */
  publishBatchNow(subject: string, publications: readonly Publication[]): number {
    this.flush();
    if (!this.#subjects.has(subject) || publications.length === 0) return 0;
    let reached = 0;
    this.#deliverBatch(subject, publications, () => reached++);
    return reached;
  }

  /**
   * Encodes `publications` once into one buffer and hands each subscriber of `subject`
   * that accepts them all that buffer, the others views of the runs of frames they
   * accept. Returns how many subscribers accepted each publication; `reached` is called
   * for each subscriber that took at least one.
   */
  #deliverBatch(
    subject: string,
    publications: readonly Publication[],
    reached?: () => void,
  ): number[] {
    const counts = new Array<number>(publications.length).fill(0);
    const subscribers = this.#subscribers(subject);
    if (subscribers === null) return counts;
    // Encoded when a subscriber that takes frames is first met (none: all read events).
    let encoded: { bytes: Uint8Array; ends: number[] } | undefined;
    const framesOf = () =>
      encoded ??= preEncoded(publications) ?? encodeFrames(publications.map((p) => p.event));
    const filter = batchFilter(publications);
    const n = publications.length;
    let all = 0;
    for (const subscriber of subscribers) {
      const whole = filter === null ||
        (subscriber.acceptsAll !== undefined
          ? subscriber.acceptsAll(filter)
          : filter.from.size === 0 && filter.exceptSessions.size === 0 &&
            !filter.except.has(subscriber.accountKey));
      const readsEvents = subscriber.readsEvents === true;
      if (whole) {
        if (
          subscriber.sendEncoded(readsEvents ? NO_FRAMES : framesOf().bytes, n, publications, 0)
        ) {
          all++;
          reached?.();
        }
        continue;
      }
      let queued = false;
      let runStart = -1;
      for (let i = 0; i <= n; i++) {
        const takes = i < n && subscriber.accepts(publications[i]);
        if (takes && runStart < 0) runStart = i;
        if (!takes && runStart >= 0) {
          let run: Uint8Array = NO_FRAMES;
          if (!readsEvents) {
            const { bytes, ends } = framesOf();
            run = runStart === 0 && i === n
              ? bytes
              : bytes.subarray(runStart === 0 ? 0 : ends[runStart - 1], ends[i - 1]);
          }
          if (subscriber.sendEncoded(run, i - runStart, publications, runStart)) {
            queued = true;
            for (let j = runStart; j < i; j++) counts[j]++;
          }
          runStart = -1;
        }
      }
      if (queued) reached?.();
    }
    if (all > 0) { for (let i = 0; i < n; i++) counts[i] += all; }
    return counts;
  }

  /** In process every subscriber is local: {@linkcode publish}. */
  publishLocal(subject: string, publication: Publication): Promise<number> {
    return this.publish(subject, publication);
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

  /** Drops every subscription (what is pending reaches nobody: resolved with 0). */
  close(): Promise<void> {
    this.#subjects.clear();
    this.flush();
    return Promise.resolve();
  }
}

/** Publications of one subject waiting for the end of the job, and their promises. */
interface PendingPublications {
  readonly publications: Publication[];
  readonly settle: ((accepted: number) => void)[];
}

/**
 * What `publications` filter on, or null when none filters at all (every subscriber
 * takes every one).
 */
function batchFilter(publications: readonly Publication[]): BatchFilter | null {
  let from: Set<string> | null = null;
  let exceptSessions: Set<string> | null = null;
  let except: Set<string> | null = null;
  for (const p of publications) {
    if (p.from !== undefined) (from ??= new Set()).add(p.from);
    if (p.exceptSession !== undefined) (exceptSessions ??= new Set()).add(p.exceptSession);
    if (p.except !== undefined) { for (const key of p.except) (except ??= new Set()).add(key); }
  }
  if (from === null && exceptSessions === null && except === null) return null;
  return { from: from ?? NONE, exceptSessions: exceptSessions ?? NONE, except: except ?? NONE };
}

const NONE: ReadonlySet<string> = new Set();

/** The frames handed to a subscriber that reads events when none were encoded. */
const NO_FRAMES: Uint8Array = new Uint8Array(0);

/**
 * The frames of publications that all came encoded, back to back, and where each ends
 * (a view, no copy, when they lie in order in one buffer); null when one has no frame.
 */
function preEncoded(
  publications: readonly Publication[],
): { bytes: Uint8Array; ends: number[] } | null {
  const ends: number[] = [];
  let at = 0;
  let contiguous = true;
  const first = publications[0].frame;
  if (first === undefined) return null;
  for (const { frame } of publications) {
    if (frame === undefined) return null;
    if (frame.buffer !== first.buffer || frame.byteOffset !== first.byteOffset + at) {
      contiguous = false;
    }
    at += frame.length;
    ends.push(at);
  }
  if (contiguous) return { bytes: new Uint8Array(first.buffer, first.byteOffset, at), ends };
  const bytes = new Uint8Array(at);
  for (let i = 0; i < publications.length; i++) {
    bytes.set(publications[i].frame!, i === 0 ? 0 : ends[i - 1]);
  }
  return { bytes, ends };
}
