/**
 * Which ChaCha20-Poly1305 implementation the peer records use, chosen once per process:
 * the system's OpenSSL 3 through FFI (`record_aead_openssl.ts`) when `--allow-ffi` is
 * granted and libcrypto loads, else `node:crypto` (`record_aead_node.ts`). Both give the
 * same bytes on the wire, so either side may use either.
 *
 * @example
 * ```ts
 * import { recordAead } from "./record_aead_choice.ts";
 * recordAead().name; // "openssl" with --allow-ffi and libcrypto 3, else "node"
 * ```
 *
 * @module
 */

import type { RecordAead } from "./record_aead.ts";
import { nodeRecordAead } from "./record_aead_node.ts";
import { loadOpenSslRecordAead } from "./record_aead_openssl.ts";

let chosen: RecordAead | null = null;

/** The process's record AEAD (chosen at the first call, the same after). */
export function recordAead(): RecordAead {
  return chosen ??= loadOpenSslRecordAead() ?? nodeRecordAead;
}
