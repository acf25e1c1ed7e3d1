/**
 * The data of each `ok` reply, by request type, and the server's error codes.
 *
 * An `ok` frame is `{ type: "ok", re: <request id>, ...data }` where `data` has the
 * shape {@linkcode ReplyMap}`[request type]`. Clients use these types to type their
 * requests; the server builds its replies with them.
 *
 * @module
 */

import { z } from "zod";
import { serverSchemas } from "./messages.ts";

const roomMessage = serverSchemas.msg;
const directMessage = serverSchemas.dm;
const chatMessage = z.discriminatedUnion("type", [roomMessage, directMessage]);
const text = z.string();
const count = z.number().int().nonnegative();
const nickState = z.looseObject({ nick: text, online: z.boolean() });
const roomListing = z.looseObject({ name: text, members: count, topic: text });
const fileId = z.number().int().positive();
const fileOffer = serverSchemas.file_offer.omit({ type: true });
/**
 * Lists are cut to fit a frame (by their JSON size): `more` says another page follows
 * (ask with `after`), `truncated` that the list was cut and cannot be paged.
 * Optional: older servers do not send them.
 */
const more = z.boolean().optional();
const truncated = z.boolean().optional();

/**
 * The schema of the data of each request type's `ok` reply. Unknown extra fields
 * pass through, so a newer server may add fields without breaking older clients.
 */
export const replySchemas = {
  login: z.looseObject({
    nick: text,
    rooms: z.array(text),
    /**
     * The highest message id stored when the session started: messages above it
     * arrive as events; after a reconnect, `sync` from the last id seen.
     */
    lastId: count,
    /** Direct messages held while offline; they follow as `dm` events. */
    pending: count,
  }),
  logout: z.looseObject({}),
  ping: z.looseObject({ ts: z.number() }),
  join: z.looseObject({
    room: text,
    topic: text,
    members: z.array(text),
    history: z.array(chatMessage),
    truncated,
  }),
  leave: z.looseObject({ room: text }),
  rooms: z.looseObject({ rooms: z.array(roomListing), more }),
  members: z.looseObject({ room: text, members: z.array(nickState), truncated }),
  topic: z.looseObject({ room: text, topic: text, by: text }),
  say: z.looseObject({ msg: roomMessage, duplicate: z.boolean() }),
  dm: z.looseObject({ msg: directMessage, duplicate: z.boolean(), delivered: z.boolean() }),
  broadcast: z.looseObject({ reached: count, blocked: count }),
  who: z.looseObject({ users: z.array(text), more, truncated }),
  whoelse: z.looseObject({ users: z.array(text), more, truncated }),
  hide: z.looseObject({ hidden: z.boolean() }),
  reveal: z.looseObject({ hidden: z.boolean() }),
  block: z.looseObject({ nick: text }),
  unblock: z.looseObject({ nick: text }),
  blocks: z.looseObject({ nicks: z.array(text), truncated }),
  contact_add: z.looseObject({ nick: text }),
  contact_remove: z.looseObject({ nick: text }),
  contacts: z.looseObject({ contacts: z.array(nickState), truncated }),
  history: z.looseObject({ messages: z.array(chatMessage), more: z.boolean() }),
  sync: z.looseObject({ messages: z.array(chatMessage), more: z.boolean() }),
  read: z.looseObject({ count }),
  /** How many of the acknowledged held messages were newly delivered. */
  delivered: z.looseObject({ count }),
  private_start: z.looseObject({ nick: text, sid: text }),
  private_accept: z.looseObject({
    nick: text,
    sid: text,
    /** The requester's address as the server sees it, and its peer listener's port. */
    host: text,
    port: z.number().int().min(1).max(65535),
  }),
  private_decline: z.looseObject({ nick: text }),
  private_stop: z.looseObject({ nick: text }),
  private_relay: z.looseObject({ sid: text }),
  relay: z.looseObject({}),
  file_offer: z.looseObject({
    file: fileId,
    to: text,
    size: count,
    /** Bytes the server holds already: the upload (re)starts there. */
    offset: count,
    /** Whether the recipient is online now (else the file waits for its next login). */
    online: z.boolean(),
    /** When the server drops the file if nobody took it, ms since the epoch. */
    expires: z.number(),
  }),
  /** `offset`: bytes the server holds now; `complete` once all are in and verified. */
  file_chunk: z.looseObject({ file: fileId, offset: count, complete: z.boolean() }),
  file_list: z.looseObject({ files: z.array(fileOffer), more }),
  file_accept: fileOffer.extend({}).loose(),
  file_decline: z.looseObject({ file: fileId }),
  /**
   * `length` bytes from `offset` came before this reply as `file_data` frames: all that
   * was asked for (bytes still being uploaded are sent as they arrive), or fewer when
   * none arrived for a while (0: ask again); `available`: bytes the server holds;
   * `sha256`, once the sender gave it (with its last chunk): a read that reaches the
   * end of the file waits for it a while, and a read at the end (`offset` = size) asks
   * for it alone.
   */
  file_read: z.looseObject({
    file: fileId,
    offset: count,
    length: count,
    available: count,
    sha256: z.string().regex(/^[0-9a-f]{64}$/).optional(),
  }),
  file_done: z.looseObject({ file: fileId }),
  file_cancel: z.looseObject({ file: fileId }),
  /** The token (shown once: the server keeps only its SHA-256) and when it expires (ms). */
  token_issue: z.looseObject({ token: text, expires: z.number() }),
  /** How many tokens were revoked; with `all`, how many other sessions were ended here. */
  token_revoke: z.looseObject({ revoked: count }),
  /** The away message now set ("" when back). */
  away: z.looseObject({ away: text }),
} as const;

/** The data of the `ok` reply to each request type. */
export type ReplyMap = { [K in keyof typeof replySchemas]: z.infer<(typeof replySchemas)[K]> };

/** A room in a listing. */
export type RoomListing = z.infer<typeof roomListing>;

/** A file offered to this account, as `file_list` and `file_accept` describe it. */
export type FileOffer = z.infer<typeof fileOffer>;

/** A nick with its online state (members, contacts). */
export type NickState = z.infer<typeof nickState>;

/** Whether `value` is a safe integer of at least `min`, as `z.number().int().min(min)`. */
function isInt(value: unknown, min: number): value is number {
  return Number.isSafeInteger(value) && (value as number) >= min;
}

/** Whether `data`'s own keys begin with `keys`, in that order, and hold no `__proto__`. */
function keysBegin(data: Record<string, unknown>, keys: readonly string[]): boolean {
  const own = Object.keys(data);
  return keys.every((key, i) => own[i] === key) && !own.includes("__proto__");
}

const FILE_CHUNK_KEYS = ["file", "offset", "complete"] as const;
const FILE_READ_KEYS = ["file", "offset", "length", "available"] as const;
const SHA256_HEX = /^[0-9a-f]{64}$/;

/**
 * Fast checks of the replies a file transfer gets by the hundred (`file_chunk`: one per
 * chunk sent; `file_read`: one per 1 MiB received): exactly what their schemas give (a
 * copy of the data, its keys in the schema's order first), or null to let the schema
 * decide and word the problem (replies_test.ts compares them on every kind of input).
 */
export const fastReplyParsers: Partial<
  Record<keyof ReplyMap, (data: Record<string, unknown>) => object | null>
> = {
  file_chunk: (data) =>
    keysBegin(data, FILE_CHUNK_KEYS) && isInt(data.file, 1) && isInt(data.offset, 0) &&
      typeof data.complete === "boolean"
      ? { ...data }
      : null,
  file_read: (data) => {
    if (
      !keysBegin(data, FILE_READ_KEYS) || !isInt(data.file, 1) || !isInt(data.offset, 0) ||
      !isInt(data.length, 0) || !isInt(data.available, 0)
    ) return null;
    // `sha256`, when there, comes right after the four (the schema's order).
    const own = Object.keys(data);
    const at = own.indexOf("sha256");
    if (at === -1) return { ...data };
    const { sha256 } = data;
    return at === 4 && typeof sha256 === "string" && SHA256_HEX.test(sha256) ? { ...data } : null;
  },
};

/**
 * Validates the data of an `ok` reply to a request of type `type`: the data, or a
 * description of the first problem.
 *
 * @example
 * ```ts
 * import { parseReply } from "./replies.ts";
 * parseReply("ping", { ts: 1 }); // { ok: true, data: { ts: 1 } }
 * ```
 */
export function parseReply<T extends keyof ReplyMap>(
  type: T,
  data: Record<string, unknown>,
): { ok: true; data: ReplyMap[T] } | { ok: false; problem: string } {
  const fast = Object.hasOwn(fastReplyParsers, type) ? fastReplyParsers[type]!(data) : null;
  if (fast !== null) return { ok: true, data: fast as ReplyMap[T] };
  const schema: z.ZodType = replySchemas[type];
  const result = schema.safeParse(data);
  if (result.success) return { ok: true, data: result.data as ReplyMap[T] };
  const issue = result.error.issues[0];
  const where = issue.path.length > 0 ? issue.path.join(".") : "reply";
  return { ok: false, problem: `bad reply to "${type}": ${where}: ${issue.message}` };
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
  | "no_account"
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
  | "too_many_connections"
  | "too_many_sessions"
  | "shutting_down"
  | "internal"
  | "offline"
  | "no_private_request"
  | "no_private"
  | "already_private"
  | "file_too_large"
  | "quota_exceeded"
  | "no_file"
  | "bad_offset"
  | "file_corrupt"
  | "frame_timeout"
  | "storage_full"
  | "id_conflict"
  | "store_unavailable"
  | "bad_token"
  | "file_gone";

/** Codes of `notice` events that end or change a session. */
export type NoticeCode =
  | "idle_timeout"
  | "shutdown"
  | "slow_consumer"
  | "flood"
  | "logged_out"
  | "info"
  | "session_login";
