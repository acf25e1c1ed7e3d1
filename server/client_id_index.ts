/**
 * The memory store's index of held room messages by (sender key, request id), in typed
 * arrays: an open-addressing hash table (linear probing, deletion by backward shift)
 * of the pair's 32-bit hash, the message id and the number of the room ring holding it.
 * No string and no object per message: the caller checks a candidate's sender and
 * request id against its ring (two pairs may share a hash).
 *
 * The hash is keyed: HalfSipHash-1-3 (Aumasson and Bernstein's 32-bit SipHash, the
 * rounds Linux's `hsiphash` uses for its hash tables) under a random 64-bit key drawn
 * per index. Request ids are chosen by clients (any 1 to 64 UTF-16 units), and with an
 * unkeyed hash (FNV-1a before) anyone can compute, offline, thousands of ids with the
 * same 32-bit hash (FNV-1a inverts one unit at a time): all of them land in one probe
 * run, every later lookup near it walks the whole run, and one sender's messages cost
 * every sender CPU. A bigger table does not help (equal hashes stay together), a key
 * does: without it nobody can tell which ids collide, and HalfSipHash is a keyed
 * function built to leave no key-independent collisions, which cheaper keyed mixes
 * (a seeded FNV or Murmur: a random start, the same public step) are known to leave
 * (Aumasson, Bernstein and Boßlet, "Hash-flooding DoS reloaded", 2012). The only
 * output an attacker sees is the server's timing, far too blunt to search 2^32 hashes.
 * Its cost: one round (14 32-bit operations) per two UTF-16 units, plus four: 80–160
 * ns for a UUID request id from an 8-unit sender, once per message, 25–60 ns more than
 * FNV-1a in the same runs (1.3–1.7×; a memory store append costs microseconds).
 *
 * Size: one entry per held room message, in at most `max(64, 4 × the most held at
 * once)` slots of 16 bytes (the table doubles when half full, and never shrinks).
 * Lookups walk the run of occupied slots from the hash's home slot; under a random key
 * at most half full that run is short (2.5 slots on average for a miss), however the
 * ids were chosen.
 *
 * @example
 * ```ts
 * import { ClientIdIndex } from "./client_id_index.ts";
 * const index = new ClientIdIndex();
 * const hash = index.hash("alice", "c1");
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

/** A HalfSipHash key: two 32-bit words. */
export type ClientIdKey = readonly [number, number];

/** A fresh random key. */
export function randomClientIdKey(): ClientIdKey {
  const [k0, k1] = crypto.getRandomValues(new Uint32Array(2));
  return [k0, k1];
}

/**
 * HalfSipHash-1-3 (32-bit output) under the key `(k0, k1)` of the UTF-16LE bytes of
 * `fromKey`'s length (one unit), `fromKey` and `clientId`: the length makes the
 * boundary part of the input ("ab"+"c" and "a"+"bc" differ). As an int32.
 */
export function clientIdHash(fromKey: string, clientId: string, k0: number, k1: number): number {
  let v0 = k0 | 0;
  let v1 = k1 | 0;
  let v2 = 0x6c796765 ^ k0;
  let v3 = 0x74656462 ^ k1;
  const a = fromKey.length;
  const n = 1 + a + clientId.length;
  // Blocks of two units; the last block holds the unit left (or none) and the byte
  // count's low byte. Each block gets one round (SipHash's c = 1), then, after
  // v2 ^= 0xff, three finalization rounds (d = 3): one round body for all of them.
  const last = n >> 1;
  for (let r = 0; r <= last + 3; r++) {
    let m = 0;
    if (r < last) {
      const i = 2 * r;
      m = unitAt(fromKey, clientId, a, i) | (unitAt(fromKey, clientId, a, i + 1) << 16);
    } else if (r === last) {
      m = (2 * n) << 24 | ((n & 1) === 1 ? unitAt(fromKey, clientId, a, n - 1) : 0);
    } else if (r === last + 1) v2 ^= 0xff;
    v3 ^= m;
    v0 = (v0 + v1) | 0;
    v1 = (v1 << 5) | (v1 >>> 27);
    v1 ^= v0;
    v0 = (v0 << 16) | (v0 >>> 16);
    v2 = (v2 + v3) | 0;
    v3 = (v3 << 8) | (v3 >>> 24);
    v3 ^= v2;
    v0 = (v0 + v3) | 0;
    v3 = (v3 << 7) | (v3 >>> 25);
    v3 ^= v0;
    v2 = (v2 + v1) | 0;
    v1 = (v1 << 13) | (v1 >>> 19);
    v1 ^= v2;
    v2 = (v2 << 16) | (v2 >>> 16);
    v0 ^= m;
  }
  return v1 ^ v3;
}

/** Unit `i` of (fromKey's length, fromKey, clientId); `a` is fromKey's length. */
function unitAt(fromKey: string, clientId: string, a: number, i: number): number {
  return i === 0 ? a & 0xffff : i <= a ? fromKey.charCodeAt(i - 1) : clientId.charCodeAt(i - 1 - a);
}

/** Options of {@linkcode ClientIdIndex}. */
export interface ClientIdIndexOptions {
  /**
   * The hash's key. Default: a random one ({@linkcode randomClientIdKey}). Fix it only
   * where a test needs pairs known to collide.
   */
  key?: ClientIdKey;
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
  readonly #k0: number;
  readonly #k1: number;

  /** An empty index, its hash keyed by `options.key` (default random). */
  constructor(options: ClientIdIndexOptions = {}) {
    const [k0, k1] = options.key ?? randomClientIdKey();
    this.#k0 = k0 | 0;
    this.#k1 = k1 | 0;
  }

  /** The hash of a (sender key, request id) pair under this index's key. */
  hash(fromKey: string, clientId: string): number {
    return clientIdHash(fromKey, clientId, this.#k0, this.#k1);
  }

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

  /**
   * Slots a lookup of `hash` reads: from its home slot to the first free one (what a
   * miss costs, and the most any {@linkcode candidate} walk reads).
   */
  probeLength(hash: number): number {
    const mask = this.#mask;
    let n = 1;
    for (let i = hash & mask; this.#ids[i] !== 0; i = (i + 1) & mask) n++;
    return n;
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
