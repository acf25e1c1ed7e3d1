/**
 * The size of a value as a frame header carries it: its JSON encoding in UTF-8.
 *
 * Characters are a poor measure of what a string costs on the wire: a control
 * character takes 6 bytes once JSON escapes it (`\u0001`), a CJK character 3. Limits
 * on what a reply or a stored name may take are checked with {@linkcode encodedSize}.
 *
 * @module
 */

const encoder = new TextEncoder();

/**
 * Bytes of `value`'s JSON encoding in UTF-8 (a string's with its two quotes).
 *
 * @example
 * ```ts
 * import { encodedSize } from "./json_size.ts";
 * encodedSize("a"); // 3
 * encodedSize("\u0001"); // 8
 * encodedSize({ a: 1 }); // 7
 * ```
 */
export function encodedSize(value: unknown): number {
  const json = JSON.stringify(value) ?? "";
  for (let i = 0; i < json.length; i++) {
    // Not ASCII: count the UTF-8 bytes.
    if (json.charCodeAt(i) > 0x7f) return encoder.encode(json).length;
  }
  return json.length;
}
