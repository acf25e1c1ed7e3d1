/**
 * The shares of one online account: per node id, its sessions there. Almost every
 * account is online on one node only, so a lone share is held as itself, and a map
 * only for several: a server with 10,000 accounts online holds 10,000 of these.
 *
 * @example
 * ```ts
 * import { PresenceShares } from "./presence_shares.ts";
 * const shares = new PresenceShares<number>();
 * shares.set("node-a", 2);
 * shares.set("node-b", 1);
 * shares.delete("node-a");
 * [...shares.keys()]; // ["node-b"]
 * ```
 *
 * @module
 */

/** A small map of node id → share, in the order the nodes were added. */
export class PresenceShares<T> {
  /** The lone node and its share, while there is at most one. */
  #node: string | null = null;
  #share: T | undefined = undefined;
  /** Every node and its share, once there are several. */
  #map: Map<string, T> | null = null;

  /** Number of nodes with a share. */
  get size(): number {
    return this.#map !== null ? this.#map.size : this.#node === null ? 0 : 1;
  }

  /** Whether `node` has a share. */
  has(node: string): boolean {
    return this.#map !== null ? this.#map.has(node) : this.#node === node;
  }

  /** The share of `node`, if any. */
  get(node: string): T | undefined {
    if (this.#map !== null) return this.#map.get(node);
    return this.#node === node ? this.#share : undefined;
  }

  /** Sets the share of `node`. */
  set(node: string, share: T): this {
    if (this.#map !== null) this.#map.set(node, share);
    else if (this.#node === null || this.#node === node) {
      this.#node = node;
      this.#share = share;
    } else {
      this.#map = new Map([[this.#node, this.#share as T], [node, share]]);
      this.#node = null;
      this.#share = undefined;
    }
    return this;
  }

  /** Removes the share of `node`; false when it had none. */
  delete(node: string): boolean {
    if (this.#map !== null) return this.#map.delete(node);
    if (this.#node !== node) return false;
    this.#node = null;
    this.#share = undefined;
    return true;
  }

  /** The nodes with a share. */
  keys(): IterableIterator<string> {
    if (this.#map !== null) return this.#map.keys();
    return (this.#node === null ? [] : [this.#node]).values();
  }

  /** The shares. */
  values(): IterableIterator<T> {
    if (this.#map !== null) return this.#map.values();
    return (this.#node === null ? [] : [this.#share as T]).values();
  }
}
