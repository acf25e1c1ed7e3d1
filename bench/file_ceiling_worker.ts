/**
 * The decrypting thread of `file_ceiling.ts peer-receive-worker`: opens each record it is
 * told of, from one shared buffer into another, while the main thread reads the next
 * record from the socket and writes the last one to the file.
 *
 * Messages in: `{ init: {ciphertexts, plaintexts} }` (SharedArrayBuffers), then
 * `{ slot, length, counter }`. Out: `{ ok: true }` or `{ ok: false, error }` per record.
 *
 * @module
 */

import { createDecipheriv } from "node:crypto";

const scope = globalThis as unknown as {
  onmessage: ((event: MessageEvent) => void) | null;
  postMessage(message: unknown): void;
};

const KEY = new Uint8Array(32);
const SLICE = 64 * 1024;
let ciphertexts: Uint8Array[] = [];
let plaintexts: Uint8Array[] = [];

scope.onmessage = (event: MessageEvent) => {
  const m = event.data as {
    init?: { ciphertexts: SharedArrayBuffer[]; plaintexts: SharedArrayBuffer[] };
    slot: number;
    length: number;
    counter: number;
  };
  if (m.init) {
    ciphertexts = m.init.ciphertexts.map((b) => new Uint8Array(b));
    plaintexts = m.init.plaintexts.map((b) => new Uint8Array(b));
    return;
  }
  try {
    const ct = ciphertexts[m.slot].subarray(0, m.length);
    const out = plaintexts[m.slot];
    const iv = new Uint8Array(12);
    new DataView(iv.buffer).setUint32(8, m.counter);
    const prefix = new Uint8Array(4);
    new DataView(prefix.buffer).setUint32(0, m.length);
    const split = m.length - 16;
    const decipher = createDecipheriv("chacha20-poly1305", KEY, iv, { authTagLength: 16 });
    decipher.setAAD(prefix, { plaintextLength: split });
    decipher.setAuthTag(ct.subarray(split));
    for (let at = 0; at < split; at += SLICE) {
      const piece = decipher.update(ct.subarray(at, Math.min(split, at + SLICE)));
      out.set(piece, at);
      (piece.buffer as ArrayBuffer).transfer(0);
    }
    decipher.final();
    scope.postMessage({ ok: true });
  } catch (error) {
    scope.postMessage({ ok: false, error: error instanceof Error ? error.message : String(error) });
  }
};
