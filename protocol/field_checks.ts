/**
 * Checks of single message fields by hand, each equal to the schema it stands for, for
 * the messages parsed without a schema (the server's hot client messages in
 * `messages.ts`, a peer's file transfer messages in `peer/messages.ts`): their tests
 * compare them with the schemas on every kind of input.
 *
 * @example
 * ```ts
 * import { isFileBytes, isSha256Hex } from "./field_checks.ts";
 * isFileBytes(1048576); // true
 * isFileBytes(-1); // false
 * isSha256Hex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"); // true
 * isSha256Hex("E3B0"); // false
 * ```
 *
 * @module
 */

/** A SHA-256 digest in lowercase hex, as the schemas' `sha256Hex` takes it. */
const SHA256_HEX = /^[0-9a-f]{64}$/;

/** Whether `value` is a byte count or offset as `fileBytes` takes it: a safe integer ≥ 0. */
export function isFileBytes(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}

/** Whether `value` is a SHA-256 digest as `sha256Hex` takes it: 64 lowercase hex digits. */
export function isSha256Hex(value: unknown): value is string {
  return typeof value === "string" && SHA256_HEX.test(value);
}
