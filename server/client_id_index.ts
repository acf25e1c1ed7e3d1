/**
 * The memory store's index of held room messages by (sender key, request id), in typed
 * arrays: an open-addressing hash table (linear probing, deletion by backward shift)
 * of the pair's 32-bit hash, the message id and the number of the room ring holding it.
 * No string and no object per message: the caller checks a candidate's sender and
 * request id against its ring (two pairs may share a hash).
 *
 * @example
 * ```ts
 * import { ClientIdIndex, clientIdHash } from "./client_id_index.ts";
 * const index = new ClientIdIndex();
 * const hash = clientIdHash("alice", "c1");
 * index.add(hash, 7, 0);
 * const slot = index.candidate(hash);
 * [index.idAt(slot), index.ringAt(slot)]; // [7, 0]
 * index.candidate(hash, slot); // -1: no other entry with this hash
 * index.remove(hash, 7);
 * index.size; // 0
 * ```
 *
 * @module
 */

/** The FNV-1a hash of `fromKey`, a separator and `clientId` (UTF-16 units), as an int32. */
export function clientIdHash(fromKey: string, clientId: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < fromKey.length; i++) h = Math.imul(h ^ fromKey.charCodeAt(i), 0x01000193);
  h = Math.imul(h ^ 0xffff, 0x01000193);
  for (let i = 0; i < clientId.length; i++) {
    h = Math.imul(h ^ clientId.charCodeAt(i), 0x01000193);
  }
  // A final mix, so the table's low bits depend on every unit.
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  return h | 0;
}

/** Slots of a new index. */
const FIRST_SLOTS = 64;

/** Hash → (message id, ring number) for every held room message. */
export class ClientIdIndex {
  #mask = FIRST_SLOTS - 1;
  #hashes = new Int32Array(FIRST_SLOTS);
  /** Message ids; 0 marks a free slot (ids start at 1). */
  #ids = new Float64Array(FIRST_SLOTS);
  #rings = new Int32Array(FIRST_SLOTS);
  #size = 0;

  /** Entries held. */
  get size(): number {
    return this.#size;
  }

  /** Slots allocated (at least twice the entries). */
  get capacity(): number {
    return this.#mask + 1;
  }

  /** Adds an entry; `id` must be at least 1 and not held already. */
  add(hash: number, id: number, ring: number): void {
    if (2 * (this.#size + 1) > this.#mask + 1) this.#resize(2 * (this.#mask + 1));
    this.#place(hash, id, ring);
    this.#size++;
  }

  /**
   * The next slot holding an entry with this hash: the first with `after` -1, then the
   * one after slot `after`; -1 when there is no other. (Read it with {@linkcode idAt}
   * and {@linkcode ringAt} before changing the index.)
   */
  candidate(hash: number, after = -1): number {
    const mask = this.#mask;
    let i = after < 0 ? hash & mask : (after + 1) & mask;
    for (; this.#ids[i] !== 0; i = (i + 1) & mask) {
      if (this.#hashes[i] === hash) return i;
    }
    return -1;
  }

  /** The message id in a slot {@linkcode candidate} gave. */
  idAt(slot: number): number {
    return this.#ids[slot];
  }

  /** The ring number in a slot {@linkcode candidate} gave. */
  ringAt(slot: number): number {
    return this.#rings[slot];
  }

  /** Removes the entry of message `id` filed under `hash`; false when there is none. */
  remove(hash: number, id: number): boolean {
    const mask = this.#mask;
    let i = hash & mask;
    while (this.#ids[i] !== id) {
      if (this.#ids[i] === 0) return false;
      i = (i + 1) & mask;
    }
    // Backward shift: pull later entries of the cluster into the hole when their home
    // slot is not between the hole and them.
    for (let j = (i + 1) & mask; this.#ids[j] !== 0; j = (j + 1) & mask) {
      const home = this.#hashes[j] & mask;
      const stays = i <= j ? i < home && home <= j : i < home || home <= j;
      if (stays) continue;
      this.#hashes[i] = this.#hashes[j];
      this.#ids[i] = this.#ids[j];
      this.#rings[i] = this.#rings[j];
      i = j;
    }
    this.#ids[i] = 0;
    this.#size--;
    return true;
  }

  #place(hash: number, id: number, ring: number): void {
    const mask = this.#mask;
    let i = hash & mask;
    while (this.#ids[i] !== 0) i = (i + 1) & mask;
    this.#hashes[i] = hash;
    this.#ids[i] = id;
    this.#rings[i] = ring;
  }

  #resize(slots: number): void {
    const hashes = this.#hashes;
    const ids = this.#ids;
    const rings = this.#rings;
    this.#mask = slots - 1;
    this.#hashes = new Int32Array(slots);
    this.#ids = new Float64Array(slots);
    this.#rings = new Int32Array(slots);
    for (let i = 0; i < ids.length; i++) {
      if (ids[i] !== 0) this.#place(hashes[i], ids[i], rings[i]);
    }
  }
}
