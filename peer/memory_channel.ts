/**
 * An in-process pair of connected {@linkcode ByteChannel}s: what one side writes, the
 * other reads. For running the handshake and the record layer without sockets.
 *
 * @module
 */

import type { ByteChannel } from "../transport/framed_connection.ts";

class MemoryEnd implements ByteChannel {
  #chunks: Uint8Array[] = [];
  #waiter: (() => void) | null = null;
  #ended = false;
  #closed = false;
  peer!: MemoryEnd;

  /** Delivers bytes written by the other end. */
  deliver(bytes: Uint8Array): void {
    if (this.#closed) return;
    this.#chunks.push(bytes.slice());
    this.#wake();
  }

  /** The other end closed: reads end once the delivered bytes are consumed. */
  end(): void {
    this.#ended = true;
    this.#wake();
  }

  async read(p: Uint8Array): Promise<number | null> {
    while (this.#chunks.length === 0) {
      if (this.#closed) throw new Deno.errors.BadResource("the channel is closed");
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

  write(p: Uint8Array): Promise<number> {
    if (this.#closed) return Promise.reject(new Deno.errors.BadResource("the channel is closed"));
    if (this.peer.#closed) {
      return Promise.reject(new Deno.errors.BrokenPipe("the other end is closed"));
    }
    this.peer.deliver(p);
    return Promise.resolve(p.length);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#chunks = [];
    this.#wake();
    this.peer.end();
  }

  #wake(): void {
    const waiter = this.#waiter;
    this.#waiter = null;
    waiter?.();
  }
}

/**
 * Creates two connected in-memory channels.
 *
 * @example
 * ```ts
 * import { memoryChannelPair } from "./memory_channel.ts";
 * const [a, b] = memoryChannelPair();
 * await a.write(new Uint8Array([1, 2, 3]));
 * const buffer = new Uint8Array(8);
 * await b.read(buffer); // 3
 * ```
 */
export function memoryChannelPair(): [ByteChannel, ByteChannel] {
  const a = new MemoryEnd();
  const b = new MemoryEnd();
  a.peer = b;
  b.peer = a;
  return [a, b];
}
