/**
 * The key schedule of a peer session: the transcript hash, the per-direction record keys and IVs,
 * the key-confirmation keys and MACs. The design is described at the top of
 * `handshake.ts` (peer protocol version 3). Everything here is pure WebCrypto and
 * deterministic; `key_schedule_test.ts` checks it against fixed vectors.
 *
 * @module
 */

import { concatBytes } from "../protocol/bytes.ts";

/** Labels of the key schedule (HKDF `info` strings and the transcript prefix). */
export const LABELS: Readonly<{
  transcript: string;
  keyInitiatorToResponder: string;
  keyResponderToInitiator: string;
  ivInitiatorToResponder: string;
  ivResponderToInitiator: string;
  confirmInitiator: string;
  confirmResponder: string;
  sas: string;
}> = Object.freeze({
  transcript: "chat-peer/3 transcript",
  keyInitiatorToResponder: "chat-peer/3 key i2r",
  keyResponderToInitiator: "chat-peer/3 key r2i",
  ivInitiatorToResponder: "chat-peer/3 iv i2r",
  ivResponderToInitiator: "chat-peer/3 iv r2i",
  confirmInitiator: "chat-peer/3 confirm initiator",
  confirmResponder: "chat-peer/3 confirm responder",
  sas: "chat-peer/3 sas",
});

/** Bytes of every derived key and of the transcript hash. */
export const KEY_BYTES = 32;
/** Bytes of a record IV (a ChaCha20-Poly1305 nonce, XORed with the record counter). */
export const IV_BYTES = 12;

const encoder = new TextEncoder();

function u32be(n: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, n);
  return out;
}

/**
 * Hashes the handshake transcript: the label, then each side's `peer_hello` frame payload
 * exactly as it travelled (initiator first), each prefixed with its u32be length.
 *
 * @example
 * ```ts
 * import { transcriptHash } from "./key_schedule.ts";
 * const th = await transcriptHash(new Uint8Array([1]), new Uint8Array([2]));
 * th.length; // 32
 * ```
 */
export async function transcriptHash(
  initiatorHello: Uint8Array,
  responderHello: Uint8Array,
): Promise<Uint8Array> {
  const data = concatBytes([
    encoder.encode(LABELS.transcript),
    u32be(initiatorHello.length),
    initiatorHello,
    u32be(responderHello.length),
    responderHello,
  ]);
  return new Uint8Array(await crypto.subtle.digest("SHA-256", data));
}

/**
 * HKDF-SHA256 (extract and expand) of `ikm` with `salt` and the label `info`.
 *
 * @example
 * ```ts
 * import { hkdf } from "./key_schedule.ts";
 * const okm = await hkdf(new Uint8Array(32), new Uint8Array(32), "example", 16);
 * ```
 */
export async function hkdf(
  ikm: Uint8Array,
  salt: Uint8Array,
  info: string,
  length: number = KEY_BYTES,
): Promise<Uint8Array> {
  const key = await crypto.subtle.importKey("raw", copy(ikm), "HKDF", false, ["deriveBits"]);
  const bits = await crypto.subtle.deriveBits(
    { name: "HKDF", hash: "SHA-256", salt: copy(salt), info: encoder.encode(info) },
    key,
    length * 8,
  );
  return new Uint8Array(bits);
}

/** Inputs of {@linkcode deriveSessionSecrets}. */
export interface KeyScheduleInput {
  /** The X25519 shared secret (32 bytes). */
  sharedSecret: Uint8Array;
  /** The transcript hash from {@linkcode transcriptHash}. */
  transcriptHash: Uint8Array;
  /**
   * An optional secret both sides already share (later: the PAKE output). It is appended
   * to the input keying material, so sides with different values derive different keys
   * and key confirmation fails. Absent and empty are the same.
   */
  psk?: Uint8Array;
}

/**
 * The secrets of one session: keys of {@linkcode KEY_BYTES}, IVs of {@linkcode IV_BYTES}.
 */
export interface SessionSecrets {
  /** ChaCha20-Poly1305 key of the records the initiator sends. */
  initiatorToResponder: Uint8Array;
  /** ChaCha20-Poly1305 key of the records the responder sends. */
  responderToInitiator: Uint8Array;
  /** IV of the records the initiator sends (record n's nonce: IV XOR n). */
  ivInitiatorToResponder: Uint8Array;
  /** IV of the records the responder sends. */
  ivResponderToInitiator: Uint8Array;
  /** HMAC-SHA256 key of the initiator's key confirmation. */
  confirmInitiator: Uint8Array;
  /** HMAC-SHA256 key of the responder's key confirmation. */
  confirmResponder: Uint8Array;
}

/**
 * Derives the session's keys and IVs: HKDF-SHA256 with `ikm = sharedSecret || psk`,
 * `salt = transcriptHash`, and one label per secret.
 *
 * @example
 * ```ts ignore
 * import { deriveSessionSecrets } from "./key_schedule.ts";
 * const secrets = await deriveSessionSecrets({ sharedSecret, transcriptHash: th });
 * ```
 */
export async function deriveSessionSecrets(input: KeyScheduleInput): Promise<SessionSecrets> {
  const ikm = concatBytes([input.sharedSecret, input.psk ?? new Uint8Array(0)]);
  const salt = input.transcriptHash;
  try {
    const [i2r, r2i, ivI2r, ivR2i, confirmI, confirmR] = await Promise.all([
      hkdf(ikm, salt, LABELS.keyInitiatorToResponder),
      hkdf(ikm, salt, LABELS.keyResponderToInitiator),
      hkdf(ikm, salt, LABELS.ivInitiatorToResponder, IV_BYTES),
      hkdf(ikm, salt, LABELS.ivResponderToInitiator, IV_BYTES),
      hkdf(ikm, salt, LABELS.confirmInitiator),
      hkdf(ikm, salt, LABELS.confirmResponder),
    ]);
    return {
      initiatorToResponder: i2r,
      responderToInitiator: r2i,
      ivInitiatorToResponder: ivI2r,
      ivResponderToInitiator: ivR2i,
      confirmInitiator: confirmI,
      confirmResponder: confirmR,
    };
  } finally {
    ikm.fill(0);
  }
}

async function hmacKey(key: Uint8Array, usage: "sign" | "verify"): Promise<CryptoKey> {
  return await crypto.subtle.importKey(
    "raw",
    copy(key),
    { name: "HMAC", hash: "SHA-256" },
    false,
    [usage],
  );
}

/**
 * The key-confirmation MAC: HMAC-SHA256 of the transcript hash under a confirmation key.
 *
 * @example
 * ```ts ignore
 * import { confirmationMac } from "./key_schedule.ts";
 * const mac = await confirmationMac(secrets.confirmInitiator, th);
 * ```
 */
export async function confirmationMac(key: Uint8Array, th: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(
    await crypto.subtle.sign("HMAC", await hmacKey(key, "sign"), copy(th)),
  );
}

/**
 * Checks a key-confirmation MAC (in constant time).
 *
 * @example
 * ```ts ignore
 * import { verifyConfirmation } from "./key_schedule.ts";
 * const ok = await verifyConfirmation(secrets.confirmResponder, th, mac);
 * ```
 */
export async function verifyConfirmation(
  key: Uint8Array,
  th: Uint8Array,
  mac: Uint8Array,
): Promise<boolean> {
  return await crypto.subtle.verify("HMAC", await hmacKey(key, "verify"), copy(mac), copy(th));
}

function copy(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return new Uint8Array(bytes);
}
