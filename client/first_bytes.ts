/**
 * Telling a TLS server's answer from a chat frame: a plain client that says hello to
 * a TLS server reads a TLS record back (an alert), whose first bytes, taken for a
 * length prefix, make a frame of some 350 MB. The client keeps the first bytes it
 * reads and, when the hello exchange fails, recognises the record.
 *
 * @module
 */

import type { ByteChannel } from "../transport/framed_connection.ts";

/** Bytes kept: a TLS record's content type and major version. */
const KEPT = 2;

/**
 * A {@linkcode ByteChannel} that passes everything through and keeps the first bytes read.
 *
 * @example
 * ```ts ignore
 * import { FirstBytes } from "./first_bytes.ts";
 * const sniff = new FirstBytes(conn);
 * // ... read through sniff; the hello exchange fails ...
 * if (sniff.looksLikeTls()) console.error("the server speaks TLS");
 * ```
 */
export class FirstBytes implements ByteChannel {
  readonly #inner: ByteChannel;
  readonly #first: number[] = [];

  /** Closes the write direction only, when `inner` can. */
  readonly closeWrite?: () => Promise<void>;

  /** Wraps `inner`. */
  constructor(inner: ByteChannel) {
    this.#inner = inner;
    if (inner.closeWrite !== undefined) this.closeWrite = () => inner.closeWrite!();
  }

  /** Whether the first bytes read are a TLS record's (handshake or alert, version 3.x). */
  looksLikeTls(): boolean {
    return looksLikeTlsRecord(this.#first);
  }

  async read(p: Uint8Array): Promise<number | null> {
    const n = await this.#inner.read(p);
    if (n !== null && this.#first.length < KEPT) {
      for (const byte of p.subarray(0, Math.min(n, KEPT - this.#first.length))) {
        this.#first.push(byte);
      }
    }
    return n;
  }

  write(p: Uint8Array): Promise<number> {
    return this.#inner.write(p);
  }

  close(): void {
    this.#inner.close();
  }
}

/**
 * Whether `bytes` start like a TLS record: content type 21 (alert) or 22 (handshake),
 * then major version 3. A chat frame starts with a length that large only when it is
 * over 350 MB, far above any maximum frame size.
 *
 * @example
 * ```ts
 * import { looksLikeTlsRecord } from "./first_bytes.ts";
 * looksLikeTlsRecord([0x15, 0x03]); // true
 * looksLikeTlsRecord([0x00, 0x00]); // false
 * ```
 */
export function looksLikeTlsRecord(bytes: ArrayLike<number>): boolean {
  return bytes.length >= 2 && (bytes[0] === 0x15 || bytes[0] === 0x16) && bytes[1] === 0x03;
}
