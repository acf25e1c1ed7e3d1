/**
 * Keeps the rooms cached on every node of a cluster true: the node that changes a room's
 * members or topic (after storing the change) tells the others on the `rooms` topic of
 * the {@linkcode ClusterBus}, and each applies it to its cache and to its own sessions
 * (subscribing or unsubscribing them). Blocks travel with presence
 * (`cluster_presence.ts`); contacts are read from the store, never cached.
 *
 * On one server nobody else listens: the messages go nowhere.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { ClusterBus, ClusterMessage } from "./cluster_bus.ts";

const log = getLogger(["chat", "server", "cluster_cache"]);

/** The bus topic of room changes. */
export const ROOMS_TOPIC = "rooms";

/** A change to a room, as stored by the node that made it. */
export type RoomChange =
  | { t: "member"; room: string; key: string; added: boolean }
  | { t: "topic"; room: string; topic: string; by: string };

/**
 * Sends this node's room changes and applies the others'.
 *
 * @example
 * ```ts
 * import { LocalClusterNetwork } from "./cluster_bus.ts";
 * import { RoomSync } from "./cluster_cache.ts";
 * const network = new LocalClusterNetwork();
 * const seen: unknown[] = [];
 * const b = new RoomSync(network.bus("b"), (change) => seen.push(change));
 * await b.start();
 * new RoomSync(network.bus("a"), () => {}).send({ t: "topic", room: "lobby", topic: "hi", by: "Ann" });
 * // seen: [{ t: "topic", room: "lobby", topic: "hi", by: "Ann" }]
 * ```
 */
export class RoomSync {
  readonly #bus: ClusterBus;
  readonly #apply: (change: RoomChange) => void;
  #stop: (() => void) | undefined;

  /** Applies the other nodes' changes with `apply`. */
  constructor(bus: ClusterBus, apply: (change: RoomChange) => void) {
    this.#bus = bus;
    this.#apply = apply;
  }

  /** Listens to the other nodes. */
  async start(): Promise<void> {
    this.#stop = await this.#bus.listen(ROOMS_TOPIC, (message) => this.#receive(message));
  }

  /** Tells the other nodes of a change this node made (and applied). */
  send(change: RoomChange): void {
    this.#bus.send(ROOMS_TOPIC, change);
  }

  /** Stops listening. */
  close(): void {
    this.#stop?.();
  }

  #receive({ from, data }: ClusterMessage): void {
    if (from === this.#bus.nodeId) return;
    try {
      this.#apply(data as RoomChange);
    } catch (err) {
      log.error("applying a room change from {from} failed: {err}", { from, err });
    }
  }
}
