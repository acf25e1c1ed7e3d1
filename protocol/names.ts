/**
 * Rules for nicks and room names.
 *
 * A name is 1 to 32 characters of ASCII letters, digits, `_`, `-` and `.`. Names are
 * unique case-insensitively: {@linkcode nameKey} gives the form used for comparison
 * and storage keys, while the display form keeps the case it was created with.
 *
 * Nicks that read like the server talking (`server`, `SYSTEM`) are reserved, and a
 * nick whose {@linkcode nameSkeleton} matches an existing one (`aIice` beside `alice`)
 * cannot be registered.
 *
 * @module
 */

import { encodedSize } from "./json_size.ts";

/** Longest nick or room name, in characters. */
export const MAX_NAME_LENGTH = 32;
/** The allowed shape of a nick or room name. */
export const NAME_PATTERN: RegExp = /^[A-Za-z0-9_.-]{1,32}$/;
/** Longest message text, in characters. */
export const MAX_TEXT_LENGTH = 4000;
/** Longest room topic, in characters. */
export const MAX_TOPIC_LENGTH = 300;
/** Most characters of an away message (longer ones are cut). */
export const MAX_AWAY_LENGTH = 300;
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

/** Most bytes a room topic may take in JSON (UTF-8, escapes counted: a control character is 6). */
export const MAX_TOPIC_BYTES = 1024;

/**
 * Returns why `topic` cannot be a room topic, or `null` when it can: at most
 * {@linkcode MAX_TOPIC_LENGTH} characters and {@linkcode MAX_TOPIC_BYTES} bytes of JSON.
 */
export function topicProblem(topic: string): string | null {
  if (topic.length > MAX_TOPIC_LENGTH) return `a topic is at most ${MAX_TOPIC_LENGTH} characters`;
  if (encodedSize(topic) - 2 > MAX_TOPIC_BYTES) {
    return `a topic takes at most ${MAX_TOPIC_BYTES} bytes (a control character takes 6)`;
  }
  return null;
}

/**
 * Nicks nobody may register: they read like the server, the client or everyone
 * talking. Compared by {@linkcode nameSkeleton}, so `SYSTEM`, `server.` and `5erver`
 * are refused too.
 */
export const RESERVED_NICKS: readonly string[] = [
  "server",
  "system",
  "admin",
  "administrator",
  "root",
  "chat",
  "operator",
  "moderator",
  "notice",
  "status",
  "info",
  "warning",
  "error",
  "everyone",
  "all",
  "nobody",
  "anonymous",
];

// Characters of names that read alike, to one of them (after lowercasing).
const LOOKALIKE: Readonly<Record<string, string>> = {
  "0": "o",
  "1": "l",
  "i": "l",
  "5": "s",
  "-": "_",
  ".": "_",
};

/**
 * The skeleton of a name: what it looks like, for telling apart names that read the
 * same (an ASCII take on Unicode's confusable skeletons, UTS #39). Lowercase, with
 * look-alike characters folded together (`I`, `l`, `1` and `i`; `0` and `o`; `5` and
 * `s`; `rn` and `m`; `vv` and `w`; `.`, `-` and `_`), runs of separators made one and separators at
 * either end dropped.
 *
 * @example
 * ```ts
 * import { nameSkeleton } from "./names.ts";
 * nameSkeleton("aIice") === nameSkeleton("alice"); // true
 * nameSkeleton("alice.") === nameSkeleton("alice"); // true
 * nameSkeleton("bob") === nameSkeleton("rob"); // false
 * ```
 */
export function nameSkeleton(name: string): string {
  let folded = "";
  for (const char of name.toLowerCase()) folded += LOOKALIKE[char] ?? char;
  return folded
    .replace(/rn/g, "m")
    .replace(/vv/g, "w")
    .replace(/_+/g, "_")
    .replace(/^_+|_+$/g, "");
}

const RESERVED_SKELETONS = new Set(RESERVED_NICKS.map(nameSkeleton));

/**
 * Returns why `nick` may not be registered because it reads like a system name
 * ({@linkcode RESERVED_NICKS}), or `null`. Accounts that have such a nick already keep it.
 *
 * @example
 * ```ts
 * import { reservedNickProblem } from "./names.ts";
 * reservedNickProblem("SYSTEM"); // "is reserved: it reads like \"system\""
 * reservedNickProblem("alice"); // null
 * ```
 */
export function reservedNickProblem(nick: string): string | null {
  const skeleton = nameSkeleton(nick);
  if (!RESERVED_SKELETONS.has(skeleton)) return null;
  const like = RESERVED_NICKS.find((name) => nameSkeleton(name) === skeleton) ?? skeleton;
  return `is reserved: it reads like "${like}"`;
}
