/**
 * The IRC line codec: a parser and a serializer of IRC messages (RFC 1459/2812 framing
 * with IRCv3 message tags), and a resumable splitter of a byte stream into lines.
 *
 * Bounds follow the specifications: the message without its tags takes at most
 * {@linkcode MAX_LINE_BYTES} bytes with its CR LF; the tags part (from `@` to the space
 * after it) at most {@linkcode MAX_TAGS_BYTES}. A longer line is reported, skipped up to
 * its end, and never held whole.
 *
 * Pure: no I/O.
 *
 * @module
 */

/** Most bytes of a message without its tags, CR LF included (RFC 1459 §2.3). */
export const MAX_LINE_BYTES = 512;
/** Most bytes of the tags part, from `@` to the space after it (IRCv3 message-tags). */
export const MAX_TAGS_BYTES = 8191;
/** Most bytes of a whole line, tags and CR LF included. */
export const MAX_WIRE_LINE_BYTES = MAX_TAGS_BYTES + MAX_LINE_BYTES;
/** Most parameters of a message (RFC 2812 §2.3). */
export const MAX_PARAMS = 15;

/**
 * Stable codes of {@linkcode IrcLineError}.
 *
 * - `empty`: the line holds nothing (or only tags and a prefix).
 * - `bad_command`: the command is neither letters nor a three-digit numeric.
 * - `too_many_params`: more than {@linkcode MAX_PARAMS} parameters.
 * - `line_too_long`: over {@linkcode MAX_LINE_BYTES} bytes without tags.
 * - `tags_too_long`: a tags part over {@linkcode MAX_TAGS_BYTES} bytes.
 * - `bad_tags`: a tag with an empty or malformed key.
 * - `bad_utf8`: the line is not valid UTF-8.
 * - `bad_param`: (serializing) a parameter that cannot be carried.
 */
export type IrcLineErrorCode =
  | "empty"
  | "bad_command"
  | "too_many_params"
  | "line_too_long"
  | "tags_too_long"
  | "bad_tags"
  | "bad_utf8"
  | "bad_param";

/** A line that cannot be parsed or a message that cannot be serialized. */
export class IrcLineError extends Error {
  /** Why. */
  readonly code: IrcLineErrorCode;

  /** Creates the error. */
  constructor(code: IrcLineErrorCode, message: string) {
    super(message);
    this.name = "IrcLineError";
    this.code = code;
  }
}

/** One IRC message. */
export interface IrcMessage {
  /** IRCv3 tags, unescaped; a tag without a value maps to "". */
  tags: Record<string, string>;
  /** The source (`nick!user@host` or a server name), without the colon; "" when none. */
  source: string;
  /** The command, upper-cased, or a three-digit numeric. */
  command: string;
  /** The parameters, the trailing one last (without its colon). */
  params: string[];
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** Bytes `text` takes in UTF-8. */
export function utf8Length(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) bytes += 1;
    else if (code < 0x800) bytes += 2;
    else if (code >= 0xd800 && code <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        bytes += 4;
        i++;
      } else bytes += 3;
    } else bytes += 3;
  }
  return bytes;
}

const TAG_ESCAPES: Record<string, string> = {
  ";": "\\:",
  " ": "\\s",
  "\\": "\\\\",
  "\r": "\\r",
  "\n": "\\n",
};
const TAG_UNESCAPES: Record<string, string> = { ":": ";", s: " ", "\\": "\\", r: "\r", n: "\n" };

/**
 * Escapes a tag value (IRCv3 message-tags).
 *
 * @example
 * ```ts
 * import { escapeTagValue } from "./irc_line.ts";
 * escapeTagValue("a b;c"); // "a\\sb\\:c"
 * ```
 */
export function escapeTagValue(value: string): string {
  return value.replace(/[; \\\r\n]/g, (c) => TAG_ESCAPES[c]!);
}

/**
 * Unescapes a tag value: an unknown escape stands for its character, a lone trailing
 * backslash is dropped (IRCv3 message-tags).
 */
export function unescapeTagValue(value: string): string {
  return value.replace(/\\(.?)/gs, (_, c: string) => c === "" ? "" : TAG_UNESCAPES[c] ?? c);
}

const TAG_KEY = /^\+?(?:[A-Za-z0-9.-]+\/)?[A-Za-z0-9-]+$/;
const COMMAND = /^(?:[A-Za-z]+|[0-9]{3})$/;

/**
 * Parses one line (without its CR LF).
 *
 * @throws {IrcLineError} when the line is empty, too long or malformed.
 * @example
 * ```ts
 * import { parseIrcLine } from "./irc_line.ts";
 * const m = parseIrcLine("@time=x :nick!u@h PRIVMSG #lobby :hello there");
 * m.command; // "PRIVMSG"
 * m.params; // ["#lobby", "hello there"]
 * ```
 */
export function parseIrcLine(line: string): IrcMessage {
  let at = 0;
  const tags: Record<string, string> = {};
  if (line.startsWith("@")) {
    const end = line.indexOf(" ");
    const raw = end < 0 ? line.slice(1) : line.slice(1, end);
    if (utf8Length(raw) + 2 > MAX_TAGS_BYTES) {
      throw new IrcLineError("tags_too_long", `tags take over ${MAX_TAGS_BYTES} bytes`);
    }
    for (const tag of raw.split(";")) {
      if (tag === "") continue;
      const eq = tag.indexOf("=");
      const key = eq < 0 ? tag : tag.slice(0, eq);
      if (!TAG_KEY.test(key)) throw new IrcLineError("bad_tags", `bad tag key "${key}"`);
      tags[key] = eq < 0 ? "" : unescapeTagValue(tag.slice(eq + 1));
    }
    at = end < 0 ? line.length : end + 1;
  }
  const rest = line.slice(at);
  if (utf8Length(rest) + 2 > MAX_LINE_BYTES) {
    throw new IrcLineError(
      "line_too_long",
      `a line takes at most ${MAX_LINE_BYTES} bytes with its CR LF, tags aside`,
    );
  }
  at = skipSpaces(line, at);
  let source = "";
  if (line[at] === ":") {
    const end = line.indexOf(" ", at);
    source = end < 0 ? line.slice(at + 1) : line.slice(at + 1, end);
    at = end < 0 ? line.length : skipSpaces(line, end);
  }
  if (at >= line.length) throw new IrcLineError("empty", "no command");
  let end = line.indexOf(" ", at);
  if (end < 0) end = line.length;
  const command = line.slice(at, end);
  if (!COMMAND.test(command)) {
    throw new IrcLineError("bad_command", `"${command.slice(0, 32)}" is not a command`);
  }
  const params: string[] = [];
  at = skipSpaces(line, end);
  while (at < line.length) {
    if (line[at] === ":") {
      params.push(line.slice(at + 1));
      break;
    }
    let stop = line.indexOf(" ", at);
    if (stop < 0) stop = line.length;
    params.push(line.slice(at, stop));
    at = skipSpaces(line, stop);
  }
  if (params.length > MAX_PARAMS) {
    throw new IrcLineError("too_many_params", `more than ${MAX_PARAMS} parameters`);
  }
  return { tags, source, command: command.toUpperCase(), params };
}

function skipSpaces(line: string, at: number): number {
  while (line[at] === " ") at++;
  return at;
}

/** A message to serialize: tags and source optional. */
export interface OutgoingIrcMessage {
  /** Tags to send (values escaped here); a value "" or undefined sends the key alone. */
  tags?: Record<string, string | undefined>;
  /** The source, without the colon. */
  source?: string;
  /** The command or numeric. */
  command: string;
  /** The parameters; the last one is sent as trailing when it must be. */
  params?: readonly string[];
}

/**
 * Serializes a message to one line, without its CR LF. The last parameter gets a colon
 * when it is empty, holds a space or starts with a colon; others may not.
 *
 * @throws {IrcLineError} `bad_param` for a parameter holding CR, LF or NUL, or a middle
 * one that is empty, holds a space or starts with a colon.
 * @example
 * ```ts
 * import { formatIrcMessage } from "./irc_line.ts";
 * formatIrcMessage({ source: "srv", command: "001", params: ["bob", "Welcome, bob"] });
 * // ":srv 001 bob :Welcome, bob"
 * ```
 */
export function formatIrcMessage(message: OutgoingIrcMessage): string {
  // Plain loops, no entries or closures: the fan-out formats every message it relays.
  let line = "";
  const tags = message.tags;
  if (tags !== undefined) {
    for (const key in tags) {
      const value = tags[key];
      line += line === "" ? "@" : ";";
      line += value === undefined || value === "" ? key : `${key}=${escapeTagValue(value)}`;
    }
    if (line !== "") line += " ";
  }
  if (message.source) line += `:${message.source} `;
  line += message.command;
  const params = message.params ?? [];
  for (let i = 0; i < params.length; i++) {
    const param = params[i];
    if (BREAK_OR_NUL.test(param)) {
      throw new IrcLineError("bad_param", "a parameter may not hold CR, LF or NUL");
    }
    const last = i === params.length - 1;
    const plain = param !== "" && !param.includes(" ") && !param.startsWith(":");
    if (!plain && !last) {
      throw new IrcLineError("bad_param", `middle parameter "${param}" needs a colon`);
    }
    line += plain ? ` ${param}` : ` :${param}`;
  }
  return line;
}

const BREAK_OR_NUL = /[\r\n\0]/;

/**
 * Serializes a message as {@linkcode formatIrcMessage} does, its last parameter cut (at a
 * character's end) so that the line without its tags takes at most `maxBytes` bytes with
 * its CR LF: a server's replies quoting a long topic or text never pass the advertised
 * line length.
 *
 * @throws {IrcLineError} as {@linkcode formatIrcMessage}, or `line_too_long` when the
 * line is too long even with an empty last parameter.
 * @example
 * ```ts
 * import { formatFittedIrcMessage } from "./irc_line.ts";
 * formatFittedIrcMessage({ command: "332", params: ["bob", "#a", "x".repeat(600)] }).length;
 * // 510
 * ```
 */
export function formatFittedIrcMessage(
  message: OutgoingIrcMessage,
  maxBytes: number = MAX_LINE_BYTES,
): string {
  const params = message.params ?? [];
  const bare = formatIrcMessage({ ...message, tags: undefined });
  const over = utf8Length(bare) + 2 - maxBytes;
  if (over <= 0 || params.length === 0) {
    if (over > 0) throw new IrcLineError("line_too_long", "the line does not fit");
    return formatIrcMessage(message);
  }
  const last = params[params.length - 1];
  let keep = utf8Length(last) - over;
  if (keep < 0) throw new IrcLineError("line_too_long", "the line does not fit");
  let cut = 0;
  for (const char of last) {
    const size = utf8Length(char);
    if (size > keep) break;
    keep -= size;
    cut += char.length;
  }
  return formatIrcMessage({ ...message, params: [...params.slice(0, -1), last.slice(0, cut)] });
}

/**
 * Adds tags to a serialized line, after those it has (values escaped); a key it has
 * already keeps its value.
 *
 * @example
 * ```ts
 * import { addIrcTags } from "./irc_line.ts";
 * addIrcTags("@time=x PING a", { label: "l1" }); // "@time=x;label=l1 PING a"
 * addIrcTags("PING a", { batch: "b" }); // "@batch=b PING a"
 * ```
 */
export function addIrcTags(line: string, tags: Record<string, string | undefined>): string {
  const own = line.startsWith("@") ? line.slice(1, line.indexOf(" ")) : "";
  const have = new Set(own.split(";").map((tag) => tag.split("=", 1)[0]));
  const added = Object.entries(tags).filter(([key]) => !have.has(key)).map(([key, value]) =>
    value === undefined || value === "" ? key : `${key}=${escapeTagValue(value)}`
  );
  if (added.length === 0) return line;
  if (own === "") return `@${added.join(";")} ${line}`;
  return `@${own};${added.join(";")}${line.slice(own.length + 1)}`;
}

/** The value of tag `key` on a serialized line (unescaped), or undefined. */
export function ircTagOf(line: string, key: string): string | undefined {
  if (!line.startsWith("@")) return undefined;
  for (const tag of line.slice(1, line.indexOf(" ")).split(";")) {
    const eq = tag.indexOf("=");
    if ((eq < 0 ? tag : tag.slice(0, eq)) === key) {
      return eq < 0 ? "" : unescapeTagValue(tag.slice(eq + 1));
    }
  }
  return undefined;
}

/**
 * Splits `text` into lines (at CR, LF or CR LF; empty lines dropped) and each line into
 * pieces of at most `maxBytes` bytes of UTF-8: at the last space that fits, or inside a
 * word when it is longer, never inside a character. A text of only whitespace gives
 * nothing.
 *
 * @example
 * ```ts
 * import { splitUtf8Lines } from "./irc_line.ts";
 * splitUtf8Lines("one two three\nfour", 8); // ["one two", "three", "four"]
 * ```
 */
export function splitUtf8Lines(text: string, maxBytes: number): string[] {
  if (!(maxBytes >= 4)) throw new RangeError(`cannot split into pieces of ${maxBytes} bytes`);
  const out: string[] = [];
  for (const line of text.split(/\r\n|\r|\n/)) {
    let rest = line;
    while (utf8Length(rest) > maxBytes) {
      // The longest prefix that fits, whole characters only.
      let cut = 0;
      let bytes = 0;
      for (const char of rest) {
        const size = utf8Length(char);
        if (bytes + size > maxBytes) break;
        bytes += size;
        cut += char.length;
      }
      const space = rest.lastIndexOf(" ", cut);
      const at = space > 0 ? space : cut;
      const piece = rest.slice(0, at);
      if (piece.trim() !== "") out.push(piece);
      rest = rest.slice(space > 0 ? at + 1 : at);
    }
    if (rest.trim() !== "") out.push(rest);
  }
  return out;
}

/** What {@linkcode IrcLineSplitter.push} yields per line. */
export type SplitLine =
  | { ok: true; line: string }
  | { ok: false; code: "line_too_long" | "bad_utf8"; message: string };

/**
 * Splits a byte stream into lines: at LF, a CR before it dropped (a lone CR ends a line
 * too, as some clients send it). A line longer than `maxBytes` is not held: it is
 * reported once as `line_too_long` and its bytes are dropped up to its end. Empty lines
 * are skipped. Chunks may split a line (or a UTF-8 character) anywhere.
 *
 * @example
 * ```ts
 * import { IrcLineSplitter } from "./irc_line.ts";
 * const splitter = new IrcLineSplitter();
 * splitter.push(new TextEncoder().encode("NICK al")); // []
 * splitter.push(new TextEncoder().encode("ice\r\n")); // [{ ok: true, line: "NICK alice" }]
 * ```
 */
export class IrcLineSplitter {
  readonly #maxBytes: number;
  #buffer: Uint8Array;
  #fill = 0;
  #skipping = false;
  /** The previous chunk ended with CR: an LF first in this one ends nothing. */
  #afterCr = false;

  /** Creates a splitter of lines of at most `maxBytes` bytes (without CR LF). */
  constructor(maxBytes: number = MAX_WIRE_LINE_BYTES - 2) {
    this.#maxBytes = maxBytes;
    this.#buffer = new Uint8Array(Math.min(maxBytes, 1024));
  }

  /** Bytes of the unfinished line held. */
  get pendingBytes(): number {
    return this.#fill;
  }

  /** Consumes one chunk; returns the lines it completes, in order. */
  push(chunk: Uint8Array): SplitLine[] {
    const out: SplitLine[] = [];
    let start = 0;
    let i = 0;
    if (this.#afterCr && chunk[0] === 0x0a) start = i = 1;
    this.#afterCr = false;
    for (; i < chunk.length; i++) {
      const byte = chunk[i];
      if (byte !== 0x0a && byte !== 0x0d) continue;
      if (this.#fill === 0 && !this.#skipping && i - start <= this.#maxBytes) {
        // A whole line in the chunk (most are): decoded where it lies, not copied first.
        if (i > start) this.#emit(chunk.subarray(start, i), out);
      } else {
        this.#append(chunk.subarray(start, i), out);
        this.#finish(out);
      }
      if (byte === 0x0d) {
        if (i + 1 < chunk.length) {
          if (chunk[i + 1] === 0x0a) i++;
        } else this.#afterCr = true;
      }
      start = i + 1;
    }
    if (start < chunk.length) this.#append(chunk.subarray(start), out);
    return out;
  }

  #append(bytes: Uint8Array, out: SplitLine[]): void {
    if (this.#skipping || bytes.length === 0) return;
    if (this.#fill + bytes.length > this.#maxBytes) {
      this.#skipping = true;
      this.#fill = 0;
      out.push({
        ok: false,
        code: "line_too_long",
        message: `a line takes at most ${this.#maxBytes} bytes`,
      });
      return;
    }
    if (this.#fill + bytes.length > this.#buffer.length) {
      const grown = new Uint8Array(
        Math.min(this.#maxBytes, Math.max(this.#buffer.length * 2, this.#fill + bytes.length)),
      );
      grown.set(this.#buffer.subarray(0, this.#fill));
      this.#buffer = grown;
    }
    this.#buffer.set(bytes, this.#fill);
    this.#fill += bytes.length;
  }

  #finish(out: SplitLine[]): void {
    if (this.#skipping) {
      this.#skipping = false;
      return;
    }
    if (this.#fill === 0) return;
    const bytes = this.#buffer.subarray(0, this.#fill);
    this.#fill = 0;
    this.#emit(bytes, out);
  }

  /** A line's bytes (without its end) as a line, or a line error. */
  #emit(bytes: Uint8Array, out: SplitLine[]): void {
    try {
      out.push({ ok: true, line: decoder.decode(bytes) });
    } catch {
      out.push({ ok: false, code: "bad_utf8", message: "a line must be valid UTF-8" });
    }
  }
}

/** Encodes a line with its CR LF. */
export function encodeIrcLine(line: string): Uint8Array {
  return encoder.encode(line + "\r\n");
}
