/**
 * A bounded pool of equal-sized byte buffers, for the payloads of large incoming frames
 * (file chunks and file data): a buffer handed back once its bytes are written to disk
 * carries a later frame, instead of a new one being allocated (and its memory faulted
 * in and zeroed) for every frame.
 *
 * @module
 */

/**
 * A pool of buffers of {@linkcode BufferPool.bufferSize} bytes. {@linkcode take} serves
 * lengths from half the size to the size from the pool (others get a new array);
 * {@linkcode give} takes back what `take` handed out, once nothing uses it any more.
 * At most {@linkcode BufferPool.maxFree} buffers wait in the pool.
 *
 * @example
 * ```ts
 * import { BufferPool } from "./buffer_pool.ts";
 * const pool = new BufferPool(256 * 1024, 8);
 * const payload = pool.take(200_000); // filled, used, then:
 * pool.give(payload);
 * pool.take(250_000).buffer === payload.buffer; // true
 * ```
 */
export class BufferPool {
  /** Bytes of every pooled buffer. */
  readonly bufferSize: number;
  /** Most buffers kept waiting in the pool. */
  readonly maxFree: number;
  readonly #free: ArrayBuffer[] = [];
  /** Pooled buffers handed out and not given back. */
  readonly #out = new WeakSet<ArrayBufferLike>();

  /** A pool of buffers of `bufferSize` bytes, keeping at most `maxFree` of them. */
  constructor(bufferSize: number, maxFree: number) {
    if (!Number.isInteger(bufferSize) || bufferSize <= 0) {
      throw new RangeError("bufferSize must be a positive integer");
    }
    this.bufferSize = bufferSize;
    this.maxFree = maxFree;
  }

  /** Buffers waiting in the pool. */
  get freeCount(): number {
    return this.#free.length;
  }

  /**
   * `length` bytes: the start of a pooled buffer when `length` is from half the buffer
   * size to the size (its bytes are whatever was there: the caller fills them all), else
   * a new, zeroed array.
   */
  take(length: number): Uint8Array<ArrayBuffer> {
    if (length > this.bufferSize || length < this.bufferSize / 2) return new Uint8Array(length);
    const buffer = this.#free.pop() ?? new ArrayBuffer(this.bufferSize);
    this.#out.add(buffer);
    return new Uint8Array(buffer, 0, length);
  }

  /**
   * Hands back bytes from {@linkcode take} (or any view into them) that nothing uses any
   * more; anything else is ignored, and so is a second give of the same buffer.
   */
  give(bytes: Uint8Array): void {
    const buffer = bytes.buffer;
    if (!this.#out.delete(buffer)) return;
    if (this.#free.length < this.maxFree) this.#free.push(buffer as ArrayBuffer);
  }
}
