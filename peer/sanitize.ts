/**
 * Making text from the other side safe to print on a terminal.
 *
 * @module
 */

/**
 * Replaces every character that could drive a terminal or disguise a line with a visible
 * placeholder: C0 controls (including ESC, CR, LF and TAB) become their Control Pictures
 * (`␛`, `␍`, `␊`, `␉`, …), DEL becomes `␡`, and C1 controls, line and paragraph
 * separators and bidirectional formatting characters become `<U+XXXX>`. Everything else
 * is kept, so a printed line is exactly one line and cannot forge another.
 *
 * @example
 * ```ts
 * import { neutralizeControls } from "./sanitize.ts";
 * neutralizeControls("hi\x1b[2Jthere\n"); // "hi␛[2Jthere␊"
 * ```
 */
export function neutralizeControls(text: string): string {
  let out = "";
  let plainStart = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    const replacement = placeholder(code);
    if (replacement === null) continue;
    out += text.slice(plainStart, i) + replacement;
    plainStart = i + 1;
  }
  return plainStart === 0 ? text : out + text.slice(plainStart);
}

function placeholder(code: number): string | null {
  if (code < 0x20) return String.fromCharCode(0x2400 + code);
  if (code === 0x7f) return "\u2421";
  if (
    (code >= 0x80 && code <= 0x9f) || code === 0x2028 || code === 0x2029 ||
    code === 0x200e || code === 0x200f || (code >= 0x202a && code <= 0x202e) ||
    (code >= 0x2066 && code <= 0x2069) || code === 0x061c
  ) {
    return `<U+${code.toString(16).toUpperCase().padStart(4, "0")}>`;
  }
  return null;
}
