/**
 * Buffers that coalesced writes are laid out in, reused from write to write.
 *
 * A connection's writer joins everything queued since its last write into one buffer
 * (`OutboundQueue`). A fan-out does that for every receiver at every turn of
 * the event loop: at 3 million deliveries a second, a hundred thousand new arrays a
 * second, each zeroed when made, then found dead and freed by the garbage collector
 * (array buffers are swept one by one, inside its pauses). A channel is done with the
 * bytes of a write once the write settles (the `ByteChannel` contract), so the
 * same buffer can carry the next write, of this connection or another.
 *
 * Buffers come in power-of-two sizes from {@linkcode MIN_WRITE_BUFFER} to
 * {@linkcode MAX_WRITE_BUFFER} (larger writes get an array of their own). At most
 * `maxPooledBytes` wait in the pool: a bound an idle server may keep (no timer lets them
 * go: a timer would outlive every test that writes).
 *
 * @module
 */

/** The smallest pooled buffer. */
export const MIN_WRITE_BUFFER = 4 * 1024;
/** The largest pooled buffer; a longer write gets an array of its own. */
export const MAX_WRITE_BUFFER = 256 * 1024;

/**
 * A pool of write buffers by size class.
 *
 * @example
 * ```ts
 * import { WriteBufferPool } from "./write_buffers.ts";
 * const pool = new WriteBufferPool(1024 * 1024);
 * const batch = pool.concat([new Uint8Array([1]), new Uint8Array([2, 3])]); // [1, 2, 3]
 * // ... once the write of `batch` has settled:
 * pool.give(batch);
 * pool.concat([new Uint8Array(5)]).buffer === batch.buffer; // true: the same buffer again
 * ```
 */
export class WriteBufferPool {
  /** Most bytes of free buffers kept. */
  readonly maxPooledBytes: number;
  /** Free buffers per size class (index: log2 of the size minus that of the smallest). */
  readonly #free: ArrayBuffer[][] = [];
  #pooledBytes = 0;
  /** Buffers handed out by {@linkcode concat} and not given back. */
  readonly #out = new WeakSet<ArrayBuffer>();

  /** A pool keeping at most `maxPooledBytes` of free buffers. */
  constructor(maxPooledBytes: number) {
    this.maxPooledBytes = maxPooledBytes;
    for (let size = MIN_WRITE_BUFFER; size <= MAX_WRITE_BUFFER; size *= 2) this.#free.push([]);
  }

  /** Bytes of the free buffers waiting in the pool. */
  get pooledBytes(): number {
    return this.#pooledBytes;
  }

  /**
   * `pieces` laid out one after the other in one buffer: a view of the start of a pooled
   * buffer (its bytes are all overwritten: nothing is zeroed), or a new array when they
   * are longer than {@linkcode MAX_WRITE_BUFFER}. Hand it back with {@linkcode give} once
   * nothing reads it any more.
   */
  concat(pieces: readonly Uint8Array[]): Uint8Array<ArrayBuffer> {
    let total = 0;
    for (const piece of pieces) total += piece.length;
    const out = total > MAX_WRITE_BUFFER
      ? new Uint8Array(total)
      : this.take(total).subarray(0, total);
    let offset = 0;
    for (const piece of pieces) {
      out.set(piece, offset);
      offset += piece.length;
    }
    return out;
  }

  /**
   * A whole pooled buffer of at least `length` bytes (≤ {@linkcode MAX_WRITE_BUFFER}),
   * whatever bytes it holds: to lay bytes out in, then {@linkcode give} back.
   */
  take(length: number): Uint8Array<ArrayBuffer> {
    if (length > MAX_WRITE_BUFFER) {
      throw new RangeError(`${length} bytes exceed the largest buffer`);
    }
    const sizeClass = sizeClassOf(length);
    const buffer = this.#free[sizeClass].pop();
    if (buffer !== undefined) this.#pooledBytes -= buffer.byteLength;
    const taken = buffer ?? new ArrayBuffer(MIN_WRITE_BUFFER << sizeClass);
    this.#out.add(taken);
    return new Uint8Array(taken);
  }

  /**
   * Takes back what {@linkcode concat} or {@linkcode take} handed out (anything else, or a second give, is
   * ignored); kept while the pool holds less than its bound.
   */
  give(bytes: Uint8Array): void {
    const buffer = bytes.buffer as ArrayBuffer;
    if (!this.#out.delete(buffer)) return;
    if (this.#pooledBytes + buffer.byteLength > this.maxPooledBytes) return;
    this.#free[sizeClassOf(buffer.byteLength)].push(buffer);
    this.#pooledBytes += buffer.byteLength;
  }

  /** Drops every free buffer. */
  clear(): void {
    for (const list of this.#free) list.length = 0;
    this.#pooledBytes = 0;
  }
}

/** The size class of a buffer for `length` bytes (`length` ≤ {@linkcode MAX_WRITE_BUFFER}). */
function sizeClassOf(length: number): number {
  let sizeClass = 0;
  while ((MIN_WRITE_BUFFER << sizeClass) < length) sizeClass++;
  return sizeClass;
}

/**
 * The pool every `OutboundQueue` lays its coalesced writes out in: at most
 * 1 MiB of free buffers (a hundred receivers' writes of a few KiB each in flight at once;
 * 105 B per connection of a server idling with 10,000).
 * Only for channels that are done with a write's bytes once it settles, as every
 * `ByteChannel` is.
 */
export const writeBuffers: WriteBufferPool = new WriteBufferPool(1024 * 1024);
