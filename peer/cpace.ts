/**
 * CPace, the balanced PAKE of draft-irtf-cfrg-cpace, with the cipher suite
 * CPACE-RISTR255-SHA512 (the group ristretto255 from `@noble/curves`, SHA-512 from
 * WebCrypto), in the initiator/responder setting.
 *
 * Both sides know a low-entropy secret (the password-related string PRS, here the
 * session code). Each derives the same generator from it, sends one group element, and
 * gets an intermediate session key (ISK) that is equal on both sides only when both
 * used the same PRS, channel identifier CI and session id sid. Someone who does not
 * know the code learns nothing from a run that lets them test guesses offline: each
 * active attempt tests one guess.
 *
 * ```text
 * generator_string = lv_cat(DSI, PRS, zero_bytes(len_zpad), CI, sid)
 * g   = one_way_map(SHA-512(generator_string))              (ristretto255)
 * Ya  = encode(g^ya)              MSGa = lv_cat(Ya, ADa)
 * Yb  = encode(g^yb)              MSGb = lv_cat(Yb, ADb)
 * K   = scalar_mult_vfy(ya, Yb) = scalar_mult_vfy(yb, Ya)   (abort if K = identity)
 * ISK = SHA-512(lv_cat(DSI || "_ISK", sid, K) || MSGa || MSGb)
 * ```
 *
 * `lv_cat` prefixes every string with its length in LEB128. The functions here are
 * checked against the draft's test vectors (appendix B.3) in `cpace_test.ts`.
 *
 * @module
 */

import { ristretto255, ristretto255_hasher } from "@noble/curves/ed25519.js";
import { concatBytes } from "../protocol/bytes.ts";
import { PeerError } from "./errors.ts";

const Point = ristretto255.Point;
type RistrettoPoint = InstanceType<typeof Point>;

/** The domain-separation identifier of the ristretto255 group environment. */
export const CPACE_DSI = "CPaceRistretto255";
/** SHA-512's input block size, which the generator string's zero padding fills. */
export const SHA512_BLOCK_BYTES = 128;
/** Bytes of an encoded ristretto255 element. */
export const ELEMENT_BYTES = 32;
/** Bytes of the intermediate session key (a SHA-512 output). */
export const ISK_BYTES = 64;

const encoder = new TextEncoder();

function bytesOf(value: Uint8Array | string): Uint8Array {
  return typeof value === "string" ? encoder.encode(value) : value;
}

async function sha512(data: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-512", new Uint8Array(data)));
}

/**
 * The length of `data` in unsigned LEB128, followed by `data` (`prepend_len`).
 *
 * @example
 * ```ts
 * import { prependLen } from "./cpace.ts";
 * prependLen(new Uint8Array(3)); // Uint8Array [3, 0, 0, 0]
 * prependLen(new Uint8Array(128)).subarray(0, 2); // Uint8Array [0x80, 0x01]
 * ```
 */
export function prependLen(data: Uint8Array | string): Uint8Array {
  const bytes = bytesOf(data);
  const prefix: number[] = [];
  let length = bytes.length;
  do {
    let byte = length & 0x7f;
    length = Math.floor(length / 128);
    if (length > 0) byte |= 0x80;
    prefix.push(byte);
  } while (length > 0);
  return concatBytes([new Uint8Array(prefix), bytes]);
}

/**
 * The prefix-free concatenation of strings (`lv_cat` / `prefix_free_cat`): each one
 * preceded by its LEB128 length.
 *
 * @example
 * ```ts
 * import { lvCat } from "./cpace.ts";
 * lvCat("ab", new Uint8Array([7])); // Uint8Array [2, 0x61, 0x62, 1, 7]
 * ```
 */
export function lvCat(...parts: (Uint8Array | string)[]): Uint8Array {
  return concatBytes(parts.map(prependLen));
}

/**
 * The generator string: `lv_cat(DSI, PRS, zero_bytes(len_zpad), CI, sid)`, the padding
 * making the DSI, the PRS and the padding fill the hash's first input block.
 */
export function generatorString(
  dsi: Uint8Array | string,
  prs: Uint8Array | string,
  ci: Uint8Array | string,
  sid: Uint8Array | string,
  sInBytes: number = SHA512_BLOCK_BYTES,
): Uint8Array {
  const prsBytes = bytesOf(prs);
  const dsiBytes = bytesOf(dsi);
  const zpad = Math.max(
    0,
    sInBytes - prependLen(prsBytes).length - prependLen(dsiBytes).length - 1,
  );
  return lvCat(dsiBytes, prsBytes, new Uint8Array(zpad), ci, sid);
}

/**
 * `G.calculate_generator`: hashes the generator string with SHA-512 and maps the 64
 * bytes to a ristretto255 element with the group's one-way map.
 */
export async function calculateGenerator(
  prs: Uint8Array | string,
  ci: Uint8Array | string,
  sid: Uint8Array | string,
): Promise<RistrettoPoint> {
  const hash = await sha512(generatorString(CPACE_DSI, prs, ci, sid));
  return ristretto255_hasher.deriveToCurve!(hash) as RistrettoPoint;
}

/**
 * `G.sample_scalar`: 32 random bytes with the bits above bit 251 cleared, read as a
 * little-endian integer (so it is below the group order); zero is redrawn.
 */
export function sampleScalar(): Uint8Array {
  while (true) {
    const scalar = crypto.getRandomValues(new Uint8Array(ELEMENT_BYTES));
    scalar[31] &= 0x0f;
    if (scalar.some((byte) => byte !== 0)) return scalar;
  }
}

function scalarValue(scalar: Uint8Array): bigint {
  if (scalar.length !== ELEMENT_BYTES) throw new RangeError("a scalar is 32 bytes");
  let value = 0n;
  for (let i = scalar.length - 1; i >= 0; i--) value = (value << 8n) | BigInt(scalar[i]);
  const reduced = value % Point.Fn.ORDER;
  if (reduced === 0n) throw new RangeError("the scalar is zero modulo the group order");
  return reduced;
}

/** `G.scalar_mult(y, g)`: the encoding of `g^y`. */
export function scalarMult(scalar: Uint8Array, generator: RistrettoPoint): Uint8Array {
  return generator.multiply(scalarValue(scalar)).toBytes();
}

/** The encoding of the neutral element (`G.I`): 32 zero bytes. */
export const IDENTITY: Uint8Array = new Uint8Array(ELEMENT_BYTES);

/**
 * `G.scalar_mult_vfy(y, X)`: decodes `X` and returns the encoding of `X^y`, or
 * {@linkcode IDENTITY} when `X` does not decode (or the result is the identity).
 */
export function scalarMultVfy(scalar: Uint8Array, encoded: Uint8Array): Uint8Array {
  let point: RistrettoPoint;
  try {
    point = Point.fromBytes(encoded);
  } catch {
    return IDENTITY.slice();
  }
  if (point.is0()) return IDENTITY.slice();
  const result = point.multiply(scalarValue(scalar));
  return result.is0() ? IDENTITY.slice() : result.toBytes();
}

/**
 * The intermediate session key of the initiator/responder setting:
 * `SHA-512(lv_cat(DSI || "_ISK", sid, K) || MSGa || MSGb)`, MSGa being the initiator's.
 */
export async function deriveIsk(
  sid: Uint8Array | string,
  k: Uint8Array,
  msgA: Uint8Array,
  msgB: Uint8Array,
): Promise<Uint8Array> {
  return await sha512(concatBytes([lvCat(`${CPACE_DSI}_ISK`, sid, k), msgA, msgB]));
}

/** Inputs of {@linkcode startCpace}. */
export interface CpaceInput {
  /** The shared low-entropy secret (the code). */
  prs: Uint8Array | string;
  /** The channel identifier. */
  ci: Uint8Array | string;
  /** The session id; both sides must use the same one. */
  sid: Uint8Array | string;
  /** This side's associated data (sent in the clear with its share). */
  ad: Uint8Array | string;
  /** The secret scalar; default a fresh one (tests pass the draft's). */
  scalar?: Uint8Array;
}

/** One side's state between sending its share and receiving the other's. */
export interface CpaceState {
  /** This side's public share `Y` (32 bytes), to send to the other side. */
  readonly share: Uint8Array;
  /** This side's message `lv_cat(Y, AD)`. */
  readonly message: Uint8Array;
  readonly scalar: Uint8Array;
  readonly sid: Uint8Array;
}

/**
 * Computes this side's share from the code.
 *
 * @example
 * ```ts ignore
 * import { finishCpace, startCpace } from "./cpace.ts";
 * const a = await startCpace({ prs: "7-apple-river", ci: "demo", sid, ad: "initiator" });
 * const b = await startCpace({ prs: "7-apple-river", ci: "demo", sid, ad: "responder" });
 * const iskA = await finishCpace(a, "initiator", b.share, "responder");
 * ```
 */
export async function startCpace(input: CpaceInput): Promise<CpaceState> {
  const generator = await calculateGenerator(input.prs, input.ci, input.sid);
  const scalar = input.scalar ?? sampleScalar();
  const share = scalarMult(scalar, generator);
  return {
    share,
    message: lvCat(share, input.ad),
    scalar,
    sid: bytesOf(input.sid),
  };
}

/**
 * Finishes the exchange with the other side's share and associated data and returns
 * the 64-byte ISK. `role` says whose message comes first in the transcript.
 *
 * @throws {PeerError} `pake_failed` when the other share is not a valid element or
 * yields the identity (the protocol must abort).
 */
export async function finishCpace(
  state: CpaceState,
  role: "initiator" | "responder",
  otherShare: Uint8Array,
  otherAd: Uint8Array | string,
): Promise<Uint8Array> {
  const k = scalarMultVfy(state.scalar, otherShare);
  if (k.every((byte) => byte === 0)) {
    throw new PeerError("pake_failed", "the other side's code share is not a valid group element");
  }
  const otherMessage = lvCat(otherShare, otherAd);
  const isk = role === "initiator"
    ? await deriveIsk(state.sid, k, state.message, otherMessage)
    : await deriveIsk(state.sid, k, otherMessage, state.message);
  k.fill(0);
  state.scalar.fill(0);
  return isk;
}
