/**
 * The error a command handler throws to refuse a request with a reason.
 *
 * @module
 */

import type { ServerErrorCode } from "../protocol/replies.ts";

/**
 * A refused request: becomes an `error` reply with this code and message.
 *
 * @example
 * ```ts
 * import { CommandError } from "./errors.ts";
 * throw new CommandError("unknown_user", 'no account named "zed"');
 * ```
 */
export class CommandError extends Error {
  /** The stable code sent to the client. */
  readonly code: ServerErrorCode;
  /** Seconds until a retry can succeed (lockouts, rate limits). */
  readonly retryAfter: number | undefined;

  /** Creates the error. */
  constructor(code: ServerErrorCode, message: string, retryAfter?: number) {
    super(message);
    this.name = "CommandError";
    this.code = code;
    this.retryAfter = retryAfter;
  }
}
