/**
 * The IRC listener's command table: one entry per IRC command, each translating the
 * command to the chat server's own command handlers (`server/commands.ts`) and their
 * results to IRC replies. Sockets, registration state and flood control live in
 * `server/irc_connection.ts`; chat state in the hub.
 *
 * @module
 */

import { formatFittedIrcMessage, formatIrcMessage, type IrcMessage } from "../protocol/irc_line.ts";
import type { ChatMessage } from "../protocol/messages.ts";
import { MAX_NAME_LENGTH, MAX_TOPIC_LENGTH, nameKey, nameProblem } from "../protocol/names.ts";
import { type CommandContext, commands } from "./commands.ts";
import { CommandError } from "./errors.ts";
import { chathistoryCommand } from "./irc_chathistory.ts";
import { authenticateCommand, saslCapability, type SaslState } from "./irc_sasl.ts";
import type { ChatHub, Session } from "./hub.ts";
import {
  channelOf,
  IRC_CAPABILITIES,
  IRC_SERVER_NAME,
  joinLine,
  messageTags,
  newBatchId,
  oneLine,
  textLines,
  userSource,
} from "./irc_events.ts";

/** What an IRC command handler may use of its connection. */
export interface IrcClient {
  /** The chat state. */
  readonly hub: ChatHub;
  /** The logged-in session, once registered. */
  readonly session: Session | null;
  /** The nick given (or logged in with), "*" before one. */
  readonly nick: string;
  /** Capabilities enabled. */
  readonly caps: Set<string>;
  /** Sends a numeric: `:server NUM nick params...`. */
  reply(numeric: string, ...params: string[]): void;
  /** Sends whole lines (without CR LF). */
  sendLines(lines: readonly string[]): void;
  /**
   * Registration: the nick, the user line, the password, capability negotiation. Each
   * resolves once the registration it completed (if any) is done.
   */
  setNick(nick: string): Promise<void>;
  setUser(): Promise<void>;
  setPassword(password: string): void;
  /** Holds registration while capabilities are negotiated (CAP LS/REQ) until CAP END. */
  holdRegistration(held: boolean): Promise<void>;
  /** Ends the connection with an `ERROR` line. */
  quit(reason: string): void;
  /** A fresh request id for the chat commands (unique, so stored ids never collide). */
  newId(): string;
  /** The client's IP address. */
  readonly ip: string;
  /** The SASL exchange (server/irc_sasl.ts). */
  readonly sasl: SaslState;
  /** The `CAP LS` version the client asked for (302 and up: capability values). */
  capVersion: number;
  /** Takes a password check from the flood control: seconds to wait, or 0 when admitted. */
  admitLogin(): number;
}

/** A command's handler and how the connection treats it. */
export interface IrcCommandSpec {
  /** Fewest parameters; fewer get 461 ERR_NEEDMOREPARAMS. */
  minParams: number;
  /** Allowed before registration. */
  beforeRegistration?: boolean;
  /** Only before registration (462 after). */
  onlyBeforeRegistration?: boolean;
  /** Sends a message to others: counts in the flood control's message bucket. */
  message?: boolean;
  /** Tells every online account something (not a message): the message bucket too. */
  toldToOthers?: boolean;
  /** Counts as activity for the idle timeout. Default true. */
  activity?: boolean;
  /** Handles the command; may throw a {@linkcode CommandError}, turned into a numeric. */
  run(client: IrcClient, message: IrcMessage): void | Promise<unknown>;
}

/**
 * The capabilities offered to `client`: {@linkcode IRC_CAPABILITIES}, and `sasl` when the
 * server checks passwords (`--auth password`).
 */
export function capabilitiesOf(client: IrcClient): string[] {
  const caps = [...IRC_CAPABILITIES];
  if (client.hub.config.auth === "password") caps.push("sasl");
  return caps;
}

/** The `CAP LS` version from which `cap-notify` is on, implicitly and for good (IRCv3). */
export const CAP_NOTIFY_VERSION = 302;

/**
 * The capabilities `client` has whether it asks or not, and may not disable: `cap-notify`
 * once it sent `CAP LS 302` (or later). The server's offer never changes while it runs
 * (`sasl` follows `--auth`, which a reload does not change), so no `CAP NEW` or `CAP DEL`
 * is ever due: the capability is a true promise with nothing to send.
 */
export function implicitCapabilitiesOf(client: IrcClient): string[] {
  return client.capVersion >= CAP_NOTIFY_VERSION ? ["cap-notify"] : [];
}

/** The chat command context of a registered client. */
function chat(client: IrcClient): CommandContext {
  return { hub: client.hub, session: client.session! };
}

/** The room name of a channel, or null when the channel cannot be a room. */
export function roomOfChannel(channel: string): string | null {
  if (!channel.startsWith("#")) return null;
  const name = channel.slice(1);
  return nameProblem(name) === null ? name : null;
}

/** The chat error codes an IRC reply names by numeric, per situation. */
function numericOf(err: CommandError, target: string): [string, ...string[]] | null {
  switch (err.code) {
    case "unknown_user":
      return ["401", target, "No such nick"];
    case "unknown_room":
      return ["403", target, "No such channel"];
    case "not_member":
      return ["442", target, "You're not on that channel"];
    case "bad_name":
      return ["479", target, err.message];
    default:
      return null;
  }
}

/**
 * Sends the topic and names replies of a channel just joined and the room's latest
 * messages: as a `chathistory` batch to a client that took the `batch` capability; as
 * plain lines carrying their `time` tags to one that took only `server-time` (irssi,
 * which shows them at the time they were said); none to a client with neither, which
 * would take them for new messages.
 */
function sendJoined(
  client: IrcClient,
  reply: { room: string; topic: string; members: string[]; history: ChatMessage[] },
): void {
  const channel = channelOf(reply.room);
  client.sendLines([joinLine(client, client.nick, channel)]);
  if (reply.topic !== "") client.reply("332", channel, oneLine(reply.topic));
  sendNames(client, channel, reply.members);
  if (reply.history.length === 0) return;
  const batch = client.caps.has("batch") ? newBatchId() : null;
  if (batch === null && !client.caps.has("server-time")) return;
  const lines = batch === null
    ? []
    : [`:${IRC_SERVER_NAME} BATCH +${batch} chathistory ${channel}`];
  for (const message of reply.history) {
    const tags = messageTags(client, message);
    if (batch !== null) tags.batch = batch;
    lines.push(...textLines("PRIVMSG", userSource(message.from), channel, message.text, tags));
  }
  if (batch !== null) lines.push(`:${IRC_SERVER_NAME} BATCH -${batch}`);
  client.sendLines(lines);
}

/** 353 lines of at most ~400 bytes each, then 366. */
function sendNames(client: IrcClient, channel: string, nicks: readonly string[]): void {
  let batch: string[] = [];
  let bytes = 0;
  for (const nick of nicks) {
    if (bytes + nick.length + 1 > 400 && batch.length > 0) {
      client.reply("353", "=", channel, batch.join(" "));
      batch = [];
      bytes = 0;
    }
    batch.push(nick);
    bytes += nick.length + 1;
  }
  if (batch.length > 0) client.reply("353", "=", channel, batch.join(" "));
  client.reply("366", channel, "End of /NAMES list");
}

/** Joins the client's session to `room` (creating it) and tells the client as IRC does. */
export async function joinRoom(client: IrcClient, room: string): Promise<void> {
  const reply = await commands.join.run(chat(client), { type: "join", id: client.newId(), room });
  sendJoined(client, reply);
}

/**
 * Sends a text to a channel or a nick. Not an async function: a message to a channel is
 * appended synchronously (pipelined ones keep their order) and waits for its commit
 * holding the store's promise alone, no suspended function per message.
 */
function sendText(
  client: IrcClient,
  command: "PRIVMSG" | "NOTICE",
  target: string,
  text: string,
): Promise<unknown> {
  const ctx = chat(client);
  const id = client.newId();
  if (!target.startsWith("#")) return sendDirectText(client, ctx, command, target, text, id);
  const room = roomOfChannel(target);
  if (room === null) {
    return Promise.reject(new CommandError("unknown_room", `no such channel ${target}`));
  }
  const said = commands.say.run(ctx, { type: "say", id, room, text });
  if (!client.caps.has("echo-message")) return said;
  return said.then(({ msg }) =>
    client.sendLines(
      textLines(command, userSource(client.nick), target, text, messageTags(client, msg)),
    )
  );
}

async function sendDirectText(
  client: IrcClient,
  ctx: CommandContext,
  command: "PRIVMSG" | "NOTICE",
  target: string,
  text: string,
  id: string,
): Promise<void> {
  const { msg } = await commands.dm.run(ctx, { type: "dm", id, to: target, text });
  if (client.caps.has("echo-message")) {
    client.sendLines(
      textLines(command, userSource(client.nick), target, text, messageTags(client, msg)),
    );
  }
  // RPL_AWAY: the recipient is away (not for a NOTICE, which gets no automatic reply).
  const away = client.hub.awayOf(nameKey(msg.to), ctx.session.account.key);
  if (command === "PRIVMSG" && away !== null) client.reply("301", msg.to, away);
}

/**
 * A text command's error as IRC tells it: a NOTICE never gets one back (RFC 2812 §3.3.2),
 * a PRIVMSG the numeric of the chat error; anything else goes on (an internal error).
 */
function textFailed(
  client: IrcClient,
  command: "PRIVMSG" | "NOTICE",
  target: string,
  err: unknown,
): void {
  if (!(err instanceof CommandError)) throw err;
  if (command === "NOTICE") return;
  if (err.code === "unknown_user") {
    client.reply("401", target, "No such nick");
    return;
  }
  if (err.code === "not_member" || err.code === "blocked" || err.code === "bad_text") {
    client.reply(target.startsWith("#") ? "404" : "401", target, err.message);
    return;
  }
  throw err;
}

/** PRIVMSG and NOTICE: the same, but a NOTICE never gets an error back (RFC 2812 §3.3.2). */
function textCommand(command: "PRIVMSG" | "NOTICE"): IrcCommandSpec {
  return {
    minParams: 0,
    message: true,
    run(client, { params }) {
      const quiet = command === "NOTICE";
      if (params.length === 0 || params[0] === "") {
        if (!quiet) client.reply("411", `No recipient given (${command})`);
        return;
      }
      if (params.length < 2 || params[1].trim() === "") {
        if (!quiet) client.reply("412", "No text to send");
        return;
      }
      const target = params[0];
      if (target.includes(",")) {
        if (!quiet) client.reply("407", target, "Too many targets: one at a time");
        return;
      }
      let sent: Promise<unknown>;
      try {
        sent = sendText(client, command, target, params[1]);
      } catch (err) {
        sent = Promise.reject(err);
      }
      return sent.then(undefined, (err: unknown) => textFailed(client, command, target, err));
    },
  };
}

/** The IRC command table. */
export const ircCommands: Record<string, IrcCommandSpec> = {
  CAP: {
    minParams: 1,
    beforeRegistration: true,
    activity: false,
    async run(client, { params }) {
      const sub = params[0].toUpperCase();
      const nick = client.nick;
      const cap = (...rest: string[]) =>
        client.sendLines([
          formatIrcMessage({ source: IRC_SERVER_NAME, command: "CAP", params: [nick, ...rest] }),
        ]);
      switch (sub) {
        case "LS": {
          if (client.session === null) client.holdRegistration(true);
          const version = Number(params[1] ?? 0);
          if (Number.isInteger(version) && version > client.capVersion) {
            client.capVersion = version;
          }
          for (const c of implicitCapabilitiesOf(client)) client.caps.add(c);
          const shown = capabilitiesOf(client).map((c) =>
            c === "sasl" ? saslCapability(client.capVersion) : c
          );
          cap("LS", shown.join(" "));
          return;
        }
        case "LIST":
          cap("LIST", [...client.caps].join(" "));
          return;
        case "REQ": {
          if (client.session === null) client.holdRegistration(true);
          const asked = (params[1] ?? "").split(" ").filter((c) => c !== "");
          const offered = capabilitiesOf(client);
          const known = asked.every((c) => offered.includes(c.replace(/^-/, "")));
          const implicit = implicitCapabilitiesOf(client);
          const dropsImplicit = asked.some((c) =>
            c.startsWith("-") && implicit.includes(c.slice(1))
          );
          if (!known || dropsImplicit || asked.length === 0) {
            cap("NAK", params[1] ?? "");
            return;
          }
          for (const c of asked) {
            if (c.startsWith("-")) client.caps.delete(c.slice(1));
            else client.caps.add(c);
          }
          cap("ACK", params[1]);
          return;
        }
        case "END":
          await client.holdRegistration(false);
          return;
        default:
          client.reply("410", sub, "Invalid CAP command");
      }
    },
  },

  PASS: {
    minParams: 1,
    beforeRegistration: true,
    onlyBeforeRegistration: true,
    run(client, { params }) {
      client.setPassword(params[0]);
    },
  },

  NICK: {
    minParams: 0,
    beforeRegistration: true,
    run(client, { params }) {
      if (params.length === 0 || params[0] === "") {
        client.reply("431", "No nickname given");
        return;
      }
      if (client.session !== null) {
        if (params[0] === client.nick) return;
        client.reply("447", "Can't change nickname: a nick is an account here");
        return;
      }
      const problem = nameProblem(params[0]);
      if (problem !== null) {
        client.reply("432", params[0], `Erroneous nickname: ${problem}`);
        return;
      }
      return client.setNick(params[0]);
    },
  },

  USER: {
    minParams: 4,
    beforeRegistration: true,
    onlyBeforeRegistration: true,
    run(client) {
      return client.setUser();
    },
  },

  PING: {
    minParams: 1,
    beforeRegistration: true,
    activity: false,
    run(client, { params }) {
      client.sendLines([`:${IRC_SERVER_NAME} PONG ${IRC_SERVER_NAME} :${params[0]}`]);
    },
  },

  PONG: { minParams: 0, beforeRegistration: true, activity: false, run() {} },

  QUIT: {
    minParams: 0,
    beforeRegistration: true,
    run(client, { params }) {
      client.quit(`Quit: ${params[0] ?? "bye"}`);
    },
  },

  JOIN: {
    minParams: 1,
    async run(client, { params }) {
      for (const channel of params[0].split(",")) {
        const room = roomOfChannel(channel);
        if (room === null) {
          client.reply(
            "479",
            channel,
            `Illegal channel name: # and 1 to ${MAX_NAME_LENGTH} letters, digits, _ - .`,
          );
          continue;
        }
        // Already in it (an IRC client's autojoin after registration joined it): nothing to do.
        if (client.session!.account.rooms.has(nameKey(room))) continue;
        try {
          await joinRoom(client, room);
        } catch (err) {
          const numeric = err instanceof CommandError ? numericOf(err, channel) : null;
          if (numeric === null) throw err;
          client.reply(...numeric);
        }
      }
    },
  },

  PART: {
    minParams: 1,
    async run(client, { params }) {
      for (const channel of params[0].split(",")) {
        const room = roomOfChannel(channel);
        if (room === null) {
          client.reply("403", channel, "No such channel");
          continue;
        }
        try {
          const reply = await commands.leave.run(chat(client), {
            type: "leave",
            id: client.newId(),
            room,
          });
          client.sendLines([`:${userSource(client.nick)} PART ${channelOf(reply.room)}`]);
        } catch (err) {
          const numeric = err instanceof CommandError ? numericOf(err, channel) : null;
          if (numeric === null) throw err;
          client.reply(...numeric);
        }
      }
    },
  },

  PRIVMSG: textCommand("PRIVMSG"),
  NOTICE: textCommand("NOTICE"),

  TOPIC: {
    minParams: 1,
    async run(client, { params }) {
      const channel = params[0];
      const room = roomOfChannel(channel);
      if (room === null) {
        client.reply("403", channel, "No such channel");
        return;
      }
      const topic = params[1];
      try {
        const reply = await commands.topic.run(chat(client), {
          type: "topic",
          id: client.newId(),
          room,
          ...(topic !== undefined ? { topic } : {}),
        });
        const name = channelOf(reply.room);
        if (topic !== undefined) {
          client.sendLines([
            formatFittedIrcMessage({
              source: userSource(client.nick),
              command: "TOPIC",
              params: [name, oneLine(reply.topic)],
            }),
          ]);
        } else if (reply.topic === "") {
          client.reply("331", name, "No topic is set");
        } else {
          client.reply("332", name, oneLine(reply.topic));
          if (reply.by) client.reply("333", name, reply.by, "0");
        }
      } catch (err) {
        if (err instanceof CommandError && err.code === "bad_text") {
          client.reply("400", "TOPIC", `A topic is at most ${MAX_TOPIC_LENGTH} characters`);
          return;
        }
        const numeric = err instanceof CommandError ? numericOf(err, channel) : null;
        if (numeric === null) throw err;
        client.reply(...numeric);
      }
    },
  },

  MODE: {
    minParams: 1,
    run(client, { params }) {
      const [target, modes] = params;
      if (target.startsWith("#")) {
        if (roomOfChannel(target) === null) client.reply("403", target, "No such channel");
        else if (modes === undefined) client.reply("324", target, "+nt");
        else if (/^[+]?b$/.test(modes)) client.reply("368", target, "End of channel ban list");
        else client.reply("482", target, "Channel modes cannot be changed here");
        return;
      }
      if (target.toLowerCase() !== client.nick.toLowerCase()) {
        client.reply("502", "Can't change mode for other users");
        return;
      }
      if (modes === undefined) client.reply("221", "+");
      else client.reply("501", "User modes cannot be changed here");
    },
  },

  WHO: {
    minParams: 1,
    async run(client, { params }) {
      const mask = params[0];
      // H: here; G: gone (offline, hidden, a block between the two, or away).
      const who = (nick: string, channel: string, online: boolean) =>
        client.reply(
          "352",
          channel,
          nick,
          "chat",
          IRC_SERVER_NAME,
          nick,
          online && client.hub.awayOf(nameKey(nick)) === null ? "H" : "G",
          `0 ${nick}`,
        );
      const room = roomOfChannel(mask);
      try {
        if (room !== null) {
          const reply = await commands.members.run(chat(client), {
            type: "members",
            id: client.newId(),
            room,
          });
          for (const m of reply.members) who(m.nick, channelOf(reply.room), m.online);
        } else if (!mask.startsWith("#")) {
          const account = await client.hub.requireAccount(mask);
          const self = client.session!.account.key;
          who(account.nick, "*", account.key === self || client.hub.isVisible(account.key, self));
        }
      } catch (err) {
        if (!(err instanceof CommandError)) throw err;
      }
      client.reply("315", mask, "End of WHO list");
    },
  },

  WHOIS: {
    minParams: 1,
    async run(client, { params }) {
      const nick = params.at(-1)!;
      try {
        const account = await client.hub.requireAccount(nick);
        client.reply("311", account.nick, account.nick, "chat", "*", account.nick);
        client.reply("312", account.nick, IRC_SERVER_NAME, "chat");
        const away = client.hub.awayOf(account.key, client.session!.account.key);
        if (away !== null) client.reply("301", account.nick, away);
      } catch (err) {
        if (!(err instanceof CommandError)) throw err;
        client.reply("401", nick, "No such nick");
      }
      client.reply("318", nick, "End of /WHOIS list");
    },
  },

  LIST: {
    minParams: 0,
    async run(client) {
      client.reply("321", "Channel", "Users  Name");
      const reply = await commands.rooms.run(chat(client), { type: "rooms", id: client.newId() });
      for (const room of reply.rooms) {
        client.reply("322", channelOf(room.name), String(room.members), oneLine(room.topic));
      }
      client.reply("323", "End of /LIST");
    },
  },

  NAMES: {
    minParams: 0,
    async run(client, { params }) {
      if (params.length === 0) {
        client.reply("366", "*", "End of /NAMES list");
        return;
      }
      for (const channel of params[0].split(",")) {
        const room = roomOfChannel(channel);
        if (room === null) {
          client.reply("366", channel, "End of /NAMES list");
          continue;
        }
        try {
          const reply = await commands.members.run(chat(client), {
            type: "members",
            id: client.newId(),
            room,
          });
          sendNames(client, channelOf(reply.room), reply.members.map((m) => m.nick));
        } catch (err) {
          if (!(err instanceof CommandError)) throw err;
          client.reply("366", channel, "End of /NAMES list");
        }
      }
    },
  },

  AUTHENTICATE: authenticateCommand,
  CHATHISTORY: chathistoryCommand,
  AWAY: {
    minParams: 0,
    toldToOthers: true,
    async run(client, { params }) {
      const text = (params[0] ?? "").trim();
      await client.hub.setAway(client.session!.account, text === "" ? null : text);
      if (text === "") client.reply("305", "You are no longer marked as being away");
      else client.reply("306", "You have been marked as being away");
    },
  },
};
