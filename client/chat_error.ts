/**
 * The error every failed client operation rejects with.
 *
 * A {@linkcode ChatError} carries a stable `code`: the server's error code when the
 * server refused a request (see `ServerErrorCode` in `protocol/replies.ts`), or one of
 * the client's own {@linkcode ClientErrorCode}s when the failure happened on this
 * side (no connection, client closed, malformed server frame, ...).
 *
 * @module
 */

import type { ServerErrorCode } from "../protocol/replies.ts";

/**
 * Codes of failures detected by the client itself.
 *
 * - `connect_failed`: the server could not be reached (refused, unreachable, DNS).
 * - `tls_failed`: the TLS handshake failed (certificate not trusted, name mismatch).
 * - `not_tls`: TLS was asked for, but the server speaks plain TCP.
 * - `tls_only`: TLS was not asked for, but the server speaks only TLS.
 * - `timeout`: dialling, the hello exchange or the login took longer than allowed.
 * - `connection_lost`: the connection dropped and the request cannot be retried
 *   safely (a `broadcast` in flight), or it dropped during the handshake.
 * - `disconnected`: the connection dropped and reconnecting is off or gave up.
 * - `closed`: the client was closed (or logged out) before the reply came.
 * - `protocol_error`: the server sent something malformed; the connection was closed.
 * - `bad_request`: the request is malformed and was not sent.
 * - `frame_too_large`: the request is larger than the server accepts.
 * - `reply_too_large`: the server's reply was larger than this client accepts; it was
 *   skipped and the connection kept.
 * - `queue_full`: the outbound queue is full (the server does not read).
 * - `duplicate_id`: a request with the same id is already waiting for its reply.
 * - `usage`: a slash command was given the wrong arguments.
 * - `unknown_command`: no slash command has that name.
 */
export type ClientErrorCode =
  | "connect_failed"
  | "tls_failed"
  | "not_tls"
  | "tls_only"
  | "timeout"
  | "connection_lost"
  | "disconnected"
  | "closed"
  | "protocol_error"
  | "bad_request"
  | "frame_too_large"
  | "reply_too_large"
  | "queue_full"
  | "duplicate_id"
  | "usage"
  | "unknown_command";

/**
 * Every code a {@linkcode ChatError} may carry. Servers may send codes this version
 * does not know; they come through unchanged.
 */
export type ChatErrorCode =
  | ServerErrorCode
  | ClientErrorCode
  | "unsupported_version"
  // deno-lint-ignore ban-types
  | (string & {});

/** Options of {@linkcode ChatError}. */
export interface ChatErrorOptions extends ErrorOptions {
  /** Seconds to wait before trying again (server `locked`, `rate_limited`). */
  retryAfter?: number;
}

/**
 * A refused or failed client operation, with a stable `code`.
 *
 * @example
 * ```ts ignore
 * import { ChatError } from "./chat_error.ts";
 * try {
 *   await client.dm("nobody", "hi");
 * } catch (err) {
 *   if (err instanceof ChatError && err.code === "unknown_user") console.error(err.message);
 * }
 * ```
 */
export class ChatError extends Error {
  /** The stable, machine-readable reason. */
  readonly code: ChatErrorCode;
  /** Seconds to wait before trying again, when the server said so. */
  readonly retryAfter?: number;

  /** Creates an error with a stable code and a human-readable message. */
  constructor(code: ChatErrorCode, message: string, options: ChatErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "ChatError";
    this.code = code;
    if (options.retryAfter !== undefined) this.retryAfter = options.retryAfter;
  }
}

/**
 * Login failures that no retry can fix: they end the client instead of being retried
 * (wrong credentials, lockout, an invalid nick or password, an incompatible server).
 */
export const FATAL_LOGIN_CODES: ReadonlySet<string> = new Set([
  "wrong_password",
  "bad_token",
  "no_account",
  "locked",
  "bad_password",
  "bad_name",
  "bad_message",
  "bad_request",
  "unsupported_version",
  "already_logged_in",
  "protocol_error",
  "tls_failed",
  "not_tls",
  "tls_only",
]);

/** Failures to connect that may go away by themselves; see {@linkcode isRetryable}. */
export const RETRYABLE_CODES: ReadonlySet<string> = new Set([
  "connect_failed",
  "timeout",
  "connection_lost",
  "disconnected",
  "shutting_down",
  "rate_limited",
  "internal",
]);

/**
 * Whether a failure to connect is worth retrying later (the server is down, busy or
 * restarting), as opposed to a refusal that needs the user to change something.
 *
 * @example
 * ```ts
 * import { ChatError, isRetryable } from "./chat_error.ts";
 * isRetryable(new ChatError("connect_failed", "refused")); // true
 * isRetryable(new ChatError("wrong_password", "wrong password")); // false
 * ```
 */
export function isRetryable(err: unknown): boolean {
  return err instanceof ChatError && RETRYABLE_CODES.has(err.code);
}
