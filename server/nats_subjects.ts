/**
 * Mapping chat's logical subjects and cluster topics to NATS subjects.
 *
 * A logical name such as `room.<key>` or `presence` is split at its FIRST dot into a
 * kind and the rest; each part becomes one NATS token through {@linkcode escapeToken}.
 * Keys may so contain anything (`.`, `*`, `>`, spaces, `%`): the mapping is injective
 * and never makes a wildcard or an extra token, so a subscriber of `room.a` hears
 * neither `room.a.b` nor `room.*`. Everything lives under a prefix (default `chat.`),
 * so that two clusters can share one NATS; the broker and the cluster bus each get a
 * namespace under it.
 *
 * @module
 */

/** Raised for a prefix that is not a plain NATS subject prefix. */
export class NatsSubjectError extends Error {
  /** Stable error code. */
  readonly code = "nats_subject";

  /** Creates the error with a one-line message. */
  constructor(message: string) {
    super(message);
    this.name = "NatsSubjectError";
  }
}

/** The default prefix of every subject of a chat cluster. */
export const DEFAULT_NATS_PREFIX = "chat.";

const PLAIN = /^[A-Za-z0-9_-]+$/;
const encoder = new TextEncoder();
const HEX = "0123456789ABCDEF";

/**
 * One NATS token for `text`: letters, digits, `_` and `-` stay, every other UTF-8 byte
 * becomes `%XX`, and the empty string becomes `%` (which no other text gives).
 *
 * @example
 * ```ts
 * import { escapeToken } from "./nats_subjects.ts";
 * escapeToken("a.b*"); // "a%2Eb%2A"
 * ```
 */
export function escapeToken(text: string): string {
  if (PLAIN.test(text)) return text;
  if (text === "") return "%";
  let out = "";
  for (const byte of encoder.encode(text)) {
    const plain = (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5a) ||
      (byte >= 0x61 && byte <= 0x7a) || byte === 0x5f || byte === 0x2d;
    out += plain ? String.fromCharCode(byte) : `%${HEX[byte >> 4]}${HEX[byte & 15]}`;
  }
  return out;
}

/**
 * The NATS subject of a logical `name` under `namespace` (a prefix ending with `.`):
 * the part before the first dot and the rest, each escaped into one token.
 *
 * @example
 * ```ts
 * import { natsSubject } from "./nats_subjects.ts";
 * natsSubject("chat.b.", "room.a.b"); // "chat.b.room.a%2Eb"
 * natsSubject("chat.b.", "all"); // "chat.b.all"
 * ```
 */
export function natsSubject(namespace: string, name: string): string {
  const dot = name.indexOf(".");
  if (dot < 0) return namespace + escapeToken(name);
  return `${namespace}${escapeToken(name.slice(0, dot))}.${escapeToken(name.slice(dot + 1))}`;
}

/**
 * Checks and normalises a prefix: tokens of letters, digits, `_`, `-` separated by dots,
 * ending with a dot (added when missing).
 *
 * @example
 * ```ts
 * import { natsPrefix } from "./nats_subjects.ts";
 * natsPrefix("chat"); // "chat."
 * natsPrefix("school.chat."); // "school.chat."
 * ```
 */
export function natsPrefix(prefix: string): string {
  const trimmed = prefix.endsWith(".") ? prefix.slice(0, -1) : prefix;
  if (trimmed === "" || !trimmed.split(".").every((token) => PLAIN.test(token))) {
    throw new NatsSubjectError(
      `NATS prefix ${JSON.stringify(prefix)} must be dot-separated letters, digits, _ and -`,
    );
  }
  return `${trimmed}.`;
}
