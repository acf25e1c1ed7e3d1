/**
 * Terminal arithmetic for the interactive client: how wide text is on screen, where
 * the cursor of a wrapped input line sits, and the bytes that print incoming lines
 * above the prompt without disturbing what is being typed.
 *
 * These are pure functions (no I/O); the caller writes the strings they return.
 *
 * @module
 */

// deno-lint-ignore no-control-regex
const ANSI_SEQUENCE = /\x1b\[[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]/g;

/** Whether a code point takes no column (combining marks, zero-width characters). */
function isZeroWidth(cp: number): boolean {
  return (cp >= 0x0300 && cp <= 0x036f) || (cp >= 0x1ab0 && cp <= 0x1aff) ||
    (cp >= 0x1dc0 && cp <= 0x1dff) || (cp >= 0x20d0 && cp <= 0x20ff) ||
    (cp >= 0xfe20 && cp <= 0xfe2f) || (cp >= 0xfe00 && cp <= 0xfe0f) ||
    cp === 0x200b || cp === 0x200c || cp === 0x200d || cp === 0x2060 || cp === 0xfeff ||
    (cp >= 0xe0100 && cp <= 0xe01ef);
}

/** Whether a code point takes two columns (East Asian wide and full-width, most emoji). */
function isWide(cp: number): boolean {
  return (cp >= 0x1100 && cp <= 0x115f) || (cp >= 0x2e80 && cp <= 0x303e) ||
    (cp >= 0x3041 && cp <= 0x33ff) || (cp >= 0x3400 && cp <= 0x4dbf) ||
    (cp >= 0x4e00 && cp <= 0x9fff) || (cp >= 0xa000 && cp <= 0xa4cf) ||
    (cp >= 0xac00 && cp <= 0xd7a3) || (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0xfe30 && cp <= 0xfe4f) || (cp >= 0xff00 && cp <= 0xff60) ||
    (cp >= 0xffe0 && cp <= 0xffe6) || (cp >= 0x1f300 && cp <= 0x1f64f) ||
    (cp >= 0x1f900 && cp <= 0x1f9ff) || (cp >= 0x1f680 && cp <= 0x1f6ff) ||
    (cp >= 0x20000 && cp <= 0x3fffd);
}

/** Columns taken by one character (code point). */
export function charWidth(char: string): number {
  const cp = char.codePointAt(0) ?? 0;
  if (cp < 0x20 || (cp >= 0x7f && cp < 0xa0)) return 0;
  if (isZeroWidth(cp)) return 0;
  return isWide(cp) ? 2 : 1;
}

/**
 * Columns `text` takes on one terminal line, ignoring ANSI colour sequences.
 *
 * @example
 * ```ts
 * import { displayWidth } from "./terminal_ui.ts";
 * displayWidth("\x1b[31mred\x1b[39m"); // 3
 * displayWidth("日本"); // 4
 * ```
 */
export function displayWidth(text: string): number {
  let width = 0;
  for (const char of text.replace(ANSI_SEQUENCE, "")) width += charWidth(char);
  return width;
}

/**
 * What starts every row a long line continues on: as wide as the time that starts
 * every line (`HH:MM `), so that text from others, however it is padded, never starts a
 * row at the left edge, where a local status line (`12:00 ! server: ...`) would.
 */
export const CONTINUATION_INDENT = "      ";

// An ANSI colour sequence at the start of a string (what sanitized text still carries).
// deno-lint-ignore no-control-regex
const LEADING_ANSI = /^\x1b\[[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]/;

/**
 * Breaks one line into the rows a terminal `columns` wide shows, each row after the
 * first starting with {@linkcode CONTINUATION_INDENT}, instead of letting the terminal
 * wrap it at the left edge: a message padded to the terminal's width cannot so draw a
 * line of its own that looks like the client's. Colour sequences take no width; a
 * wide character is never split over two rows. A line that fits is returned as is.
 *
 * @example
 * ```ts
 * import { wrapLine } from "./terminal_ui.ts";
 * wrapLine("12:00 <eve> " + " ".repeat(8) + "12:00 ! server: x", 20);
 * // ["12:00 <eve>         ", "      12:00 ! server", "      : x"]
 * ```
 */
export function wrapLine(line: string, columns: number): string[] {
  if (columns <= 0 || displayWidth(line) <= columns) return [line];
  const indent = columns > CONTINUATION_INDENT.length * 2 ? CONTINUATION_INDENT : "";
  const rows: string[] = [];
  let row = "";
  let width = 0;
  let rest = line;
  while (rest.length > 0) {
    const ansi = LEADING_ANSI.exec(rest);
    if (ansi !== null) {
      row += ansi[0];
      rest = rest.slice(ansi[0].length);
      continue;
    }
    const char = String.fromCodePoint(rest.codePointAt(0)!);
    rest = rest.slice(char.length);
    const w = charWidth(char);
    if (width + w > columns && width > indent.length) {
      rows.push(row);
      row = indent;
      width = indent.length;
    }
    row += char;
    width += w;
  }
  rows.push(row);
  return rows;
}

/** A position on screen relative to the start of the prompt. */
export interface ScreenPosition {
  /** Rows below the prompt's first row. */
  rows: number;
  /** Column within that row. */
  cols: number;
}

/**
 * Where the end of `text` lands when printed from column 0 of a terminal `columns`
 * wide: the same arithmetic as `node:readline` (a wide character never straddles
 * the right edge).
 */
export function displayPosition(text: string, columns: number): ScreenPosition {
  const width = columns > 0 ? columns : Infinity;
  let offset = 0;
  for (const char of text.replace(ANSI_SEQUENCE, "")) {
    const w = charWidth(char);
    if (w === 2 && (offset + 1) % width === 0) offset++;
    offset += w;
  }
  if (width === Infinity) return { rows: 0, cols: offset };
  const cols = offset % width;
  return { rows: (offset - cols) / width, cols };
}

/** The input being edited: what `node:readline` holds. */
export interface InputState {
  /** The prompt as printed (may contain colour sequences). */
  prompt: string;
  /** The text typed so far. */
  line: string;
  /** The cursor's index in `line`. */
  cursor: number;
  /** The terminal's width in columns. */
  columns: number;
}

/**
 * The bytes that print `text` (one or more lines) above the input being edited and
 * redraw the prompt and the input with the cursor where it was, so that incoming
 * messages never mix with what the user is typing, even when the input wraps over
 * several rows.
 *
 * It moves up to the prompt's first row, clears to the end of the screen, prints
 * the text (long lines broken by {@linkcode wrapLine}) and a line break, reprints prompt and input, and moves the cursor back
 * to its place; the rows the input takes stay the same, so `node:readline`'s own
 * bookkeeping remains valid.
 *
 * @example
 * ```ts
 * import { printAbove } from "./terminal_ui.ts";
 * printAbove("12:00 <bob> hi", { prompt: "> ", line: "hel", cursor: 3, columns: 80 });
 * // "\r\x1b[J12:00 <bob> hi\r\n> hel\r\x1b[5C"
 * ```
 */
export function printAbove(text: string, input: InputState): string {
  const before = input.prompt + input.line.slice(0, input.cursor);
  const all = input.prompt + input.line;
  const cursor = displayPosition(before, input.columns);
  const end = displayPosition(all, input.columns);
  let out = "";
  if (cursor.rows > 0) out += `\x1b[${cursor.rows}A`;
  out += "\r\x1b[J";
  out += text.split("\n").flatMap((line) => wrapLine(line, input.columns)).join("\r\n") + "\r\n";
  out += all;
  // At the very end of a full row the terminal has not wrapped yet: make it, so that
  // the cursor is on row `end.rows` in every case.
  if (end.cols === 0 && end.rows > 0) out += " ";
  out += "\r";
  const up = end.rows - cursor.rows;
  if (up > 0) out += `\x1b[${up}A`;
  if (cursor.cols > 0) out += `\x1b[${cursor.cols}C`;
  return out;
}
