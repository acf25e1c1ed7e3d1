/**
 * The chat client library: one logged-in session to a chat server, with typed
 * requests, a typed event stream, and transparent reconnection.
 *
 * ## Reconnection
 *
 * When the connection drops (and the client was not closed, did not log out, and the
 * server did not end the session on purpose), the client dials again with exponential
 * backoff and jitter, repeats the hello and the login, then:
 *
 * 1. asks the server for every message after the highest message id it has seen
 *    (`sync`, page by page) and emits those it has not emitted yet, in id order
 *    (events arriving meanwhile are held back and follow them; no message id is
 *    ever emitted twice);
 * 2. resends, in their original order and with their original ids, every request
 *    that had no reply, then the requests issued while disconnected. `say` and `dm`
 *    are idempotent on the server by request id, so a message whose ack was lost is
 *    stored once and its promise resolves with the original message.
 *
 * A `broadcast` that was in flight when the connection dropped is not resent (the
 * server does not deduplicate broadcasts): its promise rejects with
 * `connection_lost`. Resent `block`, `unblock`, `contact_add`, `contact_remove` and
 * `leave` requests whose first attempt had already been applied resolve normally
 * instead of failing with `already_blocked` and the like.
 *
 * ## Server lists
 *
 * Given several addresses (`servers`), the client connects to the first that accepts,
 * trying them in the order given (an application that wants clients spread over the
 * servers shuffles the list first, as `chat connect` does). When the connection drops,
 * each reconnection attempt tries every address once, starting with the one after the
 * address that was lost (which is tried last), then waits out the backoff; catching up
 * and resending work as above, whichever server answers. A login refusal (wrong
 * password, lockout, ...) ends the round at once: every server of a cluster would say the
 * same. A TLS failure or a server that does not speak the protocol at one address moves on
 * to the next; it is the error reported only when no address accepted. With one address
 * all of this is the plain reconnection above.
 *
 * ## Pacing
 *
 * The server refuses requests over its rate limits with `rate_limited` and a
 * `retryAfter`. The client paces itself instead of failing them: at most
 * {@linkcode DEFAULT_PACE} `window` requests are in flight at once; a refused request
 * is held and sent again after `retryAfter`, and from then on, until the backlog is
 * sent, one request at a time, in the order they were made. Held requests (refused
 * ones, and those made while disconnected) are announced with a `held` event, so that
 * an application can show them as pending; their promises resolve once they are
 * sent and answered. File data, relayed records and pings are never held (the server
 * does not limit them). `pace: false` turns this off: refusals then reject.
 *
 * Login failures that retrying cannot fix (`wrong_password`, `locked`, `bad_*`,
 * `unsupported_version`, see {@linkcode FATAL_LOGIN_CODES}) end the client: they
 * reject `connect()`, or end the event stream with a `closed` event carrying the
 * reason.
 *
 * @example
 * ```ts ignore
 * import { ChatClient } from "./chat_client.ts";
 * await using client = await ChatClient.connect({ port: 44444, nick: "alice", password: "s3cret-pw" });
 * await client.join("rust");
 * const { msg } = await client.say("rust", "hello");
 * for await (const event of client.events) {
 *   if (event.type === "msg") console.log(`<${event.from}> ${event.text}`);
 * }
 * ```
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import {
  decodePayload,
  DEFAULT_MAX_FRAME_SIZE,
  encodeFrame,
  type Frame,
  LENGTH_PREFIX_BYTES,
} from "../protocol/frame.ts";
import { ProtocolError } from "../protocol/errors.ts";
import { checkServerHello, clientHello, SERVER_FEATURES } from "../protocol/hello.ts";
import {
  type ChatMessage,
  type ClientMessageMap,
  type ClientRequestType,
  LARGE_FILE_CHUNK_BYTES,
  parseClientMessage,
  parseServerMessage,
  type ServerMessage,
  type ServerMessageMap,
} from "../protocol/messages.ts";
import { nameKey } from "../protocol/names.ts";
import { newRequestId } from "../protocol/request_id.ts";
import type { ReplyMap } from "../protocol/replies.ts";
import { BufferPool } from "../transport/buffer_pool.ts";
import { type ByteChannel, FramedConnection } from "../transport/framed_connection.ts";
import { dial, DialError, type DialTlsOptions } from "../transport/net.ts";
import { QueueOverflowError } from "../transport/errors.ts";
import {
  backoffDelay,
  type BackoffPolicy,
  resolveBackoff,
  type ResolvedBackoffPolicy,
} from "./backoff.ts";
import { ChatError, type ChatErrorCode, FATAL_LOGIN_CODES } from "./chat_error.ts";
import { EventQueue } from "./event_queue.ts";
import { parseReply } from "../protocol/replies.ts";
import { dialPinned, PinnedTlsError } from "./pinned_tls.ts";
import { FirstBytes } from "./first_bytes.ts";
import { formatServerAddress, type ServerAddress } from "./server_list.ts";

const log = getLogger(["chat", "client"]);

/** Default time allowed to dial, exchange hellos and log in: 10 s. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
/** The agent string sent in `hello` unless another is given. */
export const DEFAULT_AGENT = "chat-client/0.1.0";
/** Most ids in one `delivered` acknowledgement (the protocol's bound). */
const MAX_ACK_IDS = 1000;
/** Held direct messages received within this many ms are acknowledged together. */
const ACK_DELAY_MS = 50;

/** Messages asked for per `sync` page while catching up after a reconnect. */
export const SYNC_PAGE_SIZE = 500;

const SEEN_LIMIT = 50_000;

/** TLS options of the client. */
export interface ClientTlsOptions extends DialTlsOptions {
  /**
   * Trust the server's certificate when, and only when, its SHA-256 fingerprint is
   * this one (hex, colons optional), whoever signed it: for self-signed servers.
   */
  fingerprint?: string;
}

/** One address of a server list, with its own TLS setting (a certificate pinned per address). */
export interface ServerTarget extends ServerAddress {
  /** TLS for this address; default the client's `tls` option. */
  tls?: boolean | ClientTlsOptions;
}

/** Options of {@linkcode ChatClient.connect}. */
export interface ChatClientOptions {
  /** Server host name or address. Default `127.0.0.1`. */
  host?: string;
  /** Server TCP port; required unless `servers` is given. */
  port?: number;
  /**
   * Several addresses of the same chat service (nodes of a cluster), in place of `host`
   * and `port`: see "Server lists" above. Tried in the order given.
   */
  servers?: readonly ServerTarget[];
  /**
   * Use TLS: `true` trusts the system's roots; an object adds CA certificates, or
   * trusts exactly the certificate with a given SHA-256 fingerprint.
   */
  tls?: boolean | ClientTlsOptions;
  /** The nick to log in as. */
  nick: string;
  /** The account's password; omit for servers in nick-only mode. */
  password?: string;
  /**
   * `false`: the first login only logs in to an existing account; an unknown nick fails
   * with `no_account` instead of registering (so that the user can be asked first).
   * Default true.
   */
  register?: boolean;
  /** Client name and version sent in `hello`. Default {@linkcode DEFAULT_AGENT}. */
  agent?: string;
  /** Features asked for in `hello`. Default: every version-1 feature. */
  features?: readonly string[];
  /** Reconnect after the connection drops (default), with this backoff; `false` to never. */
  reconnect?: false | BackoffPolicy;
  /** Time allowed to dial, exchange hellos and log in, in ms. Default 10 s. */
  connectTimeoutMs?: number;
  /** Largest frame accepted from the server, in bytes. Default 1 MiB. */
  maxFrameSize?: number;
  /** Unread events kept before the oldest are dropped. Default 100 000. */
  maxBufferedEvents?: number;
  /**
   * Pace requests within the server's rate limits (default {@linkcode DEFAULT_PACE}),
   * or `false` to send each at once and reject those refused with `rate_limited`.
   */
  pace?: false | PacePolicy;
}

/** How the client paces its requests; see "Pacing" above. */
export interface PacePolicy {
  /** Requests in flight at once while nothing is refused. Default 8. */
  window?: number;
  /** Times one request is sent again after `rate_limited` before it fails. Default 30. */
  maxRetries?: number;
}

/** The defaults of {@linkcode PacePolicy}. */
export const DEFAULT_PACE: Readonly<Required<PacePolicy>> = Object.freeze({
  window: 8,
  maxRetries: 30,
});

/** Request types never held or paced: the server does not limit them. */
const UNPACED: ReadonlySet<string> = new Set(["ping", "relay", "file_chunk", "file_read"]);

/** A request type the application may send (`login` is the client's own business). */
export type RequestType = Exclude<ClientRequestType, "login">;

/** The fields of a request of type `T`, besides `type` and `id`. */
export type RequestFields<T extends ClientRequestType> = Omit<ClientMessageMap[T], "type" | "id">;

/** Options of {@linkcode ChatClient.request}. */
export interface RequestOptions {
  /**
   * The request id, unique per account; default a new UUID in time order (version 7: see
   * `protocol/request_id.ts`). Sending a `say` or `dm` again with the same id (from any
   * session) is stored only once.
   */
  id?: string;
  /** Binary data for the frame body (`relay` carries encrypted records so). */
  body?: Uint8Array;
  /**
   * The request already encoded, in place of `body`: `encodeFrameWithBody` of
   * `{ ...fields, type, id }` (with `id` given above), its body filled in afterwards. A
   * large body (a file chunk) is so read straight into the frame, never copied. Its
   * header must be exactly the request's.
   */
  frame?: Uint8Array;
}

/**
 * Pooled payload size: a large `file_data` body and its header (a body of 512 KiB, from a
 * server that sends those, fits too: the pool serves from half its size up).
 */
const FILE_DATA_PAYLOAD_BYTES = LARGE_FILE_CHUNK_BYTES + 1024;

/** Request types never resent after a reconnect: in flight, they fail with `connection_lost`. */
const NOT_RESENT: ReadonlySet<string> = new Set(["broadcast", "relay"]);

/**
 * Every event the server sends (everything but `hello` and replies). `relay` and
 * `file_data` frames are not events: they go to {@linkcode ChatClient.onRelay} and
 * {@linkcode ChatClient.onFileData} listeners.
 */
export type ServerEvent = Exclude<
  ServerMessage,
  { type: "hello" } | { type: "ok" } | { type: "relay" } | { type: "file_data" }
>;

/** The connection dropped; the client is about to reconnect (or close). */
export interface DisconnectedEvent {
  /** Event type. */
  type: "disconnected";
  /** Why, in words. */
  reason: string;
}

/** The client waits `delayMs`, then makes reconnection attempt number `attempt`. */
export interface ReconnectingEvent {
  /** Event type. */
  type: "reconnecting";
  /** 1 for the first attempt after a drop. */
  attempt: number;
  /** Milliseconds until the attempt. */
  delayMs: number;
}

/** Logged in again after a drop; missed messages follow, then pending requests are resent. */
export interface ReconnectedEvent {
  /** Event type. */
  type: "reconnected";
  /** The server connected to, `host:port` (IPv6 in brackets). */
  server?: string;
}

/** The client is closed for good; the last event of the stream. */
export interface ClosedEvent {
  /** Event type. */
  type: "closed";
  /** Why, when the client did not close on request. */
  reason?: string;
  /** The error code when it ended on an error (`wrong_password`, `disconnected`, ...). */
  code?: ChatErrorCode;
}

/**
 * A request is held by the client: made while disconnected (`offline`, sent once
 * reconnected), or refused by the server's rate limit or waiting behind one that was
 * (`rate_limited`, sent after `retryAfter`). Its promise is still pending. For `say`
 * and `dm` the event carries where to and the text, to show the line as pending.
 */
export interface HeldEvent {
  /** Event type. */
  type: "held";
  /** The request id. */
  id: string;
  /** The request type. */
  request: RequestType;
  /** Why it waits. */
  reason: "offline" | "rate_limited";
  /** With `rate_limited` from the server: seconds until it is sent again. */
  retryAfter?: number;
  /** `say`: the room. */
  room?: string;
  /** `dm`: the recipient. */
  to?: string;
  /** `say`, `dm`, `broadcast`: the text. */
  text?: string;
}

/** An event about the connection itself, produced by the client. */
export type StatusEvent =
  | DisconnectedEvent
  | ReconnectingEvent
  | ReconnectedEvent
  | ClosedEvent
  | HeldEvent;

/** Everything that comes out of {@linkcode ChatClient.events}. */
export type ChatEvent = ServerEvent | StatusEvent;

/** Where the client stands. */
export type ChatClientState = "connecting" | "ready" | "reconnecting" | "resuming" | "closed";

/** Arguments of {@linkcode ChatClient.history}: one conversation, optionally paged. */
export type HistoryQuery =
  & ({ room: string; with?: undefined } | { with: string; room?: undefined })
  & {
    /** Only messages with an id below this one. */
    before?: number;
    /** At most this many (1..500). */
    limit?: number;
  };

interface Link {
  readonly conn: FramedConnection;
  readonly frames: AsyncIterator<Frame>;
  lost: boolean;
  /** Set when the server ended the session on purpose: do not reconnect. */
  endReason: { text: string; code: string } | null;
  /** Ids of held direct messages received and not yet acknowledged. */
  heldAcks?: number[];
  /** Sends them at the end of {@linkcode ACK_DELAY_MS}. */
  heldAckTimer?: ReturnType<typeof setTimeout>;
}

interface Pending {
  readonly id: string;
  readonly type: RequestType;
  readonly header: Readonly<Record<string, unknown>>;
  readonly bytes: Uint8Array;
  readonly resolve: (data: unknown) => void;
  readonly reject: (err: ChatError) => void;
  /** The link it was last written to; null while never sent. */
  sentOn: Link | null;
  attempts: number;
  /** Sent by the client itself while resuming: bound to its link, never resent. */
  readonly internal: boolean;
  /** A message already received through `sync` was matched to this request. */
  claimed: boolean;
  /** Times the server refused it with `rate_limited`. */
  rateRefusals: number;
  /** A `held` event was emitted for it since it was last sent. */
  announced: boolean;
}

/**
 * Errors a resent request may get when its first attempt had been applied before
 * the connection dropped; they mean success, with this reply data.
 */
const ALREADY_DONE: Partial<
  Record<RequestType, { code: string; data: (header: Record<string, unknown>) => unknown }>
> = {
  block: { code: "already_blocked", data: (h) => ({ nick: h.nick }) },
  unblock: { code: "not_blocked", data: (h) => ({ nick: h.nick }) },
  contact_add: { code: "already_contact", data: (h) => ({ nick: h.nick }) },
  contact_remove: { code: "not_contact", data: (h) => ({ nick: h.nick }) },
  leave: { code: "not_member", data: (h) => ({ room: h.room }) },
};

/**
 * Failures that concern one address of a server list (its TLS, or what answers there):
 * the next address is tried instead of giving up.
 */
const ADDRESS_FAULTS: ReadonlySet<string> = new Set([
  "tls_failed",
  "not_tls",
  "tls_only",
  "protocol_error",
]);

/** Notices after which the server ends the session on purpose: no reconnecting. */
const FINAL_NOTICES = new Set(["idle_timeout", "logged_out"]);

/**
 * A logged-in chat session. Create one with {@linkcode ChatClient.connect}.
 *
 * Every request method resolves with the data of the server's `ok` reply, or
 * rejects with a {@linkcode ChatError} whose `code` is the server's error code (or
 * a client-side one, see `ClientErrorCode`).
 */
export class ChatClient implements AsyncDisposable {
  readonly #options: ChatClientOptions;
  readonly #policy: ResolvedBackoffPolicy | null;
  readonly #pace: Readonly<Required<PacePolicy>> | null;
  /** A request was refused for the rate: one at a time until the backlog is sent. */
  #pacing = false;
  /** Set while waiting for the `retryAfter` of a refusal. */
  #paceTimer: ReturnType<typeof setTimeout> | undefined;
  readonly #connectTimeoutMs: number;
  readonly #events: EventQueue<ChatEvent>;
  readonly #pending = new Map<string, Pending>();
  readonly #seen = new Set<number>();
  /** The `delivered` acknowledgements in flight, by request id: their replies are not events. */
  readonly #ackRequests = new Map<string, { link: Link; ids: number[] }>();
  readonly #rooms = new Map<string, string>();
  #state: ChatClientState = "connecting";
  #link: Link | null = null;
  /** The addresses to connect to; `#current` indexes the one connected to (or last tried). */
  readonly #servers: readonly ServerTarget[];
  #current = 0;
  #nick: string;
  #server: ServerMessageMap["hello"] | null = null;
  #lastSeen = 0;
  #held: ServerEvent[] | null = null;
  #loggingOut = false;
  #wake: (() => void) | null = null;
  #warnedDrop = false;
  readonly #done: Promise<void>;
  #resolveDone!: () => void;
  readonly #eventListeners = new Set<(event: ChatEvent) => void>();
  readonly #relayListeners = new Set<(sid: string, body: Uint8Array) => void>();
  /** Buffers for large incoming frames (file data), handed back by their listener. */
  readonly #payloads = new BufferPool(FILE_DATA_PAYLOAD_BYTES, 8);
  readonly #fileDataListeners = new Set<
    (data: ServerMessageMap["file_data"], body: Uint8Array) => void
  >();

  private constructor(options: ChatClientOptions) {
    const servers = options.servers ?? [{ host: options.host ?? "127.0.0.1", port: options.port! }];
    if (servers.length === 0) throw new ChatError("bad_request", "servers: no address given");
    for (const { port } of servers) {
      if (!Number.isInteger(port) || port < 0 || port > 65535) {
        throw new ChatError("bad_request", `port must be an integer from 0 to 65535, got ${port}`);
      }
    }
    this.#servers = servers.map((server) => ({ ...server }));
    if (typeof options.nick !== "string" || options.nick.length === 0) {
      throw new ChatError("bad_request", "a nick is required");
    }
    this.#options = options;
    this.#policy = options.reconnect === false ? null : resolveBackoff(options.reconnect ?? {});
    this.#pace = options.pace === false ? null : { ...DEFAULT_PACE, ...options.pace };
    if (this.#pace !== null && !(this.#pace.window >= 1 && this.#pace.maxRetries >= 0)) {
      throw new ChatError("bad_request", "pace: window must be >= 1 and maxRetries >= 0");
    }
    this.#connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    this.#events = new EventQueue<ChatEvent>(options.maxBufferedEvents);
    this.#nick = options.nick;
    this.#done = new Promise((resolve) => this.#resolveDone = resolve);
  }

  /**
   * Dials the server, exchanges hellos and logs in.
   *
   * @throws {ChatError} `connect_failed`, `tls_failed`, `not_tls`, `tls_only`, `timeout`,
   * `connection_lost`,
   * `protocol_error`, or the server's login refusal (`wrong_password`, `locked` with
   * `retryAfter`, `bad_password`, `bad_name`, `unsupported_version`, ...).
   */
  static async connect(options: ChatClientOptions): Promise<ChatClient> {
    const client = new ChatClient(options);
    const { link, login } = await client.#connectRound(0);
    client.#adopt(link, login);
    client.#state = "ready";
    client.#startReading(link);
    try {
      client.#establishMark(login);
    } catch (err) {
      await client.close();
      throw err instanceof ChatError ? err : new ChatError("connection_lost", describe(err));
    }
    log.info("logged in as {nick}", { nick: login.nick });
    return client;
  }

  /** The display nick the server logged us in as. */
  get nick(): string {
    return this.#nick;
  }

  /** The rooms this account is a member of, as known from replies and events. */
  get joinedRooms(): string[] {
    return [...this.#rooms.values()];
  }

  /**
   * The address of the server connected to (between connections, the last one tried):
   * one of the `servers` given, or `host` and `port`.
   */
  get address(): ServerAddress {
    const { host, port } = this.#servers[this.#current]!;
    return { host, port };
  }

  /** The largest frame accepted from the server, in bytes (`maxFrameSize`). */
  get maxFrameSize(): number {
    return this.#options.maxFrameSize ?? DEFAULT_MAX_FRAME_SIZE;
  }

  /** The server's `hello` of the current (or last) connection. */
  get server(): ServerMessageMap["hello"] | null {
    return this.#server;
  }

  /** Where the client stands. */
  get state(): ChatClientState {
    return this.#state;
  }

  /** Whether the client is closed for good. */
  get closed(): boolean {
    return this.#state === "closed";
  }

  /** Resolves once the client is closed, whichever way. */
  get done(): Promise<void> {
    return this.#done;
  }

  /** The highest message id seen (events, acks, catch-up); catch-up starts after it. */
  get lastMessageId(): number {
    return this.#lastSeen;
  }

  /** Requests sent or queued that have no reply yet. */
  get pendingRequests(): number {
    let n = 0;
    for (const p of this.#pending.values()) if (!p.internal) n++;
    return n;
  }

  /**
   * Requests held by the client, not sent yet: made while disconnected, or waiting
   * for the server's rate limit (see "Pacing" above).
   */
  get heldRequests(): number {
    let n = 0;
    for (const p of this.#pending.values()) if (this.#paced(p) && p.sentOn === null) n++;
    return n;
  }

  /**
   * The event stream: server events and the client's status events, ending after
   * the `closed` event. It has a single reader.
   */
  get events(): AsyncIterable<ChatEvent> {
    return this.#events;
  }

  /**
   * Calls `listener` with every event as it is emitted (before the reader of
   * {@linkcode events} gets it), for parts of an application that follow the session
   * alongside its main reader. Returns the function that removes the listener.
   */
  onEvent(listener: (event: ChatEvent) => void): () => void {
    this.#eventListeners.add(listener);
    return () => this.#eventListeners.delete(listener);
  }

  /**
   * Calls `listener` with the session id and the body of every `relay` frame (bytes of
   * a private session relayed by the server). Returns the function that removes it.
   */
  onRelay(listener: (sid: string, body: Uint8Array) => void): () => void {
    this.#relayListeners.add(listener);
    return () => this.#relayListeners.delete(listener);
  }

  /**
   * Calls `listener` with every `file_data` frame (bytes of a file being received, at
   * `offset`) and its body. Returns the function that removes it. The listener that
   * uses a body may hand it back with {@linkcode ChatClient.recycleFileData} once done.
   */
  onFileData(
    listener: (data: ServerMessageMap["file_data"], body: Uint8Array) => void,
  ): () => void {
    this.#fileDataListeners.add(listener);
    return () => this.#fileDataListeners.delete(listener);
  }

  /**
   * Hands back the body of a `file_data` frame that nothing uses any more (it is written
   * to disk): its memory receives a later frame instead of a new buffer being allocated.
   * Only the one listener that used the body may hand it back, once.
   */
  recycleFileData(body: Uint8Array): void {
    this.#payloads.give(body);
  }

  /**
   * Sends a request and resolves with the data of its `ok` reply. The request is
   * validated before it is sent; while disconnected it is queued and sent after the
   * session resumes.
   *
   * @throws {ChatError} the server's error code, or `bad_request`, `closed`,
   * `disconnected`, `connection_lost`, `frame_too_large`, `queue_full`, `duplicate_id`.
   * @example
   * ```ts ignore
   * const { users } = await client.request("whoelse", { since: 60 });
   * ```
   */
  request<T extends RequestType>(
    type: T,
    fields: RequestFields<T>,
    options: RequestOptions = {},
  ): Promise<ReplyMap[T]> {
    if (this.#state === "closed") {
      return Promise.reject(new ChatError("closed", "the client is closed"));
    }
    if ((type as string) === "login" || (type as string) === "hello") {
      return Promise.reject(
        new ChatError("bad_request", `"${type}" is sent by the client itself`),
      );
    }
    const id = options.id ?? newRequestId();
    const header: Record<string, unknown> = { ...fields, type, id };
    try {
      parseClientMessage(header);
    } catch (err) {
      const detail = err instanceof Error ? err.message : String(err);
      return Promise.reject(new ChatError("bad_request", `invalid request: ${detail}`));
    }
    if (this.#pending.has(id)) {
      return Promise.reject(
        new ChatError("duplicate_id", `a request with id "${id}" is already waiting for its reply`),
      );
    }
    let bytes: Uint8Array;
    if (options.frame !== undefined) {
      if (options.id === undefined || !frameHasHeader(options.frame, header)) {
        return Promise.reject(
          new ChatError("bad_request", "an encoded request must carry its own id and fields"),
        );
      }
      bytes = options.frame;
    } else {
      bytes = encodeFrame(header, options.body);
    }
    const maxFrame = this.#server?.maxFrame;
    if (maxFrame !== undefined && bytes.length - 4 > maxFrame) {
      return Promise.reject(
        new ChatError(
          "frame_too_large",
          `the ${type} request is ${
            bytes.length - 4
          } bytes; the server accepts at most ${maxFrame}`,
        ),
      );
    }
    return new Promise<ReplyMap[T]>((resolve, reject) => {
      const pending: Pending = {
        id,
        type,
        header,
        bytes,
        resolve: resolve as (data: unknown) => void,
        reject,
        sentOn: null,
        attempts: 0,
        internal: false,
        claimed: false,
        rateRefusals: 0,
        announced: false,
      };
      this.#pending.set(id, pending);
      if (this.#paced(pending)) {
        this.#sendPaced();
        if (pending.sentOn === null && this.#state !== "ready") this.#announce(pending, "offline");
        else if (pending.sentOn === null && this.#pacing) this.#announce(pending, "rate_limited");
      } else if (this.#state === "ready" && this.#link !== null) {
        this.#transmit(pending, this.#link);
      }
    });
  }

  /** Joins (or creates) a room; resolves with its topic, members and recent history. */
  join(room: string): Promise<ReplyMap["join"]> {
    return this.request("join", { room });
  }

  /** Leaves a room. */
  leave(room: string): Promise<ReplyMap["leave"]> {
    return this.request("leave", { room });
  }

  /**
   * Lists the rooms on the server: every page of them (the server cuts the list to fit
   * a frame), at most `maxPages`; `more` is true when rooms were left unlisted.
   */
  async rooms(maxPages = 1000): Promise<ReplyMap["rooms"]> {
    const rooms: ReplyMap["rooms"]["rooms"] = [];
    let page = await this.request("rooms", {});
    rooms.push(...page.rooms);
    for (let n = 1; page.more === true && page.rooms.length > 0 && n < maxPages; n++) {
      page = await this.request("rooms", { after: page.rooms[page.rooms.length - 1].name });
      rooms.push(...page.rooms);
    }
    return { rooms, more: page.more === true };
  }

  /** Lists a room's members with their online state. */
  members(room: string): Promise<ReplyMap["members"]> {
    return this.request("members", { room });
  }

  /** Reads a room's topic, or sets it when `topic` is given. */
  topic(room: string, topic?: string): Promise<ReplyMap["topic"]> {
    return this.request("topic", topic === undefined ? { room } : { room, topic });
  }

  /** Sends a message to a room; resolves with the stored message. */
  say(room: string, text: string, options?: RequestOptions): Promise<ReplyMap["say"]> {
    return this.request("say", { room, text }, options);
  }

  /** Sends a direct message; resolves with the stored message. */
  dm(to: string, text: string, options?: RequestOptions): Promise<ReplyMap["dm"]> {
    return this.request("dm", { to, text }, options);
  }

  /** Sends a message to every online user (not stored, never resent after a drop). */
  broadcast(text: string): Promise<ReplyMap["broadcast"]> {
    return this.request("broadcast", { text });
  }

  /**
   * Lists the users online: every page of them (the server cuts the list to fit a
   * frame), at most `maxPages`; `more` is true when users were left unlisted.
   */
  async who(maxPages = 1000): Promise<ReplyMap["who"]> {
    const users: string[] = [];
    let page = await this.request("who", {});
    if (page.more !== true) return page;
    users.push(...page.users);
    for (let n = 1; page.more === true && page.users.length > 0 && n < maxPages; n++) {
      page = await this.request("who", { after: page.users[page.users.length - 1] });
      users.push(...page.users);
    }
    return page.more === true ? { users, more: true, truncated: true } : { users, more: false };
  }

  /**
   * Lists the other users online, or active within the last `since` seconds: every page
   * of them, at most `maxPages` (see {@linkcode who}).
   */
  async whoelse(since?: number, maxPages = 1000): Promise<ReplyMap["whoelse"]> {
    const ask = (after?: string) =>
      this.request("whoelse", {
        ...(since === undefined ? {} : { since }),
        ...(after === undefined ? {} : { after }),
      });
    const users: string[] = [];
    let page = await ask();
    if (page.more !== true) return page;
    users.push(...page.users);
    for (let n = 1; page.more === true && page.users.length > 0 && n < maxPages; n++) {
      page = await ask(page.users[page.users.length - 1]);
      users.push(...page.users);
    }
    return page.more === true ? { users, more: true, truncated: true } : { users, more: false };
  }

  /**
   * Logs this account out everywhere: revokes its session tokens (the browser's
   * remembered logins) and ends its other sessions, on every node; this one stays.
   */
  logOutEverywhere(): Promise<ReplyMap["token_revoke"]> {
    return this.request("token_revoke", { all: true });
  }

  /** Hides this account's presence from others. */
  hide(): Promise<ReplyMap["hide"]> {
    return this.request("hide", {});
  }

  /** Shows this account's presence again. */
  reveal(): Promise<ReplyMap["reveal"]> {
    return this.request("reveal", {});
  }

  /**
   * Sets this account's away status (others see `presence` events with `away`), or
   * clears it without `text`.
   */
  away(text?: string): Promise<ReplyMap["away"]> {
    return this.request("away", text === undefined ? {} : { text });
  }

  /** Blocks a user: nothing they send reaches this account. */
  block(nick: string): Promise<ReplyMap["block"]> {
    return this.request("block", { nick });
  }

  /** Unblocks a user. */
  unblock(nick: string): Promise<ReplyMap["unblock"]> {
    return this.request("unblock", { nick });
  }

  /** Lists the blocked users. */
  blocks(): Promise<ReplyMap["blocks"]> {
    return this.request("blocks", {});
  }

  /** Adds a contact (whose online state is then reported). */
  contactAdd(nick: string): Promise<ReplyMap["contact_add"]> {
    return this.request("contact_add", { nick });
  }

  /** Removes a contact. */
  contactRemove(nick: string): Promise<ReplyMap["contact_remove"]> {
    return this.request("contact_remove", { nick });
  }

  /** Lists contacts with their online state. */
  contacts(): Promise<ReplyMap["contacts"]> {
    return this.request("contacts", {});
  }

  /** Reads the history of a room or of a direct conversation, newest page first. */
  history(query: HistoryQuery): Promise<ReplyMap["history"]> {
    const fields: RequestFields<"history"> = {};
    if (query.room !== undefined) fields.room = query.room;
    if (query.with !== undefined) fields.with = query.with;
    if (query.before !== undefined) fields.before = query.before;
    if (query.limit !== undefined) fields.limit = query.limit;
    return this.request("history", fields);
  }

  /** Fetches room messages and direct messages after message id `after`. */
  sync(after: number, limit?: number): Promise<ReplyMap["sync"]> {
    return this.request("sync", limit === undefined ? { after } : { after, limit });
  }

  /** Marks received direct messages as read (their senders get a `read` receipt). */
  read(ids: number[]): Promise<ReplyMap["read"]> {
    return this.request("read", { ids });
  }

  /** Asks the server for its time; a round trip. */
  ping(): Promise<ReplyMap["ping"]> {
    return this.request("ping", {});
  }

  /**
   * Logs out and closes the client. Never reconnects afterwards. When the
   * connection is down, it just closes.
   */
  async logout(): Promise<ReplyMap["logout"]> {
    if (this.#state === "closed") return {};
    if (this.#state !== "ready") {
      this.#finish("logged out");
      return {};
    }
    this.#loggingOut = true;
    if (this.#link !== null) this.#sendAcks(this.#link);
    try {
      return await this.request("logout", {});
    } finally {
      this.#finish("logged out");
      await this.#closeQuietly();
    }
  }

  /**
   * Closes the client: pending requests reject with `closed`, the event stream ends
   * with a `closed` event, and what is queued is flushed before the socket closes.
   */
  async close(): Promise<void> {
    this.#finish(undefined);
    await this.#closeQuietly();
  }

  /** Closes the client; for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  // ---------------------------------------------------------------- connection

  /**
   * Tries every address once, from `start` on (wrapping around), until one logs in; sets
   * `#current` to it. A login refusal ends the round at once; otherwise, when no address
   * accepted, throws the first error retrying cannot fix, else the last one (with one
   * address: its error as it is; with several: naming each address's failure).
   */
  async #connectRound(start: number): Promise<{ link: Link; login: ReplyMap["login"] }> {
    const n = this.#servers.length;
    const failures: string[] = [];
    let last: ChatError | null = null;
    let permanent: ChatError | null = null;
    for (let k = 0; k < n; k++) {
      const index = (start + k) % n;
      this.#current = index;
      const target = this.#servers[index]!;
      try {
        return await this.#handshake(target);
      } catch (err) {
        const error = err instanceof ChatError
          ? err
          : new ChatError("connect_failed", describe(err), { cause: err });
        if (
          n === 1 || this.#isClosed() ||
          !ADDRESS_FAULTS.has(error.code) && FATAL_LOGIN_CODES.has(error.code)
        ) {
          throw error;
        }
        if (FATAL_LOGIN_CODES.has(error.code)) permanent ??= error;
        last = error;
        failures.push(error.message);
        log.info("{server}: {error}", {
          server: formatServerAddress(target),
          error: error.message,
        });
      }
    }
    if (permanent !== null) throw permanent;
    throw new ChatError(last!.code, `no server accepted: ${failures.join("; ")}`, {
      cause: last,
      ...(last!.retryAfter !== undefined ? { retryAfter: last!.retryAfter } : {}),
    });
  }

  async #handshake(target: ServerTarget): Promise<{ link: Link; login: ReplyMap["login"] }> {
    const host = target.host;
    const port = target.port;
    const where = formatServerAddress(target);
    const timeoutMs = this.#connectTimeoutMs;
    let timedOut = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let conn: FramedConnection | null = null;
    const loginId = crypto.randomUUID();
    let loginTooLarge: ChatError | null = null;
    let sniff: FirstBytes | null = null;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        timedOut = true;
        conn?.abort();
        reject(new ChatError("timeout", `no answer from ${where} within ${timeoutMs} ms`));
      }, timeoutMs);
    });
    timeout.catch(() => {});
    try {
      const tls = target.tls ?? this.#options.tls;
      const dialing: Promise<ByteChannel> = typeof tls === "object" && tls.fingerprint
        ? dialPinned({
          host,
          port,
          fingerprint: tls.fingerprint,
          ...(tls.serverName ? { serverName: tls.serverName } : {}),
        })
        : dial({ host, port, ...(tls ? { tls } : {}) });
      let raw: ByteChannel;
      try {
        raw = await Promise.race([dialing, timeout]);
      } catch (err) {
        if (timedOut) dialing.then((late) => late.close(), () => {});
        throw this.#dialError(err, where);
      }
      // Without TLS, the first bytes tell a TLS server's answer from a chat frame.
      if (!tls) raw = sniff = new FirstBytes(raw);
      const framed: FramedConnection = conn = new FramedConnection(raw, {
        maxFrameSize: this.#options.maxFrameSize,
        allocatePayload: (length) => this.#payloads.take(length),
        // A frame over our limit is skipped, not fatal: the request it answers fails.
        onOversized: (length, head) => {
          const error = oversizedError(length, framed.maxFrameSize, head);
          if (this.#link?.conn === framed) {
            this.#dispatch(this.#link, error, new Uint8Array(0));
          } else if (error.re === loginId) {
            loginTooLarge = new ChatError(error.code, error.message);
            framed.abort();
          } else {
            log.warn("{message}", { message: error.message });
          }
        },
      });
      if (timedOut) conn.abort();
      const frames = conn[Symbol.asyncIterator]();
      const next = async (during: string): Promise<ServerMessage> => {
        const result = await Promise.race([frames.next(), timeout]);
        if (result.done) {
          throw new ChatError("connection_lost", `${where} closed the connection during ${during}`);
        }
        return parseServerMessage(result.value.header);
      };
      conn.send(
        clientHello(
          this.#options.features ?? SERVER_FEATURES,
          this.#options.agent ?? DEFAULT_AGENT,
        ),
      );
      const hello = await next("the hello exchange");
      if (hello.type === "error") {
        throw new ChatError(hello.code, hello.message, { retryAfter: hello.retryAfter });
      }
      if (hello.type !== "hello") {
        throw new ChatError("protocol_error", `${where} answered hello with "${hello.type}"`);
      }
      checkServerHello(hello);
      conn.send({
        type: "login",
        id: loginId,
        nick: this.#options.nick,
        ...(this.#options.password !== undefined ? { password: this.#options.password } : {}),
        // Only the first login may be told not to register: a reconnect's account exists.
        ...(this.#options.register === false && this.#server === null ? { register: false } : {}),
        // Held direct messages count as delivered once this client has them.
        ack: true,
      });
      while (true) {
        const reply = await next("the login");
        if (reply.type === "ok" && reply.re === loginId) {
          const { type: _type, re: _re, ...data } = reply;
          const parsed = parseReply("login", data);
          if (!parsed.ok) throw new ChatError("protocol_error", parsed.problem);
          this.#server = hello;
          return {
            link: { conn, frames, lost: false, endReason: null },
            login: parsed.data,
          };
        }
        if (reply.type === "error" && (reply.re === loginId || reply.re === undefined)) {
          throw new ChatError(reply.code, reply.message, { retryAfter: reply.retryAfter });
        }
        log.debug("ignoring {type} before the login reply", { type: reply.type });
      }
    } catch (err) {
      conn?.abort();
      if (loginTooLarge !== null) throw loginTooLarge;
      if (err instanceof ChatError) throw err;
      if (timedOut) {
        throw new ChatError("timeout", `no answer from ${where} within ${timeoutMs} ms`);
      }
      if (err instanceof ProtocolError) {
        if (sniff?.looksLikeTls()) {
          throw new ChatError("tls_only", `${where} speaks TLS: connect with TLS`, { cause: err });
        }
        if (err.code === "unsupported_version") {
          throw new ChatError("unsupported_version", err.message, { cause: err });
        }
        throw new ChatError(
          "protocol_error",
          `${where} does not speak this chat protocol: ${err.message}`,
          { cause: err },
        );
      }
      throw new ChatError("connection_lost", `connection to ${where} failed: ${describe(err)}`, {
        cause: err,
      });
    } finally {
      clearTimeout(timer);
    }
  }

  #dialError(err: unknown, where: string): ChatError {
    if (err instanceof ChatError) return err;
    const detail = describe(err);
    const code = err instanceof PinnedTlsError || err instanceof DialError ? err.code : null;
    switch (code) {
      case "not_tls":
        return new ChatError(
          "not_tls",
          `${where} does not speak TLS (it answered in plain TCP): connect without TLS`,
          { cause: err },
        );
      case "tls_failed":
      case "fingerprint_mismatch":
        return new ChatError("tls_failed", `TLS with ${where} failed: ${detail}`, { cause: err });
      default:
        // Refused, unreachable, lost mid-handshake: the server may be restarting.
        return new ChatError("connect_failed", `cannot connect to ${where}: ${detail}`, {
          cause: err,
        });
    }
  }

  /**
   * Sets the catch-up mark (the id after which a reconnect asks for missed
   * messages) at login: the highest id the server had stored when the session began.
   */
  #establishMark(login: ReplyMap["login"]): void {
    this.#lastSeen = Math.max(this.#lastSeen, login.lastId);
  }

  #adopt(link: Link, login: ReplyMap["login"]): void {
    this.#link = link;
    this.#nick = login.nick;
    this.#rooms.clear();
    for (const room of login.rooms) this.#rooms.set(nameKey(room), room);
  }

  #startReading(link: Link): void {
    this.#readLoop(link).catch((err) => {
      log.error("client read loop failed: {error}", { error: describe(err) });
    });
  }

  async #readLoop(link: Link): Promise<void> {
    let reason = "the server closed the connection";
    let fatal: ChatError | null = null;
    try {
      while (!link.lost) {
        const result = await link.frames.next();
        if (result.done) break;
        let message: ServerMessage;
        try {
          message = parseServerMessage(result.value.header);
        } catch (err) {
          fatal = new ChatError(
            "protocol_error",
            `the server sent a malformed message: ${describe(err)}`,
            { cause: err },
          );
          break;
        }
        try {
          this.#dispatch(link, message, result.value.body);
        } catch (err) {
          if (err instanceof ChatError && err.code === "protocol_error") {
            fatal = err;
            break;
          }
          log.error("handling a {type} from the server failed: {error}", {
            type: message.type,
            error: describe(err),
          });
        }
      }
      if (link.conn.error !== undefined) reason = `connection failed: ${describe(link.conn.error)}`;
    } catch (err) {
      if (err instanceof ProtocolError) {
        fatal = new ChatError(
          "protocol_error",
          `the server sent a malformed frame: ${err.message}`,
          { cause: err },
        );
      } else {
        reason = `connection failed: ${describe(err)}`;
      }
    }
    this.#linkLost(link, reason, fatal);
  }

  #dispatch(link: Link, message: ServerMessage, body: Uint8Array): void {
    switch (message.type) {
      case "relay":
        for (const listener of [...this.#relayListeners]) {
          try {
            listener(message.sid, body);
          } catch (err) {
            log.error("a relay listener threw: {error}", { error: describe(err) });
          }
        }
        return;
      case "file_data":
        for (const listener of [...this.#fileDataListeners]) {
          try {
            listener(message, body);
          } catch (err) {
            log.error("a file data listener threw: {error}", { error: describe(err) });
          }
        }
        return;
      case "dm":
        if (message.held === true) this.#acknowledgeHeld(link, message.id);
        this.#emitServerEvent(message);
        return;
      case "ok":
        if (this.#ackRequests.delete(message.re)) return;
        this.#onOk(message);
        return;
      case "error":
        if (message.re !== undefined && this.#ackRequests.has(message.re)) {
          const { link: acked, ids } = this.#ackRequests.get(message.re)!;
          this.#ackRequests.delete(message.re);
          log.debug("acknowledging held messages failed: {message}", { message: message.message });
          // Else not acknowledged: the server sends them again at the next login.
          if (message.code === "rate_limited") {
            setTimeout(() => {
              for (const id of ids) this.#acknowledgeHeld(acked, id);
            }, (message.retryAfter ?? 1) * 1000);
          }
          return;
        }
        if (message.re !== undefined && this.#pending.has(message.re)) {
          this.#onError(message);
        } else {
          this.#emitServerEvent(message);
        }
        return;
      case "hello":
        throw new ChatError("protocol_error", "the server sent a second hello");
      case "member":
        if (nameKey(message.nick) === nameKey(this.#nick)) {
          if (message.joined) this.#rooms.set(nameKey(message.room), message.room);
          else this.#rooms.delete(nameKey(message.room));
        }
        this.#emitServerEvent(message);
        return;
      case "notice":
        if (FINAL_NOTICES.has(message.code)) {
          link.endReason = { text: message.text, code: message.code };
        }
        this.#emitServerEvent(message);
        return;
      default:
        this.#emitServerEvent(message);
    }
  }

  /**
   * Acknowledges a held direct message received: the ids received within
   * {@linkcode ACK_DELAY_MS} go together in one `delivered` request (a long backlog
   * costs a few requests, not one per read).
   */
  #acknowledgeHeld(link: Link, id: number): void {
    if (link.lost) return;
    if (link.heldAcks !== undefined) {
      link.heldAcks.push(id);
      return;
    }
    link.heldAcks = [id];
    link.heldAckTimer = setTimeout(() => this.#sendAcks(link), ACK_DELAY_MS);
  }

  /** Sends the acknowledgements waiting on `link` now (before a logout or a close). */
  #sendAcks(link: Link): void {
    clearTimeout(link.heldAckTimer);
    const ids = link.heldAcks ?? [];
    link.heldAcks = undefined;
    if (link.lost) return;
    for (let i = 0; i < ids.length; i += MAX_ACK_IDS) {
      const requestId = crypto.randomUUID();
      const batch = ids.slice(i, i + MAX_ACK_IDS);
      try {
        link.conn.send({ type: "delivered", id: requestId, ids: batch });
        this.#ackRequests.set(requestId, { link, ids: batch });
      } catch {
        return; // the link is closing: the server keeps them held
      }
    }
  }

  #onOk(message: ServerMessageMap["ok"]): void {
    const pending = this.#pending.get(message.re);
    if (pending === undefined) {
      log.debug("reply to unknown request {id}", { id: message.re });
      return;
    }
    const { type: _type, re: _re, ...data } = message;
    const parsed = parseReply(pending.type, data);
    if (!parsed.ok) throw new ChatError("protocol_error", `the server sent a ${parsed.problem}`);
    this.#pending.delete(pending.id);
    const reply = parsed.data as Record<string, unknown>;
    switch (pending.type) {
      case "say":
      case "dm":
        this.#markSeen((reply as ReplyMap["say"]).msg.id);
        break;
      case "join": {
        const { room, history } = reply as ReplyMap["join"];
        this.#rooms.set(nameKey(room), room);
        // Shown with the join already: a catch-up must not emit them again.
        for (const message of history) this.#markSeen(message.id, false);
        break;
      }
      case "leave":
        this.#rooms.delete(nameKey((reply as ReplyMap["leave"]).room));
        break;
    }
    pending.resolve(reply);
    if (this.#paced(pending)) this.#sendPaced();
  }

  #onError(message: ServerMessageMap["error"]): void {
    const pending = this.#pending.get(message.re!)!;
    if (
      message.code === "rate_limited" && this.#paced(pending) &&
      pending.rateRefusals < this.#pace!.maxRetries
    ) {
      // Not applied: held, and sent again (in order, one at a time) after the wait.
      pending.rateRefusals++;
      pending.attempts--;
      pending.sentOn = null;
      this.#pacing = true;
      this.#waitForRate((message.retryAfter ?? 1) * 1000);
      // The refused request and those waiting behind it are pending now (in the order
      // they were made: up to the first one still in flight, whose answer comes next).
      this.#announce(pending, "rate_limited", message.retryAfter);
      let behind = false;
      for (const p of this.#pending.values()) {
        behind ||= p === pending;
        if (!behind || !this.#paced(p)) continue;
        if (p.sentOn !== null) break;
        this.#announce(p, "rate_limited");
      }
      return;
    }
    this.#pending.delete(pending.id);
    if (this.#paced(pending)) queueMicrotask(() => this.#sendPaced());
    const done = ALREADY_DONE[pending.type];
    if (pending.attempts > 1 && done !== undefined && done.code === message.code) {
      log.debug("resent {type} had already been applied", { type: pending.type });
      if (pending.type === "leave") this.#rooms.delete(nameKey(String(pending.header.room)));
      pending.resolve(done.data(pending.header));
      return;
    }
    pending.reject(
      new ChatError(message.code, message.message, { retryAfter: message.retryAfter }),
    );
  }

  /** Whether a request goes through the pacing (held, windowed, sent again when refused). */
  #paced(pending: Pending): boolean {
    return this.#pace !== null && !pending.internal && !UNPACED.has(pending.type);
  }

  /**
   * Sends held requests, in the order they were made, as far as the window allows:
   * one at a time while pacing, none while waiting for a `retryAfter`.
   */
  #sendPaced(): void {
    const link = this.#link;
    if (this.#pace === null || this.#state !== "ready" || link === null || link.lost) return;
    if (this.#paceTimer !== undefined) return;
    let inFlight = 0;
    let held = 0;
    for (const p of this.#pending.values()) {
      if (!this.#paced(p)) continue;
      if (p.sentOn === link) inFlight++;
      else if (p.sentOn === null) held++;
    }
    if (held === 0) {
      if (inFlight === 0) this.#pacing = false;
      return;
    }
    const window = this.#pacing ? 1 : this.#pace.window;
    for (const p of [...this.#pending.values()]) {
      if (inFlight >= window) return;
      if (!this.#paced(p) || p.sentOn !== null) continue;
      this.#transmit(p, link);
      p.announced = false;
      inFlight++;
    }
  }

  /** Holds every paced request for `ms` (the longest wait asked for wins). */
  #waitForRate(ms: number): void {
    if (this.#paceTimer !== undefined) return; // already waiting: the next attempt is one
    this.#paceTimer = setTimeout(() => {
      this.#paceTimer = undefined;
      this.#sendPaced();
    }, Math.max(0, ms));
  }

  #stopPacing(): void {
    clearTimeout(this.#paceTimer);
    this.#paceTimer = undefined;
    this.#pacing = false;
  }

  #announce(pending: Pending, reason: HeldEvent["reason"], retryAfter?: number): void {
    if (pending.announced) return;
    pending.announced = true;
    const h = pending.header;
    const event: HeldEvent = { type: "held", id: pending.id, request: pending.type, reason };
    if (retryAfter !== undefined) event.retryAfter = retryAfter;
    if (typeof h.room === "string" && pending.type === "say") event.room = h.room;
    if (typeof h.to === "string" && pending.type === "dm") event.to = h.to;
    if (typeof h.text === "string") event.text = h.text;
    this.#emit(event);
  }

  #transmit(pending: Pending, link: Link): void {
    try {
      link.conn.sendEncoded(pending.bytes);
      pending.sentOn = link;
      pending.attempts++;
    } catch (err) {
      if (err instanceof QueueOverflowError) {
        this.#pending.delete(pending.id);
        pending.reject(
          new ChatError("queue_full", `not sent: ${err.message}`, { cause: err }),
        );
      }
      // Otherwise the link is closing: the request stays pending for the next one.
    }
  }

  #linkLost(link: Link, reason: string, fatal: ChatError | null): void {
    if (link.lost) return;
    link.lost = true;
    link.conn.abort();
    if (this.#link === link) this.#link = null;
    for (const [id, ack] of this.#ackRequests) if (ack.link === link) this.#ackRequests.delete(id);
    this.#stopPacing();
    for (const pending of [...this.#pending.values()]) {
      if (pending.internal && pending.sentOn === link) {
        this.#pending.delete(pending.id);
        pending.reject(new ChatError("connection_lost", reason));
      }
    }
    if (this.#state === "closed") return;
    if (fatal !== null) {
      log.info("closing: {reason}", { reason: fatal.message });
      this.#finish(fatal.message, fatal);
      return;
    }
    if (this.#loggingOut) {
      this.#finish("logged out");
      return;
    }
    if (link.endReason !== null) {
      this.#finish(
        link.endReason.text,
        new ChatError(link.endReason.code, `the server ended the session: ${link.endReason.text}`),
      );
      return;
    }
    if (this.#state === "resuming") return; // the reconnect loop notices and goes on
    log.info("disconnected: {reason}", { reason });
    this.#emit({ type: "disconnected", reason });
    if (this.#policy === null) {
      this.#finish(reason, new ChatError("disconnected", reason));
      return;
    }
    for (const pending of [...this.#pending.values()]) {
      if (NOT_RESENT.has(pending.type) && pending.sentOn === link) {
        this.#pending.delete(pending.id);
        pending.reject(
          new ChatError(
            "connection_lost",
            pending.type === "broadcast"
              ? "the connection dropped before the server confirmed the broadcast; it may or may not have been delivered"
              : `the connection dropped before the server confirmed the ${pending.type}`,
          ),
        );
      }
    }
    this.#state = "reconnecting";
    this.#reconnectLoop(this.#policy, reason).catch((err) => {
      this.#finish(
        `reconnecting failed: ${describe(err)}`,
        new ChatError("disconnected", describe(err)),
      );
    });
  }

  async #reconnectLoop(policy: ResolvedBackoffPolicy, firstReason: string): Promise<void> {
    let lastError = firstReason;
    let attempt = 0;
    while (true) {
      attempt++;
      if (attempt > policy.maxAttempts) {
        const reason = `gave up reconnecting after ${policy.maxAttempts} attempt${
          policy.maxAttempts === 1 ? "" : "s"
        }: ${lastError}`;
        this.#finish(reason, new ChatError("disconnected", reason));
        return;
      }
      const delayMs = backoffDelay(attempt, policy);
      this.#emit({ type: "reconnecting", attempt, delayMs });
      await this.#sleep(delayMs);
      if (this.#isClosed()) return;
      let result: { link: Link; login: ReplyMap["login"] };
      try {
        result = await this.#connectRound((this.#current + 1) % this.#servers.length);
      } catch (err) {
        if (this.#isClosed()) return;
        const error = err instanceof ChatError
          ? err
          : new ChatError("connect_failed", describe(err));
        if (FATAL_LOGIN_CODES.has(error.code)) {
          this.#finish(error.message, error);
          return;
        }
        lastError = error.message;
        log.info("reconnection attempt {attempt} failed: {error}", { attempt, error: lastError });
        continue;
      }
      const { link, login } = result;
      if (this.#isClosed()) {
        link.conn.abort();
        return;
      }
      this.#adopt(link, login);
      this.#state = "resuming";
      this.#held = [];
      this.#startReading(link);
      this.#emit({ type: "reconnected", server: formatServerAddress(this.address) });
      log.info("reconnected as {nick}", { nick: login.nick });
      try {
        await this.#resume(link);
        return;
      } catch (err) {
        this.#held = null;
        if (this.#isClosed()) return;
        lastError = describe(err);
        this.#state = "reconnecting";
        this.#emit({ type: "disconnected", reason: lastError });
        attempt = 0;
      }
    }
  }

  async #resume(link: Link): Promise<void> {
    const missed: ChatMessage[] = [];
    let after = this.#lastSeen;
    while (true) {
      const page = await this.#internalRequest(link, "sync", { after, limit: SYNC_PAGE_SIZE });
      missed.push(...page.messages);
      if (!page.more || page.messages.length === 0) break;
      after = Math.max(after, ...page.messages.map((m) => m.id));
    }
    if (link.lost || this.#state !== "resuming") {
      throw new ChatError("connection_lost", "the connection dropped while catching up");
    }
    missed.sort((a, b) => a.id - b.id);
    for (const message of missed) {
      if (this.#seen.has(message.id)) continue;
      if (this.#claimOwn(message)) continue;
      this.#markSeen(message.id);
      this.#emit(message);
    }
    const held = this.#held ?? [];
    this.#held = null;
    this.#state = "ready";
    for (const event of held) this.#emitServerEvent(event);
    if (this.#link !== link || link.lost) return;
    // A new session starts with the server's limits unspent: paced requests go in the
    // order they were made, windowed; the others at once.
    this.#stopPacing();
    for (const pending of [...this.#pending.values()]) {
      if (pending.internal) continue;
      if (this.#paced(pending)) pending.sentOn = null;
      else this.#transmit(pending, link);
    }
    this.#sendPaced();
  }

  /**
   * Whether a missed message is the stored form of one of our own `say`/`dm`
   * requests whose ack was lost: it is left to the resent request's reply, so that
   * it is not shown once as an event and once more as an acknowledged send.
   */
  #claimOwn(message: ChatMessage): boolean {
    if (nameKey(message.from) !== nameKey(this.#nick)) return false;
    for (const pending of this.#pending.values()) {
      if (pending.claimed || pending.sentOn === null || pending.internal) continue;
      const h = pending.header;
      const same = message.type === "msg"
        ? pending.type === "say" && nameKey(String(h.room)) === nameKey(message.room)
        : pending.type === "dm" && nameKey(String(h.to)) === nameKey(message.to);
      if (same && h.text === message.text) {
        pending.claimed = true;
        return true;
      }
    }
    return false;
  }

  #internalRequest<T extends "sync" | "history">(
    link: Link,
    type: T,
    fields: RequestFields<T>,
  ): Promise<ReplyMap[T]> {
    const id = crypto.randomUUID();
    const header: Record<string, unknown> = { ...fields, type, id };
    return new Promise<ReplyMap[T]>((resolve, reject) => {
      const pending: Pending = {
        id,
        type,
        header,
        bytes: encodeFrame(header),
        resolve: resolve as (data: unknown) => void,
        reject,
        sentOn: null,
        attempts: 0,
        internal: true,
        claimed: false,
        rateRefusals: 0,
        announced: false,
      };
      this.#pending.set(id, pending);
      this.#transmit(pending, link);
      if (pending.sentOn === null) {
        this.#pending.delete(id);
        reject(new ChatError("connection_lost", "the connection dropped while catching up"));
      }
    });
  }

  // -------------------------------------------------------------------- events

  #emitServerEvent(event: ServerEvent): void {
    if (this.#held !== null) {
      this.#held.push(event);
      return;
    }
    if (event.type === "msg" || event.type === "dm") {
      if (this.#seen.has(event.id)) return;
      this.#markSeen(event.id);
    }
    this.#emit(event);
  }

  #emit(event: ChatEvent): void {
    this.#notify(event);
    if (!this.#events.push(event) && !this.#warnedDrop) {
      this.#warnedDrop = true;
      log.warn("events are not being read; dropping the oldest");
    }
  }

  #notify(event: ChatEvent): void {
    for (const listener of [...this.#eventListeners]) {
      try {
        listener(event);
      } catch (err) {
        log.error("an event listener threw: {error}", { error: describe(err) });
      }
    }
  }

  #markSeen(id: number, advance = true): void {
    this.#seen.add(id);
    if (advance && id > this.#lastSeen) this.#lastSeen = id;
    if (this.#seen.size > SEEN_LIMIT) {
      let drop = this.#seen.size - SEEN_LIMIT / 2;
      for (const old of this.#seen) {
        if (drop-- <= 0) break;
        this.#seen.delete(old);
      }
    }
  }

  // ------------------------------------------------------------------- closing

  #finish(reason: string | undefined, error?: ChatError): void {
    if (this.#state === "closed") return;
    this.#state = "closed";
    this.#stopPacing();
    this.#held = null;
    this.#wake?.();
    const link = this.#link;
    if (link !== null && !link.lost) {
      this.#sendAcks(link); // written before the close, like everything queued
      link.lost = true;
      void link.conn.close(1000);
    }
    for (const pending of this.#pending.values()) {
      if (pending.type === "logout" && this.#loggingOut) {
        pending.resolve({});
      } else if (error !== undefined) {
        pending.reject(
          new ChatError(
            error.code === "closed" ? "closed" : "disconnected",
            `not done: ${error.message}`,
            {
              cause: error,
            },
          ),
        );
      } else {
        pending.reject(new ChatError("closed", reason ?? "the client was closed"));
      }
    }
    this.#pending.clear();
    const closed: ClosedEvent = { type: "closed" };
    if (reason !== undefined) closed.reason = reason;
    if (error !== undefined) closed.code = error.code;
    this.#notify(closed);
    this.#events.push(closed);
    this.#events.end();
    this.#resolveDone();
  }

  async #closeQuietly(): Promise<void> {
    const link = this.#link;
    this.#link = null;
    if (link !== null) await link.conn.done;
  }

  #isClosed(): boolean {
    return this.#state === "closed";
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#wake = null;
        resolve();
      }, ms);
      this.#wake = () => {
        clearTimeout(timer);
        this.#wake = null;
        resolve();
      };
    });
  }
}

function describe(err: unknown): string {
  if (err instanceof Error) return err.message || err.name;
  return String(err);
}

/** Whether an encoded frame's header has exactly the fields of `header`. */
function frameHasHeader(frame: Uint8Array, header: Record<string, unknown>): boolean {
  let decoded: Record<string, unknown>;
  try {
    decoded = decodePayload(frame.subarray(LENGTH_PREFIX_BYTES)).header;
  } catch {
    return false;
  }
  const keys = Object.keys(header);
  if (keys.length !== Object.keys(decoded).length) return false;
  return keys.every((key) => decoded[key] === header[key]);
}

/**
 * The `error` frame standing for a frame over our limit that was skipped: answering
 * the request whose id its first bytes name (`{"type":"ok","re":"..."` as a server
 * writes its replies), if any, with `reply_too_large`.
 */
function oversizedError(
  length: number,
  max: number,
  head: Uint8Array,
): ServerMessageMap["error"] {
  const text = new TextDecoder().decode(head.subarray(4));
  const match = /^\{"type":"(?:ok|error)","re":("(?:[^"\\]|\\.){1,128}")/.exec(text);
  let re: string | undefined;
  try {
    if (match !== null) re = JSON.parse(match[1]);
  } catch {
    // not a reply we can name
  }
  return {
    type: "error",
    ...(re !== undefined ? { re } : {}),
    code: "reply_too_large",
    message: `the server sent a frame of ${length} bytes, over this client's limit of ${max}; ` +
      "it was skipped",
  };
}
