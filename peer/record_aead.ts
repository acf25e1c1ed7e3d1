/**
 * The seam between the record layer ({@linkcode SecureChannel}) and whatever computes
 * ChaCha20-Poly1305 (RFC 8439): one cipher per direction, reused record after record,
 * each record begun with its 96-bit nonce and additional data, its bytes transformed
 * piece by piece into a buffer of the same length, and its 16-byte tag written (sealing)
 * or checked (opening) at the end. Only types here: the backends (`record_aead_node.ts`,
 * `record_aead_openssl.ts`) and the choice between them (`record_aead_choice.ts`) import
 * this file, and nothing here imports them.
 *
 * @example
 * ```ts
 * import type { RecordAead } from "./record_aead.ts";
 * import { nodeRecordAead } from "./record_aead_node.ts";
 * const aead: RecordAead = nodeRecordAead;
 * const sealer = aead.sealer(new Uint8Array(32));
 * const text = new TextEncoder().encode("hi");
 * const tag = new Uint8Array(16);
 * sealer.begin(new Uint8Array(12), new Uint8Array(0), text.length);
 * sealer.update(text, text); // in place
 * sealer.finish(tag);
 * ```
 *
 * @module
 */

/** What every record cipher does first and in the middle of a record. */
export interface RecordCipher {
  /**
   * Starts a record: its 12-byte `nonce`, its additional data `aad` (authenticated, not
   * encrypted), and the `length` of its text (what {@linkcode update} will be given).
   */
  begin(nonce: Uint8Array, aad: Uint8Array, length: number): void;
  /**
   * Encrypts (sealing) or decrypts (opening) `input` into `output`, which is exactly as
   * long: the same bytes (in place) or bytes apart that do not overlap them. Called any
   * number of times per record, the pieces in order.
   *
   * @throws {RangeError} when the lengths differ.
   */
  update(input: Uint8Array, output: Uint8Array): void;
}

/** One direction's sealing cipher. */
export interface RecordSealer extends RecordCipher {
  /** Ends the record: its 16-byte authentication tag is written into `tag` (16 bytes). */
  finish(tag: Uint8Array): void;
}

/** One direction's opening cipher. */
export interface RecordOpener extends RecordCipher {
  /**
   * Ends the record: `true` when `tag` (16 bytes) authenticates what was given, `false`
   * when it does not (then what {@linkcode update} wrote must not be used).
   */
  finish(tag: Uint8Array): boolean;
}

/** A ChaCha20-Poly1305 implementation: both backends give the same bytes. */
export interface RecordAead {
  /** Which implementation: `openssl` (the system's libcrypto through FFI) or `node`. */
  readonly name: "openssl" | "node";
  /** A sealer under the 32-byte `key` (copied: the caller may zero it). */
  sealer(key: Uint8Array): RecordSealer;
  /** An opener under the 32-byte `key` (copied: the caller may zero it). */
  opener(key: Uint8Array): RecordOpener;
}

/** Bytes of a ChaCha20-Poly1305 key. */
export const AEAD_KEY_BYTES = 32;
/** Bytes of a ChaCha20-Poly1305 nonce. */
export const AEAD_NONCE_BYTES = 12;
/** Bytes of a Poly1305 authentication tag. */
export const AEAD_TAG_BYTES = 16;
