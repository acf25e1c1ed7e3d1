/**
 * Session codes for `chat peer --code`: generating a short code that two people can
 * read to each other (`7-maple-otter`), and normalising what they type, so that
 * `7 Maple otter` and `7-maple-otter` are the same code.
 *
 * A generated code is a number from 1 to 999 and two words from a list of 256: about 26
 * bits. That is plenty for a PAKE (CPace), where every guess costs the attacker one
 * live connection attempt that the users see fail; it is not a password to reuse.
 *
 * @module
 */

import { PeerError } from "./errors.ts";

/** The word list of generated codes: 256 short, distinct, easily spoken words. */
// deno-fmt-ignore
export const CODE_WORDS: readonly string[] = Object.freeze([
  "acid", "acorn", "actor", "adobe", "agent", "album", "alley", "amber", "anchor", "angle",
  "ankle", "apple", "apron", "arena", "armor", "arrow", "atlas", "attic", "award", "axis",
  "bacon", "badge", "bagel", "baker", "bamboo", "banjo", "barn", "basil", "basket", "beach",
  "beacon", "bean", "bear", "beaver", "bell", "belt", "bench", "berry", "bike", "bird", "bison",
  "blade", "blanket", "bloom", "board", "boat", "bolt", "bone", "book", "boot", "bottle", "bowl",
  "box", "brain", "brick", "bridge", "brook", "broom", "brush", "bucket", "buffalo", "bugle",
  "bunny", "butter", "button", "cabin", "cable", "cactus", "cake", "camel", "camera", "candle",
  "canoe", "canyon", "cape", "card", "carpet", "carrot", "castle", "cedar", "cello", "chair",
  "chalk", "cherry", "chess", "chimney", "cider", "circle", "clock", "cloud", "clover", "coast",
  "cobra", "cocoa", "comet", "coral", "corn", "cotton", "cougar", "crane", "crayon", "cricket",
  "crown", "cube", "cup", "curtain", "daisy", "dance", "delta", "desert", "diamond", "dingo",
  "dolphin", "donkey", "door", "dragon", "drum", "duck", "dune", "eagle", "easel", "echo",
  "elbow", "elephant", "elm", "ember", "engine", "falcon", "fan", "feather", "fence", "fern",
  "ferry", "fiddle", "field", "fig", "finch", "fire", "flag", "flame", "flute", "fog", "forest",
  "fossil", "fox", "frog", "fudge", "garden", "garlic", "gecko", "giant", "ginger", "glacier",
  "globe", "glove", "goat", "gold", "goose", "grape", "grass", "gravel", "guitar", "hammer",
  "harbor", "harp", "hat", "hawk", "hazel", "helmet", "heron", "hill", "honey", "hook", "horse",
  "house", "igloo", "island", "ivory", "jacket", "jaguar", "jam", "jelly", "jewel", "jungle",
  "kayak", "kettle", "key", "kite", "kiwi", "koala", "ladder", "lake", "lamp", "lantern", "lark",
  "lemon", "lens", "lily", "lime", "lion", "lizard", "llama", "lobster", "locket", "lotus",
  "magnet", "mango", "maple", "marble", "meadow", "melon", "mint", "mirror", "mitten", "moon",
  "moose", "moss", "mountain", "mouse", "mug", "mushroom", "music", "nest", "needle", "nickel",
  "night", "noodle", "oak", "oasis", "ocean", "olive", "onion", "orange", "orbit", "otter",
  "owl", "oyster", "paddle", "palm", "panda", "paper", "parrot", "peach", "peanut", "pearl",
  "pebble", "pencil", "penguin", "pepper", "piano", "pickle", "pigeon", "pillow", "pine",
  "planet", "plum",
]);

/** Longest code accepted, in characters (after normalisation). */
export const MAX_CODE_LENGTH = 256;

/**
 * Generates a fresh code: `N-word-word`, N from 1 to 999.
 *
 * @example
 * ```ts
 * import { generateCode } from "./code.ts";
 * /^\d{1,3}-[a-z]+-[a-z]+$/.test(generateCode()); // true
 * ```
 */
export function generateCode(): string {
  const random = crypto.getRandomValues(new Uint16Array(3));
  const number = (random[0] % 999) + 1;
  const first = CODE_WORDS[random[1] % CODE_WORDS.length];
  const second = CODE_WORDS[random[2] % CODE_WORDS.length];
  return `${number}-${first}-${second}`;
}

/**
 * Normalises a code as typed or read from a file: Unicode NFKC, lower case, and every
 * run of spaces, hyphens, dots or underscores becomes one hyphen (none at the ends).
 *
 * @throws {PeerError} `invalid_code` when nothing is left, or it is too long.
 * @example
 * ```ts
 * import { normalizeCode } from "./code.ts";
 * normalizeCode("  7 Maple--Otter\n"); // "7-maple-otter"
 * ```
 */
export function normalizeCode(code: string): string {
  const normalized = code.normalize("NFKC").toLowerCase().trim()
    .replace(/[\s\-._]+/gu, "-")
    .replace(/^-+|-+$/g, "");
  if (normalized.length === 0) throw new PeerError("invalid_code", "the code is empty");
  if (normalized.length > MAX_CODE_LENGTH) {
    throw new PeerError("invalid_code", `a code is at most ${MAX_CODE_LENGTH} characters`);
  }
  return normalized;
}
