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

/**
 * Pools of two or more buffer sizes behind one `take` and `give`: `take` serves from the
 * smallest pool whose buffers hold `length` (each serves from half its size up, so sizes
 * that double cover every length between), `give` hands back to whichever pool handed
 * it out.
 *
 * @example
 * ```ts
 * import { BufferPools } from "./buffer_pool.ts";
 * const pools = new BufferPools([512 * 1024, 1024 * 1024], 16);
 * const small = pools.take(300_000); // from the 512 KiB pool
 * const large = pools.take(900_000); // from the 1 MiB pool
 * pools.give(small);
 * pools.give(large);
 * ```
 */
export class BufferPools {
  readonly #pools: BufferPool[];

  /** Pools of buffers of `sizes` bytes (ascending), each keeping at most `maxFree`. */
  constructor(sizes: readonly number[], maxFree: number) {
    this.#pools = [...sizes].sort((a, b) => a - b).map((size) => new BufferPool(size, maxFree));
  }

  /** Buffers waiting in the pools, all sizes together. */
  get freeCount(): number {
    return this.#pools.reduce((sum, pool) => sum + pool.freeCount, 0);
  }

  /** `length` bytes (see {@linkcode BufferPool.take}) from the smallest pool that holds them. */
  take(length: number): Uint8Array<ArrayBuffer> {
    for (const pool of this.#pools) if (length <= pool.bufferSize) return pool.take(length);
    return new Uint8Array(length);
  }

  /** Hands back bytes from {@linkcode take}; anything else is ignored. */
  give(bytes: Uint8Array): void {
    for (const pool of this.#pools) pool.give(bytes);
  }
}

/** Where {@linkcode SentBufferPool} takes its buffers from and gives them back to. */
export interface SpareBuffers {
  /** A buffer of `length` bytes (see {@linkcode BufferPool.take}). */
  take(length: number): Uint8Array<ArrayBuffer>;
  /** Hands back a buffer from `take`; anything else is ignored. */
  give(bytes: Uint8Array): void;
}

/** Where a connection's outbound stream stands, in bytes since it opened. */
export interface OutboundProgress {
  /** Bytes written to the channel. */
  written: number;
  /** Bytes queued behind them, not yet written. */
  queued: number;
}

/**
 * Buffers for frames queued on a connection that writes its queue in order
 * (a `FramedConnection`): a buffer is taken, a frame laid out in it and queued,
 * and the buffer is taken again only once the connection has written past that frame.
 * Frames dropped unwritten (a connection cut off) never make it back, which is safe.
 *
 * @example
 * ```ts ignore
 * import { SentBufferPool } from "./buffer_pool.ts";
 * const pool = new SentBufferPool(256 * 1024 + 1024, 8, () => ({
 *   written: conn.stats.bytesOut,
 *   queued: conn.queuedBytes,
 * }));
 * const buffer = pool.take();
 * // lay a frame out in buffer, conn.sendEncoded(frame), then:
 * pool.queued(buffer);
 * ```
 */
export class SentBufferPool {
  /** Bytes of every buffer. */
  readonly bufferSize: number;
  /** Most buffers kept, written or not. */
  readonly maxBuffers: number;
  readonly #progress: () => OutboundProgress;
  readonly #spares: SpareBuffers | null;
  readonly #free: Uint8Array<ArrayBuffer>[] = [];
  /** Buffers whose frame was queued, with where the stream is once it is written. */
  readonly #queued: { buffer: Uint8Array<ArrayBuffer>; end: number }[] = [];

  /**
   * A pool of `bufferSize`-byte buffers over a connection's `progress`; new buffers come
   * from `spares` when given (a pool shared by connections, whose memory is warm: on a
   * virtual machine, memory touched for the first time costs a fault per 4 KiB page, ~15
   * µs each here), and {@linkcode SentBufferPool.release} hands the written ones back.
   */
  constructor(
    bufferSize: number,
    maxBuffers: number,
    progress: () => OutboundProgress,
    spares?: SpareBuffers,
  ) {
    this.bufferSize = bufferSize;
    this.maxBuffers = maxBuffers;
    this.#progress = progress;
    this.#spares = spares ?? null;
  }

  /** A buffer no queued frame uses: a written one, else a spare or a new one. */
  take(): Uint8Array<ArrayBuffer> {
    this.#collectWritten();
    return this.#free.pop() ?? this.#spares?.take(this.bufferSize) ??
      new Uint8Array(this.bufferSize);
  }

  /**
   * Hands every buffer whose frame is written (and every unused one) back to the spares;
   * those still queued stay until written. For a connection done sending for a while.
   */
  release(): void {
    if (this.#spares === null) return;
    this.#collectWritten();
    for (const buffer of this.#free.splice(0)) this.#spares.give(buffer);
  }

  /** Buffers kept: free, or holding a queued frame. */
  get size(): number {
    return this.#free.length + this.#queued.length;
  }

  #collectWritten(): void {
    const { written } = this.#progress();
    while (this.#queued.length > 0 && this.#queued[0].end <= written) {
      this.#free.push(this.#queued.shift()!.buffer);
    }
  }

  /**
   * Records that the frame laid out in `buffer` was just queued (it is the last in the
   * queue); `buffer` is not taken again before the connection has written it.
   */
  queued(buffer: Uint8Array<ArrayBuffer>): void {
    if (this.#queued.length + this.#free.length >= this.maxBuffers) return; // let it go
    const { written, queued } = this.#progress();
    this.#queued.push({ buffer, end: written + queued });
  }

  /** Hands back a buffer that was taken but not queued. */
  unused(buffer: Uint8Array<ArrayBuffer>): void {
    if (this.#queued.length + this.#free.length < this.maxBuffers) this.#free.push(buffer);
  }
}
