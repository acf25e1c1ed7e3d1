/**
 * The hub's events as IRC lines: one table, keyed by event type, of what an IRC client
 * is sent for each (nothing for those IRC has no word for: receipts, presence).
 *
 * @module
 */

import {
  formatFittedIrcMessage,
  formatIrcMessage,
  type OutgoingIrcMessage,
  splitUtf8Lines,
  utf8Length,
} from "../protocol/irc_line.ts";
import { MAX_LINE_BYTES } from "../protocol/irc_line.ts";
import type { ServerMessage, ServerMessageMap } from "../protocol/messages.ts";

/** The server's name in IRC sources and numerics. */
export const IRC_SERVER_NAME = "chat.server";

/** The capabilities the IRC listener offers (`CAP LS`). */
export const IRC_CAPABILITIES: readonly string[] = [
  "batch",
  "echo-message",
  "message-tags",
  "labeled-response",
  "draft/chathistory",
  "account-tag",
  "extended-join",
  "away-notify",
  "server-time",
  "cap-notify",
];

/** A fresh batch reference tag (`BATCH +id`). */
export function newBatchId(): string {
  return crypto.randomUUID().slice(0, 8);
}

/** What the translation needs to know of the receiving connection. */
export interface IrcView {
  /** The receiving client's nick. */
  readonly nick: string;
  /** Capabilities it enabled. */
  readonly caps: ReadonlySet<string>;
}

/**
 * The source of lines from a chat user: `nick!nick@chat`.
 *
 * @example
 * ```ts
 * import { userSource } from "./irc_events.ts";
 * userSource("alice"); // "alice!alice@chat"
 * ```
 */
export function userSource(nick: string): string {
  return `${nick}!${nick}@chat`;
}

/** The IRC channel of a room: `#name`. */
export function channelOf(room: string): string {
  return `#${room}`;
}

/** `text` on one line: CR, LF and NUL (which no IRC line may carry) become spaces. */
export function oneLine(text: string): string {
  return text.replace(/[\r\n\0]+/g, " ");
}

/**
 * Tags of a stored message, as the client's capabilities allow: `time`, `msgid`, and
 * `account` (every chat user is logged in: its account is its nick) under `account-tag`.
 */
export function messageTags(
  view: IrcView,
  { id, ts, from }: { id?: number; ts?: number; from?: string },
): Record<string, string> {
  const tags: Record<string, string> = {};
  if (ts !== undefined && view.caps.has("server-time")) tags.time = new Date(ts).toISOString();
  if (id !== undefined && view.caps.has("message-tags")) tags.msgid = String(id);
  if (from !== undefined && view.caps.has("account-tag")) tags.account = from;
  return tags;
}

/** The `account` tag of a line from `nick`, under `account-tag` (none otherwise). */
export function accountTag(view: IrcView, nick: string): Record<string, string> {
  return view.caps.has("account-tag") ? { account: nick } : {};
}

/**
 * A user's `JOIN` of a channel: under `extended-join`, with its account and real name
 * (both its nick here).
 */
export function joinLine(view: IrcView, nick: string, channel: string): string {
  return formatIrcMessage({
    tags: accountTag(view, nick),
    source: userSource(nick),
    command: "JOIN",
    params: view.caps.has("extended-join") ? [channel, nick, nick] : [channel],
  });
}

/** A user's `AWAY` (`text` "": back), for clients with `away-notify`. */
export function awayLine(view: IrcView, nick: string, text: string): string {
  return formatFittedIrcMessage({
    tags: accountTag(view, nick),
    source: userSource(nick),
    command: "AWAY",
    params: text === "" ? [] : [text],
  });
}

/**
 * A text from `source` to `target` as PRIVMSG (or NOTICE) lines: split at its line ends
 * and wherever a line would pass {@linkcode MAX_LINE_BYTES} with its CR LF, tags aside.
 */
export function textLines(
  command: "PRIVMSG" | "NOTICE",
  source: string,
  target: string,
  text: string,
  tags: Record<string, string> = {},
): string[] {
  // The line's head, `:source COMMAND target :`, and its CR LF take the rest.
  const head = utf8Length(source) + command.length + utf8Length(target) + 5;
  const budget = Math.max(16, MAX_LINE_BYTES - 2 - head);
  // One line as it is (most texts): no pieces made to split it.
  if (!BREAK_OR_NUL.test(text) && utf8Length(text) <= budget) {
    return text.trim() === ""
      ? []
      : [formatIrcMessage({ tags, source, command, params: [target, text] })];
  }
  return splitUtf8Lines(text.replace(/\0/g, ""), budget).map((piece) =>
    formatIrcMessage({ tags, source, command, params: [target, piece] })
  );
}

const BREAK_OR_NUL = /[\r\n\0]/;

/** A notice from the server to the client. */
export function serverNotice(view: IrcView, text: string): string[] {
  return textLines("NOTICE", IRC_SERVER_NAME, view.nick, text);
}

type Translate<T extends keyof ServerMessageMap> = (
  view: IrcView,
  event: ServerMessageMap[T],
) => string[];

function line(message: OutgoingIrcMessage): string[] {
  return [formatFittedIrcMessage(message)];
}

const NONE: string[] = [];

/** The table: each event type to its IRC lines. */
export const ircEvents: { [T in keyof ServerMessageMap]: Translate<T> } = {
  msg: (view, m) =>
    textLines("PRIVMSG", userSource(m.from), channelOf(m.room), m.text, messageTags(view, m)),
  dm(view, m) {
    const tags = messageTags(view, m);
    if (m.from.toLowerCase() !== view.nick.toLowerCase()) {
      return textLines("PRIVMSG", userSource(m.from), view.nick, m.text, tags);
    }
    // Sent by another session of the same account: shown as sent only to those who asked.
    if (!view.caps.has("echo-message")) return NONE;
    return textLines("PRIVMSG", userSource(m.from), m.to, m.text, tags);
  },
  broadcast: (view, m) =>
    textLines(
      "NOTICE",
      userSource(m.from),
      view.nick,
      `[broadcast] ${m.text}`,
      messageTags(view, m),
    ),
  member: (view, m) => {
    if (!m.joined) {
      return line({
        tags: accountTag(view, m.nick),
        source: userSource(m.nick),
        command: "PART",
        params: [channelOf(m.room)],
      });
    }
    const join = joinLine(view, m.nick, channelOf(m.room));
    // away-notify: a user joining while away is told away right after.
    return m.away !== undefined && view.caps.has("away-notify")
      ? [join, awayLine(view, m.nick, m.away)]
      : [join];
  },
  topic: (view, m) =>
    line({
      tags: { ...messageTags(view, m), ...accountTag(view, m.by) },
      source: userSource(m.by),
      command: "TOPIC",
      params: [channelOf(m.room), oneLine(m.topic)],
    }),
  notice: (view, m) => serverNotice(view, m.text),
  // Online and offline: IRC has no word for them (but QUIT, which would part every
  // channel). A change of away status: `AWAY` under `away-notify`.
  presence: (view, m) =>
    m.away !== undefined && view.caps.has("away-notify") ? [awayLine(view, m.nick, m.away)] : NONE,
  receipt: () => NONE,
  contact: () => NONE,
  hello: () => NONE,
  ok: () => NONE,
  error: (view, m) => serverNotice(view, `error: ${m.message}`),
  private_request: (view, m) =>
    serverNotice(view, `${m.from} asks for a private session: IRC cannot take it (use chat peer)`),
  private_ready: () => NONE,
  private_relay: () => NONE,
  private_ended: () => NONE,
  relay: () => NONE,
  file_offer: (view, m) =>
    firstShowing(view, m.file)
      ? serverNotice(
        view,
        `${m.from} offers the file ${m.name} (${m.size} bytes): receive it with chat connect`,
      )
      : NONE,
  file_accepted: () => NONE,
  file_declined: () => NONE,
  file_completed: () => NONE,
  file_cancelled: () => NONE,
  file_data: () => NONE,
};

/** Per IRC client (its view), the files whose offer it was shown. */
const offersShown = new WeakMap<IrcView, Set<number>>();

/**
 * Whether `view` is shown file `file`'s offer for the first time (noting it): an offer told
 * again (offered again before its first byte, as after a cluster fail-over) is one notice.
 */
function firstShowing(view: IrcView, file: number): boolean {
  let shown = offersShown.get(view);
  if (shown === undefined) offersShown.set(view, shown = new Set());
  if (shown.has(file)) return false;
  shown.add(file);
  return true;
}

/** The IRC lines of one hub event (none for an unknown type). */
export function eventLines(view: IrcView, event: ServerMessage): string[] {
  const translate = ircEvents[event.type] as Translate<typeof event.type> | undefined;
  return translate === undefined ? NONE : translate(view, event as never);
}
