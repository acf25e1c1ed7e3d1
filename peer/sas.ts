/**
 * The short authentication string (SAS) of a peer session.
 *
 * Both sides derive it from the handshake transcript hash with HKDF-SHA256 under its own
 * label (`chat-peer/3 sas`) and show it to their users, who compare it over another
 * channel (in person, on the phone). A man in the middle runs two separate handshakes with
 * two different transcripts, so the two sides show different strings.
 *
 * The string is 25 decimal digits in five groups of five (about 83 bits), e.g.
 * `04213 99871 12345 67890 55555`. That is far beyond what a man in the middle could
 * match by grinding key pairs during a handshake.
 *
 * @module
 */

import { hkdf, LABELS } from "./key_schedule.ts";

/** Number of digit groups in a SAS. */
export const SAS_GROUPS = 5;
/** Digits per group. */
export const SAS_GROUP_DIGITS = 5;

const SAS_DIGITS = SAS_GROUPS * SAS_GROUP_DIGITS;
const SAS_MODULUS = 10n ** BigInt(SAS_DIGITS);
/** 128 bits reduced modulo 10^25: the bias is below 2^-44. */
const SAS_SOURCE_BYTES = 16;

/**
 * Derives the SAS from a transcript hash.
 *
 * @example
 * ```ts
 * import { deriveSas } from "./sas.ts";
 * const sas = await deriveSas(new Uint8Array(32));
 * /^\d{5}( \d{5}){4}$/.test(sas); // true
 * ```
 */
export async function deriveSas(transcriptHash: Uint8Array): Promise<string> {
  const bytes = await hkdf(transcriptHash, new Uint8Array(0), LABELS.sas, SAS_SOURCE_BYTES);
  let value = 0n;
  for (const byte of bytes) value = (value << 8n) | BigInt(byte);
  const digits = (value % SAS_MODULUS).toString().padStart(SAS_DIGITS, "0");
  const groups: string[] = [];
  for (let i = 0; i < SAS_DIGITS; i += SAS_GROUP_DIGITS) {
    groups.push(digits.slice(i, i + SAS_GROUP_DIGITS));
  }
  return groups.join(" ");
}

/**
 * Whether two SAS strings are the same, ignoring spaces (for typed-in comparisons).
 *
 * @example
 * ```ts
 * import { sameSas } from "./sas.ts";
 * sameSas("12345 67890", "1234567890"); // true
 * ```
 */
export function sameSas(a: string, b: string): boolean {
  return a.replace(/\s+/g, "") === b.replace(/\s+/g, "");
}
