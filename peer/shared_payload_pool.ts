/**
 * Payload buffers in shared memory for a peer session's file chunks: the thread that
 * opens large records (`record_opener.ts`) decrypts a chunk straight into its frame's
 * payload, which the session's thread then writes to disk, with no copy between them.
 *
 * @module
 */

/**
 * A pool of `SharedArrayBuffer`s of one size, as `BufferPool` (transport) is of
 * `ArrayBuffer`s: `take` serves lengths from half the size to the size from the pool,
 * others from a new ordinary array; `give` takes back what it handed out, once.
 *
 * @example
 * ```ts
 * import { SharedPayloadPool } from "./shared_payload_pool.ts";
 * const pool = new SharedPayloadPool(1024 * 1024, 4);
 * const payload = pool.take(1000_000); // a view of shared memory
 * pool.give(payload); // once nothing uses it
 * ```
 */
export class SharedPayloadPool {
  /** Bytes of every pooled buffer. */
  readonly bufferSize: number;
  /** Most buffers kept waiting in the pool. */
  readonly maxFree: number;
  readonly #free: SharedArrayBuffer[] = [];
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
   * `length` bytes: the start of a pooled shared buffer when `length` is from half the
   * buffer size to the size (its bytes are whatever was there), else a new, zeroed array.
   */
  take(length: number): Uint8Array {
    if (length > this.bufferSize || length < this.bufferSize / 2) return new Uint8Array(length);
    const buffer = this.#free.pop() ?? new SharedArrayBuffer(this.bufferSize);
    this.#out.add(buffer);
    return new Uint8Array(buffer, 0, length);
  }

  /** Hands back bytes from {@linkcode take} (or a view into them); anything else is ignored. */
  give(bytes: Uint8Array): void {
    const buffer = bytes.buffer;
    if (!this.#out.delete(buffer)) return;
    if (this.#free.length < this.maxFree) this.#free.push(buffer as SharedArrayBuffer);
  }
}
