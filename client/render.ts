/**
 * Turning client events and command outcomes into text for people (one or more
 * lines, `HH:MM [room] <nick> text`) or into JSON objects for `--json` output, and
 * making untrusted text safe to print on a terminal.
 *
 * Everything that comes from other users (nicks, room names, topics, messages) or
 * from the server (notices, error messages) goes through {@linkcode sanitize} before
 * it reaches a terminal, so that nobody can move the cursor, change colours, set the
 * window title, fake lines or hide text by sending escape sequences.
 *
 * @module
 */

import { safeFileName } from "../protocol/file_names.ts";
import type { ReplyMap } from "../protocol/replies.ts";
import type { ChatMessage } from "../protocol/messages.ts";
import type { ChatEvent, RequestType } from "./chat_client.ts";
import type { PrivateEvent } from "./private_sessions.ts";
import { type FileTransferEvent, formatBytes } from "../transport/file_transfer_events.ts";

/** The reply to a request, as shown to the user. */
export type ReplyItem = {
  [K in RequestType]: {
    /** Item type. */
    type: "reply";
    /** The request type the reply answers. */
    request: K;
    /** The reply data. */
    data: ReplyMap[K];
  };
}[RequestType];

/** A failed command (refused by the server, or by the client before sending). */
export interface CommandErrorItem {
  /** Item type. */
  type: "error";
  /** The stable error code (`unknown_user`, `usage`, `unknown_command`, ...). */
  code: string;
  /** What went wrong, in words. */
  message: string;
  /** The command line that failed, when there is one. */
  command?: string;
  /** Seconds to wait before trying again, when the server said so. */
  retryAfter?: number;
}

/** A local message for the user (help text, "now talking in #rust", ...). */
export interface InfoItem {
  /** Item type. */
  type: "info";
  /** The text; may span several lines. */
  text: string;
}

/** Everything the terminal client shows. */
export type DisplayItem =
  | ChatEvent
  | ReplyItem
  | CommandErrorItem
  | InfoItem
  | PrivateEvent
  | FileTransferEvent;

/** How {@linkcode formatItem} renders. */
export interface RenderOptions {
  /** Colour nicks (ANSI); off for `--no-color`, `NO_COLOR` or a non-terminal. */
  color?: boolean;
  /** Our own nick: our direct messages read `-> *bob*` instead of `*alice*`. */
  self?: string;
  /** Show times in UTC instead of the local time zone (tests). */
  utc?: boolean;
  /** The clock for events that carry no time. Default `Date.now`. */
  now?: () => number;
  /**
   * The direct message we sent with a server id, when remembered: a receipt quotes
   * its start instead of the id (see `SessionState.sentMessage`).
   */
  sentMessage?: (id: number) => { readonly text: string } | undefined;
}

/** How many characters of a message a receipt quotes. */
export const RECEIPT_QUOTE_LENGTH = 24;

// ---------------------------------------------------------------------- sanitize

// OSC, DCS, SOS, PM and APC strings (7-bit or 8-bit introducer) up to their
// terminator (BEL or ST), or to the end of the text when unterminated.
// deno-lint-ignore no-control-regex
const STRING_SEQUENCE = /(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[\s\S]*?(?:\x07|\x1b\\|\x9c|$)/g;
// CSI: parameters, intermediates, final byte (possibly cut off).
// deno-lint-ignore no-control-regex
const CSI_SEQUENCE = /(?:\x1b\[|\x9b)[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]?/g;
// Any other escape: intermediates and a final byte (possibly cut off).
// deno-lint-ignore no-control-regex
const OTHER_ESCAPE = /\x1b[\x20-\x2f]*[\x30-\x7e]?/g;
// C1 controls left over, and DEL.
const C1_AND_DEL = /[\x7f-\x9f]/g;
// Bidirectional marks, overrides and isolates, which reorder how the rest of a line reads.
const BIDI_CONTROLS = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
// Unicode line and paragraph separators: a new line to some terminals.
const LINE_SEPARATORS = /[\u2028\u2029]/g;
// C0 controls: shown as the Unicode control pictures (U+2400 + code).
// deno-lint-ignore no-control-regex
const C0_CONTROLS = /[\x00-\x1f]/g;

/**
 * Makes untrusted text safe to print on a terminal: removes escape sequences (CSI,
 * OSC, DCS and the other string sequences, 7-bit and 8-bit), C1 controls, DEL and
 * bidirectional marks and overrides; turns a tab into a space and every other C0 control
 * (newline, carriage return, bell, backspace, ...) into its visible control picture
 * (`␊`, `␍`, `␇`, ...), as are Unicode line separators, so that one message is
 * always one line.
 *
 * @example
 * ```ts
 * import { sanitize } from "./render.ts";
 * sanitize("\x1b[31mred\x1b[0m"); // "red"
 * sanitize("\x1b]0;pwned\x07title"); // "title"
 * sanitize("two\nlines"); // "two␊lines"
 * ```
 */
export function sanitize(text: string): string {
  return text
    .replace(STRING_SEQUENCE, "")
    .replace(CSI_SEQUENCE, "")
    .replace(OTHER_ESCAPE, "")
    .replace(C1_AND_DEL, "")
    .replace(BIDI_CONTROLS, "")
    .replace(LINE_SEPARATORS, "\u240a")
    .replace(/\t/g, " ")
    .replace(C0_CONTROLS, (c) => String.fromCharCode(0x2400 + c.charCodeAt(0)));
}

/** Codes with which the server ends a session on purpose (`notice`, then `closed`). */
const ENDING_CODES = new Set(["idle_timeout", "logged_out"]);

/** How many characters of a failed command line its error repeats. */
export const COMMAND_ECHO = 60;

/** `text` cut to `max` characters (code points), marked `…` where cut. */
function shorten(text: string, max: number): string {
  const chars = [...text];
  return chars.length <= max ? text : chars.slice(0, max - 1).join("") + "…";
}

// ------------------------------------------------------------------------ colour

const NICK_COLORS = [31, 32, 33, 34, 35, 36, 91, 92, 93, 94, 95, 96];

/**
 * The nick, sanitized, in a colour that depends only on the nick (case-insensitive),
 * so each person keeps their colour across lines and sessions.
 */
export function colorNick(nick: string, color: boolean): string {
  const safe = sanitize(nick);
  if (!color) return safe;
  let hash = 0;
  for (const ch of nick.toLowerCase()) hash = (hash * 31 + ch.codePointAt(0)!) >>> 0;
  return `\x1b[${NICK_COLORS[hash % NICK_COLORS.length]}m${safe}\x1b[39m`;
}

function dim(text: string, color: boolean): string {
  return color ? `\x1b[2m${text}\x1b[22m` : text;
}

/** `HH:MM` of a time in ms since the epoch, local (or UTC). */
export function formatTime(ts: number, utc = false): string {
  const date = new Date(ts);
  if (Number.isNaN(date.getTime())) return "--:--";
  const h = utc ? date.getUTCHours() : date.getHours();
  const m = utc ? date.getUTCMinutes() : date.getMinutes();
  return `${String(h).padStart(2, "0")}:${String(m).padStart(2, "0")}`;
}

/**
 * Whether `text` mentions `nick` as a word (case-insensitive), e.g. `hi @alice` or
 * `alice: lunch?`, for ringing the bell.
 */
export function isMention(text: string, nick: string): boolean {
  if (nick === "") return false;
  const escaped = nick.replace(/[.*+?^${}()|[\]\\-]/g, "\\$&");
  return new RegExp(`(^|[^A-Za-z0-9_.-])@?${escaped}($|[^A-Za-z0-9_-])`, "i").test(text);
}

// ------------------------------------------------------------------------ humans

/**
 * Formats an item as lines for people; empty when there is nothing worth showing.
 * Every untrusted string is sanitized.
 *
 * @example
 * ```ts
 * import { formatItem } from "./render.ts";
 * formatItem(
 *   { type: "msg", room: "lobby", id: 1, ts: Date.UTC(2024, 0, 1, 9, 5), from: "bob", text: "hi" },
 *   { utc: true },
 * ); // ["09:05 [lobby] <bob> hi"]
 * ```
 */
export function formatItem(item: DisplayItem, options: RenderOptions = {}): string[] {
  const color = options.color ?? false;
  const utc = options.utc ?? false;
  const now = options.now ?? Date.now;
  const time = (ts: number) => dim(formatTime(ts, utc), color);
  const nick = (n: string) => colorNick(n, color);
  const s = sanitize;
  const stamp = () => time(now());
  switch (item.type) {
    case "msg":
    case "dm":
      return [formatMessage(item, options)];
    case "broadcast":
      return [`${time(item.ts)} [broadcast] <${nick(item.from)}> ${s(item.text)}`];
    case "presence":
      if (item.away !== undefined) {
        return [
          item.away === ""
            ? `${time(item.ts)} * ${nick(item.nick)} is back`
            : `${time(item.ts)} * ${nick(item.nick)} is away: ${s(item.away)}`,
        ];
      }
      return [`${time(item.ts)} * ${nick(item.nick)} is ${item.online ? "online" : "offline"}`];
    case "member":
      return [
        `${stamp()} [${s(item.room)}] * ${nick(item.nick)} ${item.joined ? "joined" : "left"}`,
      ];
    case "topic":
      return [
        `${time(item.ts)} [${s(item.room)}] * ${nick(item.by)} set the topic: ${s(item.topic)}`,
      ];
    case "receipt":
      return [formatReceipt(item, options)];
    case "contact":
      return [`${stamp()} * contact ${nick(item.nick)} is ${item.online ? "online" : "offline"}`];
    case "notice":
      // A notice that ends the session is told once, by the `closed` that follows.
      if (ENDING_CODES.has(item.code)) return [];
      return [`${stamp()} ! server: ${s(item.text)}`];
    case "error": {
      const message = s(item.message);
      // The server's message may say when to retry already ("retry in 0.2 s").
      const retry = item.retryAfter !== undefined && !/\b(retry|try again) in\b/.test(message)
        ? ` (try again in ${item.retryAfter} s)`
        : "";
      return [
        `${stamp()} ! ${
          "command" in item && item.command ? `${shorten(s(item.command), COMMAND_ECHO)}: ` : ""
        }${message}${retry}`,
      ];
    }
    case "disconnected":
      return [`${stamp()} ! disconnected: ${s(item.reason)}`];
    case "reconnecting":
      return [
        `${stamp()} ! reconnecting in ${
          (item.delayMs / 1000).toFixed(1)
        } s (attempt ${item.attempt})`,
      ];
    case "reconnected":
      return [`${stamp()} * reconnected${item.server ? ` to ${s(item.server)}` : ""}`];
    case "closed":
      return [
        `${stamp()} ${item.code === undefined || ENDING_CODES.has(item.code) ? "*" : "!"} ` +
        `connection closed${item.reason ? `: ${s(item.reason)}` : ""}`,
      ];
    case "held":
      return formatHeld(item, options);
    case "info":
      return item.text.split("\n");
    case "private_request":
      return [
        `${stamp()} * ${nick(item.from)} asks for a private session: /accept ${
          s(item.from)
        } or /decline ${s(item.from)}`,
      ];
    case "private_ready":
    case "private_relay":
    case "private_ended":
      return []; // the private sessions report what follows (private_open, private_closed)
    case "private_open":
      return [
        `${stamp()} * private session with ${nick(item.nick)} open: end-to-end encrypted, ${
          item.via === "direct" ? "direct" : "relayed through the server"
        }`,
        `  compare with ${nick(item.nick)}: ${item.sas}` +
        ` (if it differs, someone is listening in: /stopprivate ${s(item.nick)})`,
      ];
    case "private_text": {
      const own = options.self !== undefined &&
        item.from.toLowerCase() === options.self.toLowerCase();
      return [
        own
          ? `${time(item.ts)} [private] -> ${nick(item.to)}: ${s(item.text)}`
          : `${time(item.ts)} [private] <${nick(item.from)}> ${s(item.text)}`,
      ];
    }
    case "private_closed":
      return [`${stamp()} * private session with ${nick(item.nick)} closed: ${s(item.reason)}`];
    case "private_info":
      return [`${stamp()} * ${s(item.text)}`];
    case "file_offer":
      return []; // the file transfers report it (file_offered), with what to do
    case "file_accepted":
    case "file_declined":
    case "file_completed":
    case "file_cancelled":
    case "file_hashing":
    case "file_progress":
    case "file_offered":
    case "file_sending":
    case "file_sent":
    case "file_receiving":
    case "file_saved":
    case "file_answer":
    case "file_failed": {
      const line = formatFileItem(item, nick);
      return line === null ? [] : [`${stamp()} ${line}`];
    }
    case "reply":
      return formatReply(item, options);
  }
}

/**
 * The line (after the time) of a file transfer event; null for progress and hashing
 * (drawn as a bar).
 */
function formatFileItem(
  item:
    | FileTransferEvent
    | Extract<
      DisplayItem,
      { type: "file_accepted" | "file_declined" | "file_completed" | "file_cancelled" }
    >,
  nick: (n: string) => string,
): string | null {
  const s = sanitize;
  const what = (file: number, name: string) => `${s(name)} (#${file})`;
  switch (item.type) {
    case "file_hashing":
    case "file_progress":
      return null;
    case "file_accepted":
      return `* ${nick(item.by)} accepted ${what(item.file, item.name)}`;
    case "file_declined":
      return `* ${nick(item.by)} declined ${what(item.file, item.name)}`;
    case "file_completed":
      return `* ${nick(item.by)} received ${what(item.file, item.name)}, SHA-256 verified`;
    case "file_cancelled":
      return item.reason === "expired"
        ? `* ${what(item.file, item.name)} expired on the server`
        : item.reason === "corrupt"
        ? `* ${what(item.file, item.name)} was dropped: its bytes did not match its SHA-256`
        : `* ${nick(item.by)} cancelled ${what(item.file, item.name)}`;
    case "file_offered":
      // Named as it will be saved (a hostile name is made safe first).
      return `* ${nick(item.from)} offers ${what(item.file, safeFileName(item.name))}${
        safeFileName(item.name) !== item.name ? " (its name made safe)" : ""
      }, ${formatBytes(item.size)}, ` +
        (item.sha256 !== undefined ? `SHA-256 ${item.sha256.slice(0, 16)}…: ` : "") +
        (item.auto ? "accepting it" : `/accept #${item.file} or /decline #${item.file}`);
    case "file_sending":
      return `* sending ${what(item.file, item.name)}, ${formatBytes(item.size)}, to ${
        nick(item.to)
      }` +
        (item.offset > 0 ? `, resuming after ${formatBytes(item.offset)}` : "");
    case "file_sent":
      return `* ${what(item.file, item.name)} is sent; ` +
        (item.online
          ? `waiting for ${nick(item.to)}`
          : `it waits for ${nick(item.to)} to come online`);
    case "file_receiving":
      return `* receiving ${what(item.file, item.name)}, ${formatBytes(item.size)}, from ` +
        `${nick(item.from)}${
          item.offset > 0 ? `, resuming after ${formatBytes(item.offset)}` : ""
        }`;
    case "file_saved":
      return `* saved ${what(item.file, item.name)} from ${nick(item.from)} as ${s(item.path)} ` +
        `(${formatBytes(item.size)}, ${
          item.sha256 !== undefined ? "SHA-256 verified" : "every byte authenticated"
        })`;
    case "file_answer":
      return item.answer === "completed"
        ? `* ${nick(item.by)} received ${what(item.file, item.name)}, every byte authenticated`
        : `* ${nick(item.by)} ${item.answer} ${what(item.file, item.name)}`;
    case "file_failed":
      return `! ${item.direction === "send" ? "sending" : "receiving"} ` +
        `${what(item.file, item.name)} ${item.direction === "send" ? "to" : "from"} ` +
        `${nick(item.nick)} failed: ${s(item.reason)}`;
  }
}

/**
 * A line of a conversation between two people without a server (`chat peer`), the
 * other side's and your own alike: `HH:MM <nick> text`.
 *
 * @example
 * ```ts
 * import { formatChatLine } from "./render.ts";
 * formatChatLine({ ts: Date.UTC(2024, 0, 1, 9, 5), from: "bob", text: "hi" }, { utc: true });
 * // "09:05 <bob> hi"
 * ```
 */
export function formatChatLine(
  line: { ts: number; from: string; text: string },
  options: RenderOptions = {},
): string {
  const color = options.color ?? false;
  const time = dim(formatTime(line.ts, options.utc ?? false), color);
  return `${time} <${colorNick(line.from, color)}> ${sanitize(line.text)}`;
}

/** What `/me TEXT` does (the TEXT), when the message is one; null otherwise. */
function actionOf(text: string): string | null {
  return /^\/me [^\s]/i.test(text) ? text.slice(4) : null;
}

/** Formats a stored message: `HH:MM [room] <nick> text`, `HH:MM *bob* text`, `HH:MM -> *bob* text`. */
export function formatMessage(message: ChatMessage, options: RenderOptions = {}): string {
  const color = options.color ?? false;
  const time = dim(formatTime(message.ts, options.utc ?? false), color);
  const action = actionOf(message.text);
  const text = action === null
    ? sanitize(message.text)
    : `* ${colorNick(message.from, color)} ${sanitize(action)}`;
  if (message.type === "msg") {
    const self = options.self;
    // A mention of our nick (which rings the bell) stands out: bold, reversed.
    const shown = color && self !== undefined &&
        message.from.toLowerCase() !== self.toLowerCase() && isMention(message.text, self)
      ? `\x1b[1;7m${text}\x1b[22;27m`
      : text;
    if (action !== null) return `${time} [${sanitize(message.room)}] ${shown}`;
    return `${time} [${sanitize(message.room)}] <${colorNick(message.from, color)}> ${shown}`;
  }
  const self = options.self;
  if (self !== undefined && message.from.toLowerCase() === self.toLowerCase()) {
    return `${time} -> *${colorNick(message.to, color)}* ${text}`;
  }
  if (action !== null) return `${time} ${text} (to you)`;
  return `${time} *${colorNick(message.from, color)}* ${text}`;
}

/**
 * A receipt, quietly (dim) and by what it is about: `✓✓ bob read "lunch at noon? I…"`,
 * `✓ bob got "lunch…"` (a message held while bob was offline reached him), quoting
 * the start of the message when it is remembered; the id is for `--json`.
 */
function formatReceipt(
  item: Extract<DisplayItem, { type: "receipt" }>,
  options: RenderOptions,
): string {
  const color = options.color ?? false;
  const sent = options.sentMessage?.(item.id);
  let what = "your direct message";
  if (sent !== undefined) {
    const text = sanitize(sent.text).trim();
    const chars = [...text];
    what = `"${
      chars.length > RECEIPT_QUOTE_LENGTH
        ? chars.slice(0, RECEIPT_QUOTE_LENGTH - 1).join("").trimEnd() + "…"
        : text
    }"`;
  }
  const read = item.status === "read";
  const line = `${read ? "✓✓" : "✓"} ${colorNick(item.by, false)} ${read ? "read" : "got"} ${what}`;
  return `${dim(formatTime(item.ts, options.utc ?? false), color)} ${dim(line, color)}`;
}

/**
 * A message the client holds (disconnected, or over the server's rate limit), as the
 * line it will be, marked pending; nothing for other requests (a typed command stays
 * on screen as typed).
 */
function formatHeld(
  item: Extract<DisplayItem, { type: "held" }>,
  options: RenderOptions,
): string[] {
  if (item.text === undefined) return [];
  const color = options.color ?? false;
  const time = dim(formatTime((options.now ?? Date.now)(), options.utc ?? false), color);
  const me = colorNick(options.self ?? "me", color);
  const text = sanitize(item.text);
  const why = dim(
    item.reason === "offline"
      ? " (pending: sent once reconnected)"
      : " (pending: sent as the server's rate limit allows)",
    color,
  );
  if (item.room !== undefined) return [`${time} [${sanitize(item.room)}] <${me}> ${text}${why}`];
  if (item.to !== undefined) return [`${time} -> *${colorNick(item.to, color)}* ${text}${why}`];
  return [`${time} [broadcast] <${me}> ${text}${why}`];
}

function formatReply(item: ReplyItem, options: RenderOptions): string[] {
  const color = options.color ?? false;
  const s = sanitize;
  const nick = (n: string) => colorNick(n, color);
  const list = (names: string[], none: string) =>
    names.length === 0 ? none : names.map(nick).join(", ");
  const states = (entries: { nick: string; online: boolean }[], none: string) =>
    entries.length === 0
      ? none
      : entries.map((e) => `${nick(e.nick)}${e.online ? " (online)" : ""}`).join(", ");
  const messages = (ms: ChatMessage[]) => ms.map((m) => formatMessage(m, options));
  // A list the server cut to fit one frame.
  const cut = (truncated: boolean | undefined) => truncated ? ", … (too many to list)" : "";
  switch (item.request) {
    case "say":
      return [formatMessage(item.data.msg, options)];
    case "dm":
      return [
        formatMessage(item.data.msg, options) +
        (item.data.delivered || item.data.duplicate
          ? ""
          : dim(" (offline: delivered later)", color)),
      ];
    case "join": {
      const d = item.data;
      return [
        ...messages(d.history),
        `* joined ${s(d.room)}${d.topic ? ` — topic: ${s(d.topic)}` : ""} — members: ${
          list(d.members, "none")
        }${cut(d.truncated)}`,
      ];
    }
    case "leave":
      return [`* left ${s(item.data.room)}`];
    case "rooms":
      return item.data.rooms.length === 0 ? ["* no rooms"] : [
        "* rooms:",
        ...item.data.rooms.map((r) =>
          `  ${s(r.name)} (${r.members} member${r.members === 1 ? "" : "s"})${
            r.topic ? ` — ${s(r.topic)}` : ""
          }`
        ),
        ...(item.data.more ? ["  (more rooms exist: the listing stopped)"] : []),
      ];
    case "members":
      return [
        `* members of ${s(item.data.room)}: ${states(item.data.members, "none")}${
          cut(item.data.truncated)
        }`,
      ];
    case "topic":
      return [
        item.data.topic
          ? `* topic of ${s(item.data.room)}: ${s(item.data.topic)}${
            item.data.by ? ` (set by ${nick(item.data.by)})` : ""
          }`
          : `* ${s(item.data.room)} has no topic`,
      ];
    case "broadcast":
      return [
        `* broadcast reached ${item.data.reached} user${item.data.reached === 1 ? "" : "s"}${
          item.data.blocked > 0 ? ` (${item.data.blocked} blocked you)` : ""
        }`,
      ];
    case "who":
      return [`* online: ${list(item.data.users, "nobody")}${cut(item.data.truncated)}`];
    case "whoelse":
      return [`* others: ${list(item.data.users, "nobody else")}${cut(item.data.truncated)}`];
    case "hide":
    case "reveal":
      return [item.data.hidden ? "* you are hidden" : "* you are visible"];
    case "block":
      return [`* blocked ${nick(item.data.nick)}`];
    case "unblock":
      return [`* unblocked ${nick(item.data.nick)}`];
    case "blocks":
      return [`* blocked: ${list(item.data.nicks, "nobody")}${cut(item.data.truncated)}`];
    case "contact_add":
      return [`* added contact ${nick(item.data.nick)}`];
    case "contact_remove":
      return [`* removed contact ${nick(item.data.nick)}`];
    case "contacts":
      return [`* contacts: ${states(item.data.contacts, "none")}${cut(item.data.truncated)}`];
    case "history":
    case "sync":
      return item.data.messages.length === 0 ? ["* no messages"] : [
        ...messages(item.data.messages),
        ...(item.data.more ? ["* (older messages exist)"] : []),
      ];
    case "read":
    case "delivered":
    case "private_start":
    case "private_accept":
    case "private_decline":
    case "private_stop":
    case "private_relay":
    case "relay":
    case "file_offer":
    case "file_chunk":
    case "file_accept":
    case "file_decline":
    case "file_read":
    case "file_done":
    case "file_cancel":
      return []; // the private sessions and file transfers report progress themselves
    case "away":
      return []; // /away says it itself
    case "file_list":
      return item.data.files.length === 0 ? ["* no files offered to you"] : [
        "* files offered to you:",
        ...item.data.files.map((f) =>
          `  #${f.file} ${s(f.name)} (${formatBytes(f.size)}) from ${nick(f.from)}`
        ),
        ...(item.data.more ? ["  (more files are offered: the listing stopped)"] : []),
      ];
    case "ping":
      return [`* pong`];
    case "logout":
      return ["* logged out"];
    case "token_issue":
      return ["* session token issued"]; // never printed: a secret
    case "token_revoke":
      return [`* revoked ${item.data.revoked} session token${item.data.revoked === 1 ? "" : "s"}`];
  }
}

// -------------------------------------------------------------------------- JSON

/**
 * The JSON object printed for an item in `--json` mode: always a `type`, and where
 * they apply `id`, `ts`, `from`, `room`, `to`, `text`. The reply to `say` and `dm`
 * is flattened to the stored message's fields plus `request`, `duplicate` (and
 * `delivered`); other replies are `{type: "reply", request, ...data}`. Text is not
 * sanitized: JSON escapes control characters itself.
 *
 * @example
 * ```ts
 * import { toJsonEvent } from "./render.ts";
 * toJsonEvent({ type: "dm", to: "bob", id: 7, ts: 1, from: "alice", text: "hi" });
 * // { type: "dm", id: 7, ts: 1, from: "alice", to: "bob", text: "hi" }
 * ```
 */
export function toJsonEvent(item: DisplayItem): Record<string, unknown> {
  switch (item.type) {
    case "msg":
      return {
        type: item.type,
        id: item.id,
        ts: item.ts,
        from: item.from,
        room: item.room,
        text: item.text,
      };
    case "dm":
      return {
        type: item.type,
        id: item.id,
        ts: item.ts,
        from: item.from,
        to: item.to,
        text: item.text,
      };
    case "reply": {
      if (item.request === "say" || item.request === "dm") {
        const { msg, ...rest } = item.data;
        return { ...toJsonEvent(msg), type: "reply", request: item.request, ...rest };
      }
      return { type: "reply", request: item.request, ...item.data };
    }
    default:
      return { ...item };
  }
}
