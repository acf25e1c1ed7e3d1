/**
 * Errors of direct peer-to-peer sessions, each with a stable `code`.
 *
 * @module
 */

/**
 * Stable codes of {@linkcode PeerError}.
 *
 * - `handshake_failed`: the other side does not speak the peer protocol, sent a malformed or
 *   unexpected handshake message, closed during the handshake, or key confirmation failed
 *   (the connection was tampered with, or the two sides derived different keys).
 * - `version`: the two sides speak different peer protocol versions.
 * - `timeout`: the handshake did not finish in time, or an established session received
 *   nothing from the other side for its keepalive's timeout (the other machine went to
 *   sleep or lost its network without closing the connection).
 * - `decrypt_failed`: an encrypted record failed authentication (modified, replayed, dropped
 *   or reordered on the way); nothing from it was delivered.
 * - `bad_record`: an encrypted record's length is out of bounds.
 * - `bad_message`: an authenticated frame is not a valid peer message.
 * - `connection_lost`: the connection ended without a goodbye.
 * - `limit`: a record counter reached its limit; the session must end.
 * - `closed`: the session is closed; nothing more can be sent.
 * - `invalid_text`: a text to send is empty or too long (nothing was sent).
 * - `invalid_nick`: the local nick breaks the naming rules.
 * - `connect_failed`: the other side could not be reached.
 * - `aborted`: waiting for a peer was cancelled.
 * - `pake_failed`: the session code did not match on both sides (or only one side used
 *   one, or the code exchange was tampered with); nothing was revealed about the code.
 * - `invalid_code`: the local session code is empty or too long.
 * - `too_many_attempts`: a listener with a session code stopped after that many
 *   connections gave a wrong code (the code is burned: a new session needs a new one);
 *   also the refusal of an attempt while the last allowed ones are still under way.
 * - `listen_failed`: the listening address could not be bound (the port is in use, ...).
 * - `crypto_failed`: the system's OpenSSL refused a call while sealing or opening a record.
 */
export type PeerErrorCode =
  | "handshake_failed"
  | "version"
  | "timeout"
  | "decrypt_failed"
  | "bad_record"
  | "bad_message"
  | "connection_lost"
  | "limit"
  | "closed"
  | "invalid_text"
  | "invalid_nick"
  | "connect_failed"
  | "aborted"
  | "pake_failed"
  | "invalid_code"
  | "too_many_attempts"
  | "listen_failed"
  | "crypto_failed";

/**
 * A failure of a peer session, with a stable {@linkcode PeerErrorCode}.
 *
 * @example
 * ```ts
 * import { PeerError } from "./errors.ts";
 * const err = new PeerError("decrypt_failed", "record 3 failed authentication");
 * err.code; // "decrypt_failed"
 * ```
 */
export class PeerError extends Error {
  /** The stable, machine-readable reason. */
  readonly code: PeerErrorCode;

  /** Creates an error with a stable code and a human-readable message. */
  constructor(code: PeerErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "PeerError";
    this.code = code;
  }
}

/**
 * Finds a {@linkcode PeerError} in `err` or its chain of causes (a transport error
 * wrapping the record layer's failure, for instance).
 *
 * @example
 * ```ts
 * import { findPeerError, PeerError } from "./errors.ts";
 * const inner = new PeerError("limit", "counter exhausted");
 * findPeerError(new Error("write failed", { cause: inner })) === inner; // true
 * ```
 */
export function findPeerError(err: unknown): PeerError | undefined {
  for (let e = err, depth = 0; e !== undefined && e !== null && depth < 8; depth++) {
    if (e instanceof PeerError) return e;
    e = e instanceof Error ? e.cause : undefined;
  }
  return undefined;
}
