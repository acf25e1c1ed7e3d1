/**
 * A {@linkcode ClusterBus} over NATS core: what the nodes of a cluster tell each other.
 *
 * Topics are escaped under `<prefix>n.` the way the broker escapes subjects (see
 * `nats_subjects.ts`). Each message is one JSON NATS message `{"f": node, "d": data}`;
 * this node's own listeners get what it sends at once, the others through NATS, in the
 * order sent. NATS resubscribes by itself after a reconnect; {@linkcode onReconnect}
 * listeners run once the server has confirmed that.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { Msg, Subscription } from "@nats-io/transport-node";
import type { ClusterBus, ClusterMessage } from "./cluster_bus.ts";
import type { NatsLink } from "./nats_connection.ts";
import { DEFAULT_NATS_MAX_PAYLOAD } from "./nats_broker.ts";
import { DEFAULT_NATS_PREFIX, natsPrefix, natsSubject } from "./nats_subjects.ts";

const log = getLogger(["chat", "server", "nats"]);

/** How a {@linkcode NatsClusterBus} is set up. */
export interface NatsClusterBusOptions {
  /** Prefix of every subject of the cluster (default `chat.`); the bus uses `<prefix>n.`. */
  readonly prefix?: string;
  /** Largest message accepted from NATS, in bytes; larger ones are dropped (default 1 MiB). */
  readonly maxPayload?: number;
  /** This node's id (default a random UUID). */
  readonly nodeId?: string;
  /** Whether {@linkcode NatsClusterBus.close} also closes the link (default false). */
  readonly ownsLink?: boolean;
}

type Handler = (message: ClusterMessage) => void;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Node-to-node messages over NATS.
 *
 * @example
 * ```ts ignore
 * import { NatsLink } from "./nats_connection.ts";
 * import { NatsClusterBus } from "./nats_cluster_bus.ts";
 * const link = await NatsLink.open("nats://127.0.0.1:4222");
 * const bus = new NatsClusterBus(link);
 * const stop = await bus.listen("presence", (m) => console.log(m.from, m.data));
 * bus.send("presence", { online: "ann" });
 * ```
 */
export class NatsClusterBus implements ClusterBus {
  /** This node's id, unique in the cluster. */
  readonly nodeId: string;
  readonly #link: NatsLink;
  readonly #namespace: string;
  readonly #maxPayload: number;
  readonly #ownsLink: boolean;
  readonly #handlers = new Map<string, Set<Handler>>();
  readonly #subscriptions = new Map<string, Subscription>();
  readonly #reconnectRemovals = new Set<() => void>();
  #closed = false;
  #dropped = 0;

  /** A bus on `link` (opened by the caller, shared with the broker). */
  constructor(link: NatsLink, options: NatsClusterBusOptions = {}) {
    this.#link = link;
    this.nodeId = options.nodeId ?? crypto.randomUUID();
    this.#namespace = `${natsPrefix(options.prefix ?? DEFAULT_NATS_PREFIX)}n.`;
    this.#maxPayload = options.maxPayload ?? DEFAULT_NATS_MAX_PAYLOAD;
    this.#ownsLink = options.ownsLink ?? false;
  }

  /** Messages dropped so far: malformed or too large, received or to be sent. */
  get dropped(): number {
    return this.#dropped;
  }

  /**
   * Sends `data` to every listener of `topic`: this node's at once, the others' over
   * NATS. Never throws; dropped (for the other nodes) while NATS is unreachable, or
   * when it does not fit NATS's maximum payload (logged).
   */
  send(topic: string, data: unknown): void {
    if (this.#closed) return;
    let bytes: Uint8Array;
    try {
      bytes = encoder.encode(JSON.stringify({ f: this.nodeId, d: data }));
    } catch (err) {
      this.#dropped++;
      log.error("cluster message on {topic} is not JSON: {err}", { topic, err });
      return;
    }
    this.#deliver({ topic, from: this.nodeId, data: JSON.parse(decoder.decode(bytes)).d ?? null });
    if (!this.#link.connected) return;
    const limit = Math.min(this.#maxPayload, this.#link.maxPayload);
    if (bytes.length > limit) {
      this.#dropped++;
      log.error("cluster message of {bytes} bytes on {topic} exceeds {limit}: not sent", {
        bytes: bytes.length,
        topic,
        limit,
      });
      return;
    }
    try {
      this.#link.connection.publish(natsSubject(this.#namespace, topic), bytes);
    } catch (err) {
      this.#dropped++;
      log.warn("sending on {topic} failed: {err}", { topic, err });
    }
  }

  /** Listens on `topic`; resolves once NATS has confirmed it, to the function that stops. */
  async listen(topic: string, handler: Handler): Promise<() => void> {
    let set = this.#handlers.get(topic);
    if (set === undefined) this.#handlers.set(topic, set = new Set());
    const own = set;
    // A wrapper per call, so that the same handler listening twice is stopped once each.
    const entry: Handler = (message) => handler(message);
    own.add(entry);
    if (!this.#closed && !this.#subscriptions.has(topic)) {
      this.#subscriptions.set(
        topic,
        this.#link.connection.subscribe(natsSubject(this.#namespace, topic), {
          callback: (err, msg) => this.#receive(topic, err, msg),
        }),
      );
    }
    const stop = () => {
      if (!own.delete(entry) || own.size > 0) return;
      if (this.#handlers.get(topic) === own) this.#handlers.delete(topic);
      const sub = this.#subscriptions.get(topic);
      this.#subscriptions.delete(topic);
      try {
        sub?.unsubscribe();
      } catch { /* connection closed */ }
    };
    if (!this.#closed) await this.#link.confirm();
    return stop;
  }

  /** Calls `listener` after each reconnect, once NATS confirmed the resubscriptions. */
  onReconnect(listener: () => void): void {
    if (this.#closed) return;
    this.#reconnectRemovals.add(this.#link.onReconnect(listener));
  }

  /** Stops every listener (and closes the link if owned). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const remove of this.#reconnectRemovals) remove();
    this.#reconnectRemovals.clear();
    for (const sub of this.#subscriptions.values()) {
      try {
        sub.unsubscribe();
      } catch { /* connection closed */ }
    }
    this.#subscriptions.clear();
    this.#handlers.clear();
    if (this.#ownsLink) await this.#link.close();
  }

  #deliver(message: ClusterMessage): void {
    const set = this.#handlers.get(message.topic);
    if (set === undefined) return;
    for (const handler of [...set]) {
      try {
        handler(message);
      } catch (err) {
        log.error("a cluster listener on {topic} failed: {err}", { topic: message.topic, err });
      }
    }
  }

  #receive(topic: string, err: Error | null, msg: Msg): void {
    if (err !== null) {
      log.warn("NATS subscription to {topic} failed: {error}", { topic, error: err.message });
      return;
    }
    if (this.#closed) return;
    if (msg.data.length > this.#maxPayload) {
      this.#dropped++;
      log.warn("dropped a cluster message of {bytes} bytes on {topic} (over {limit})", {
        bytes: msg.data.length,
        topic,
        limit: this.#maxPayload,
      });
      return;
    }
    let value: unknown;
    try {
      value = JSON.parse(decoder.decode(msg.data));
    } catch {
      value = undefined;
    }
    const from = (value as { f?: unknown } | undefined)?.f;
    if (typeof value !== "object" || value === null || typeof from !== "string") {
      this.#dropped++;
      log.warn("dropped a malformed cluster message on {topic}", { topic });
      return;
    }
    if (from === this.nodeId) return; // delivered here when sent
    this.#deliver({ topic, from, data: (value as { d?: unknown }).d ?? null });
  }
}
