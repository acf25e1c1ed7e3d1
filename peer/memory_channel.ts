/**
 * An in-process pair of connected {@linkcode ByteChannel}s: what one side writes, the
 * other reads. For running the handshake and the record layer without sockets.
 *
 * @module
 */

import { ByteQueue } from "../transport/byte_queue.ts";
import type { ByteChannel } from "../transport/framed_connection.ts";

class MemoryEnd implements ByteChannel {
  readonly #incoming = new ByteQueue();
  peer!: MemoryEnd;

  read(p: Uint8Array): Promise<number | null> {
    return this.#incoming.read(p);
  }

  write(p: Uint8Array): Promise<number> {
    if (this.#incoming.closed) {
      return Promise.reject(new Deno.errors.BadResource("the channel is closed"));
    }
    if (this.peer.#incoming.closed) {
      return Promise.reject(new Deno.errors.BrokenPipe("the other end is closed"));
    }
    this.peer.#incoming.push(p.slice());
    return Promise.resolve(p.length);
  }

  close(): void {
    if (this.#incoming.closed) return;
    this.#incoming.close();
    this.peer.#incoming.end();
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
