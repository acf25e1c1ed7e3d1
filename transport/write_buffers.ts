/**
 * Reused buffers for coalescing a connection's queued frames into one write.
 *
 * A fan-out queues the same encoded frame on many connections; each writer joins what
 * it has queued into one buffer per write. A new array per write is freed only when V8
 * collects it, so a burst (a login storm's presence to 10,000 clients) piles up tens of
 * MB of them between collections, and the allocator keeps those pages: measured, about
 * 6 KiB of resident memory per idle connection afterwards. Buffers given back once
 * written are taken again by the next writes instead.
 *
 * @module
 */

/** Smallest buffer handed out, bytes. */
const MIN_BYTES = 256;
/** Batches over this many bytes get a fresh array (the cost is in the bytes then). */
export const MAX_POOLED_BYTES: number = 64 * 1024;

/**
 * Buffers by power-of-two size, from {@linkcode MIN_BYTES} to
 * {@linkcode MAX_POOLED_BYTES}; at most `maxFreeBytes` of them wait in the pool, and
 * {@linkcode trim} drops them once no write took one for a while.
 *
 * @example
 * ```ts
 * import { WriteBuffers } from "./write_buffers.ts";
 * const pool = new WriteBuffers(1024 * 1024);
 * const buffer = pool.take(300); // 512 bytes: filled, written, then:
 * pool.give(buffer);
 * pool.take(400) === buffer; // true
 * ```
 */
export class WriteBuffers {
  /** Most bytes kept waiting in the pool. */
  readonly maxFreeBytes: number;
  /** Free buffers by size class (index: log2 of the size over MIN_BYTES). */
  readonly #free: Uint8Array<ArrayBuffer>[][] = [];
  #freeBytes = 0;
  /** Whether a buffer was taken since the last {@linkcode trim}. */
  #used = false;

  /** A pool keeping at most `maxFreeBytes` bytes of free buffers. */
  constructor(maxFreeBytes: number) {
    this.maxFreeBytes = maxFreeBytes;
  }

  /** Bytes waiting in the pool. */
  get freeBytes(): number {
    return this.#freeBytes;
  }

  /**
   * A buffer of at least `length` bytes (its bytes are whatever was there), or null
   * when `length` is over {@linkcode MAX_POOLED_BYTES}.
   */
  take(length: number): Uint8Array<ArrayBuffer> | null {
    if (length > MAX_POOLED_BYTES) return null;
    this.#used = true;
    let size = MIN_BYTES;
    let index = 0;
    while (size < length) {
      size *= 2;
      index++;
    }
    const buffer = this.#free[index]?.pop();
    if (buffer === undefined) return new Uint8Array(size);
    this.#freeBytes -= size;
    return buffer;
  }

  /** Takes back a buffer from {@linkcode take} once nothing uses it any more. */
  give(buffer: Uint8Array<ArrayBuffer>): void {
    const size = buffer.length;
    if (this.#freeBytes + size > this.maxFreeBytes) return;
    let index = 0;
    for (let s = MIN_BYTES; s < size; s *= 2) index++;
    (this.#free[index] ??= []).push(buffer);
    this.#freeBytes += size;
  }

  /**
   * Drops every free buffer if none was taken since the last call: called now and
   * then (the server's sweep), a quiet pool holds nothing.
   */
  trim(): void {
    if (!this.#used) {
      this.#free.length = 0;
      this.#freeBytes = 0;
    }
    this.#used = false;
  }
}

/** The pool every {@linkcode FramedConnection} writer shares. */
export const WRITE_BUFFERS: WriteBuffers = new WriteBuffers(16 * 1024 * 1024);
