/**
 * The browser client's session: the chat protocol's frames over a WebSocket (the codec
 * of protocol/frame.ts, shared with the server and the terminal client), requests with
 * replies, and reconnection with resume, by the terminal client's rules
 * (client/chat_client.ts):
 *
 * 1. after a drop it dials again with exponential back-off and jitter, repeats the hello
 *    and the login, with a session token issued for this session (`token_issue`) right
 *    after a login with the password: the password is not kept, in memory or elsewhere;
 * 2. asks for every message after the highest id seen (`sync`, page by page) and hands
 *    on those not seen yet, in id order: no message is shown twice;
 * 3. resends every request that had no reply, in order, with its original id: `say` and
 *    `dm` are idempotent on the server by request id, so a message whose reply was lost
 *    is stored once.
 *
 * Frames that carry a body (a file's bytes, `file_data`) go to the listeners of
 * {@linkcode ChatSocket.onBody} (web/file_transfer.ts); a request may carry a body too
 * (`file_chunk`), kept with it to be resent after a reconnect.
 *
 * @module
 */

import { FATAL_LOGIN_CODES } from "../client/chat_error.ts";
import { LARGE_CHUNKS_FEATURE } from "../protocol/file_chunks.ts";
import { decodePayload, encodeFrame, type Frame, FrameDecoder } from "../protocol/frame.ts";
import { newRequestId } from "../protocol/request_id.ts";

/** The protocol version the page speaks. */
const PROTOCOL_VERSION = 1;
/** Features asked for in `hello` (`large_chunks`: file chunks of about 1 MiB). */
const FEATURES = [
  "rooms",
  "dm",
  "broadcast",
  "presence",
  "history",
  "receipts",
  "contacts",
  "block",
  LARGE_CHUNKS_FEATURE,
];
/** Messages per `sync` page while catching up. */
const SYNC_PAGE = 200;
/** Back-off bounds between reconnection attempts, in ms. */
const BACKOFF_MIN_MS = 250;
const BACKOFF_MAX_MS = 5000;

/** A header as it arrives: validated loosely by the UI that reads it. */
export type Header = Record<string, unknown>;

/** A room or direct message as stored by the server. */
export interface ChatMessage {
  type: "msg" | "dm";
  id: number;
  ts: number;
  from: string;
  text: string;
  room?: string;
  to?: string;
  held?: boolean;
}

/** A refused request. */
export class RequestError extends Error {
  /** The server's error code. */
  readonly code: string;
  /** Creates the error. */
  constructor(code: string, message: string) {
    super(message);
    this.name = "RequestError";
    this.code = code;
  }
}

/** How to log in: the password (then a session token is issued), or a session token. */
export type Credentials = { password: string } | { token: string };

/** Options of {@linkcode ChatSocket.open}. */
export interface OpenOptions {
  /**
   * Seconds the session's token works (`token_issue {ttl}`), when the login is not
   * remembered: the token is then renewed (a new one issued, the old one revoked) after
   * each reconnect and every third of this while connected. Absent: the server's
   * `--token-ttl`, never renewed (what "remember me" keeps).
   */
  tokenTtl?: number;
}

/** Server notices after which the session is over: no reconnecting. */
const FINAL_NOTICES: ReadonlySet<string> = new Set(["logged_out"]);

/** Connection states shown to the user. */
export type LinkState = "connecting" | "online" | "reconnecting" | "closed";

/** What the session tells the page. */
export interface ChatSocketHandlers {
  /** A server event (msg, dm, presence, member, topic, receipt, notice...). */
  event(header: Header): void;
  /** The link changed state; `why` explains a drop or an end. */
  state(state: LinkState, why?: string): void;
  /** Logged in again after a drop, caught up: the login reply. */
  resumed(login: Header): void;
}

interface Pending {
  id: string;
  header: Header;
  /** A frame body (a file chunk's bytes), sent again with the header after a reconnect. */
  body?: Uint8Array;
  resolve: (data: Header) => void;
  reject: (err: RequestError) => void;
  sent: boolean;
}

/** A frame's bytes (new ones, on an ArrayBuffer: what WebSocket.send takes). */
function frameOf(header: Header, body?: Uint8Array): Uint8Array<ArrayBuffer> {
  return encodeFrame(header, body) as Uint8Array<ArrayBuffer>;
}

/** Receives the body of a server frame that carries one (`file_data`), with its header. */
export type BodyListener = (header: Header, body: Uint8Array) => void;

/**
 * A new request id, in time order (a `say`'s is its message's client id: see
 * `protocol/request_id.ts`; crypto.randomUUID needs a secure context, this does not).
 */
function newId(): string {
  return newRequestId();
}

/**
 * One logged-in session over a WebSocket.
 *
 * @example
 * ```ts ignore
 * const { chat } = await ChatSocket.open(
 *   "ws://host:44445/ws", "alice", { password: "pw" }, false, handlers,
 * );
 * await chat.request("say", { room: "lobby", text: "hi" });
 * ```
 */
export class ChatSocket {
  readonly #url: string;
  readonly #nick: string;
  /** What the next login uses: the session's token once issued. */
  #credentials: Credentials;
  readonly #handlers: ChatSocketHandlers;
  readonly #pending = new Map<string, Pending>();
  #socket: WebSocket | null = null;
  #decoder = new FrameDecoder({ maxFrameSize: 64 * 1024 * 1024 });
  #ready = false;
  #closed = false;
  #catchingUp = false;
  #heldBack: Header[] = [];
  #attempt = 0;
  /** Why the server ended the session for good (a final notice), if it did. */
  #ended: string | null = null;
  /** Seconds of the session's renewed short-lived token, or null (see OpenOptions). */
  #tokenTtl: number | null = null;
  #renewTimer: ReturnType<typeof setInterval> | undefined;
  /** The highest message id handed on. */
  lastId = 0;
  /** Ids handed on above the sync point (live events may pass a sync page). */
  readonly #seen = new Set<number>();
  /** Listeners of frames with a body (web/file_transfer.ts). */
  readonly #bodyListeners = new Set<BodyListener>();
  /** The server's largest frame, from its hello (a file chunk must fit). */
  maxFrame = 1024 * 1024;
  /**
   * The server's bound on a connection's queued bytes, from its hello (null from an older
   * server): over a WebSocket, unread requests past it close the socket, so file chunks in
   * flight stay under it.
   */
  maxQueue: number | null = null;
  /**
   * The features the server shares, from its hello (asked again after a reconnect, which
   * may reach another server): with `large_chunks`, file chunks may be about 1 MiB.
   */
  features: readonly string[] = [];

  private constructor(
    url: string,
    nick: string,
    credentials: Credentials,
    handlers: ChatSocketHandlers,
  ) {
    this.#url = url;
    this.#nick = nick;
    this.#credentials = credentials;
    this.#handlers = handlers;
  }

  /**
   * Connects and logs in (`register`: create the account when it does not exist). After
   * a login with the password it asks for a session token, which later logins use.
   *
   * @throws {RequestError} when the server refuses the login or cannot be reached.
   */
  static async open(
    url: string,
    nick: string,
    credentials: Credentials,
    register: boolean,
    handlers: ChatSocketHandlers,
    options: OpenOptions = {},
  ): Promise<{ chat: ChatSocket; login: Header }> {
    const chat = new ChatSocket(url, nick, credentials, handlers);
    const login = await chat.#dial(register);
    if ("password" in credentials) {
      const ttl = options.tokenTtl;
      try {
        const issued = await chat.#internal("token_issue", ttl === undefined ? {} : { ttl });
        chat.#credentials = { token: String(issued.token) };
      } catch (err) {
        chat.close();
        throw err;
      }
    }
    if (options.tokenTtl !== undefined && "password" in credentials) {
      chat.#tokenTtl = options.tokenTtl;
      chat.#renewTimer = setInterval(() => {
        if (chat.#ready) chat.#renewToken().catch(() => {});
      }, options.tokenTtl * 1000 / 3);
    }
    chat.lastId = Number(login.lastId ?? 0);
    chat.#ready = true;
    handlers.state("online");
    return { chat, login };
  }

  /** Our own nick as the server spells it. */
  get nick(): string {
    return this.#nick;
  }

  /** The session token the page logs in with again (what "remember me" keeps). */
  get token(): string | null {
    return "token" in this.#credentials ? this.#credentials.token : null;
  }

  /**
   * Sends a request; resolves with the `ok` data or rejects with a {@linkcode RequestError}.
   * While offline the request waits and is sent after the next login.
   */
  request(type: string, fields: Header = {}, body?: Uint8Array): Promise<Header> {
    const id = newId();
    const header = { type, id, ...fields };
    return new Promise((resolve, reject) => {
      const pending: Pending = { id, header, body, resolve, reject, sent: false };
      this.#pending.set(id, pending);
      if (this.#ready) this.#transmit(pending);
    });
  }

  /**
   * Calls `listener` with every server frame that carries a body (`file_data`), as it
   * arrives; returns a function that stops it.
   */
  onBody(listener: BodyListener): () => void {
    this.#bodyListeners.add(listener);
    return () => this.#bodyListeners.delete(listener);
  }

  /**
   * Revokes this session's token (`everywhere`: every token of the account, and its
   * other sessions end), logs out and closes.
   */
  async logout(everywhere = false): Promise<void> {
    const token = this.token;
    const revoke = everywhere
      ? this.request("token_revoke", { all: true })
      : token !== null
      ? this.request("token_revoke", { token })
      : Promise.resolve({});
    try {
      await Promise.race([
        Promise.all([revoke, this.request("logout")]),
        new Promise((resolve) => setTimeout(resolve, 10_000)),
      ]);
    } catch {
      // closing anyway
    }
    this.close();
  }

  /** Closes without logging out; pending requests fail. */
  close(): void {
    this.#closed = true;
    this.#ready = false;
    clearInterval(this.#renewTimer);
    this.#socket?.close();
    for (const p of this.#pending.values()) p.reject(new RequestError("closed", "closed"));
    this.#pending.clear();
    this.#handlers.state("closed");
  }

  #transmit(pending: Pending): void {
    pending.sent = true;
    this.#socket?.send(frameOf(pending.header, pending.body));
  }

  /** Opens a socket, exchanges hellos, logs in; resolves with the login reply. */
  #dial(register: boolean): Promise<Header> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(this.#url);
      socket.binaryType = "arraybuffer";
      this.#socket = socket;
      this.#decoder = new FrameDecoder({ maxFrameSize: 64 * 1024 * 1024 });
      let phase: "hello" | "login" | "session" = "hello";
      const loginId = newId();
      const fail = (code: string, message: string) => {
        if (phase === "session") return;
        phase = "session";
        socket.close();
        reject(new RequestError(code, message));
      };
      socket.onopen = () => {
        socket.send(frameOf({
          type: "hello",
          v: PROTOCOL_VERSION,
          features: FEATURES,
          agent: "chat-web/1",
        }));
      };
      socket.onmessage = (event) => {
        let frames: Frame[];
        try {
          frames = this.#decoder.push(new Uint8Array(event.data as ArrayBuffer)).map(decodePayload);
        } catch (err) {
          fail("protocol_error", String(err));
          return;
        }
        for (const { header, body } of frames) {
          if (phase === "hello") {
            if (header.type !== "hello") {
              fail(String(header.code ?? "protocol_error"), String(header.message ?? "no hello"));
              return;
            }
            phase = "login";
            if (typeof header.maxFrame === "number") this.maxFrame = header.maxFrame;
            if (typeof header.maxQueue === "number") this.maxQueue = header.maxQueue;
            this.features = Array.isArray(header.features)
              ? header.features.filter((f): f is string => typeof f === "string")
              : [];
            socket.send(frameOf({
              type: "login",
              id: loginId,
              nick: this.#nick,
              ...this.#credentials,
              register,
              ack: true,
            }));
          } else if (phase === "login") {
            if (header.re !== loginId) continue;
            if (header.type === "error") {
              fail(String(header.code), String(header.message));
              return;
            }
            phase = "session";
            resolve(header);
          } else {
            this.#onFrame(header, body);
          }
        }
      };
      socket.onclose = (event) => {
        if (phase !== "session") {
          fail("unreachable", `the server could not be reached (${event.code})`);
          return;
        }
        if (this.#socket === socket) this.#dropped();
      };
    });
  }

  #onFrame(header: Header, body: Uint8Array): void {
    if (body.length > 0) {
      for (const listener of this.#bodyListeners) listener(header, body);
      return;
    }
    if (header.type === "ok" || (header.type === "error" && header.re !== undefined)) {
      const pending = this.#pending.get(String(header.re));
      if (pending === undefined) return;
      this.#pending.delete(pending.id);
      if (header.type === "ok") pending.resolve(header);
      else pending.reject(new RequestError(String(header.code), String(header.message)));
      return;
    }
    if (header.type === "notice" && FINAL_NOTICES.has(String(header.code))) {
      this.#ended = String(header.text);
    }
    if (header.type === "dm" && header.held === true) {
      // Held direct messages count as delivered once we have them.
      this.#socket?.send(frameOf({ type: "delivered", id: newId(), ids: [header.id] }));
    }
    if (this.#catchingUp) {
      this.#heldBack.push(header);
      return;
    }
    this.#handOn(header);
  }

  /** Hands an event on, once per message id. */
  #handOn(header: Header): void {
    if ((header.type === "msg" || header.type === "dm") && typeof header.id === "number") {
      if (header.id <= this.#syncPoint || this.#seen.has(header.id)) return;
      this.#seen.add(header.id);
      if (header.id > this.lastId) this.lastId = header.id;
      if (this.#seen.size > 10_000) this.#trimSeen();
    }
    this.#handlers.event(header);
  }

  /** Ids at or under this were handed on already (everything seen is above it). */
  #syncPoint = 0;

  #trimSeen(): void {
    const ids = [...this.#seen].sort((a, b) => a - b);
    const drop = ids.slice(0, ids.length - 5000);
    for (const id of drop) this.#seen.delete(id);
    this.#syncPoint = Math.max(this.#syncPoint, drop[drop.length - 1] ?? 0);
  }

  #dropped(): void {
    if (this.#closed) return;
    if (this.#ended !== null) {
      this.#handlers.state("closed", this.#ended);
      this.close();
      return;
    }
    this.#ready = false;
    for (const p of this.#pending.values()) p.sent = false;
    this.#handlers.state("reconnecting", "connection lost");
    this.#reconnect();
  }

  async #reconnect(): Promise<void> {
    while (!this.#closed) {
      const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** this.#attempt++);
      await new Promise((resolve) =>
        setTimeout(resolve, ceiling / 2 + Math.random() * ceiling / 2)
      );
      if (this.#closed) return;
      let login: Header;
      try {
        this.#catchingUp = true;
        login = await this.#dial(false);
      } catch (err) {
        this.#catchingUp = false;
        this.#heldBack = [];
        if (err instanceof RequestError && FATAL_LOGIN_CODES.has(err.code)) {
          this.#handlers.state("closed", err.message);
          this.close();
          return;
        }
        continue;
      }
      this.#attempt = 0;
      try {
        await this.#catchUp();
        await this.#renewToken();
      } catch {
        // the link dropped again while catching up: its close starts another round
        continue;
      }
      this.#ready = true;
      for (const p of this.#pending.values()) if (!p.sent) this.#transmit(p);
      this.#handlers.state("online");
      this.#handlers.resumed(login);
      return;
    }
  }

  /** Fetches and hands on what was missed, then what arrived meanwhile. */
  async #catchUp(): Promise<void> {
    try {
      while (true) {
        const page = await this.#internal("sync", { after: this.lastId, limit: SYNC_PAGE });
        const messages = (page.messages as ChatMessage[]).slice().sort((a, b) => a.id - b.id);
        for (const message of messages) this.#handOn(message as unknown as Header);
        if (page.more !== true || messages.length === 0) break;
      }
    } finally {
      this.#catchingUp = false;
      const held = this.#heldBack;
      this.#heldBack = [];
      for (const header of held) this.#handOn(header);
    }
  }

  /**
   * Renews a short-lived session token (see OpenOptions): a new one, then the old one
   * revoked. A refusal keeps the old one; a lost link rejects (`connection_lost`).
   */
  async #renewToken(): Promise<void> {
    if (this.#tokenTtl === null || !("token" in this.#credentials)) return;
    const old = this.#credentials.token;
    try {
      const issued = await this.#internal("token_issue", { ttl: this.#tokenTtl });
      this.#credentials = { token: String(issued.token) };
      await this.#internal("token_revoke", { token: old });
    } catch (err) {
      if (err instanceof RequestError && err.code === "connection_lost") throw err;
    }
  }

  /** A request sent now, on this link only (not resent). */
  #internal(type: string, fields: Header): Promise<Header> {
    const id = newId();
    const header = { type, id, ...fields };
    return new Promise((resolve, reject) => {
      const pending: Pending = { id, header, resolve, reject, sent: true };
      this.#pending.set(id, pending);
      const socket = this.#socket;
      socket?.send(frameOf(header));
      socket?.addEventListener("close", () => {
        if (this.#pending.delete(id)) reject(new RequestError("connection_lost", "dropped"));
      }, { once: true });
    });
  }
}
