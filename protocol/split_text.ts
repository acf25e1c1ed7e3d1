/**
 * Splitting a text longer than a message may be into several messages, the way IRC
 * clients split a long line instead of refusing it.
 *
 * @module
 */

import { MAX_TEXT_LENGTH } from "./names.ts";

/**
 * Splits `text` into parts of at most `max` characters (UTF-16 code units, as
 * {@linkcode textProblem} counts them), in order: at the last whitespace that fits, which
 * is dropped at the break; inside a word only when the word alone is longer than `max`,
 * and then never inside a surrogate pair (an emoji stays whole). A text that fits is
 * returned as it is, alone; a part is never empty or only whitespace.
 *
 * @example
 * ```ts
 * import { splitText } from "./split_text.ts";
 * splitText("the quick brown fox", 10); // ["the quick", "brown fox"]
 * splitText("abcdefghij", 4); // ["abcd", "efgh", "ij"]
 * ```
 */
export function splitText(text: string, max: number = MAX_TEXT_LENGTH): string[] {
  if (!(max >= 2)) throw new RangeError(`cannot split into parts of ${max} characters`);
  const parts: string[] = [];
  let rest = text;
  while (rest.length > max) {
    if (rest.slice(0, max).trim() === "") {
      rest = rest.trimStart(); // whitespace alone would be an empty message
      continue;
    }
    // The last whitespace at or before `max` (a break at `max` leaves exactly `max` before it).
    const window = rest.slice(0, max + 1);
    let at = -1;
    for (let i = window.length - 1; i > 0; i--) {
      if (/\s/.test(window[i]!) && window.slice(0, i).trim() !== "") {
        at = i;
        break;
      }
    }
    if (at > 0) {
      parts.push(rest.slice(0, at).trimEnd());
      rest = rest.slice(at).trimStart();
    } else {
      // One word longer than a part: cut it, but not between the halves of a surrogate pair.
      const cut = isHighSurrogate(rest.charCodeAt(max - 1)) ? max - 1 : max;
      parts.push(rest.slice(0, cut));
      rest = rest.slice(cut);
    }
  }
  if (rest.trim() !== "" || parts.length === 0) parts.push(rest);
  return parts;
}

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}
