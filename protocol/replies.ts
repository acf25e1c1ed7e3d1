/**
 * The data of each `ok` reply, by request type, and the server's error codes.
 *
 * An `ok` frame is `{ type: "ok", re: <request id>, ...data }` where `data` has the
 * shape {@linkcode ReplyMap}`[request type]`. Clients use these types to type their
 * requests; the server builds its replies with them.
 *
 * @module
 */

import type { ChatMessage, DirectMessage, RoomMessage } from "./messages.ts";

/** A room in a listing. */
export interface RoomListing {
  /** Display name. */
  name: string;
  /** Member accounts. */
  members: number;
  /** Topic; empty when none. */
  topic: string;
}

/** A nick with its online state (members, contacts). */
export interface NickState {
  /** Display nick. */
  nick: string;
  /** Whether it has a visible session now. */
  online: boolean;
}

/** The data of the `ok` reply to each request type. */
export interface ReplyMap {
  login: {
    nick: string;
    rooms: string[];
    /** Direct messages held while offline; they follow as `dm` events. */
    pending: number;
  };
  logout: Record<never, never>;
  ping: { ts: number };
  join: { room: string; topic: string; members: string[]; history: ChatMessage[] };
  leave: { room: string };
  rooms: { rooms: RoomListing[] };
  members: { room: string; members: NickState[] };
  topic: { room: string; topic: string; by: string };
  say: { msg: RoomMessage; duplicate: boolean };
  dm: { msg: DirectMessage; duplicate: boolean; delivered: boolean };
  broadcast: { reached: number; blocked: number };
  who: { users: string[] };
  whoelse: { users: string[] };
  hide: { hidden: boolean };
  reveal: { hidden: boolean };
  block: { nick: string };
  unblock: { nick: string };
  blocks: { nicks: string[] };
  contact_add: { nick: string };
  contact_remove: { nick: string };
  contacts: { contacts: NickState[] };
  history: { messages: ChatMessage[]; more: boolean };
  sync: { messages: ChatMessage[]; more: boolean };
  read: { count: number };
}

/**
 * Error codes the server sends in `error` frames (besides the `ProtocolError` codes
 * for malformed frames, which are followed by a close).
 */
export type ServerErrorCode =
  | "unknown_command"
  | "bad_message"
  | "bad_name"
  | "bad_text"
  | "bad_password"
  | "wrong_password"
  | "locked"
  | "nick_in_use"
  | "not_logged_in"
  | "already_logged_in"
  | "unknown_user"
  | "unknown_room"
  | "not_member"
  | "self"
  | "blocked"
  | "already_blocked"
  | "not_blocked"
  | "already_contact"
  | "not_contact"
  | "rate_limited"
  | "shutting_down"
  | "internal";

/** Codes of `notice` events that end or change a session. */
export type NoticeCode = "idle_timeout" | "shutdown" | "slow_consumer" | "logged_out" | "info";
