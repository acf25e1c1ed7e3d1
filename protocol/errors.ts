/**
 * Errors raised while decoding or validating what arrives on the wire.
 *
 * Every failure of the codec and of message validation is a {@linkcode ProtocolError}
 * with a stable {@linkcode ProtocolErrorCode}, so that callers (the server, the client,
 * the tests) branch on the code and never on the message text.
 *
 * @module
 */

/**
 * Stable codes of {@linkcode ProtocolError}.
 *
 * - `frame_too_large`: the length prefix announces more than the connection's maximum.
 * - `bad_frame`: the payload's inner layout is impossible (header length out of range).
 * - `truncated_frame`: the stream ended inside a frame.
 * - `bad_utf8`: the JSON header is not valid UTF-8.
 * - `bad_json`: the JSON header does not parse, or is not an object.
 * - `unknown_type`: the header's `type` names no known message.
 * - `bad_message`: a known message with missing or ill-typed fields.
 * - `unsupported_version`: the peer speaks a protocol version we do not.
 * - `server_busy`: the receiver holds as many bytes of unfinished frames (from all its
 *   connections) as it allows, and cannot take a new one.
 */
export type ProtocolErrorCode =
  | "frame_too_large"
  | "bad_frame"
  | "truncated_frame"
  | "bad_utf8"
  | "bad_json"
  | "unknown_type"
  | "bad_message"
  | "unsupported_version"
  | "server_busy";

/**
 * A decoding or validation failure with a stable {@linkcode ProtocolErrorCode}.
 *
 * @example
 * ```ts
 * import { ProtocolError } from "./errors.ts";
 * const err = new ProtocolError("bad_json", "header is not JSON");
 * err.code; // "bad_json"
 * ```
 */
export class ProtocolError extends Error {
  /** The stable, machine-readable reason. */
  readonly code: ProtocolErrorCode;

  /** Creates an error with a stable code and a human-readable message. */
  constructor(code: ProtocolErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ProtocolError";
    this.code = code;
  }

  /**
   * Whether the byte stream can no longer be trusted after this error
   * (framing failures); message-level errors leave the stream in sync.
   */
  get fatal(): boolean {
    return this.code !== "unknown_type" && this.code !== "bad_message";
  }
}
