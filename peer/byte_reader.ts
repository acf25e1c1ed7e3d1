/**
 * Exact-length reads from a byte channel, for the length-prefixed records of a peer
 * connection (the plaintext handshake frames and the encrypted records after them).
 *
 * @module
 */

import type { ByteChannel } from "../transport/framed_connection.ts";
import { PeerError } from "./errors.ts";

/**
 * Default size of the read buffer: many small records at a time, and little of a large
 * one, whose rest {@linkcode ByteReader.readExact} reads straight into its destination
 * (read exactly, so nothing past it is read there). A buffer that holds whole large
 * records copies the part of the next one it reads ahead instead: with 2 MiB, 43% of a
 * file's bytes were copied out of it on their way to decryption; with 64 KiB, 6%.
 */
export const DEFAULT_READ_BUFFER_SIZE: number = 64 * 1024;

/**
 * Reads exactly the requested number of bytes from a {@linkcode ByteChannel}, keeping any
 * bytes read ahead for the next call, so the handshake and the record layer can share one
 * stream without losing what the other side sent early.
 *
 * @example
 * ```ts ignore
 * import { ByteReader } from "./byte_reader.ts";
 * const reader = new ByteReader(conn);
 * const prefix = await reader.readExact(4); // null at a clean end of stream
 * ```
 */
export class ByteReader {
  readonly #channel: ByteChannel;
  readonly #buffer: Uint8Array;
  #start = 0;
  #end = 0;
  #bytesRead = 0;

  /** Wraps `channel`; reads go through this reader from now on. */
  constructor(channel: ByteChannel, bufferSize: number = DEFAULT_READ_BUFFER_SIZE) {
    this.#channel = channel;
    this.#buffer = new Uint8Array(bufferSize);
  }

  /** Bytes read from the channel so far (returned or buffered). */
  get bytesRead(): number {
    return this.#bytesRead;
  }

  /** Bytes read from the channel and not yet returned. */
  get bufferedBytes(): number {
    return this.#end - this.#start;
  }

  /**
   * The next `n` bytes if they are already buffered, taken without reading the channel
   * (else null, and nothing taken). They are a view of the read buffer, valid until
   * the reader next reads from its channel: use them at once (decrypt them synchronously,
   * say), or copy them.
   */
  takeBuffered(n: number): Uint8Array | null {
    if (this.#end - this.#start < n) return null;
    const view = this.#buffer.subarray(this.#start, this.#start + n);
    this.#start += n;
    return view;
  }

  /** The big-endian u32 at the start of the buffered bytes, or null with fewer than 4. */
  peekUint32(): number | null {
    if (this.#end - this.#start < 4) return null;
    const b = this.#buffer;
    const i = this.#start;
    return ((b[i] << 24) | (b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]) >>> 0;
  }

  /**
   * Reads exactly `n` bytes, into the start of `into` when given (reuse one buffer for
   * bytes used at once), else into a new array. The caller checks `n` against its
   * bounds first: this allocates `n` bytes.
   *
   * @returns the bytes, or `null` when the stream ended before the first of them.
   * @throws {PeerError} `connection_lost` when the stream ended after some of them.
   * @throws {RangeError} when `into` is shorter than `n`.
   */
  async readExact(n: number, into?: Uint8Array): Promise<Uint8Array | null> {
    if (into !== undefined && into.length < n) {
      throw new RangeError(`a ${into.length}-byte buffer cannot take ${n} bytes`);
    }
    const out = into === undefined ? new Uint8Array(n) : into.subarray(0, n);
    let filled = 0;
    while (filled < n) {
      if (this.#start === this.#end) {
        const wanted = n - filled;
        // A large remainder goes straight into `out`; it can never read past it.
        const target = wanted >= this.#buffer.length ? out.subarray(filled) : this.#buffer;
        const count = await this.#channel.read(target);
        if (count === null) {
          if (filled === 0) return null;
          throw new PeerError(
            "connection_lost",
            `the stream ended inside a record (${filled} of ${n} bytes received)`,
          );
        }
        this.#bytesRead += count;
        if (target !== this.#buffer) {
          filled += count;
          continue;
        }
        this.#start = 0;
        this.#end = count;
      }
      const take = Math.min(n - filled, this.#end - this.#start);
      out.set(this.#buffer.subarray(this.#start, this.#start + take), filled);
      this.#start += take;
      filled += take;
    }
    return out;
  }
}
