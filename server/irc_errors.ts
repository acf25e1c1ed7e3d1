/**
 * The error an IRC command handler throws to refuse a command with a numeric of its own
 * (not one the chat error codes map to): the connection sends it and counts a failure,
 * as for any refused command.
 *
 * @module
 */

/**
 * A refused IRC command: the connection replies `numeric params...` to the client.
 *
 * @example
 * ```ts
 * import { IrcNumericError } from "./irc_errors.ts";
 * throw new IrcNumericError("904", "SASL authentication failed");
 * ```
 */
export class IrcNumericError extends Error {
  /** The stable code: always `irc_numeric` (the numeric says which). */
  readonly code = "irc_numeric";
  /** The numeric to reply. */
  readonly numeric: string;
  /** Its parameters after the client's nick. */
  readonly params: readonly string[];

  /** Creates the error; the last parameter is its message. */
  constructor(numeric: string, ...params: string[]) {
    super(`${numeric} ${params.join(" ")}`);
    this.name = "IrcNumericError";
    this.numeric = numeric;
    this.params = params;
  }
}
