/**
 * The `hello` exchange that opens every connection.
 *
 * The dialling side sends `hello` with its protocol version and the features it
 * knows; the answering side checks the version and replies with its own `hello`
 * (the version it speaks, the features both sides share, and its maximum frame
 * size), or with an `error` of code `unsupported_version` before closing. Neither
 * side ever waits silently on an incompatible peer.
 *
 * @module
 */

import { ProtocolError } from "./errors.ts";
import {
  type ClientMessageMap,
  LARGE_CHUNKS_FEATURE,
  PROTOCOL_VERSION,
  type ServerMessageMap,
} from "./messages.ts";

/** Features a version-1 server offers. Clients may ask for a subset. */
export const SERVER_FEATURES: readonly string[] = [
  "rooms",
  "dm",
  "broadcast",
  "presence",
  "history",
  "receipts",
  "contacts",
  "block",
  LARGE_CHUNKS_FEATURE,
];

/**
 * Builds the client's opening `hello`.
 *
 * @example
 * ```ts
 * import { clientHello } from "./hello.ts";
 * const hello = clientHello(["rooms", "dm"], "chat/0.1.0");
 * ```
 */
export function clientHello(
  features: readonly string[],
  agent?: string,
): ClientMessageMap["hello"] {
  return {
    type: "hello",
    v: PROTOCOL_VERSION,
    features: [...features],
    ...(agent ? { agent } : {}),
  };
}

/**
 * Answers a client's `hello`: the shared features, or a `ProtocolError`
 * of code `unsupported_version` when the versions differ.
 *
 * @throws {ProtocolError} `unsupported_version`.
 */
export function answerHello(
  hello: ClientMessageMap["hello"],
  options: { features: readonly string[]; server: string; maxFrame: number; maxQueue?: number },
): ServerMessageMap["hello"] {
  if (hello.v !== PROTOCOL_VERSION) {
    throw new ProtocolError(
      "unsupported_version",
      `protocol version ${hello.v} is not supported; this side speaks version ${PROTOCOL_VERSION}`,
    );
  }
  const offered = new Set(hello.features);
  return {
    type: "hello",
    v: PROTOCOL_VERSION,
    features: options.features.filter((f) => offered.has(f)),
    server: options.server,
    maxFrame: options.maxFrame,
    ...(options.maxQueue === undefined ? {} : { maxQueue: options.maxQueue }),
  };
}

/**
 * Checks the answering side's `hello` on the dialling side.
 *
 * @throws {ProtocolError} `unsupported_version`.
 */
export function checkServerHello(hello: ServerMessageMap["hello"]): ServerMessageMap["hello"] {
  if (hello.v !== PROTOCOL_VERSION) {
    throw new ProtocolError(
      "unsupported_version",
      `the other side speaks protocol version ${hello.v}; this side speaks ${PROTOCOL_VERSION}`,
    );
  }
  return hello;
}
