/**
 * Errors of the command-line layer and how they turn into exit codes.
 *
 * @module
 */

/** Exit code of a successful run. */
export const EXIT_OK = 0;
/** Exit code of a runtime failure (port in use, unreadable file, lost connection, ...). */
export const EXIT_FAILURE = 1;
/** Exit code of a usage error (unknown mode, bad flag, bad flag value). */
export const EXIT_USAGE = 2;

/**
 * A mistake in how the program was invoked. `chat` prints its message and the usage of
 * the mode on stderr and exits with {@linkcode EXIT_USAGE}.
 *
 * @example
 * ```ts
 * import { UsageError } from "./errors.ts";
 * const err = new UsageError("--tls-cert and --tls-key must be given together");
 * err.code; // "usage"
 * ```
 */
export class UsageError extends Error {
  /** Stable error code. */
  readonly code = "usage";

  /** Creates a usage error with a one-line message. */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/**
 * Turns any thrown value into one line of text for the user: the message's lines are
 * joined and the usual Deno error class names are spelled out.
 *
 * @example
 * ```ts
 * import { oneLine } from "./errors.ts";
 * oneLine(new Error("a\nb")); // "a; b"
 * ```
 */
export function oneLine(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const text = message.split(/\r?\n/).map((line) => line.trim()).filter((line) => line !== "")
    .join("; ");
  if (text !== "") return text;
  return err instanceof Error ? err.name : "unknown error";
}
