/**
 * The reading half of an in-process byte stream: chunks pushed by a producer, read by
 * one consumer with `ByteChannel.read` semantics. Channels that are not sockets (an
 * in-memory pair, a relay through the server) build on it.
 *
 * @module
 */

/**
 * Bytes waiting to be read, with an end and a failure state.
 *
 * @example
 * ```ts
 * import { ByteQueue } from "./byte_queue.ts";
 * const queue = new ByteQueue();
 * queue.push(new Uint8Array([1, 2, 3]));
 * queue.end();
 * const buffer = new Uint8Array(2);
 * await queue.read(buffer); // 2
 * await queue.read(buffer); // 1
 * await queue.read(buffer); // null
 * ```
 */
export class ByteQueue {
  #chunks: Uint8Array[] = [];
  #waiter: (() => void) | null = null;
  #ended = false;
  #closed = false;
  #failure: Error | null = null;

  /** Whether the reading side was closed. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Whether the producer ended its stream. */
  get ended(): boolean {
    return this.#ended;
  }

  /** Adds bytes for the reader (ignored after the end or a close). */
  push(bytes: Uint8Array): void {
    if (this.#closed || this.#ended || bytes.length === 0) return;
    this.#chunks.push(bytes);
    this.#wake();
  }

  /** The producer's stream ended: reads return `null` once the queued bytes are read. */
  end(): void {
    this.#ended = true;
    this.#wake();
  }

  /** The stream broke: pending and later reads throw `error`. */
  fail(error: Error): void {
    if (this.#failure === null) this.#failure = error;
    this.#wake();
  }

  /** The reader is done: drops what is queued; reads throw `BadResource`. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#chunks = [];
    this.#wake();
  }

  /** Reads up to `p.length` bytes; `null` at the end of the stream. */
  async read(p: Uint8Array): Promise<number | null> {
    while (this.#chunks.length === 0) {
      if (this.#closed) throw new Deno.errors.BadResource("the channel is closed");
      if (this.#failure !== null) throw this.#failure;
      if (this.#ended) return null;
      await new Promise<void>((resolve) => this.#waiter = resolve);
    }
    const chunk = this.#chunks[0];
    const n = Math.min(p.length, chunk.length);
    p.set(chunk.subarray(0, n));
    if (n === chunk.length) this.#chunks.shift();
    else this.#chunks[0] = chunk.subarray(n);
    return n;
  }

  #wake(): void {
    const waiter = this.#waiter;
    this.#waiter = null;
    waiter?.();
  }
}
