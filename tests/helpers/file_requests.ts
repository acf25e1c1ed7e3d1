/**
 * File requests of the chat protocol as the file tests send them over a {@linkcode Probe}:
 * deterministic contents, a chunk that must be accepted, an offer accepted by its
 * recipient.
 *
 * @module
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import type { Probe, Received } from "./harness.ts";

/** The SHA-256 of `bytes`, as hex. */
export function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** `n` pseudo-random bytes, the same for the same `seed`. */
export function bytesOf(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

/** Sends a `file_chunk` and asserts it is accepted (within `ms`, the probe's default without). */
export async function chunkOk(
  probe: Probe,
  file: number,
  offset: number,
  body: Uint8Array,
  ms?: number,
): Promise<Received> {
  const id = crypto.randomUUID();
  probe.send({ type: "file_chunk", id, file, offset }, body);
  const reply = await probe.expect(
    (m) => (m.type === "ok" || m.type === "error") && m.re === id,
    ms,
  );
  assert.equal(reply.type, "ok", JSON.stringify(reply));
  return reply;
}

/** `from` offers `content` as `name` to `nick`, logged in as `to`, who accepts it. */
export async function offeredAndAccepted(
  from: Probe,
  to: Probe,
  nick: string,
  name: string,
  content: Uint8Array,
): Promise<number> {
  const offer = await from.ok("file_offer", {
    to: nick,
    name,
    size: content.length,
    sha256: sha256(content),
  });
  const file = offer.file as number;
  await to.ok("file_accept", { file });
  return file;
}
