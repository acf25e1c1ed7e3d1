/**
 * The slash commands of the terminal client: one table, shared by the interactive
 * and the scripted mode, from which `/help` and tab completion are generated.
 *
 * A line starting with `/` is a command (`//text` sends the text `/text`); any other
 * non-empty line is sent to the current room or conversation (`/query`). A handler
 * sends its request at once (before its first `await`) and changes the local state
 * (current room, conversation) at once, so that the next line, typed or scripted,
 * already goes where the user expects while replies are still on their way; the
 * reply is shown when it arrives.
 *
 * @module
 */

import { nameKey } from "../protocol/names.ts";
import { splitText } from "../protocol/split_text.ts";
import type { ChatClient } from "./chat_client.ts";
import { ChatError } from "./chat_error.ts";
import type { FileTransfers } from "./file_transfer.ts";
import type { PrivateSessions } from "./private_sessions.ts";
import type { DisplayItem } from "./render.ts";
import type { SessionState } from "./session_state.ts";
import type { Views } from "./views.ts";

/** The part of {@linkcode ChatClient} the commands use (tests pass a fake). */
export type CommandClient = Pick<
  ChatClient,
  | "join"
  | "leave"
  | "rooms"
  | "members"
  | "topic"
  | "say"
  | "dm"
  | "broadcast"
  | "who"
  | "whoelse"
  | "hide"
  | "reveal"
  | "block"
  | "unblock"
  | "blocks"
  | "contactAdd"
  | "contactRemove"
  | "contacts"
  | "history"
  | "logOutEverywhere"
  | "away"
>;

/** The part of {@linkcode PrivateSessions} the commands use. */
export type PrivateControl = Pick<
  PrivateSessions,
  "start" | "accept" | "decline" | "send" | "stop"
>;

/** The part of {@linkcode FileTransfers} the commands use. */
export type FileControl = Pick<FileTransfers, "send" | "accept" | "decline" | "cancel" | "list">;

/** The part of {@linkcode Views} the commands use (`/window`). */
export type ViewControl = Pick<Views, "list" | "switchTo">;

/** What a command handler works with. */
export interface CommandContext {
  /** The connection. */
  readonly client: CommandClient;
  /** Private (direct, end-to-end encrypted) sessions; absent where not offered. */
  readonly privates?: PrivateControl;
  /** File transfers through the server; absent where not offered. */
  readonly files?: FileControl;
  /** The views of rooms and conversations (`/window`); absent where not offered. */
  readonly views?: ViewControl;
  /** The current room, conversation and what is known of nicks and rooms. */
  readonly state: SessionState;
  /** Shows a reply, an error or a note to the user (a line, or a JSON line). */
  show(item: DisplayItem): void;
  /** Ends the session (`/quit`): stop reading input, finish, log out. */
  quit(): void;
  /** The terminal's width, when output goes to one (`/help` wraps to it). */
  columns?(): number;
}

/** The arguments of a command line. */
export interface CommandArgs {
  /** The command line as typed. */
  readonly line: string;
  /** The whitespace-separated words after the command name. */
  readonly words: readonly string[];
  /** The text after the first `n` words, spacing kept, outer whitespace trimmed. */
  rest(n: number): string;
}

/** Another name of a command, optionally with leading arguments (`/add_contact` = `/contact add`). */
export type CommandAlias = string | { name: string; prefix: readonly string[]; args?: string };

/** One slash command. */
export interface CommandSpec {
  /** The name, without the slash. */
  readonly name: string;
  /** Other names (other chat programs' spellings). */
  readonly aliases: readonly CommandAlias[];
  /** The arguments for the usage line, e.g. `NICK TEXT`; empty when none. */
  readonly args: string;
  /** One line saying what it does. */
  readonly summary: string;
  /** Runs the command; throws {@linkcode ChatError} (`usage`, server codes) on failure. */
  handler(ctx: CommandContext, args: CommandArgs): void | Promise<void>;
}

const DEFAULT_HISTORY = 20;

/**
 * How `/me waves` travels: as the text `/me waves`, which clients show as
 * `* alice waves` (and any other reader still understands).
 */
export const ACTION_PREFIX = "/me ";

function privatesOf(ctx: CommandContext): PrivateControl {
  if (ctx.privates === undefined) {
    throw new ChatError("unsupported", "private sessions are not available here");
  }
  return ctx.privates;
}

function filesOf(ctx: CommandContext): FileControl {
  if (ctx.files === undefined) {
    throw new ChatError("unsupported", "file transfers are not available here");
  }
  return ctx.files;
}

/**
 * The file id of an argument written `#12` (nicks never start with `#`), or null when
 * the argument is something else (a nick).
 */
function fileIdOf(word: string | undefined): number | null {
  if (word === undefined || !word.startsWith("#")) return null;
  if (!/^#[1-9][0-9]{0,15}$/.test(word)) {
    throw new ChatError("usage", `"${word}" is not a file number: they look like #12`);
  }
  return Number(word.slice(1));
}

/**
 * Answers a private session request (`/accept NICK`); when nobody of that name asked
 * and the name is a number, the user most likely meant the file: say so.
 */
async function answerPrivate(
  answer: () => Promise<unknown>,
  spec: CommandSpec,
  args: CommandArgs,
): Promise<void> {
  try {
    await answer();
  } catch (err) {
    const word = args.words[0] ?? "";
    if (err instanceof ChatError && err.code === "no_private_request" && /^\d+$/.test(word)) {
      throw new ChatError(
        err.code,
        `${err.message}; did you mean the file: /${spec.name} #${word}?`,
      );
    }
    throw err;
  }
}

/** Answers a file offer (`/accept #12`); an unknown number points at `/files`. */
async function answerFile(answer: () => Promise<unknown>): Promise<void> {
  try {
    await answer();
  } catch (err) {
    if (err instanceof ChatError && err.code === "no_file") {
      throw new ChatError(err.code, `${err.message} (/files lists them)`);
    }
    throw err;
  }
}

/** The command's one word (a nick, a room); a usage error for none or more. */
function oneWord(args: CommandArgs, spec: CommandSpec): string {
  const word = args.words[0];
  if (word === undefined || args.words.length > 1) throw usage(spec);
  return word;
}

function usage(spec: { name: string; args: string }): ChatError {
  return new ChatError("usage", `usage: /${spec.name}${spec.args ? ` ${spec.args}` : ""}`);
}

/** The room a command acts on: the given one, or the current room. */
function roomOrCurrent(ctx: CommandContext, given: string | undefined, spec: CommandSpec): string {
  const room = given ?? ctx.state.room;
  if (room === undefined || room === null) {
    throw new ChatError("usage", `not in a room: name one (${usage(spec).message})`);
  }
  return room;
}

function requireText(args: CommandArgs, after: number, spec: CommandSpec): string {
  const text = args.rest(after);
  if (text === "") throw usage(spec);
  return text;
}

async function sendToRoom(ctx: CommandContext, room: string, text: string): Promise<void> {
  for (const sent of sendParts(text, (part) => ctx.client.say(room, part))) {
    ctx.show({ type: "reply", request: "say", data: await sent });
  }
}

async function sendToNick(ctx: CommandContext, nick: string, text: string): Promise<void> {
  for (const sent of sendParts(text, (part) => ctx.client.dm(nick, part))) {
    ctx.show({ type: "reply", request: "dm", data: await sent });
  }
}

/**
 * A text longer than a message may be is sent as several ({@linkcode splitText}), all
 * requested at once so that they go in order and no later line slips between them. The
 * caller awaits each in turn; the first failure is the one reported.
 */
function sendParts<T>(text: string, send: (part: string) => Promise<T>): Promise<T>[] {
  const sent = splitText(text).map(send);
  for (const reply of sent.slice(1)) reply.catch(() => {});
  return sent;
}

/**
 * Every slash command, in the order `/help` lists them.
 */
export const COMMANDS: readonly CommandSpec[] = [
  {
    name: "help",
    aliases: [],
    args: "[COMMAND]",
    summary: "list the commands, or explain one",
    handler(ctx, args) {
      const name = args.words[0]?.replace(/^\//, "");
      if (name === undefined) {
        ctx.show({ type: "info", text: helpText(ctx.columns?.()) });
        return;
      }
      const found = findCommand(name);
      if (found === undefined) {
        throw new ChatError("unknown_command", `no command /${name}: /help lists them`);
      }
      ctx.show({ type: "info", text: describeCommand(found.spec) });
    },
  },
  {
    name: "join",
    aliases: ["create_room"],
    args: "ROOM",
    summary: "join (or create) a room and make it the current one",
    async handler(ctx, args) {
      const room = oneWord(args, this);
      const previous = { room: ctx.state.room, query: ctx.state.query };
      ctx.state.room = room;
      ctx.state.query = null;
      try {
        ctx.show({ type: "reply", request: "join", data: await ctx.client.join(room) });
      } catch (err) {
        if (ctx.state.room === room) Object.assign(ctx.state, previous);
        throw err;
      }
    },
  },
  {
    name: "leave",
    aliases: ["part"],
    args: "[ROOM]",
    summary: "leave a room (default: the current one)",
    async handler(ctx, args) {
      if (args.words.length > 1) throw usage(this);
      const room = roomOrCurrent(ctx, args.words[0], this);
      ctx.state.removeJoined(room);
      ctx.show({ type: "reply", request: "leave", data: await ctx.client.leave(room) });
    },
  },
  {
    name: "rooms",
    aliases: ["get_rooms"],
    args: "",
    summary: "list the rooms on the server",
    async handler(ctx) {
      ctx.show({ type: "reply", request: "rooms", data: await ctx.client.rooms() });
    },
  },
  {
    name: "members",
    aliases: ["names"],
    args: "[ROOM]",
    summary: "list a room's members (default: the current room)",
    async handler(ctx, args) {
      if (args.words.length > 1) throw usage(this);
      const room = roomOrCurrent(ctx, args.words[0], this);
      ctx.show({ type: "reply", request: "members", data: await ctx.client.members(room) });
    },
  },
  {
    name: "topic",
    aliases: [],
    args: "[ROOM] [TEXT]",
    summary: "show a room's topic, or set it (ROOM: a room you are in; default: the current one)",
    async handler(ctx, args) {
      const first = args.words[0];
      let room: string;
      let text: string;
      if (first !== undefined && (first.startsWith("#") || ctx.state.isJoined(first))) {
        room = first.replace(/^#/, "");
        text = args.rest(1);
      } else {
        room = roomOrCurrent(ctx, undefined, this);
        text = args.rest(0);
      }
      const data = await (text === "" ? ctx.client.topic(room) : ctx.client.topic(room, text));
      ctx.show({ type: "reply", request: "topic", data });
    },
  },
  {
    name: "msg",
    aliases: ["message", "dm", "tell"],
    args: "NICK TEXT",
    summary: "send a direct message",
    async handler(ctx, args) {
      const nick = args.words[0];
      if (nick === undefined) throw usage(this);
      await sendToNick(ctx, nick, requireText(args, 1, this));
    },
  },
  {
    name: "r",
    aliases: ["reply"],
    args: "TEXT",
    summary: "reply to the last direct message you received",
    async handler(ctx, args) {
      const text = requireText(args, 0, this);
      const nick = ctx.state.lastDmFrom;
      if (nick === null) {
        throw new ChatError("usage", "no direct message to reply to yet: use /msg NICK TEXT");
      }
      await sendToNick(ctx, nick, text);
    },
  },
  {
    name: "query",
    aliases: [],
    args: "[NICK]",
    summary: "send plain lines to NICK as direct messages; without NICK, back to the room",
    handler(ctx, args) {
      if (args.words.length > 1) throw usage(this);
      const nick = args.words[0];
      if (nick === undefined) {
        ctx.state.query = null;
        const room = ctx.state.room;
        ctx.show({
          type: "info",
          text: room === null ? "* no conversation; /join a room" : `* back in ${room}`,
        });
        return;
      }
      if (nameKey(nick) === nameKey(ctx.state.self)) {
        throw new ChatError("self", "you cannot send direct messages to yourself");
      }
      ctx.state.query = nick;
      ctx.state.addNick(nick);
      ctx.show({ type: "info", text: `* talking to ${nick} (/query alone to go back)` });
    },
  },
  {
    name: "me",
    aliases: ["action"],
    args: "TEXT",
    summary: "describe what you do, to the current room or conversation: /me waves",
    async handler(ctx, args) {
      const text = `${ACTION_PREFIX}${requireText(args, 0, this)}`;
      const target = ctx.state.target;
      if (target === null) {
        throw new ChatError("usage", "not in a room or conversation: /join ROOM or /query NICK");
      }
      await (target.kind === "room"
        ? sendToRoom(ctx, target.room, text)
        : sendToNick(ctx, target.nick, text));
    },
  },
  {
    name: "say",
    aliases: ["room"],
    args: "ROOM TEXT",
    summary: "send a message to a room you are in without switching to it",
    async handler(ctx, args) {
      const room = args.words[0];
      if (room === undefined) throw usage(this);
      await sendToRoom(ctx, room.replace(/^#/, ""), requireText(args, 1, this));
    },
  },
  {
    name: "broadcast",
    aliases: [],
    args: "TEXT",
    summary: "send a message to everyone online",
    async handler(ctx, args) {
      const text = requireText(args, 0, this);
      ctx.show({ type: "reply", request: "broadcast", data: await ctx.client.broadcast(text) });
    },
  },
  {
    name: "who",
    aliases: ["list_users", "users"],
    args: "",
    summary: "list the users online",
    async handler(ctx) {
      ctx.show({ type: "reply", request: "who", data: await ctx.client.who() });
    },
  },
  {
    name: "whoelse",
    aliases: ["whoelsesince"],
    args: "[SECONDS]",
    summary: "list the other users online, or online within the last SECONDS",
    async handler(ctx, args) {
      if (args.words.length > 1) throw usage(this);
      const given = args.words[0];
      let since: number | undefined;
      if (given !== undefined) {
        since = /^\d+(\.\d+)?$/.test(given) ? Number(given) : NaN;
        if (!Number.isFinite(since) || since > 1e9) {
          throw new ChatError("usage", `SECONDS must be a number of seconds, not "${given}"`);
        }
      }
      ctx.show({ type: "reply", request: "whoelse", data: await ctx.client.whoelse(since) });
    },
  },
  {
    name: "away",
    aliases: ["back"],
    args: "[TEXT]",
    summary: "mark yourself away (others are told); alone, back, with what you missed",
    async handler(ctx, args) {
      const text = args.rest(0);
      const state = ctx.state;
      if (text !== "") {
        await ctx.client.away(text);
        state.away = text;
        state.missed.dms.clear();
        state.missed.mentions = 0;
        ctx.show({ type: "info", text: `* away: ${text} (/away alone to come back)` });
        return;
      }
      if (state.away === null) {
        throw new ChatError("usage", "not away: /away TEXT marks you away");
      }
      await ctx.client.away();
      state.away = null;
      const dms = [...state.missed.dms.values()].reduce((a, b) => a + b, 0);
      const mentions = state.missed.mentions;
      const parts = [
        ...(dms > 0
          ? [
            `${dms} direct message${dms === 1 ? "" : "s"} (${
              [...state.missed.dms.keys()].join(", ")
            })`,
          ]
          : []),
        ...(mentions > 0 ? [`${mentions} mention${mentions === 1 ? "" : "s"}`] : []),
      ];
      ctx.show({
        type: "info",
        text: `* back${parts.length > 0 ? `: while away, ${parts.join(" and ")}` : ""}`,
      });
    },
  },
  {
    name: "hide",
    aliases: ["invisible"],
    args: "",
    summary: "appear offline to others",
    async handler(ctx) {
      ctx.show({ type: "reply", request: "hide", data: await ctx.client.hide() });
    },
  },
  {
    name: "reveal",
    aliases: ["visible"],
    args: "",
    summary: "appear online again",
    async handler(ctx) {
      ctx.show({ type: "reply", request: "reveal", data: await ctx.client.reveal() });
    },
  },
  {
    name: "block",
    aliases: [],
    args: "NICK",
    summary: "stop receiving anything from NICK",
    async handler(ctx, args) {
      ctx.show({
        type: "reply",
        request: "block",
        data: await ctx.client.block(oneWord(args, this)),
      });
    },
  },
  {
    name: "unblock",
    aliases: [],
    args: "NICK",
    summary: "receive from NICK again",
    async handler(ctx, args) {
      const data = await ctx.client.unblock(oneWord(args, this));
      ctx.show({ type: "reply", request: "unblock", data });
    },
  },
  {
    name: "blocks",
    aliases: ["list_blocks"],
    args: "",
    summary: "list the users you block",
    async handler(ctx) {
      ctx.show({ type: "reply", request: "blocks", data: await ctx.client.blocks() });
    },
  },
  {
    name: "contacts",
    aliases: ["list_contacts"],
    args: "",
    summary: "list your contacts and who of them is online",
    async handler(ctx) {
      ctx.show({ type: "reply", request: "contacts", data: await ctx.client.contacts() });
    },
  },
  {
    name: "contact",
    aliases: [
      { name: "add_contact", prefix: ["add"], args: "NICK" },
      { name: "remove_contact", prefix: ["remove"], args: "NICK" },
    ],
    args: "add|remove NICK",
    summary: "add or remove a contact (you see when contacts come and go)",
    async handler(ctx, args) {
      const [action, nick] = args.words;
      if (nick === undefined || args.words.length > 2) throw usage(this);
      if (action === "add") {
        ctx.show({
          type: "reply",
          request: "contact_add",
          data: await ctx.client.contactAdd(nick),
        });
      } else if (action === "remove") {
        ctx.show({
          type: "reply",
          request: "contact_remove",
          data: await ctx.client.contactRemove(nick),
        });
      } else {
        throw usage(this);
      }
    },
  },
  {
    name: "history",
    aliases: [],
    args: "[N]",
    summary:
      `show the last N messages (default ${DEFAULT_HISTORY}) of the current room or conversation`,
    async handler(ctx, args) {
      if (args.words.length > 1) throw usage(this);
      const given = args.words[0];
      const limit = given === undefined ? DEFAULT_HISTORY : /^\d+$/.test(given) ? Number(given) : 0;
      if (limit < 1 || limit > 500) {
        throw new ChatError("usage", `N must be a whole number from 1 to 500, not "${given}"`);
      }
      const target = ctx.state.target;
      if (target === null) {
        throw new ChatError("usage", "not in a room or conversation: /join ROOM or /query NICK");
      }
      const data = await ctx.client.history(
        target.kind === "room" ? { room: target.room, limit } : { with: target.nick, limit },
      );
      ctx.show({ type: "reply", request: "history", data });
    },
  },
  {
    name: "private",
    aliases: ["startprivate"],
    args: "NICK [TEXT]",
    summary: "start a direct, end-to-end encrypted session with NICK that the server cannot " +
      "read; with TEXT, send TEXT over it",
    async handler(ctx, args) {
      const nick = args.words[0];
      if (nick === undefined) throw usage(this);
      const text = args.rest(1);
      if (text === "") await privatesOf(ctx).start(nick);
      else await privatesOf(ctx).send(nick, text);
    },
  },
  {
    name: "p",
    aliases: [],
    args: "NICK TEXT",
    summary: "send TEXT over the private session with NICK",
    async handler(ctx, args) {
      const nick = args.words[0];
      if (nick === undefined) throw usage(this);
      await privatesOf(ctx).send(nick, requireText(args, 1, this));
    },
  },
  {
    name: "accept",
    aliases: [],
    args: "NICK|#FILE",
    summary: "accept NICK's request for a private session, or the file offered as #FILE " +
      "(saved in the download folder)",
    async handler(ctx, args) {
      const file = fileIdOf(args.words[0]);
      if (file === null) {
        await answerPrivate(() => privatesOf(ctx).accept(oneWord(args, this)), this, args);
        return;
      }
      if (args.words.length > 1) throw usage(this);
      await answerFile(() => filesOf(ctx).accept(file));
    },
  },
  {
    name: "decline",
    aliases: [],
    args: "NICK|#FILE",
    summary: "decline NICK's request for a private session, or the file offered as #FILE",
    async handler(ctx, args) {
      const file = fileIdOf(args.words[0]);
      if (file === null) {
        await answerPrivate(() => privatesOf(ctx).decline(oneWord(args, this)), this, args);
        return;
      }
      if (args.words.length > 1) throw usage(this);
      await answerFile(() => filesOf(ctx).decline(file));
      ctx.show({ type: "info", text: `* declined file #${file}` });
    },
  },
  {
    name: "stopprivate",
    aliases: ["endprivate"],
    args: "NICK",
    summary: "close the private session with NICK (NICK is told)",
    async handler(ctx, args) {
      await privatesOf(ctx).stop(oneWord(args, this));
    },
  },
  {
    name: "send",
    aliases: ["sendfile", "file"],
    args: "NICK PATH",
    summary:
      "send the file at PATH to NICK through the server, which holds it until NICK is online",
    async handler(ctx, args) {
      const nick = args.words[0];
      const path = args.rest(1);
      if (nick === undefined || path === "") throw usage(this);
      try {
        await filesOf(ctx).send(nick, path);
      } catch (err) {
        // Other messengers' `send NICK TEXT` sends text: say how, here.
        if (err instanceof ChatError && err.code === "not_a_file") {
          throw new ChatError(
            err.code,
            `${err.message} (to send it as a message: /msg ${nick} ${path})`,
          );
        }
        throw err;
      }
    },
  },
  {
    name: "files",
    aliases: [],
    args: "",
    summary: "list the files offered to you and not yet received",
    async handler(ctx) {
      ctx.show({ type: "reply", request: "file_list", data: await filesOf(ctx).list() });
    },
  },
  {
    name: "cancel",
    aliases: [],
    args: "#FILE",
    summary: "stop sending or receiving #FILE; the server drops it",
    async handler(ctx, args) {
      const file = fileIdOf(args.words[0]);
      if (file === null || args.words.length > 1) throw usage(this);
      await filesOf(ctx).cancel(file);
      ctx.show({ type: "info", text: `* cancelled file #${file}` });
    },
  },
  {
    name: "window",
    aliases: ["w"],
    args: "[NAME]",
    summary:
      "switch to the view of #room, @nick or number N and show its last lines; alone, list views with unread counts",
    handler(ctx, args) {
      if (ctx.views === undefined) {
        throw new ChatError("unsupported", "views are only in the interactive client");
      }
      if (args.words.length > 1) throw usage(this);
      const name = args.words[0];
      if (name === undefined) {
        const list = ctx.views.list();
        ctx.show({
          type: "info",
          text: list.length === 0 ? "* no views; /join a room or /query a nick" : list
            .map((line) => `* ${line}`).join("\n"),
        });
        return;
      }
      const view = ctx.views.switchTo(name);
      ctx.show({
        type: "info",
        text: [
          `---- ${view.label}${view.unread > 0 ? ` (${view.unread} unread)` : ""} ----`,
          ...view.lines,
        ].join("\n"),
      });
    },
  },
  {
    name: "quit",
    aliases: ["logout", "exit", "bye"],
    args: "[everywhere]",
    summary:
      "log out and leave; everywhere: also end this account's other sessions and remembered browser logins",
    async handler(ctx, args) {
      const everywhere = args.words.length === 1 && args.words[0]!.toLowerCase() === "everywhere";
      if (args.words.length > 0 && !everywhere) throw usage(this);
      if (everywhere) {
        const data = await ctx.client.logOutEverywhere();
        ctx.show({ type: "reply", request: "token_revoke", data });
      }
      ctx.quit();
    },
  },
];

const BY_NAME: ReadonlyMap<string, { spec: CommandSpec; prefix: readonly string[] }> = (() => {
  const map = new Map<string, { spec: CommandSpec; prefix: readonly string[] }>();
  for (const spec of COMMANDS) {
    map.set(spec.name, { spec, prefix: [] });
    for (const alias of spec.aliases) {
      if (typeof alias === "string") map.set(alias, { spec, prefix: [] });
      else map.set(alias.name, { spec, prefix: alias.prefix });
    }
  }
  return map;
})();

/**
 * Finds a command by name or alias (case-insensitive, without the slash), with the
 * arguments an alias puts in front of the typed ones.
 */
export function findCommand(
  name: string,
): { spec: CommandSpec; prefix: readonly string[] } | undefined {
  return BY_NAME.get(name.toLowerCase());
}

/**
 * The command name or alias closest to a mistyped `name` (at most one edit for short
 * names, two for longer ones; a swap of two letters is one edit), or null when none is
 * close or two are equally close.
 *
 * @example
 * ```ts
 * import { closestCommand } from "./commands.ts";
 * closestCommand("jion"); // "join"
 * closestCommand("xyzzy"); // null
 * ```
 */
export function closestCommand(name: string): string | null {
  const typed = name.toLowerCase();
  if (typed === "") return null;
  const limit = typed.length <= 4 ? 1 : 2;
  let best: string | null = null;
  let bestDistance = limit + 1;
  let tie = false;
  for (const candidate of BY_NAME.keys()) {
    const distance = editDistance(typed, candidate);
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
      tie = false;
    } else if (
      best !== null && distance === bestDistance &&
      BY_NAME.get(candidate)!.spec !== BY_NAME.get(best)!.spec
    ) {
      tie = true;
    }
  }
  return best !== null && !tie ? best : null;
}

/** Edits (insert, delete, replace, swap two neighbours) from `a` to `b`. */
function editDistance(a: string, b: string): number {
  const rows: number[][] = [];
  for (let i = 0; i <= a.length; i++) {
    rows.push([i]);
    for (let j = 1; j <= b.length; j++) {
      if (i === 0) {
        rows[0].push(j);
        continue;
      }
      let d = Math.min(
        rows[i - 1][j] + 1,
        rows[i][j - 1] + 1,
        rows[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d = Math.min(d, rows[i - 2][j - 2] + 1);
      }
      rows[i].push(d);
    }
  }
  return rows[a.length][b.length];
}

/** Every command name and alias, with the slash, sorted. */
export function commandNames(): string[] {
  return [...BY_NAME.keys()].map((name) => `/${name}`).sort();
}

function aliasName(alias: CommandAlias): string {
  return typeof alias === "string" ? alias : alias.name;
}

/** The usage and summary of one command, with its aliases. */
export function describeCommand(spec: CommandSpec): string {
  const lines = [`/${spec.name}${spec.args ? ` ${spec.args}` : ""}  ${spec.summary}`];
  for (const alias of spec.aliases) {
    if (typeof alias === "string") {
      lines.push(`  also /${alias}`);
    } else {
      lines.push(
        `  also /${alias.name}${alias.args ? ` ${alias.args}` : ""} = /${spec.name} ${
          alias.prefix.join(" ")
        }${alias.args ? ` ${alias.args}` : ""}`,
      );
    }
  }
  return lines.join("\n");
}

/**
 * Words of `text` in rows of at most `width` columns (a longer word has a row of its own).
 */
function wrapWords(text: string, width: number): string[] {
  const rows: string[] = [];
  let row = "";
  for (const word of text.split(/\s+/)) {
    if (row !== "" && row.length + 1 + word.length > width) {
      rows.push(row);
      row = word;
    } else {
      row = row === "" ? word : `${row} ${word}`;
    }
  }
  if (row !== "") rows.push(row);
  return rows;
}

/** The narrowest summary column worth wrapping into; narrower, summaries go below. */
const MIN_SUMMARY_WIDTH = 24;

/**
 * The text of `/help`: every command with its arguments, summary and aliases; given
 * the terminal's width, summaries wrap at word boundaries under their column (or,
 * on a narrow terminal, below their command), so no row is wider than `columns`.
 */
export function helpText(columns = Infinity): string {
  const rows = COMMANDS.map((spec) => ({
    usage: `/${spec.name}${spec.args ? ` ${spec.args}` : ""}`,
    summary: spec.summary +
      (spec.aliases.length > 0
        ? ` (also ${spec.aliases.map((a) => `/${aliasName(a)}`).join(", ")})`
        : ""),
  }));
  const width = Math.max(...rows.map((r) => r.usage.length));
  const footer = "Any other line goes to the current room or conversation; start it with // " +
    "to send a line beginning with /.";
  if (!Number.isFinite(columns)) {
    return [
      "Commands:",
      ...rows.map((r) => `  ${r.usage.padEnd(width)}  ${r.summary}`),
      "Any other line goes to the current room or conversation; start it with // to send a line",
      "beginning with /.",
    ].join("\n");
  }
  const lines = ["Commands:"];
  const beside = columns - width - 4 >= MIN_SUMMARY_WIDTH;
  for (const r of rows) {
    if (beside) {
      const [first, ...more] = wrapWords(r.summary, columns - width - 4);
      lines.push(`  ${r.usage.padEnd(width)}  ${first}`);
      for (const row of more) lines.push(`${" ".repeat(width + 4)}${row}`);
    } else {
      lines.push(`  ${r.usage}`);
      for (const row of wrapWords(r.summary, Math.max(columns - 4, 1))) lines.push(`    ${row}`);
    }
  }
  lines.push(...wrapWords(footer, columns));
  return lines.join("\n");
}

/** A parsed input line. */
export type ParsedLine =
  | { kind: "empty" }
  | { kind: "text"; text: string }
  | { kind: "command"; name: string; args: CommandArgs };

/**
 * Splits an input line into a command and its arguments, or plain text.
 *
 * @example
 * ```ts
 * import { parseLine } from "./commands.ts";
 * parseLine("/msg bob  hi  there"); // command "msg", words ["bob", "hi", "there"], rest(1) "hi  there"
 * parseLine("//shrug"); // text "/shrug"
 * ```
 */
export function parseLine(line: string): ParsedLine {
  const input = line.replace(/[\r\n]+$/, "");
  if (input.trim() === "") return { kind: "empty" };
  if (input.startsWith("//")) return { kind: "text", text: input.slice(1) };
  if (!input.startsWith("/")) return { kind: "text", text: input };
  const body = input.slice(1);
  const match = /^(\S*)\s*([\s\S]*)$/.exec(body)!;
  const name = match[1];
  const tail = match[2].trimEnd();
  return { kind: "command", name, args: makeArgs(input, tail) };
}

function makeArgs(line: string, tail: string): CommandArgs {
  const words = tail === "" ? [] : tail.split(/\s+/);
  return {
    line,
    words,
    rest(n: number): string {
      let text = tail;
      for (let i = 0; i < n; i++) text = text.replace(/^\S+\s*/, "");
      return text.trim();
    },
  };
}

function withPrefix(args: CommandArgs, prefix: readonly string[]): CommandArgs {
  if (prefix.length === 0) return args;
  return {
    line: args.line,
    words: [...prefix, ...args.words],
    rest: (n: number) => n <= prefix.length ? "" : args.rest(n - prefix.length),
  };
}

/**
 * Runs one input line: a command, or text for the current room or conversation.
 * Failures are shown through `ctx.show` as `error` items; the promise never
 * rejects and resolves to whether the line succeeded (true for an empty line).
 */
export async function executeLine(ctx: CommandContext, line: string): Promise<boolean> {
  const parsed = parseLine(line);
  const fail = (err: unknown) => {
    const error = err instanceof ChatError
      ? err
      : new ChatError("internal", err instanceof Error ? err.message : String(err));
    ctx.show({
      type: "error",
      code: error.code,
      message: error.message,
      command: line.replace(/[\r\n]+$/, ""),
      ...(error.retryAfter !== undefined ? { retryAfter: error.retryAfter } : {}),
    });
    return false;
  };
  try {
    switch (parsed.kind) {
      case "empty":
        return true;
      case "text": {
        const target = ctx.state.target;
        if (target === null) {
          throw new ChatError("usage", "not in a room or conversation: /join ROOM or /query NICK");
        }
        await (target.kind === "room"
          ? sendToRoom(ctx, target.room, parsed.text)
          : sendToNick(ctx, target.nick, parsed.text));
        return true;
      }
      case "command": {
        const found = findCommand(parsed.name);
        if (found === undefined) {
          const guess = closestCommand(parsed.name);
          throw new ChatError(
            "unknown_command",
            `unknown command /${parsed.name}: ${
              guess !== null ? `did you mean /${guess}? ` : ""
            }/help lists the commands`,
          );
        }
        await found.spec.handler(ctx, withPrefix(parsed.args, found.prefix));
        return true;
      }
    }
  } catch (err) {
    return fail(err);
  }
}

/** Which argument of which commands names a room, or a nick, for completion. */
const ROOM_ARGS = new Set(["join", "leave", "members", "topic", "say"]);
const NICK_ARGS = new Set([
  "msg",
  "query",
  "block",
  "unblock",
  "private",
  "p",
  "accept",
  "decline",
  "stopprivate",
  "send",
]);

/**
 * Tab completion for `node:readline`: completes command names at the start of a
 * line, room names where a command takes a room, and nicks elsewhere. Returns the
 * candidates and the word they complete.
 *
 * @example
 * ```ts
 * import { completeLine } from "./commands.ts";
 * import { SessionState } from "./session_state.ts";
 * completeLine("/jo", new SessionState("alice")); // [["/join"], "/jo"]
 * ```
 */
export function completeLine(line: string, state: SessionState): [string[], string] {
  if (/^\/\S*$/.test(line)) {
    const hits = commandNames().filter((name) => name.startsWith(line.toLowerCase()));
    return [hits, line];
  }
  const word = /(\S*)$/.exec(line)![1];
  const before = line.slice(0, line.length - word.length);
  let pool: string[] = state.knownNicks;
  const parsed = parseLine(before);
  if (parsed.kind === "command") {
    const found = findCommand(parsed.name);
    const index = found === undefined ? -1 : found.prefix.length + parsed.args.words.length;
    const name = found?.spec.name;
    if (name !== undefined && ROOM_ARGS.has(name) && index === 0) {
      pool = [...new Set([...state.joinedRooms, ...state.knownRooms])];
    } else if (name === "contact" && index === 0) {
      pool = ["add", "remove"];
    } else if (
      name !== undefined && (NICK_ARGS.has(name) || name === "contact") &&
      index === (name === "contact" ? 1 : 0)
    ) {
      pool = state.knownNicks;
    }
  }
  const key = word.toLowerCase().replace(/^[@#]/, "");
  const sigil = /^[@#]/.test(word) ? word[0] : "";
  const hits = pool.filter((name) => name.toLowerCase().startsWith(key)).map((n) => sigil + n)
    .sort();
  return [hits, word];
}
