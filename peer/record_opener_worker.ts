/**
 * The thread of a {@linkcode RecordOpener} (`record_opener.ts`): opens the large records
 * of one receiving direction, each from the shared memory its ciphertext was read into
 * straight into the shared memory of its destination (a file chunk's frame payload),
 * while the session's thread reads the next record from the socket and writes the last
 * one to disk.
 *
 * Messages in: `{ key, iv }` (once), then `{ counter, aad, ciphertext, into }`
 * (`ciphertext` and `into` views of SharedArrayBuffers). Out: `{ ready: true }` once,
 * then one reply per record: `{ ok: true }`, or `{ ok: false, error }` when it did not
 * authenticate (what it left in `into` is never used).
 *
 * @module
 */

import { openRecordInto, recordNonce } from "./record_crypto.ts";

/** The worker's scope (the DOM lib's `self` is a window here). */
const scope = globalThis as unknown as {
  onmessage: ((event: MessageEvent) => void) | null;
  postMessage(message: unknown): void;
};

let key: Uint8Array | null = null;
let iv: Uint8Array | null = null;

scope.onmessage = (event: MessageEvent) => {
  const request = event.data as {
    key?: Uint8Array;
    iv?: Uint8Array;
    counter: bigint;
    aad: Uint8Array;
    ciphertext: Uint8Array;
    into: Uint8Array;
  };
  if (request.key !== undefined && request.iv !== undefined) {
    key = request.key;
    iv = request.iv;
    scope.postMessage({ ready: true });
    return;
  }
  try {
    if (key === null || iv === null) throw new Error("the record opener has no key");
    openRecordInto(
      key,
      recordNonce(iv, request.counter),
      request.aad,
      request.ciphertext,
      request.into,
    );
    scope.postMessage({ ok: true });
  } catch (error) {
    scope.postMessage({ ok: false, error: error instanceof Error ? error.message : String(error) });
  }
};
