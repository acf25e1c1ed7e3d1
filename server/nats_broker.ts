/**
 * A {@linkcode Broker} over NATS core: the fan-out of a cluster of `chat serve` nodes.
 *
 * Each node keeps a {@linkcode LocalBroker} for its own sessions and holds one NATS
 * subscription per logical subject (`user.<key>`, `room.<key>`, `all`) that has local
 * subscribers, dropped with the last of them. A publication (its event and its filters:
 * `from`, `except`, `exceptSession`) is delivered to the publishing node's own sessions
 * at once, and sent over NATS as one message (a batch too: one message) carrying its
 * frames as encoded for the sessions (`nats_envelope.ts`); every other node hands those
 * bytes to its sessions through its LocalBroker, filters applied, without encoding the
 * event again. The frames are encoded once, for this node's sessions and for NATS.
 * Publications of one node on one subject reach every node in the order published.
 *
 * Subjects are escaped injectively under a prefix (`chat.b.<kind>.<key>`, see
 * `nats_subjects.ts`), so keys cannot make wildcards or reach other subjects.
 *
 * While NATS is unreachable publications reach this node's sessions only; the others
 * catch up from the store after {@linkcode NatsLink.onReconnect}.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { Msg, Subscription } from "@nats-io/transport-node";
import { type Broker, LocalBroker, type Publication, type Subscriber } from "./broker.ts";
import { decodeEnvelope, encodeEnvelope, NatsEnvelopeError } from "./nats_envelope.ts";
import type { NatsLink } from "./nats_connection.ts";
import { DEFAULT_NATS_PREFIX, natsPrefix, natsSubject } from "./nats_subjects.ts";

const log = getLogger(["chat", "server", "nats"]);

/** Default bound of a message accepted from NATS, in bytes (NATS's own default). */
export const DEFAULT_NATS_MAX_PAYLOAD = 1024 * 1024;

/** How a {@linkcode NatsBroker} is set up. */
export interface NatsBrokerOptions {
  /** Prefix of every subject of the cluster (default `chat.`); the broker uses `<prefix>b.`. */
  readonly prefix?: string;
  /** Largest message accepted from NATS, in bytes; larger ones are dropped (default 1 MiB). */
  readonly maxPayload?: number;
  /** This node's id, which marks what it sends (default a random UUID). */
  readonly nodeId?: string;
  /** Whether {@linkcode NatsBroker.close} also closes the link (default false). */
  readonly ownsLink?: boolean;
}

/** `publication` with `frame` (its event's, encoded), unless it has its own. */
function withFrame(publication: Publication, frame: Uint8Array): Publication {
  return publication.frame === undefined ? { ...publication, frame } : publication;
}

/**
 * Fan-out across the nodes sharing a NATS.
 *
 * @example
 * ```ts ignore
 * import { NatsLink } from "./nats_connection.ts";
 * import { NatsBroker } from "./nats_broker.ts";
 * const link = await NatsLink.open("nats://127.0.0.1:4222");
 * const broker = new NatsBroker(link, { prefix: "school." });
 * await broker.subscribe("room.lobby", session); // confirmed by NATS
 * await broker.publish("room.lobby", { event, from: "ann" }); // to every node
 * ```
 */
export class NatsBroker implements Broker {
  /** This node's id, marking what it sends. */
  readonly nodeId: string;
  readonly #link: NatsLink;
  readonly #local = new LocalBroker();
  readonly #namespace: string;
  readonly #maxPayload: number;
  readonly #ownsLink: boolean;
  readonly #subscriptions = new Map<string, Subscription>();
  #closed = false;
  #dropped = 0;

  /** A broker on `link` (opened by the caller, shared with the cluster bus). */
  constructor(link: NatsLink, options: NatsBrokerOptions = {}) {
    this.#link = link;
    this.nodeId = options.nodeId ?? crypto.randomUUID();
    this.#namespace = `${natsPrefix(options.prefix ?? DEFAULT_NATS_PREFIX)}b.`;
    this.#maxPayload = options.maxPayload ?? DEFAULT_NATS_MAX_PAYLOAD;
    this.#ownsLink = options.ownsLink ?? false;
  }

  /** Messages dropped so far: malformed or too large, received or to be sent. */
  get dropped(): number {
    return this.#dropped;
  }

  /**
   * Adds a subscriber; resolves once NATS has confirmed the node's subscription to the
   * subject (at once when it already had one). While NATS is unreachable it resolves
   * after the reconnect, whose resubscription covers it.
   */
  async subscribe(subject: string, subscriber: Subscriber): Promise<void> {
    if (this.#closed) return;
    await this.#local.subscribe(subject, subscriber);
    if (this.#closed) return;
    if (!this.#subscriptions.has(subject)) {
      const sub = this.#link.connection.subscribe(natsSubject(this.#namespace, subject), {
        callback: (err, msg) => this.#receive(subject, err, msg),
      });
      this.#subscriptions.set(subject, sub);
    }
    await this.#link.confirm();
  }

  /** Removes a subscriber; the node leaves the NATS subject with its last one. */
  unsubscribe(subject: string, subscriber: Subscriber): void {
    this.#local.unsubscribe(subject, subscriber);
    if (this.#local.subscriberCount(subject) > 0) return;
    const sub = this.#subscriptions.get(subject);
    if (sub === undefined) return;
    this.#subscriptions.delete(subject);
    try {
      sub.unsubscribe();
    } catch { /* connection closed */ }
  }

  /**
   * Delivers to this node's subscribers and sends the publication to the others.
   * Resolves to how many subscribers OF THIS NODE accepted it: the other nodes'
   * deliveries are not counted (nothing comes back from them).
   */
  publish(subject: string, publication: Publication): Promise<number> {
    if (this.#closed) return Promise.resolve(0);
    const { bytes, frames } = encodeEnvelope(this.nodeId, [publication]);
    // Without local subscribers nothing here needs the frames as publications of their own.
    const accepted = this.#local.subscriberCount(subject) === 0
      ? 0
      : this.#local.publishNow(subject, withFrame(publication, frames[0]));
    this.#send(subject, [publication], bytes);
    return Promise.resolve(accepted);
  }

  /**
   * Delivers a batch to this node's subscribers and sends it to the others as one NATS
   * message (split in order only when it exceeds the server's maximum payload).
   * Resolves to how many subscribers of this node accepted some of it.
   */
  publishBatch(subject: string, publications: readonly Publication[]): Promise<number> {
    if (this.#closed || publications.length === 0) return Promise.resolve(0);
    const { bytes, frames } = encodeEnvelope(this.nodeId, publications);
    const accepted = this.#local.subscriberCount(subject) === 0
      ? 0
      : this.#local.publishBatchNow(subject, publications.map((p, i) => withFrame(p, frames[i])));
    this.#send(subject, publications, bytes);
    return Promise.resolve(accepted);
  }

  /** Delivers to this node's subscribers only, nothing over NATS (Broker.publishLocal). */
  publishLocal(subject: string, publication: Publication): Promise<number> {
    if (this.#closed) return Promise.resolve(0);
    return Promise.resolve(this.#local.publishNow(subject, publication));
  }

  /** {@linkcode publishBatch} to this node's subscribers only. */
  publishLocalBatch(subject: string, publications: readonly Publication[]): Promise<number> {
    if (this.#closed || publications.length === 0) return Promise.resolve(0);
    return Promise.resolve(this.#local.publishBatchNow(subject, publications));
  }

  /** Number of NATS subjects this node is subscribed to (one per subject with subscribers). */
  get natsSubscriptionCount(): number {
    return this.#subscriptions.size;
  }

  /** Number of this node's subscribers of a subject. */
  subscriberCount(subject: string): number {
    return this.#local.subscriberCount(subject);
  }

  /** Leaves every NATS subject and drops local subscribers (closes the link if owned). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const sub of this.#subscriptions.values()) {
      try {
        sub.unsubscribe();
      } catch { /* connection closed */ }
    }
    this.#subscriptions.clear();
    await this.#local.close();
    if (this.#ownsLink) await this.#link.close();
  }

  /** Sends publications (`bytes`: their envelope when encoded already). */
  #send(
    subject: string,
    publications: readonly Publication[],
    bytes = encodeEnvelope(this.nodeId, publications).bytes,
  ): void {
    if (!this.#link.connected) return; // the others catch up after the reconnect
    const limit = Math.min(this.#maxPayload, this.#link.maxPayload);
    if (bytes.length > limit) {
      if (publications.length === 1) {
        this.#dropped++;
        log.error("a publication of {bytes} bytes on {subject} exceeds NATS's {limit}: not sent", {
          bytes: bytes.length,
          subject,
          limit,
        });
        return;
      }
      const half = Math.ceil(publications.length / 2);
      this.#send(subject, publications.slice(0, half));
      this.#send(subject, publications.slice(half));
      return;
    }
    try {
      this.#link.connection.publish(natsSubject(this.#namespace, subject), bytes);
    } catch (err) {
      this.#dropped++;
      log.warn("publishing on {subject} failed: {err}", { subject, err });
    }
  }

  #receive(subject: string, err: Error | null, msg: Msg): void {
    if (err !== null) {
      log.warn("NATS subscription to {subject} failed: {error}", { subject, error: err.message });
      return;
    }
    if (this.#closed) return;
    if (msg.data.length > this.#maxPayload) {
      this.#dropped++;
      log.warn("dropped a NATS message of {bytes} bytes on {subject} (over {limit})", {
        bytes: msg.data.length,
        subject,
        limit: this.#maxPayload,
      });
      return;
    }
    let decoded: ReturnType<typeof decodeEnvelope>;
    try {
      // A copy (msg.data may be a Node Buffer, whose slice() is a view): the frames are
      // queued to sessions, past the life of NATS's read buffer.
      decoded = decodeEnvelope(new Uint8Array(msg.data));
    } catch (err) {
      if (!(err instanceof NatsEnvelopeError)) throw err;
      this.#dropped++;
      log.warn("dropped a NATS message on {subject} this node cannot read: {reason}", {
        subject,
        reason: err.message,
      });
      return;
    }
    if (decoded.node === this.nodeId) return; // delivered here when published
    const { publications } = decoded;
    if (publications.length === 1) this.#local.publishNow(subject, publications[0]);
    else this.#local.publishBatchNow(subject, publications);
  }
}
