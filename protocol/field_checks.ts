/**
 * The file fields both protocols share (the server's in `messages.ts`, a peer's in
 * `peer/messages.ts`), each stated once: as a schema, and as a check by hand equal to
 * it for the messages parsed without a schema (the server's hot client messages, a
 * peer's file transfer messages); the tests compare each check with its schema on every
 * kind of input.
 *
 * @example
 * ```ts
 * import { fileBytesSchema, isFileBytes, isSha256Hex } from "./field_checks.ts";
 * isFileBytes(1048576); // true
 * isFileBytes(-1); // false
 * fileBytesSchema.safeParse(-1).success; // false
 * isSha256Hex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"); // true
 * isSha256Hex("E3B0"); // false
 * ```
 *
 * @module
 */

import { z } from "zod";

/** A SHA-256 digest in lowercase hex. */
const SHA256_HEX = /^[0-9a-f]{64}$/;

/** A byte count or offset in a file: a safe integer ≥ 0. */
export const fileBytesSchema = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);

/** A SHA-256 digest in lowercase hex. */
export const sha256HexSchema = z.string().regex(
  SHA256_HEX,
  "expected a SHA-256 digest in lowercase hex",
);

/** Whether `value` is a byte count or offset as {@linkcode fileBytesSchema} takes it. */
export function isFileBytes(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}

/** Whether `value` is a SHA-256 digest as {@linkcode sha256HexSchema} takes it. */
export function isSha256Hex(value: unknown): value is string {
  return typeof value === "string" && SHA256_HEX.test(value);
}
