/**
 * Message types of the chat protocol and their runtime validation.
 *
 * Every frame header is a JSON object with a string `type`. Client requests carry
 * an `id` chosen by the client (unique per account; it doubles as the client message
 * id that makes resends idempotent) and get exactly one reply: `ok` or `error`,
 * both naming the request in `re`. Everything else the server sends is an event.
 *
 * Validation here is structural only (types, shapes, sizes). Semantic rules (nick
 * syntax, text length, permissions) belong to whoever handles the message, so that
 * they are refused with a reason while the connection stays open.
 *
 * @module
 */

import {
  fileBytesSchema as fileBytes,
  isFileBytes,
  isSha256Hex,
  sha256HexSchema as sha256Hex,
} from "./field_checks.ts";
import { z } from "zod";
import { ProtocolError } from "./errors.ts";
import { LARGE_FILE_CHUNK_BYTES, MIN_FILE_DATA_FRAME_BYTES } from "./file_chunks.ts";
import { MAX_OFFERED_NAME_LENGTH } from "./file_names.ts";
import { MAX_AWAY_LENGTH } from "./names.ts";

/** The protocol version this code speaks. */
export const PROTOCOL_VERSION = 1;

/** Longest request id. */
const REQUEST_ID_MAX = 64;
/** Longest short text (names, rooms, nicks as sent). */
const SHORT_TEXT_MAX = 256;
const requestId = z.string().min(1).max(REQUEST_ID_MAX);
const shortText = z.string().max(SHORT_TEXT_MAX);
const anyText = z.string();
const messageId = z.number().int().nonnegative();
const seconds = z.number().nonnegative().max(1e9);

/** A private session's id: 16 to 64 base64url characters, chosen by the requester. */
const privateSid = z.string().regex(/^[A-Za-z0-9_-]{16,64}$/, "expected a base64url session id");

/** A session token as the server issues it (`token_issue`): base64url. */
const sessionToken = z.string().min(1).max(128);

/** A file transfer's id, given by the server (shown to people as `#12`). */
const fileId = z.number().int().positive().max(Number.MAX_SAFE_INTEGER);
/** A file name as offered (unsafe: receivers make it safe with `safeFileName`). */
const offeredName = z.string().min(1).max(MAX_OFFERED_NAME_LENGTH);
/** Most bytes one `file_read` may ask for. */
export const MAX_FILE_READ_BYTES: number = 4 * 1024 * 1024;
export {
  LARGE_CHUNKS_FEATURE,
  LARGE_FILE_CHUNK_BYTES,
  MAX_FILE_FRAME_BYTES,
} from "./file_chunks.ts";

function request<T extends string, S extends z.ZodRawShape>(type: T, shape: S) {
  return z.object({ type: z.literal(type), id: requestId, ...shape });
}

/** Schemas of every message a client sends, keyed by `type`. */
export const clientSchemas = {
  hello: z.object({
    type: z.literal("hello"),
    v: z.number().int(),
    features: z.array(shortText).max(64),
    agent: shortText.optional(),
  }),
  login: request("login", {
    nick: shortText,
    password: z.string().max(1024).optional(),
    /**
     * The client acknowledges the held direct messages it receives (`held: true`) with
     * `delivered`: they count as delivered only then, not once written to it.
     */
    ack: z.boolean().optional(),
    /**
     * `false`: log in to an existing account only; an unknown nick is refused with
     * `no_account` instead of being registered (a client that asks its user first).
     */
    register: z.boolean().optional(),
    /**
     * A session token from `token_issue`, instead of the password: logs in to that
     * token's account (never registers). A wrong, expired or revoked one is `bad_token`,
     * counted against the lockout like a wrong password.
     */
    token: sessionToken.optional(),
  }),
  logout: request("logout", {}),
  ping: request("ping", {}),
  join: request("join", { room: shortText }),
  leave: request("leave", { room: shortText }),
  /** `after`: the name of the last room of the previous page (`more` in the reply). */
  rooms: request("rooms", { after: shortText.optional() }),
  members: request("members", { room: shortText }),
  topic: request("topic", { room: shortText, topic: z.string().max(1024).optional() }),
  say: request("say", { room: shortText, text: anyText }),
  dm: request("dm", { to: shortText, text: anyText }),
  broadcast: request("broadcast", { text: anyText }),
  /** `after`: the last nick of the previous page (`more` in the reply). */
  who: request("who", { after: shortText.optional() }),
  /** `after`: the last nick of the previous page (`more` in the reply). */
  whoelse: request("whoelse", { since: seconds.optional(), after: shortText.optional() }),
  hide: request("hide", {}),
  reveal: request("reveal", {}),
  block: request("block", { nick: shortText }),
  unblock: request("unblock", { nick: shortText }),
  blocks: request("blocks", {}),
  contact_add: request("contact_add", { nick: shortText }),
  contact_remove: request("contact_remove", { nick: shortText }),
  contacts: request("contacts", {}),
  history: request("history", {
    room: shortText.optional(),
    with: shortText.optional(),
    before: messageId.optional(),
    limit: z.number().int().min(1).max(500).optional(),
  }),
  sync: request("sync", { after: messageId, limit: z.number().int().min(1).max(500).optional() }),
  read: request("read", { ids: z.array(messageId).min(1).max(1000) }),
  /** Acknowledges held direct messages received (after a login with `ack: true`). */
  delivered: request("delivered", { ids: z.array(messageId).min(1).max(1000) }),
  // Private sessions (server/private.ts): the server introduces two clients, who then
  // talk directly (or relay records it cannot read through it).
  private_start: request("private_start", {
    nick: shortText,
    sid: privateSid,
    port: z.number().int().min(1).max(65535),
  }),
  private_accept: request("private_accept", { nick: shortText }),
  private_decline: request("private_decline", { nick: shortText }),
  private_stop: request("private_stop", { nick: shortText }),
  private_relay: request("private_relay", { sid: privateSid }),
  /** Carries opaque bytes (encrypted records) in the frame body to the other side. */
  relay: request("relay", { sid: privateSid }),
  // File transfers through the server (server/files.ts): offered, uploaded in chunks
  // carried in frame bodies, held, then read by the recipient once accepted.
  /**
   * Offers a file to `to`; offering the same file again resumes its upload. `key` names
   * the file for a resume (`FileSource.resumeKey`): the sender hashes while it sends and
   * gives the SHA-256 with the last chunk. An offer may carry the `sha256` instead
   * (older clients: then it is the key too); one of them is required. `file`: the id
   * of the upload this offer resumes (a client offering again after a refusal or a
   * dropped connection): if that file ended meanwhile, the offer learns it (answered
   * complete, or refused `file_gone`) instead of making a new file.
   */
  file_offer: request("file_offer", {
    to: shortText,
    name: offeredName,
    size: fileBytes,
    key: sha256Hex.optional(),
    sha256: sha256Hex.optional(),
    file: fileId.optional(),
  }),
  /**
   * Bytes of an offered file at `offset`, in the frame body; the chunk that completes
   * the upload carries the file's `sha256` (unless the offer did).
   */
  file_chunk: request("file_chunk", {
    file: fileId,
    offset: fileBytes,
    sha256: sha256Hex.optional(),
  }),
  /**
   * The files offered to this account and not yet received; `after`: the last file id
   * of the previous page (`more` in the reply).
   */
  file_list: request("file_list", { after: fileId.optional() }),
  file_accept: request("file_accept", { file: fileId }),
  file_decline: request("file_decline", { file: fileId }),
  /**
   * Asks for up to `length` bytes from `offset`: `file_data` frames, then the reply.
   * `frame`: the largest `file_data` body the reader takes, from
   * {@linkcode MIN_FILE_DATA_FRAME_BYTES} to {@linkcode LARGE_FILE_CHUNK_BYTES} (default
   * {@linkcode MAX_FILE_FRAME_BYTES}): with
   * large ones, half as many frames per file, each costing both sides its header, its
   * dispatch and, at the recipient, a write and a hash call.
   */
  file_read: request("file_read", {
    file: fileId,
    offset: fileBytes,
    length: z.number().int().min(1).max(MAX_FILE_READ_BYTES),
    frame: z.number().int().min(MIN_FILE_DATA_FRAME_BYTES).max(LARGE_FILE_CHUNK_BYTES).optional(),
  }),
  /** The recipient has the whole file, its SHA-256 checked: the server lets it go. */
  file_done: request("file_done", { file: fileId }),
  /**
   * Withdraws an offer (sender) or gives up a transfer (recipient); a recipient whose
   * copy does not match the offer's SHA-256 gives `reason: "corrupt"` (the server does
   * not hash the bytes: integrity is checked end to end).
   */
  file_cancel: request("file_cancel", { file: fileId, reason: z.enum(["corrupt"]).optional() }),
  // Session tokens ("remember me"): a login without the password, revocable.
  /**
   * Issues a session token for this account, to log in with instead of the password;
   * `ttl`: seconds it works (at most the server's `--token-ttl`, its default).
   */
  token_issue: request("token_issue", {
    ttl: z.number().int().positive().max(1e9).optional(),
  }),
  /**
   * Revokes one of this account's tokens (`token`), or all of them (`all: true`, "log
   * out everywhere": the account's other sessions end too, on every node).
   */
  token_revoke: request("token_revoke", {
    token: sessionToken.optional(),
    all: z.boolean().optional(),
  }),
  /**
   * Sets the account's away status to `text` (cut to 300 characters), or clears it when
   * `text` is absent or blank: others are told by `presence` events with `away`.
   */
  away: request("away", { text: z.string().max(1024).optional() }),
} as const;

const storedMessage = {
  id: messageId,
  ts: z.number(),
  from: shortText,
  text: anyText,
};

/** Schemas of every message a server sends, keyed by `type`. */
export const serverSchemas = {
  hello: z.object({
    type: z.literal("hello"),
    v: z.number().int(),
    features: z.array(shortText),
    server: shortText,
    maxFrame: z.number().int().positive(),
    /**
     * The server's bound on bytes queued per connection (`--max-queue`): a WebSocket
     * client's unread requests past it close the socket (a WebSocket cannot hold the
     * sender back as TCP does), so the browser client keeps its file chunks in flight
     * under it. Absent from older servers.
     */
    maxQueue: z.number().int().positive().optional(),
  }),
  ok: z.looseObject({ type: z.literal("ok"), re: requestId }),
  error: z.object({
    type: z.literal("error"),
    re: requestId.optional(),
    code: shortText,
    message: anyText,
    retryAfter: z.number().nonnegative().optional(),
  }),
  msg: z.object({ type: z.literal("msg"), room: shortText, ...storedMessage }),
  dm: z.object({
    type: z.literal("dm"),
    to: shortText,
    ...storedMessage,
    /** Set on a direct message held while its recipient was offline, sent after the login. */
    held: z.literal(true).optional(),
  }),
  broadcast: z.object({
    type: z.literal("broadcast"),
    ts: z.number(),
    from: shortText,
    text: anyText,
  }),
  presence: z.object({
    type: z.literal("presence"),
    nick: shortText,
    online: z.boolean(),
    ts: z.number(),
    /**
     * Set on a change of away status (the account stays online): its away message, or ""
     * when it is back. Clients that do not know it see an online account still online.
     */
    away: z.string().max(MAX_AWAY_LENGTH).optional(),
  }),
  member: z.object({
    type: z.literal("member"),
    room: shortText,
    nick: shortText,
    joined: z.boolean(),
    /** On a join: the account's away message, when it joined while away. */
    away: z.string().max(MAX_AWAY_LENGTH).optional(),
  }),
  topic: z.object({
    type: z.literal("topic"),
    room: shortText,
    topic: anyText,
    by: shortText,
    ts: z.number(),
  }),
  receipt: z.object({
    type: z.literal("receipt"),
    id: messageId,
    status: z.enum(["delivered", "read"]),
    by: shortText,
    ts: z.number(),
  }),
  contact: z.object({ type: z.literal("contact"), nick: shortText, online: z.boolean() }),
  notice: z.object({ type: z.literal("notice"), code: shortText, text: anyText }),
  /** `from` asks for a private session; answer with `private_accept` or `private_decline`. */
  private_request: z.object({
    type: z.literal("private_request"),
    sid: privateSid,
    from: shortText,
  }),
  /** `nick` accepted: it dials this side's peer listener from `host`. */
  private_ready: z.object({
    type: z.literal("private_ready"),
    sid: privateSid,
    nick: shortText,
    host: shortText,
  }),
  /** `nick` could not connect directly: the session's records go through `relay`. */
  private_relay: z.object({ type: z.literal("private_relay"), sid: privateSid, nick: shortText }),
  /** The private session with `nick` ended or was refused (`declined`, `stopped`, `offline`). */
  private_ended: z.object({
    type: z.literal("private_ended"),
    sid: privateSid,
    nick: shortText,
    reason: shortText,
  }),
  /** Relayed bytes of a private session, in the frame body. */
  relay: z.object({ type: z.literal("relay"), sid: privateSid }),
  /**
   * `from` offers a file; answer with `file_accept` or `file_decline`. `key` names it
   * for a resume (the `.part` file); `sha256` is there once known (the offer carried
   * it, or the upload is complete): else the `file_read` that reaches the end brings it.
   */
  file_offer: z.object({
    type: z.literal("file_offer"),
    file: fileId,
    from: shortText,
    to: shortText,
    name: offeredName,
    size: fileBytes,
    key: sha256Hex,
    sha256: sha256Hex.optional(),
    ts: z.number(),
  }),
  /** To the sender: `by` accepted the file and is receiving it. */
  file_accepted: z.object({
    type: z.literal("file_accepted"),
    file: fileId,
    by: shortText,
    name: offeredName,
  }),
  /** To the sender: `by` declined the file; the server dropped it. */
  file_declined: z.object({
    type: z.literal("file_declined"),
    file: fileId,
    by: shortText,
    name: offeredName,
  }),
  /** To the sender: `by` received the whole file and checked its SHA-256. */
  file_completed: z.object({
    type: z.literal("file_completed"),
    file: fileId,
    by: shortText,
    name: offeredName,
  }),
  /** The transfer ended without completing (`cancelled`, `expired`, `corrupt`). */
  file_cancelled: z.object({
    type: z.literal("file_cancelled"),
    file: fileId,
    by: shortText,
    name: offeredName,
    reason: shortText,
  }),
  /** Bytes of a file at `offset`, in the frame body (answering a `file_read`). */
  file_data: z.object({ type: z.literal("file_data"), file: fileId, offset: fileBytes }),
} as const;

type Schemas<T> = { [K in keyof T]: T[K] extends z.ZodType ? z.infer<T[K]> : never };

/** Every client message, keyed by type. */
export type ClientMessageMap = Schemas<typeof clientSchemas>;
/** Every server message, keyed by type. */
export type ServerMessageMap = Schemas<typeof serverSchemas>;
/** A message a client sends. */
export type ClientMessage = ClientMessageMap[keyof ClientMessageMap];
/** A message a server sends. */
export type ServerMessage = ServerMessageMap[keyof ServerMessageMap];
/** A client message type name. */
export type ClientMessageType = keyof ClientMessageMap;
/** A client request: every client message but `hello` (which carries no id). */
export type ClientRequest = Exclude<ClientMessage, { type: "hello" }>;
/** A request type name. */
export type ClientRequestType = ClientRequest["type"];
/** A room message as stored and delivered. */
export type RoomMessage = ServerMessageMap["msg"];
/** A direct message as stored and delivered. */
export type DirectMessage = ServerMessageMap["dm"];
/** A stored message of either kind. */
export type ChatMessage = RoomMessage | DirectMessage;
/** An error reply or error event. */
export type ErrorMessage = ServerMessageMap["error"];

/**
 * A check of one message type that gives exactly what its schema's parse gives (a new
 * object with the schema's keys, in its order; other keys dropped), or null to let the
 * schema decide (and word the error). For the messages a busy server parses by the
 * hundred thousand a second: the schema's parse costs several objects per message.
 */
type FastParser = (header: Record<string, unknown>) => object | null;

/** Whether `value` is a string of `min` to `max` UTF-16 units, as `z.string().min().max()`. */
function isText(value: unknown, min: number, max: number): value is string {
  return typeof value === "string" && value.length >= min && value.length <= max;
}

/** Whether `value` is a file id as `fileId` takes it: a safe integer above 0. */
function isFileId(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) > 0;
}

/**
 * Fast checks of the hot client messages (`say`, `dm`; a file's `file_chunk` and
 * `file_read`, one per 128 KiB and per 1 MiB of it), equal to their schemas
 * (messages_test.ts compares them on every kind of input).
 */
export const fastClientParsers: Record<string, FastParser> = {
  say: ({ id, room, text }) =>
    isText(id, 1, REQUEST_ID_MAX) && isText(room, 0, SHORT_TEXT_MAX) && typeof text === "string"
      ? { type: "say", id, room, text }
      : null,
  dm: ({ id, to, text }) =>
    isText(id, 1, REQUEST_ID_MAX) && isText(to, 0, SHORT_TEXT_MAX) && typeof text === "string"
      ? { type: "dm", id, to, text }
      : null,
  file_chunk: (header) => {
    const { id, file, offset, sha256 } = header;
    if (!isText(id, 1, REQUEST_ID_MAX) || !isFileId(file) || !isFileBytes(offset)) return null;
    if (!Object.hasOwn(header, "sha256")) return { type: "file_chunk", id, file, offset };
    return isSha256Hex(sha256) ? { type: "file_chunk", id, file, offset, sha256 } : null;
  },
  file_read: (header) => {
    const { id, file, offset, length, frame } = header;
    if (
      !isText(id, 1, REQUEST_ID_MAX) || !isFileId(file) || !isFileBytes(offset) ||
      !Number.isSafeInteger(length) || (length as number) < 1 ||
      (length as number) > MAX_FILE_READ_BYTES
    ) {
      return null;
    }
    if (!Object.hasOwn(header, "frame")) return { type: "file_read", id, file, offset, length };
    return Number.isSafeInteger(frame) && (frame as number) >= MIN_FILE_DATA_FRAME_BYTES &&
        (frame as number) <= LARGE_FILE_CHUNK_BYTES
      ? { type: "file_read", id, file, offset, length, frame }
      : null;
  },
};

/**
 * Fast checks of the hot server messages (`file_data`: one per 128 KiB of a file
 * received; `ok`: one per chunk sent), equal to their schemas (messages_test.ts compares
 * them).
 */
export const fastServerParsers: Record<string, FastParser> = {
  // A loose object: its own keys kept, `type` and `re` first (else the schema orders them).
  ok: (header) => {
    const keys = Object.keys(header);
    return keys[0] === "type" && keys[1] === "re" && isText(header.re, 1, REQUEST_ID_MAX) &&
        !keys.includes("__proto__")
      ? { ...header }
      : null;
  },
  file_data: ({ file, offset }) =>
    isFileId(file) && isFileBytes(offset) ? { type: "file_data", file, offset } : null,
};

function makeParser<M>(
  schemas: Record<string, z.ZodType>,
  side: string,
  fast: Record<string, FastParser> = {},
) {
  return (header: Record<string, unknown>): M => {
    const type = header.type;
    if (typeof type !== "string") {
      throw new ProtocolError("bad_message", `${side} message has no string "type"`);
    }
    const parsed = Object.hasOwn(fast, type) ? fast[type](header) : null;
    if (parsed !== null) return parsed as M;
    const schema = Object.hasOwn(schemas, type) ? schemas[type] : undefined;
    if (schema === undefined) {
      throw new ProtocolError("unknown_type", `unknown ${side} message type "${clip(type)}"`);
    }
    const result = schema.safeParse(header);
    if (!result.success) {
      const issue = result.error.issues[0];
      const where = issue.path.length > 0 ? issue.path.join(".") : "message";
      throw new ProtocolError("bad_message", `bad "${clip(type)}": ${where}: ${issue.message}`, {
        cause: result.error,
      });
    }
    return result.data as M;
  };
}

/**
 * Validates a decoded frame header as a client message.
 *
 * @throws {ProtocolError} `unknown_type` or `bad_message`.
 * @example
 * ```ts
 * import { parseClientMessage } from "./messages.ts";
 * const msg = parseClientMessage({ type: "say", id: "1", room: "lobby", text: "hi" });
 * ```
 */
export const parseClientMessage: (header: Record<string, unknown>) => ClientMessage = makeParser<
  ClientMessage
>(clientSchemas, "client", fastClientParsers);

/**
 * Validates a decoded frame header as a server message.
 *
 * @throws {ProtocolError} `unknown_type` or `bad_message`.
 */
export const parseServerMessage: (header: Record<string, unknown>) => ServerMessage = makeParser<
  ServerMessage
>(serverSchemas, "server", fastServerParsers);

/** The request id of a header, if it carries a plausible one (for error replies). */
export function requestIdOf(header: Record<string, unknown>): string | undefined {
  const id = header.id;
  return typeof id === "string" && id.length > 0 && id.length <= 64 ? id : undefined;
}

function clip(s: string): string {
  return s.length > 40 ? `${s.slice(0, 40)}…` : s;
}
