/**
 * A room's newest messages held in columns, not one object per message: ids, times and
 * request-id hashes in typed arrays, sender keys and nicks in arrays of shared strings,
 * request ids and texts as UTF-8 bytes in one buffer. The typed arrays' contents live
 * outside the JavaScript heap, so holding a message adds nothing for the garbage
 * collector to trace, and forgetting one leaves no garbage: a long run on the memory
 * store keeps a steady old generation (see `memory_store.ts`).
 *
 * The slots are a ring: its capacity doubles as messages come, up to the room's bound,
 * then each new message takes the oldest one's slot. The bytes are a log: appended at
 * its head, those of forgotten messages dropped from its start, the live ones moved to
 * the front (or into a buffer twice as large) when the head reaches the end.
 *
 * @example
 * ```ts
 * import { RoomRing } from "./room_ring.ts";
 * const ring = new RoomRing("lobby", 0, 2);
 * for (const id of [1, 2, 3]) {
 *   if (ring.full) ring.dropOldest();
 *   ring.push(id, 1000 + id, "alice", "Alice", `c${id}`, `text ${id}`, 0);
 * }
 * ring.length; // 2
 * ring.textAt(0); // "text 2"
 * ring.firstAtLeast(3); // 1
 * ```
 *
 * @module
 */

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Slots of a new ring (fewer when the bound is lower). */
const FIRST_SLOTS = 16;
/** Bytes of a new ring's log. */
const FIRST_BYTES = 1024;

/** A room's newest messages, oldest first, at most `bound` of them. */
export class RoomRing {
  /** The room's key. */
  readonly key: string;
  /** The ring's number in its store (the request-id index refers to it by this). */
  readonly index: number;
  /** Most messages held; the oldest is forgotten to make room for a new one. */
  readonly bound: number;
  #capacity: number;
  /** Physical slot of the oldest message. */
  #start = 0;
  #length = 0;
  #ids: Float64Array;
  #ts: Float64Array;
  /** Hash of (sender key, request id), for the store's request-id index. */
  #hashes: Int32Array;
  /** Where a message's bytes start in the log: its request id, then its text. */
  #offsets: Float64Array;
  #idBytes: Uint32Array;
  #textBytes: Uint32Array;
  #fromKeys: string[];
  #froms: string[];
  #log: Uint8Array;
  /** Where the next message's bytes go. */
  #head = 0;
  /**
   * Request ids and texts that UTF-8 cannot carry exactly (a lone surrogate): kept as
   * strings, by message id. Rare; empty for ordinary text.
   */
  #odd: Map<number, { clientId: string; text: string }> | null = null;

  /**
   * An empty ring for room `key`, holding at most `bound` messages (`Infinity`: all; a
   * fraction is rounded down).
   */
  constructor(key: string, index: number, bound: number) {
    if (!(bound >= 1)) throw new RangeError("a ring holds at least one message");
    this.key = key;
    this.index = index;
    this.bound = Math.floor(bound);
    this.#capacity = Math.min(FIRST_SLOTS, this.bound);
    this.#ids = new Float64Array(this.#capacity);
    this.#ts = new Float64Array(this.#capacity);
    this.#hashes = new Int32Array(this.#capacity);
    this.#offsets = new Float64Array(this.#capacity);
    this.#idBytes = new Uint32Array(this.#capacity);
    this.#textBytes = new Uint32Array(this.#capacity);
    this.#fromKeys = new Array<string>(this.#capacity).fill("");
    this.#froms = new Array<string>(this.#capacity).fill("");
    this.#log = new Uint8Array(FIRST_BYTES);
  }

  /** Messages held. */
  get length(): number {
    return this.#length;
  }

  /** True when a new message needs the oldest one dropped first. */
  get full(): boolean {
    return this.#length >= this.bound;
  }

  /** Slots allocated now (grows by doubling up to `bound`). */
  get capacity(): number {
    return this.#capacity;
  }

  /** Bytes of the log allocated now. */
  get logBytes(): number {
    return this.#log.length;
  }

  /**
   * Appends a message; its id must be above every id held. Call {@linkcode dropOldest}
   * first when {@linkcode full}.
   */
  push(
    id: number,
    ts: number,
    fromKey: string,
    from: string,
    clientId: string,
    text: string,
    hash: number,
  ): void {
    if (this.#length >= this.bound) throw new RangeError("the ring is full: drop the oldest first");
    if (this.#length === this.#capacity) this.#grow();
    let slot = this.#start + this.#length;
    if (slot >= this.#capacity) slot -= this.#capacity;
    // Room for the worst case (3 bytes per UTF-16 unit), then the real size is known.
    this.#reserve(3 * (clientId.length + text.length));
    const at = this.#head;
    let idBytes = writeUtf8(clientId, this.#log, at);
    let textBytes = idBytes < 0 ? -1 : writeUtf8(text, this.#log, at + idBytes);
    if (idBytes < 0 || textBytes < 0) {
      (this.#odd ??= new Map()).set(id, { clientId, text });
      idBytes = textBytes = 0;
    }
    this.#head = at + idBytes + textBytes;
    this.#ids[slot] = id;
    this.#ts[slot] = ts;
    this.#hashes[slot] = hash;
    this.#offsets[slot] = at;
    this.#idBytes[slot] = idBytes;
    this.#textBytes[slot] = textBytes;
    this.#fromKeys[slot] = fromKey;
    this.#froms[slot] = from;
    this.#length++;
  }

  /** Forgets the oldest message (none held: nothing). */
  dropOldest(): void {
    if (this.#length === 0) return;
    const slot = this.#start;
    if (this.#odd !== null) this.#odd.delete(this.#ids[slot]);
    this.#fromKeys[slot] = "";
    this.#froms[slot] = "";
    this.#start = slot + 1 === this.#capacity ? 0 : slot + 1;
    if (--this.#length === 0) {
      this.#start = 0;
      this.#head = 0;
    }
  }

  /** The id of the `k`th message held, oldest first. */
  idAt(k: number): number {
    return this.#ids[this.#slot(k)];
  }

  /** The time of the `k`th message. */
  tsAt(k: number): number {
    return this.#ts[this.#slot(k)];
  }

  /** The request-id hash the `k`th message was pushed with. */
  hashAt(k: number): number {
    return this.#hashes[this.#slot(k)];
  }

  /** The sender's account key of the `k`th message. */
  fromKeyAt(k: number): string {
    return this.#fromKeys[this.#slot(k)];
  }

  /** The sender's nick of the `k`th message. */
  fromAt(k: number): string {
    return this.#froms[this.#slot(k)];
  }

  /** The request id of the `k`th message. */
  clientIdAt(k: number): string {
    const slot = this.#slot(k);
    const odd = this.#odd?.get(this.#ids[slot]);
    if (odd !== undefined) return odd.clientId;
    const at = this.#offsets[slot];
    return decoder.decode(this.#log.subarray(at, at + this.#idBytes[slot]));
  }

  /** The text of the `k`th message. */
  textAt(k: number): string {
    const slot = this.#slot(k);
    const odd = this.#odd?.get(this.#ids[slot]);
    if (odd !== undefined) return odd.text;
    const at = this.#offsets[slot] + this.#idBytes[slot];
    return decoder.decode(this.#log.subarray(at, at + this.#textBytes[slot]));
  }

  /** The position (oldest first) of the first message with an id ≥ `id`; `length` when none. */
  firstAtLeast(id: number): number {
    let lo = 0;
    let hi = this.#length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.idAt(mid) < id) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** The position of the message with this id, or -1. */
  indexOf(id: number): number {
    const k = this.firstAtLeast(id);
    return k < this.#length && this.idAt(k) === id ? k : -1;
  }

  #slot(k: number): number {
    const slot = this.#start + k;
    return slot >= this.#capacity ? slot - this.#capacity : slot;
  }

  /** Twice the slots (at most `bound`), the messages moved to the front in order. */
  #grow(): void {
    const capacity = Math.min(this.#capacity * 2, this.bound);
    const ids = new Float64Array(capacity);
    const ts = new Float64Array(capacity);
    const hashes = new Int32Array(capacity);
    const offsets = new Float64Array(capacity);
    const idBytes = new Uint32Array(capacity);
    const textBytes = new Uint32Array(capacity);
    const fromKeys = new Array<string>(capacity).fill("");
    const froms = new Array<string>(capacity).fill("");
    for (let k = 0; k < this.#length; k++) {
      const slot = this.#slot(k);
      ids[k] = this.#ids[slot];
      ts[k] = this.#ts[slot];
      hashes[k] = this.#hashes[slot];
      offsets[k] = this.#offsets[slot];
      idBytes[k] = this.#idBytes[slot];
      textBytes[k] = this.#textBytes[slot];
      fromKeys[k] = this.#fromKeys[slot];
      froms[k] = this.#froms[slot];
    }
    this.#ids = ids;
    this.#ts = ts;
    this.#hashes = hashes;
    this.#offsets = offsets;
    this.#idBytes = idBytes;
    this.#textBytes = textBytes;
    this.#fromKeys = fromKeys;
    this.#froms = froms;
    this.#capacity = capacity;
    this.#start = 0;
  }

  /**
   * Makes room for `need` bytes at the log's head: the live bytes (from the oldest
   * message's to the head) moved to the front, into a buffer twice as large when they
   * would fill more than half of it.
   */
  #reserve(need: number): void {
    if (this.#head + need <= this.#log.length) return;
    const from = this.#length === 0 ? this.#head : this.#offsets[this.#start];
    const live = this.#head - from;
    if (2 * (live + need) > this.#log.length) {
      let size = this.#log.length * 2;
      while (size < 2 * (live + need)) size *= 2;
      const log = new Uint8Array(size);
      log.set(this.#log.subarray(from, this.#head));
      this.#log = log;
    } else {
      this.#log.copyWithin(0, from, this.#head);
    }
    this.#head = live;
    for (let k = 0; k < this.#length; k++) this.#offsets[this.#slot(k)] -= from;
  }
}

/**
 * Writes `text` as UTF-8 at `at` (room for 3 bytes per UTF-16 unit assumed); returns the
 * bytes written, or -1 when UTF-8 cannot carry it exactly (a lone surrogate).
 */
function writeUtf8(text: string, bytes: Uint8Array, at: number): number {
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0x80) {
      if (!text.isWellFormed()) return -1;
      return encoder.encodeInto(text, bytes.subarray(at)).written;
    }
    bytes[at + i] = c;
  }
  return n;
}
