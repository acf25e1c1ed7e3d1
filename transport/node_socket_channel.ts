/**
 * A {@linkcode ByteChannel} over a `node:net` or `node:tls` socket, for the places that
 * use Node's sockets rather than Deno's: TLS from `node:tls` in the client's
 * pinned-certificate dial (client/pinned_tls.ts) and in the server's TLS over accepted
 * TCP connections (transport/server_tls.ts), and tests that dial from a chosen local
 * address.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import type net from "node:net";
import type { ByteChannel } from "./framed_connection.ts";

/** By default, reading pauses while this many decrypted bytes wait to be read. */
const DEFAULT_HIGH_WATER = 1 << 20;

/** Options of {@linkcode NodeSocketChannel}. */
export interface NodeSocketChannelOptions {
  /** Runs once when the channel is closed here (after the socket is destroyed). */
  onClose?: () => void;
  /**
   * Reading from the socket pauses while this many decrypted bytes wait unread, and
   * resumes below half of it. Default 1 MiB.
   */
  highWater?: number;
}

/**
 * The bytes of a Node socket (decrypted, for a TLS socket), read with `ByteChannel` semantics, with back-pressure:
 * the socket is paused while enough bytes wait unread (`highWater`).
 *
 * @example
 * ```ts ignore
 * import tls from "node:tls";
 * import { NodeSocketChannel } from "./node_socket_channel.ts";
 * const socket = tls.connect({ host: "127.0.0.1", port: 44444, ca });
 * const channel = new NodeSocketChannel(socket);
 * await channel.write(new TextEncoder().encode("hi"));
 * ```
 */
export class NodeSocketChannel implements ByteChannel {
  readonly #socket: net.Socket;
  readonly #onClose: () => void;
  readonly #highWater: number;
  #chunks: Uint8Array[] = [];
  #buffered = 0;
  #ended = false;
  #closed = false;
  #error: Error | null = null;
  #wake: (() => void) | null = null;

  /** Takes over `socket`. */
  constructor(socket: net.Socket, options: NodeSocketChannelOptions = {}) {
    this.#socket = socket;
    this.#onClose = options.onClose ?? (() => {});
    this.#highWater = options.highWater ?? DEFAULT_HIGH_WATER;
    socket.on("data", (chunk: Uint8Array) => {
      this.#chunks.push(chunk);
      this.#buffered += chunk.length;
      if (this.#buffered >= this.#highWater) socket.pause();
      this.#wakeReader();
    });
    const ended = () => {
      this.#ended = true;
      this.#wakeReader();
    };
    socket.on("end", ended);
    socket.on("close", ended);
    socket.on("error", (err: Error) => {
      this.#error ??= err;
      this.#wakeReader();
    });
  }

  /** Reads decrypted bytes into `p`; null at the end of the stream. */
  async read(p: Uint8Array): Promise<number | null> {
    while (this.#chunks.length === 0) {
      if (this.#closed) throw new Deno.errors.BadResource("the connection is closed");
      if (this.#error !== null) {
        throw new Deno.errors.ConnectionReset(this.#error.message, { cause: this.#error });
      }
      if (this.#ended) return null;
      await new Promise<void>((resolve) => this.#wake = resolve);
    }
    const chunk = this.#chunks[0];
    const n = Math.min(p.length, chunk.length);
    p.set(chunk.subarray(0, n));
    if (n === chunk.length) this.#chunks.shift();
    else this.#chunks[0] = chunk.subarray(n);
    this.#buffered -= n;
    if (this.#buffered < this.#highWater / 2 && this.#socket.isPaused()) this.#socket.resume();
    return n;
  }

  /**
   * Writes all of `p` (encrypted on a TLS socket); resolves once the socket is done with
   * it. `p` is not copied: the socket reads it where it lies (a `Buffer` view of the same
   * memory), and Node calls a write's callback only once the bytes have left the buffer
   * (handed to the kernel, or encrypted by the TLS layer), so the caller may reuse `p`
   * when the promise settles, as the `ByteChannel` contract says (`OutboundQueue` gives
   * its pooled buffers back then). Until then it must not touch `p`.
   */
  write(p: Uint8Array): Promise<number> {
    if (this.#closed || this.#socket.destroyed) {
      return Promise.reject(new Deno.errors.BrokenPipe("the connection is closed"));
    }
    return new Promise((resolve, reject) => {
      this.#socket.write(Buffer.from(p.buffer, p.byteOffset, p.byteLength), (err) => {
        if (err) reject(new Deno.errors.BrokenPipe(err.message, { cause: err }));
        else resolve(p.length);
      });
    });
  }

  /** Ends the writing side (TLS: close_notify, then the TCP FIN); reading goes on. */
  closeWrite(): Promise<void> {
    return new Promise((resolve) => this.#socket.end(() => resolve()));
  }

  /** Closes at once, handshake or not, and releases the socket. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#chunks = [];
    this.#socket.destroy();
    this.#onClose();
    this.#wakeReader();
  }

  #wakeReader(): void {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }
}
