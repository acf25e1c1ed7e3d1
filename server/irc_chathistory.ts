/**
 * IRCv3 `draft/chathistory` for IRC clients: the `CHATHISTORY` command over the same
 * stored messages and server ids as the chat protocol's `history` (a room's history to
 * its members only, messages from accounts the reader blocks left out; a direct
 * conversation's to its two accounts).
 *
 * `LATEST`, `BEFORE`, `AFTER`, `AROUND` and `BETWEEN` take references `msgid=` (a
 * server id, as the `msgid` tag carries) or `timestamp=` (ISO 8601, as `server-time`);
 * `TARGETS` lists the rooms and direct conversations with messages between two timestamps. At most
 * {@linkcode IRC_CHATHISTORY_MAX} messages per request (advertised as `CHATHISTORY=`).
 * The messages come in a `chathistory` batch (unwrapped for a client without `batch`);
 * mistakes get `FAIL CHATHISTORY` standard replies.
 *
 * @module
 */

import { formatIrcMessage } from "../protocol/irc_line.ts";
import type { ChatMessage } from "../protocol/messages.ts";
import { CommandError } from "./errors.ts";
import type { IrcClient, IrcCommandSpec } from "./irc_commands.ts";
import {
  channelOf,
  IRC_SERVER_NAME,
  messageTags,
  newBatchId,
  textLines,
  userSource,
} from "./irc_events.ts";
import { IRC_CHATHISTORY_MAX } from "./irc_isupport.ts";
import type { HistoryQuery } from "./store.ts";

/** A message reference: a server id or a time (ms since the epoch). */
export type HistoryRef = { id: number } | { ts: number };

/**
 * Parses `msgid=N` or `timestamp=ISO`; null when it is neither.
 *
 * @example
 * ```ts
 * import { parseHistoryRef } from "./irc_chathistory.ts";
 * parseHistoryRef("msgid=42"); // { id: 42 }
 * parseHistoryRef("timestamp=2026-12-05T09:00:00.000Z"); // { ts: 1796374800000 }
 * ```
 */
export function parseHistoryRef(ref: string): HistoryRef | null {
  const eq = ref.indexOf("=");
  if (eq < 0) return null;
  const kind = ref.slice(0, eq);
  const value = ref.slice(eq + 1);
  if (kind === "msgid") {
    if (!/^[0-9]{1,15}$/.test(value)) return null;
    return { id: Number(value) };
  }
  if (kind === "timestamp") {
    if (!/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/.test(value)) return null;
    const ts = Date.parse(value);
    return Number.isFinite(ts) && ts >= 0 ? { ts } : null;
  }
  return null;
}

/** The query bounds of "before `ref`" (exclusive). */
function beforeRef(ref: HistoryRef): Partial<HistoryQuery> {
  return "id" in ref ? { before: ref.id } : { beforeTs: ref.ts };
}

/** The query bounds of "after `ref`" (exclusive). */
function afterRef(ref: HistoryRef): Partial<HistoryQuery> {
  return "id" in ref ? { after: ref.id } : { afterTs: ref.ts };
}

/** The query bounds of "from `ref` on" (inclusive). */
function fromRef(ref: HistoryRef): Partial<HistoryQuery> {
  return "id" in ref ? { after: ref.id - 1 } : { afterTs: ref.ts - 1 };
}

/** A refusal as a standard reply: `FAIL CHATHISTORY CODE context... :text`. */
class ChathistoryFail extends Error {
  readonly code: string;
  readonly context: string[];
  constructor(code: string, context: string[], text: string) {
    super(text);
    this.name = "ChathistoryFail";
    this.code = code;
    this.context = context;
  }
}

function fail(code: string, context: string[], text: string): never {
  throw new ChathistoryFail(code, context.map((c) => c.replace(/[ :]/g, "_") || "*"), text);
}

/** The conversation a target names, as a query; fails when the client may not read it. */
async function conversationOf(
  client: IrcClient,
  sub: string,
  target: string,
): Promise<Pick<HistoryQuery, "room" | "between" | "viewer">> {
  const self = client.session!.account.key;
  try {
    if (target.startsWith("#")) {
      const room = await client.hub.requireRoom(target.slice(1));
      if (!room.members.has(self)) fail("INVALID_TARGET", [sub, target], "Join it first");
      return { room: room.key, viewer: self };
    }
    const other = await client.hub.requireAccount(target);
    return { between: [self, other.key] };
  } catch (err) {
    if (err instanceof CommandError) fail("INVALID_TARGET", [sub, target], err.message);
    throw err;
  }
}

/** The limit parameter: 1 to the maximum (larger asks get the maximum). */
function limitOf(sub: string, text: string | undefined): number {
  const limit = Number(text);
  if (text === undefined || !/^[0-9]{1,9}$/.test(text) || limit < 1) {
    fail("INVALID_PARAMS", [sub, text ?? "*"], "The limit must be a positive number");
  }
  return Math.min(limit, IRC_CHATHISTORY_MAX);
}

function refOf(sub: string, text: string | undefined, star = false): HistoryRef | null {
  if (star && text === "*") return null;
  const ref = text === undefined ? null : parseHistoryRef(text);
  if (ref === null) {
    fail("INVALID_PARAMS", [sub, text ?? "*"], "A reference is msgid=ID or timestamp=TIME");
  }
  return ref;
}

/** Reads the messages a subcommand asks for, oldest first. */
async function readHistory(
  client: IrcClient,
  sub: string,
  params: string[],
): Promise<ChatMessage[]> {
  const target = params[1];
  if (target === undefined) fail("INVALID_PARAMS", [sub], "Not enough parameters");
  const read = async (bounds: Partial<HistoryQuery>, limit: number, oldest = false) => {
    const conversation = await conversationOf(client, sub, target);
    return await client.hub.store.history({ ...conversation, ...bounds, limit, oldest });
  };
  switch (sub) {
    case "LATEST": {
      const ref = refOf(sub, params[2], true);
      return await read(ref === null ? {} : afterRef(ref), limitOf(sub, params[3]));
    }
    case "BEFORE":
      return await read(beforeRef(refOf(sub, params[2])!), limitOf(sub, params[3]));
    case "AFTER":
      return await read(afterRef(refOf(sub, params[2])!), limitOf(sub, params[3]), true);
    case "AROUND": {
      const ref = refOf(sub, params[2])!;
      const limit = limitOf(sub, params[3]);
      const before = await read(beforeRef(ref), Math.floor(limit / 2));
      const after = await read(fromRef(ref), limit - before.length, true);
      return [...before, ...after];
    }
    case "BETWEEN": {
      const a = refOf(sub, params[2])!;
      const b = refOf(sub, params[3])!;
      const limit = limitOf(sub, params[4]);
      // From the first reference towards the second: forward when it is the earlier one.
      const forward = "id" in a && "id" in b
        ? a.id <= b.id
        : "ts" in a && "ts" in b
        ? a.ts <= b.ts
        : true;
      return forward
        ? await read({ ...afterRef(a), ...beforeRef(b) }, limit, true)
        : await read({ ...afterRef(b), ...beforeRef(a) }, limit);
    }
    default:
      fail("INVALID_PARAMS", [sub], "Unknown subcommand");
  }
}

/** The lines of stored messages as IRC shows them (a direct one to its recipient). */
function historyLines(
  client: IrcClient,
  messages: ChatMessage[],
  batch: string | undefined,
): string[] {
  const lines: string[] = [];
  for (const m of messages) {
    const tags = { ...messageTags(client, m), ...(batch ? { batch } : {}) };
    const target = m.type === "msg" ? channelOf(m.room) : m.to;
    lines.push(...textLines("PRIVMSG", userSource(m.from), target, m.text, tags));
  }
  return lines;
}

/**
 * `TARGETS`: the client's rooms and direct conversations with a message between two
 * times: the `limit` latest active, by the time of their latest one there, oldest first.
 */
async function targetLines(client: IrcClient, params: string[]): Promise<string[]> {
  const sub = "TARGETS";
  const a = refOf(sub, params[1])!;
  const b = refOf(sub, params[2])!;
  const limit = limitOf(sub, params[3]);
  if (!("ts" in a) || !("ts" in b)) {
    fail("INVALID_PARAMS", [sub], "TARGETS takes two timestamp= references");
  }
  const [from, to] = a.ts <= b.ts ? [a.ts, b.ts] : [b.ts, a.ts];
  const self = client.session!.account.key;
  const found: { name: string; ts: number }[] = [];
  for (const roomKey of client.session!.account.rooms) {
    const [latest] = await client.hub.store.history({
      room: roomKey,
      viewer: self,
      afterTs: from,
      beforeTs: to,
      limit: 1,
    });
    if (latest?.type === "msg") found.push({ name: channelOf(latest.room), ts: latest.ts });
  }
  const window = { afterTs: from, beforeTs: to, limit };
  for (const { key, ts } of await client.hub.store.directConversations(self, window)) {
    found.push({ name: await client.hub.displayNick(key), ts });
  }
  // The latest `limit`, oldest first.
  found.sort((x, y) => y.ts - x.ts || (x.name < y.name ? -1 : 1));
  return found.slice(0, limit).reverse().map(({ name, ts }) =>
    formatIrcMessage({
      source: IRC_SERVER_NAME,
      command: "CHATHISTORY",
      params: ["TARGETS", name, `timestamp=${new Date(ts).toISOString()}`],
    })
  );
}

function batched(client: IrcClient, type: string, args: string[], body: (b?: string) => string[]) {
  if (!client.caps.has("batch")) return body(undefined);
  const id = newBatchId();
  return [
    formatIrcMessage({
      source: IRC_SERVER_NAME,
      command: "BATCH",
      params: [`+${id}`, type, ...args],
    }),
    ...body(id),
    `:${IRC_SERVER_NAME} BATCH -${id}`,
  ];
}

/** The `CHATHISTORY` command. */
export const chathistoryCommand: IrcCommandSpec = {
  minParams: 1,
  async run(client, { params }) {
    const sub = params[0].toUpperCase();
    try {
      if (sub === "TARGETS") {
        const lines = await targetLines(client, params);
        client.sendLines(
          batched(
            client,
            "draft/chathistory-targets",
            [],
            (id) => id === undefined ? lines : lines.map((l) => `@batch=${id} ${l}`),
          ),
        );
        return;
      }
      const messages = await readHistory(client, sub, params);
      const target = params[1];
      // The target as the server spells it (a nick's display form is the account's).
      const shown = target.startsWith("#")
        ? channelOf(messages.find((m) => m.type === "msg")?.room ?? target.slice(1))
        : target;
      client.sendLines(
        batched(client, "chathistory", [shown], (id) => historyLines(client, messages, id)),
      );
    } catch (err) {
      if (!(err instanceof ChathistoryFail)) throw err;
      client.sendLines([
        formatIrcMessage({
          source: IRC_SERVER_NAME,
          command: "FAIL",
          params: ["CHATHISTORY", err.code, ...err.context, err.message],
        }),
      ]);
    }
  },
};
