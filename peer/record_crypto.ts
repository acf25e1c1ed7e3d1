/**
 * The record cryptography of a peer session's channel, with nothing else: the nonces,
 * and the opening of one record, shared by {@linkcode SecureChannel} (`secure_channel.ts`)
 * and the thread that opens its large records (`record_opener_worker.ts`), which loads
 * only this module.
 *
 * @module
 */

import { createDecipheriv } from "node:crypto";

/** Bytes of the Poly1305 authentication tag at the end of every ciphertext. */
export const TAG_BYTES = 16;
/** Bytes of a ChaCha20-Poly1305 nonce (and of a direction's IV). */
export const NONCE_BYTES = 12;
/** The AEAD of the records, as `node:crypto` names it. */
export const CIPHER = "chacha20-poly1305";
/**
 * Bytes handed to `node:crypto` per call. Each call returns its output in a new,
 * zeroed buffer, copied where it belongs and freed at once ({@linkcode release}): the
 * next output then reuses the same memory, so a large call costs no page faults, and
 * fewer calls cost fewer allocations, wrappers and collections. Measured here
 * (Deno 2.9, 128 MiB sealed in 1 MiB records, outputs copied and freed): CPU per byte
 * 1.31-1.37 ns in 4 KiB calls, 0.72-0.78 in 16 KiB, 0.64-0.70 in 64 KiB, 0.66-1.05 in
 * 256 KiB, 0.70-0.72 in 1 MiB. (Before outputs were freed, 4 KiB calls were the
 * cheapest: every 1 MiB output was fresh memory, faulted in page by page.)
 */
export const CRYPTO_SLICE_BYTES: number = 64 * 1024;
/**
 * The nonce of record number `counter` under a direction's `iv`: the IV XOR four zero
 * bytes and the counter as u64be (as TLS 1.3 builds its nonces).
 *
 * @example
 * ```ts
 * import { recordNonce } from "./record_crypto.ts";
 * recordNonce(new Uint8Array(12), 1n); // Uint8Array [0,0,0,0, 0,0,0,0, 0,0,0,1]
 * ```
 */
export function recordNonce(iv: Uint8Array, counter: bigint): Uint8Array<ArrayBuffer> {
  if (iv.length !== NONCE_BYTES) throw new RangeError(`an IV is ${NONCE_BYTES} bytes`);
  const nonce = new Uint8Array(NONCE_BYTES);
  new DataView(nonce.buffer).setBigUint64(4, counter);
  for (let i = 0; i < NONCE_BYTES; i++) nonce[i] ^= iv[i];
  return nonce;
}

/**
 * Opens (decrypts and authenticates) one record's `ciphertext` (its tag last) into the
 * start of `into` under `key` and `nonce`, `aad` its length bytes, {@linkcode
 * CRYPTO_SLICE_BYTES} at a time; throws unless the tag verifies (what it left in `into`
 * must then not be used). Shared by the channel and its opening thread.
 */
export function openRecordInto(
  key: Uint8Array,
  nonce: Uint8Array,
  aad: Uint8Array,
  ciphertext: Uint8Array,
  into: Uint8Array,
): void {
  const split = ciphertext.length - TAG_BYTES;
  const decipher = createDecipheriv(CIPHER, key, nonce, { authTagLength: TAG_BYTES });
  decipher.setAAD(aad, { plaintextLength: split });
  decipher.setAuthTag(ciphertext.subarray(split));
  for (let at = 0; at < split; at += CRYPTO_SLICE_BYTES) {
    const end = Math.min(split, at + CRYPTO_SLICE_BYTES);
    const out = decipher.update(ciphertext.subarray(at, end));
    into.set(out, at);
    release(out);
  }
  decipher.final(); // throws unless the tag verifies
}

/**
 * Frees the memory of a `node:crypto` output once it is copied: every `update` returns
 * its bytes in a new buffer, which V8 would free only at its next garbage collection.
 * The wrapper objects are small, so collections come rarely, and until then every
 * output takes fresh memory: about 100 MiB per 128 MiB sealed, a page fault every
 * 4 KiB and `malloc` splitting new memory, most of what a record costs. Detaching the
 * buffer (`transfer(0)`) frees it at once, and the next output reuses the same memory.
 */
export function release(bytes: Uint8Array): void {
  const buffer = bytes.buffer;
  if (
    buffer instanceof ArrayBuffer && bytes.byteOffset === 0 &&
    bytes.byteLength === buffer.byteLength && !buffer.detached
  ) {
    buffer.transfer(0);
  }
}
