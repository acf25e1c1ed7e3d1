/**
 * Rules for nicks and room names.
 *
 * A name is 1 to 32 characters of ASCII letters, digits, `_`, `-` and `.`. Names are
 * unique case-insensitively: {@linkcode nameKey} gives the form used for comparison
 * and storage keys, while the display form keeps the case it was created with.
 *
 * @module
 */

/** Longest nick or room name, in characters. */
export const MAX_NAME_LENGTH = 32;
/** The allowed shape of a nick or room name. */
export const NAME_PATTERN: RegExp = /^[A-Za-z0-9_.-]{1,32}$/;
/** Longest message text, in characters. */
export const MAX_TEXT_LENGTH = 4000;
/** Longest room topic, in characters. */
export const MAX_TOPIC_LENGTH = 300;
/** Shortest password accepted at registration. */
export const MIN_PASSWORD_LENGTH = 8;

/**
 * Returns why `name` is not a valid nick or room name, or `null` when it is.
 *
 * @example
 * ```ts
 * import { nameProblem } from "./names.ts";
 * nameProblem("alice"); // null
 * nameProblem("a b"); // "may only contain letters, digits, _ - and ."
 * ```
 */
export function nameProblem(name: string): string | null {
  if (name.length === 0) return "must not be empty";
  if (name.length > MAX_NAME_LENGTH) return `must be at most ${MAX_NAME_LENGTH} characters`;
  if (!NAME_PATTERN.test(name)) return "may only contain letters, digits, _ - and .";
  return null;
}

/** The case-insensitive key of a name. */
export function nameKey(name: string): string {
  return name.toLowerCase();
}

/**
 * Returns why `text` cannot be sent as a message, or `null` when it can.
 */
export function textProblem(text: string, max = MAX_TEXT_LENGTH): string | null {
  if (text.trim().length === 0) return "message is empty";
  if (text.length > max) return `message is longer than ${max} characters`;
  return null;
}
