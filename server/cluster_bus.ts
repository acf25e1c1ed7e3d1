/**
 * Node-to-node messages of a cluster of `chat serve` nodes: presence, cache
 * invalidation, heartbeats, relayed private-session records. Chat fan-out to sessions
 * goes through the {@linkcode Broker}; everything the nodes tell each other goes here.
 *
 * A single server uses {@linkcode LocalClusterBus} (in process, nobody else listens);
 * several nodes use the NATS adapter (`nats_cluster_bus.ts`). Topics are logical
 * strings such as `presence` or `room.lobby`: an adapter maps them to its engine's
 * subjects, escaping what the engine reserves.
 *
 * @module
 */

/** A message as a listener gets it. */
export interface ClusterMessage {
  /** The topic it was sent to. */
  readonly topic: string;
  /** The node that sent it. */
  readonly from: string;
  /** What was sent (a JSON value). */
  readonly data: unknown;
}

/** Node-to-node publish/subscribe. */
export interface ClusterBus {
  /** This node's id, unique in the cluster (made at start). */
  readonly nodeId: string;
  /**
   * Sends a JSON value to every node listening on `topic`, this one included. Messages
   * from one node arrive at each listener in the order sent; none is delivered twice.
   * Never throws: while the engine is unreachable, messages are dropped (nodes catch up
   * from the store after {@linkcode onReconnect}).
   */
  send(topic: string, data: unknown): void;
  /**
   * Calls `handler` with each message on `topic`; resolves once the engine has
   * confirmed the subscription (a message sent after that reaches it). Resolves to a
   * function that stops listening.
   */
  listen(topic: string, handler: (message: ClusterMessage) => void): Promise<() => void>;
  /**
   * Calls `listener` each time the bus is connected again after losing its engine:
   * messages sent meanwhile may be lost, and what they carried must be read again.
   */
  onReconnect(listener: () => void): void;
  /** Stops listening and releases the engine's connection. */
  close(): Promise<void>;
}

/**
 * In-process {@linkcode ClusterBus}: every bus made from the same network hears the
 * others, synchronously and in order. One bus alone is a single server's; several make
 * a cluster inside one process (unit tests of chat logic across nodes).
 *
 * @example
 * ```ts
 * import { LocalClusterNetwork } from "./cluster_bus.ts";
 * const network = new LocalClusterNetwork();
 * const a = network.bus("a");
 * const b = network.bus("b");
 * const got: unknown[] = [];
 * await b.listen("presence", (message) => got.push(message.data));
 * a.send("presence", { online: "ann" });
 * // got: [{ online: "ann" }]
 * ```
 */
export class LocalClusterNetwork {
  readonly #listeners = new Map<string, Set<(message: ClusterMessage) => void>>();

  /** A bus on this network for the node `nodeId`. */
  bus(nodeId: string): LocalClusterBus {
    return new LocalClusterBus(nodeId, this);
  }

  /** Delivers a message to every listener of its topic. */
  deliver(message: ClusterMessage): void {
    const set = this.#listeners.get(message.topic);
    if (set === undefined) return;
    for (const handler of [...set]) handler(message);
  }

  /** Adds a listener; returns its removal. */
  add(topic: string, handler: (message: ClusterMessage) => void): () => void {
    let set = this.#listeners.get(topic);
    if (set === undefined) this.#listeners.set(topic, set = new Set());
    set.add(handler);
    return () => {
      set.delete(handler);
      if (set.size === 0 && this.#listeners.get(topic) === set) this.#listeners.delete(topic);
    };
  }
}

/** A bus of a {@linkcode LocalClusterNetwork}; alone, a single server's. */
export class LocalClusterBus implements ClusterBus {
  /** This node's id. */
  readonly nodeId: string;
  readonly #network: LocalClusterNetwork;
  readonly #stops = new Set<() => void>();
  #closed = false;

  /** A bus for `nodeId` on `network` (a network of its own when none is given). */
  constructor(nodeId = "local", network = new LocalClusterNetwork()) {
    this.nodeId = nodeId;
    this.#network = network;
  }

  /** Delivers to every listener of `topic` on the network, at once. */
  send(topic: string, data: unknown): void {
    if (this.#closed) return;
    this.#network.deliver({ topic, from: this.nodeId, data });
  }

  /** Listens on `topic`. */
  listen(topic: string, handler: (message: ClusterMessage) => void): Promise<() => void> {
    const remove = this.#network.add(topic, handler);
    const stop = () => {
      remove();
      this.#stops.delete(stop);
    };
    this.#stops.add(stop);
    return Promise.resolve(stop);
  }

  /** Never called: an in-process bus is never cut off. */
  onReconnect(_listener: () => void): void {}

  /** Stops every listener of this bus. */
  close(): Promise<void> {
    this.#closed = true;
    for (const stop of [...this.#stops]) stop();
    return Promise.resolve();
  }
}
