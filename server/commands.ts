/**
 * The server's command table: one entry per request type, each a handler that
 * returns the data of its `ok` reply (or throws a {@linkcode CommandError}).
 * Handlers never touch sockets: they read and change chat state through the
 * {@linkcode ChatHub} and publish events through its broker.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type {
  ChatMessage,
  ClientRequest,
  ClientRequestType,
  DirectMessage,
  RoomMessage,
} from "../protocol/messages.ts";
import { nameKey, textProblem, topicProblem } from "../protocol/names.ts";
import type { NickState, ReplyMap } from "../protocol/replies.ts";
import { ALL_SUBJECT, roomSubject, userSubject } from "./broker.ts";
import { CommandError } from "./errors.ts";
import { type ChatHub, roomKeyOf, type Session } from "./hub.ts";
import { privateCommands } from "./private.ts";
import { type AppendOptions, type AppendResult, type NewMessage, StoreError } from "./store.ts";
import { fileCommands } from "./files.ts";
import { tokenCommands } from "./session_tokens.ts";
import { fitFirst, fitLast, replyBudget, replyFloor } from "./reply_budget.ts";

const log = getLogger(["chat", "server", "commands"]);

/** What a handler gets besides its request. */
export interface CommandContext {
  /** The chat state. */
  readonly hub: ChatHub;
  /** The requesting session. */
  readonly session: Session;
  /** The request frame's binary body, when the connection passes it (`relay`). */
  readonly body?: Uint8Array;
}

/** The request of a given type. */
export type RequestOf<T extends ClientRequestType> = Extract<ClientRequest, { type: T }>;

/** A command's handler and how the connection treats it. */
export interface CommandSpec<T extends ClientRequestType> {
  /**
   * Handles the request. Everything before its first `await` runs in the order the
   * requests arrived, so handlers that validate from cached state synchronously and
   * then append (say) keep their order while the connection pipelines them.
   */
  run(ctx: CommandContext, request: RequestOf<T>): Promise<ReplyMap[T]>;
  /** Whether later requests may start before this one's reply (no ordering hazard). */
  pipelined?: boolean;
  /**
   * With `pipelined`: at most this many of this type in flight per connection (reading
   * pauses at that many, as for all types together at `MAX_IN_FLIGHT`), for requests
   * that hold much until answered (a file chunk holds its body until it is written).
   */
  maxInFlight?: number;
  /** Whether this command counts as activity for the idle timeout. Default true. */
  activity?: boolean;
  /** Whether the session ends after the reply. */
  endsSession?: boolean;
}

/** The table type: every request type but `login`, which the connection handles. */
export type CommandTable = { [T in Exclude<ClientRequestType, "login">]: CommandSpec<T> };

const DEFAULT_HISTORY = 50;

/** The command table of the chat server. */
export const commands: CommandTable = {
  ping: { run: ({ hub }) => Promise.resolve({ ts: hub.now() }), activity: false, pipelined: true },

  logout: { run: () => Promise.resolve({}), endsSession: true },

  join: {
    async run({ hub, session }, { room: name }) {
      const room = await hub.ensureRoom(name);
      const account = session.account;
      if (await hub.addMember(room, account.key)) {
        // Joining while away: the others are told so with the join (IRC's away-notify).
        const away = hub.awayOf(account.key);
        await hub.broker.publish(roomSubject(room.key), {
          event: {
            type: "member",
            room: room.name,
            nick: account.nick,
            joined: true,
            ...(away !== null ? { away } : {}),
          },
          from: account.key,
          exceptSession: session.id,
        });
      }
      const history = hub.config.historyOnJoin === 0 ? [] : await hub.store.history({
        room: room.key,
        limit: hub.config.historyOnJoin,
        viewer: account.key,
      });
      const names: string[] = [];
      for (const key of room.members) names.push(await hub.displayNick(key));
      names.sort(byName);
      // Half the budget for the members, the rest for the newest history that fits.
      const budget = budgetOf(hub);
      const members = fitFirst(names, Math.floor(budget / 2));
      const fitted = fitLast(history, budget - members.bytes);
      return {
        room: room.name,
        topic: room.topic,
        members: members.items,
        history: fitted.items,
        ...(members.cut ? { truncated: true } : {}),
      };
    },
  },

  leave: {
    async run({ hub, session }, { room: name }) {
      const room = await hub.requireRoom(name);
      const account = session.account;
      if (!room.members.has(account.key)) {
        throw new CommandError("not_member", `you are not in ${room.name}`);
      }
      await hub.removeMember(room, account.key);
      const event = { type: "member", room: room.name, nick: account.nick, joined: false } as const;
      await hub.broker.publish(roomSubject(room.key), { event, from: account.key });
      await hub.broker.publish(userSubject(account.key), { event, exceptSession: session.id });
      return { room: room.name };
    },
  },

  rooms: {
    // Paged by name (the store lists rooms in key order): `after` is the previous page's last.
    async run({ hub }, { after }) {
      const from = after === undefined ? undefined : nameKey(after.replace(/^#/, ""));
      const rooms = (await hub.store.listRooms())
        .filter((r) => from === undefined || r.key > from)
        .map((r) => ({ name: r.name, members: r.members, topic: r.topic }));
      const page = fitFirst(rooms, budgetOf(hub), floorOf(hub));
      return { rooms: page.items, more: page.cut };
    },
  },

  members: {
    async run({ hub, session }, { room: name }) {
      const room = await hub.requireRoom(name);
      const self = session.account.key;
      const members: NickState[] = [];
      for (const key of room.members) {
        const online = key === self || hub.isVisible(key, self);
        members.push({ nick: await hub.displayNick(key), online });
      }
      members.sort((a, b) => byName(a.nick, b.nick));
      return { room: room.name, ...fitList("members", members, hub) };
    },
  },

  topic: {
    async run({ hub, session }, { room: name, topic }) {
      const room = await hub.requireRoom(name);
      if (topic === undefined) return { room: room.name, topic: room.topic, by: room.topicBy };
      const account = session.account;
      if (!room.members.has(account.key)) {
        throw new CommandError("not_member", `only members of ${room.name} can set its topic`);
      }
      const problem = topicProblem(topic);
      if (problem !== null) throw new CommandError("bad_text", problem);
      await hub.setTopic(room, topic, account.nick);
      await hub.broker.publish(roomSubject(room.key), {
        event: { type: "topic", room: room.name, topic, by: account.nick, ts: hub.now() },
        exceptSession: session.id,
      });
      return { room: room.name, topic, by: account.nick };
    },
  },

  say: {
    pipelined: true,
    // Synchronous up to the append, so pipelined says keep their order. Not an async
    // function: a say waiting for its commit holds its RoomSay and one reaction.
    run({ hub, session }, { id, room: name, text }) {
      const key = roomKeyOf(name);
      const account = session.account;
      const room = hub.cachedRoom(key);
      if (room === undefined || !room.members.has(account.key)) {
        return Promise.reject(
          new CommandError("not_member", `you are not in ${name}: /join it first`),
        );
      }
      const problem = textProblem(text);
      if (problem !== null) return Promise.reject(new CommandError("bad_text", problem));
      const say = new RoomSay(hub, session, key);
      return appendMessage(hub, {
        fromKey: account.key,
        from: account.nick,
        room: key,
        text,
        ts: hub.now(),
        clientId: id,
      }, say).then((result) => say.reply(result), conflictToCommandError);
    },
  },

  dm: {
    pipelined: true,
    async run({ hub, session }, { id, to, text }) {
      const account = session.account;
      const problem = textProblem(text);
      if (problem !== null) throw new CommandError("bad_text", problem);
      const target = await hub.requireAccount(to);
      if (target.key === account.key) {
        throw new CommandError("self", "you cannot send a direct message to yourself");
      }
      if ((await hub.blocksOf(target.key)).has(account.key)) {
        throw new CommandError(
          "blocked",
          "your message could not be delivered as the recipient has blocked you",
        );
      }
      // Tracked until published: a login meanwhile must not send it twice (see hub.ts).
      return await hub.sendDirect(target.key, async () => {
        // The recipient hears it once committed; its sender once it is durable.
        let published: Promise<number> | undefined;
        const { message, duplicate } = await appendMessage(hub, {
          fromKey: account.key,
          from: account.nick,
          toKey: target.key,
          to: target.nick,
          text,
          ts: hub.now(),
          clientId: id,
        }, {
          onCommitted(committed) {
            if (committed.duplicate || committed.message.type !== "dm") return;
            published = publishDirect(hub, committed.message, target.key, session);
          },
        }).catch(conflictToCommandError);
        if (message.type !== "dm") {
          throw new Error("store returned a room message for a direct one");
        }
        if (duplicate) return { msg: message, duplicate, delivered: false };
        const reached = await (published ?? publishDirect(hub, message, target.key, session));
        const delivered = reached > 0 || hub.presence.isOnlineElsewhere(target.key);
        if (delivered) {
          hub.store.markDelivered([message.id]).catch((err) =>
            log.error("marking message {id} delivered failed: {err}", { id: message.id, err })
          );
        }
        return { msg: message, duplicate, delivered };
      });
    },
  },

  broadcast: {
    pipelined: true,
    async run({ hub, session }, { text }) {
      const problem = textProblem(text);
      if (problem !== null) throw new CommandError("bad_text", problem);
      const account = session.account;
      let reached = 0;
      let blocked = 0;
      for (const other of hub.presence.entries()) {
        if (other.key === account.key) continue;
        if (other.blocks.has(account.key)) blocked++;
        else reached++;
      }
      await hub.broker.publish(ALL_SUBJECT, {
        event: { type: "broadcast", ts: hub.now(), from: account.nick, text },
        from: account.key,
        except: new Set([account.key]),
      });
      return { reached, blocked };
    },
  },

  who: {
    // Paged by nick: `after` is the previous page's last.
    run({ hub, session }, { after }) {
      const self = session.account.key;
      const users: string[] = [];
      for (const account of hub.presence.entries()) {
        if (after !== undefined && byName(account.nick, after) <= 0) continue;
        if (account.key === self || hub.isVisible(account.key, self)) users.push(account.nick);
      }
      return Promise.resolve(fitPage(users.sort(byName), hub));
    },
  },

  whoelse: {
    async run({ hub, session }, { since, after }) {
      const self = session.account.key;
      const keys = new Set<string>();
      for (const account of hub.presence.entries()) {
        if (hub.isVisible(account.key, self)) keys.add(account.key);
      }
      if (since !== undefined) {
        for (const key of await hub.store.onlineSince(hub.now() - since * 1000)) {
          if (!keys.has(key) && key !== self && await hub.mayList(key, self)) keys.add(key);
        }
      }
      keys.delete(self);
      const users: string[] = [];
      for (const key of keys) {
        const nick = await hub.displayNick(key);
        if (after === undefined || byName(nick, after) > 0) users.push(nick);
      }
      return fitPage(users.sort(byName), hub);
    },
  },

  hide: {
    async run({ hub, session }) {
      await hub.setHidden(session.account, true);
      return { hidden: true };
    },
  },

  reveal: {
    async run({ hub, session }) {
      await hub.setHidden(session.account, false);
      return { hidden: false };
    },
  },

  block: {
    async run({ hub, session }, { nick }) {
      const target = await requireOther(hub, session, nick, "block");
      if (!await hub.block(session.account, target.key)) {
        throw new CommandError("already_blocked", `${target.nick} is already blocked`);
      }
      return { nick: target.nick };
    },
  },

  unblock: {
    async run({ hub, session }, { nick }) {
      const target = await requireOther(hub, session, nick, "unblock");
      if (!await hub.unblock(session.account, target.key)) {
        throw new CommandError("not_blocked", `${target.nick} is not blocked`);
      }
      return { nick: target.nick };
    },
  },

  blocks: {
    async run({ hub, session }) {
      const nicks: string[] = [];
      for (const key of session.account.blocks) nicks.push(await hub.displayNick(key));
      return fitList("nicks", nicks.sort(byName), hub);
    },
  },

  contact_add: {
    async run({ hub, session }, { nick }) {
      const target = await requireOther(hub, session, nick, "add as a contact");
      if (!await hub.store.addContact(session.account.key, target.key)) {
        throw new CommandError("already_contact", `${target.nick} is already a contact`);
      }
      return { nick: target.nick };
    },
  },

  contact_remove: {
    async run({ hub, session }, { nick }) {
      const target = await requireOther(hub, session, nick, "remove as a contact");
      if (!await hub.store.removeContact(session.account.key, target.key)) {
        throw new CommandError("not_contact", `${target.nick} is not a contact`);
      }
      return { nick: target.nick };
    },
  },

  contacts: {
    async run({ hub, session }) {
      const self = session.account.key;
      const contacts: NickState[] = [];
      for (const key of await hub.store.contactsOf(self)) {
        contacts.push({ nick: await hub.displayNick(key), online: hub.isVisible(key, self) });
      }
      contacts.sort((a, b) => byName(a.nick, b.nick));
      return fitList("contacts", contacts, hub);
    },
  },

  history: {
    async run({ hub, session }, { room: name, with: nick, before, limit }) {
      if ((name === undefined) === (nick === undefined)) {
        throw new CommandError("bad_message", 'history needs exactly one of "room" or "with"');
      }
      const want = limit ?? DEFAULT_HISTORY;
      const self = session.account.key;
      let messages: ChatMessage[];
      if (name !== undefined) {
        const room = await hub.requireRoom(name);
        if (!room.members.has(self)) {
          throw new CommandError("not_member", `join ${room.name} to read its history`);
        }
        messages = await hub.store.history({
          room: room.key,
          before,
          limit: want + 1,
          viewer: self,
        });
      } else {
        const other = await hub.requireAccount(nick!);
        messages = await hub.store.history({ between: [self, other.key], before, limit: want + 1 });
      }
      const more = messages.length > want;
      if (more) messages = messages.slice(1);
      const fitted = fitLast(messages, budgetOf(hub), floorOf(hub));
      return { messages: fitted.items, more: more || fitted.cut };
    },
  },

  sync: {
    async run({ hub, session }, { after, limit }) {
      const want = limit ?? 500;
      let messages = await hub.store.messagesAfter(session.account.key, after, want + 1);
      const more = messages.length > want;
      if (more) messages = messages.slice(0, want);
      const fitted = fitFirst(messages, budgetOf(hub), floorOf(hub));
      return { messages: fitted.items, more: more || fitted.cut };
    },
  },

  read: {
    pipelined: true,
    // Receipts tell the sender the reader is online: none while hidden (nor later, at
    // `reveal`), none to those the reader blocks, none to those who block the reader.
    async run({ hub, session }, { ids }) {
      const account = session.account;
      const newlyRead = await hub.store.markRead(account.key, ids);
      const ts = hub.now();
      for (const message of account.hidden ? [] : newlyRead) {
        const sender = nameKey(message.from);
        if (account.blocks.has(sender)) continue;
        await hub.broker.publish(userSubject(sender), {
          event: { type: "receipt", id: message.id, status: "read", by: account.nick, ts },
          from: account.key,
        });
      }
      return { count: newlyRead.length };
    },
  },

  delivered: {
    pipelined: true,
    // Sent by the client library on its own, not by its user.
    activity: false,
    async run({ hub, session }, { ids }) {
      return { count: await hub.acknowledgeHeld(session, ids) };
    },
  },

  // Private sessions: see server/private.ts.
  private_start: privateCommands.private_start,
  private_accept: privateCommands.private_accept,
  private_decline: privateCommands.private_decline,
  private_stop: privateCommands.private_stop,
  private_relay: privateCommands.private_relay,
  relay: privateCommands.relay,

  // File transfers: see server/files.ts.
  file_offer: fileCommands.file_offer,
  file_chunk: fileCommands.file_chunk,
  file_list: fileCommands.file_list,
  file_accept: fileCommands.file_accept,
  file_decline: fileCommands.file_decline,
  file_read: fileCommands.file_read,
  file_done: fileCommands.file_done,
  file_cancel: fileCommands.file_cancel,

  // Session tokens ("remember me"): see server/session_tokens.ts.
  token_issue: tokenCommands.token_issue,
  token_revoke: tokenCommands.token_revoke,
  away: {
    async run({ hub, session }, { text }) {
      const trimmed = text?.trim() ?? "";
      await hub.setAway(session.account, trimmed === "" ? null : trimmed);
      return { away: session.account.away ?? "" };
    },
  },
};

/**
 * Stores a `say` or `dm`: a resend with the same id gets the stored message back. The
 * store's `conflict` (the request id used for another message) is for the caller to
 * turn into `id_conflict` ({@linkcode conflictToCommandError}), in the reaction it adds
 * anyway.
 */
function appendMessage(
  hub: ChatHub,
  message: NewMessage,
  options: AppendOptions,
): Promise<AppendResult> {
  // Not an async function: one per message sent, and its suspended frame is garbage the
  // moment it resumes.
  try {
    return hub.store.appendMessage(message, options);
  } catch (err) {
    return Promise.reject(err);
  }
}

/**
 * One `say` from its append to its reply: the store tells it of the commit (as a method
 * of the append's options, see {@linkcode AppendOptions}), it publishes to the room
 * then, and its reply waits for that publication. One object per message, no closures.
 */
class RoomSay implements AppendOptions {
  readonly #hub: ChatHub;
  readonly #session: Session;
  readonly #key: string;
  #published: Promise<unknown> | undefined = undefined;

  constructor(hub: ChatHub, session: Session, key: string) {
    this.#hub = hub;
    this.#session = session;
    this.#key = key;
  }

  /** The room hears it once committed; its sender once it is durable ({@linkcode reply}). */
  onCommitted(committed: AppendResult): void {
    if (!committed.duplicate && committed.message.type === "msg") {
      this.#published = this.#publish(committed.message);
    }
  }

  /** The reply, once the append is durable and its publication done. */
  reply({ message, duplicate }: AppendResult): SayReply | Promise<SayReply> {
    if (message.type !== "msg") throw new Error("store returned a direct message for a room");
    if (duplicate) return { msg: message, duplicate };
    // A store that did not tell the commit (a wrapper that dropped the option): now.
    return (this.#published ?? this.#publish(message)).then(() => ({ msg: message, duplicate }));
  }

  #publish(event: RoomMessage): Promise<number> {
    const session = this.#session;
    return this.#hub.broker.publish(roomSubject(this.#key), {
      event,
      from: session.account.key,
      exceptSession: session.id,
    });
  }
}

/** The data of a `say`'s reply. */
type SayReply = ReplyMap["say"];

/** A store's `conflict` as the command's `id_conflict`; any other error as it is. */
function conflictToCommandError(err: unknown): never {
  if (err instanceof StoreError && err.code === "conflict") {
    throw new CommandError("id_conflict", err.message);
  }
  throw err;
}

/**
 * Publishes a direct message to its recipient and to its sender's other sessions;
 * resolves with the recipient's sessions reached on this node (the broker counts this
 * node's receivers only).
 */
async function publishDirect(
  hub: ChatHub,
  message: DirectMessage,
  toKey: string,
  from: Session,
): Promise<number> {
  const reached = await hub.broker.publish(userSubject(toKey), { event: message });
  await hub.broker.publish(userSubject(from.account.key), {
    event: message,
    exceptSession: from.id,
  });
  return reached;
}

async function requireOther(
  hub: ChatHub,
  session: Session,
  nick: string,
  verb: string,
): Promise<{ key: string; nick: string }> {
  const target = await hub.requireAccount(nick);
  if (target.key === session.account.key) {
    throw new CommandError("self", `you cannot ${verb} yourself`);
  }
  return target;
}

function byName(a: string, b: string): number {
  const x = a.toLowerCase();
  const y = b.toLowerCase();
  return x < y ? -1 : x > y ? 1 : 0;
}

/** Bytes the lists of one reply may take (see server/reply_budget.ts). */
function budgetOf(hub: ChatHub): number {
  return replyBudget(hub.config.maxFrameSize);
}

/** Bytes one item of a page may take alone (see server/reply_budget.ts). */
function floorOf(hub: ChatHub): number {
  return replyFloor(hub.config.maxFrameSize);
}

/**
 * A page of nicks (sorted) cut to the reply budget: `more` (and `truncated`, for clients
 * that do not page) when some were left for the next page.
 */
function fitPage(
  users: string[],
  hub: ChatHub,
): { users: string[]; more: boolean; truncated?: boolean } {
  const page = fitFirst(users, budgetOf(hub), floorOf(hub));
  return page.cut
    ? { users: page.items, more: true, truncated: true }
    : { users: page.items, more: false };
}

/** `{[field]: items}` cut to the reply budget, with `truncated` when something was left out. */
function fitList<K extends string, T>(
  field: K,
  items: T[],
  hub: ChatHub,
): { [F in K]: T[] } & { truncated?: boolean } {
  const fitted = fitFirst(items, budgetOf(hub));
  const out = { [field]: fitted.items } as { [F in K]: T[] } & { truncated?: boolean };
  if (fitted.cut) out.truncated = true;
  return out;
}
