/**
 * Private sessions set up through the chat server (`/private NICK`): direct, end-to-end
 * encrypted peer sessions (`peer/`) between two clients of the same server, which the
 * server introduces but cannot read. See `server/private.ts` for the messages.
 *
 * - The requester starts a peer listener on a free port, then asks the server
 *   (`private_start`), which asks the target (`private_request`).
 * - The target accepts (`private_accept`) and gets the requester's address as the server
 *   sees it plus the listener's port; it dials, and both run the peer handshake with the
 *   session id as a pre-shared key (so nobody else can take the listener). Both sides
 *   show the short authentication string (SAS) to compare.
 * - If the direct connection cannot be made within a few seconds (a firewall, a NAT),
 *   the target asks for a relay (`private_relay`): both sides then run the same
 *   handshake and records over {@linkcode RelayChannel}, through the server, which
 *   forwards bytes it cannot read.
 * - A direct session keeps working when the chat server goes away; a relayed one cannot.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { nameKey, nameProblem } from "../protocol/names.ts";
import { connectPeer } from "../peer/connect.ts";
import { findPeerError } from "../peer/errors.ts";
import { performHandshake } from "../peer/handshake.ts";
import { listenPeer } from "../peer/listen.ts";
import { PeerSession } from "../peer/session.ts";
import type { ChatClient, ChatEvent } from "./chat_client.ts";
import { ChatError } from "./chat_error.ts";
import { RelayChannel } from "./relay_channel.ts";

const log = getLogger(["chat", "client", "private"]);

/** Default time the target tries to reach the requester directly before relaying. */
export const DEFAULT_DIRECT_TIMEOUT_MS = 4000;
/** Default time a request waits for the other side's answer. */
export const DEFAULT_ANSWER_TIMEOUT_MS = 120_000;
/** Default time from an accept to an open session (direct or relayed). */
export const DEFAULT_SETUP_TIMEOUT_MS = 30_000;

/** A private session opened: compare `sas` with the other side. */
export interface PrivateOpenEvent {
  /** Event type. */
  type: "private_open";
  /** The other side. */
  nick: string;
  /** The short authentication string both sides show. */
  sas: string;
  /** Whether the records go directly, or through the server. */
  via: "direct" | "relay";
}

/** A text over a private session, received or sent (`from` is then our own nick). */
export interface PrivateTextEvent {
  /** Event type. */
  type: "private_text";
  /** The sender's message id. */
  id: string;
  /** The sender's clock, in ms since the epoch. */
  ts: number;
  /** Who sent it. */
  from: string;
  /** Who it went to. */
  to: string;
  /** The text as sent (sanitise before printing). */
  text: string;
}

/** A private session (or its setup) ended. */
export interface PrivateClosedEvent {
  /** Event type. */
  type: "private_closed";
  /** The other side. */
  nick: string;
  /** Why, in words. */
  reason: string;
  /** The error code when it failed (`decrypt_failed`, `connection_lost`, `declined`, ...). */
  code?: string;
}

/** Progress of a private session's setup, in words. */
export interface PrivateInfoEvent {
  /** Event type. */
  type: "private_info";
  /** The other side. */
  nick: string;
  /** What happened. */
  text: string;
}

/** What {@linkcode PrivateSessions} reports. */
export type PrivateEvent =
  | PrivateOpenEvent
  | PrivateTextEvent
  | PrivateClosedEvent
  | PrivateInfoEvent;

/** What private sessions need of the chat client. */
export type PrivateClient = Pick<ChatClient, "request" | "onRelay" | "onEvent" | "nick">;

/** Options of {@linkcode PrivateSessions}. */
export interface PrivateSessionsOptions {
  /** Receives every {@linkcode PrivateEvent} (to show it). */
  onEvent: (event: PrivateEvent) => void;
  /** Address the requester's peer listener binds. Default `0.0.0.0`. */
  listenHost?: string;
  /**
   * The port announced to the server instead of the listener's (a test hook to make
   * the direct connection fail). Default: the listener's port.
   */
  advertisePort?: number;
  /** Time the target tries to connect directly before relaying. Default 4 s. */
  directTimeoutMs?: number;
  /** Bound on each peer handshake. Default 10 s. */
  handshakeTimeoutMs?: number;
  /** Time a request waits for the answer. Default 2 min. */
  answerTimeoutMs?: number;
  /** Time from an accept to an open session. Default 30 s. */
  setupTimeoutMs?: number;
}

interface Entry {
  nick: string;
  readonly sid: string;
  readonly role: "requester" | "target";
  session: PeerSession | null;
  relay: RelayChannel | null;
  /** Settles when the session is open (or its setup failed). */
  ready: Promise<PeerSession>;
  /** Settles `ready` with the open session. */
  resolve: (session: PeerSession) => void;
  /** Cancels the setup with a reason. */
  fail: (error: ChatError) => void;
  /** Requester: the target asked for a relay. */
  relayRequested: () => void;
  /** Requester: the target accepted. */
  accepted: () => void;
  closing: boolean;
}

/**
 * The private sessions of one chat client. Commands call {@linkcode start},
 * {@linkcode accept}, {@linkcode decline}, {@linkcode send} and {@linkcode stop};
 * everything that happens is reported through `onEvent`.
 *
 * @example
 * ```ts ignore
 * import { PrivateSessions } from "./private_sessions.ts";
 * const privates = new PrivateSessions(client, { onEvent: (e) => console.log(e) });
 * await privates.start("bob"); // bob runs privates.accept("alice")
 * await privates.send("bob", "psst"); // waits for the session to open
 * ```
 */
export class PrivateSessions implements AsyncDisposable {
  readonly #client: PrivateClient;
  readonly #options: PrivateSessionsOptions;
  readonly #entries = new Map<string, Entry>();
  readonly #offers = new Map<string, { sid: string; from: string }>();
  readonly #unsubscribe: (() => void)[] = [];
  #closed = false;

  /** Follows `client`'s events from now on. */
  constructor(client: PrivateClient, options: PrivateSessionsOptions) {
    this.#client = client;
    this.#options = options;
    this.#unsubscribe.push(client.onEvent((event) => this.#onChatEvent(event)));
  }

  /** The nicks that asked us for a private session and wait for an answer. */
  get offers(): string[] {
    return [...this.#offers.values()].map((offer) => offer.from);
  }

  /** The open session with `nick`, if any. */
  session(nick: string): PeerSession | undefined {
    const session = this.#entries.get(nameKey(nick))?.session;
    return session === null || session?.closed ? undefined : session;
  }

  /**
   * Asks `nick` for a private session: starts a peer listener, tells the server its
   * port, and resolves once the server has passed the request on. The session opens
   * in the background (reported as `private_open`).
   *
   * @throws {ChatError} `self`, `already_private`, or the server's refusal: `unknown_user`,
   * `offline`, `blocked`, ...
   */
  async start(nick: string): Promise<void> {
    this.#checkOpen();
    this.#checkNick(nick);
    const key = nameKey(nick);
    if (key === nameKey(this.#client.nick)) {
      throw new ChatError("self", "you cannot start a private session with yourself");
    }
    this.#checkFree(nick);
    const sid = newSid();
    const stopListening = new AbortController();
    let bound!: (port: number) => void;
    const port = new Promise<number>((resolve) => bound = resolve);
    const direct = listenPeer({
      host: this.#options.listenHost ?? "0.0.0.0",
      port: 0,
      nick: this.#client.nick,
      psk: pskOf(sid),
      signal: stopListening.signal,
      ...this.#handshakeTimeout(),
      onListening: (addr) => bound(addr.port),
      onRejected: (error, remote) => {
        log.info("private listener rejected {remote}: {message}", {
          remote: "hostname" in remote ? remote.hostname : remote.transport,
          message: error.message,
        });
      },
    });
    direct.catch(() => {});
    let listenerPort: number;
    try {
      listenerPort = await Promise.race([port, direct.then(() => 0)]);
    } catch (err) {
      throw new ChatError("connect_failed", `cannot start a peer listener: ${describe(err)}`, {
        cause: err,
      });
    }
    const entry = this.#newEntry(nick, sid, "requester");
    this.#entries.set(key, entry);
    let reply;
    try {
      reply = await this.#client.request("private_start", {
        nick,
        sid,
        port: this.#options.advertisePort ?? listenerPort,
      });
    } catch (err) {
      stopListening.abort();
      this.#forget(entry);
      throw err;
    }
    entry.nick = reply.nick;
    this.#emit({
      type: "private_info",
      nick: entry.nick,
      text: `asked ${entry.nick} for a private session; waiting for an answer`,
    });
    this.#runRequester(entry, direct, stopListening);
  }

  /**
   * Accepts `nick`'s request: connects directly (or through the server when that fails)
   * and resolves once the session is open or its setup failed (reported as
   * `private_open` or `private_closed`).
   *
   * @throws {ChatError} `no_private_request`, `already_private`, or the server's refusal.
   */
  async accept(nick: string): Promise<void> {
    this.#checkOpen();
    this.#checkNick(nick);
    const key = nameKey(nick);
    if (!this.#offers.has(key)) {
      throw new ChatError("no_private_request", `${nick} has not asked you for a private session`);
    }
    this.#checkFree(nick);
    const reply = await this.#client.request("private_accept", { nick });
    this.#offers.delete(key);
    const entry = this.#newEntry(reply.nick, reply.sid, "target");
    this.#entries.set(key, entry);
    this.#emit({
      type: "private_info",
      nick: entry.nick,
      text: `connecting to ${entry.nick} at ${hostPort(reply.host, reply.port)}`,
    });
    this.#runTarget(entry, reply.host, reply.port);
    await entry.ready.catch(() => {});
  }

  /**
   * Declines `nick`'s request.
   *
   * @throws {ChatError} `no_private_request`, or the server's refusal.
   */
  async decline(nick: string): Promise<void> {
    this.#checkOpen();
    this.#checkNick(nick);
    const key = nameKey(nick);
    if (!this.#offers.has(key)) {
      throw new ChatError("no_private_request", `${nick} has not asked you for a private session`);
    }
    const reply = await this.#client.request("private_decline", { nick });
    this.#offers.delete(key);
    this.#emit({
      type: "private_info",
      nick: reply.nick,
      text: `declined ${reply.nick}'s request`,
    });
  }

  /**
   * Sends `text` over the private session with `nick`, waiting for it to open when it is
   * being set up.
   *
   * @throws {ChatError} `no_private` ("Private messaging to NICK not enabled"), `bad_text`,
   * or `connection_lost` when the session failed.
   */
  async send(nick: string, text: string): Promise<void> {
    const entry = this.#entries.get(nameKey(nick));
    if (entry === undefined || entry.closing) {
      throw new ChatError("no_private", `Private messaging to ${nick} not enabled`);
    }
    let session: PeerSession;
    try {
      session = await entry.ready;
    } catch {
      throw new ChatError("no_private", `Private messaging to ${nick} not enabled`);
    }
    if (session.closed) {
      throw new ChatError("no_private", `Private messaging to ${nick} not enabled`);
    }
    try {
      const sent = await session.sendText(text);
      this.#emit({
        type: "private_text",
        id: sent.id,
        ts: sent.ts,
        from: this.#client.nick,
        to: entry.nick,
        text,
      });
    } catch (err) {
      const peerError = findPeerError(err);
      if (peerError?.code === "invalid_text") throw new ChatError("bad_text", peerError.message);
      throw new ChatError("connection_lost", `not sent to ${entry.nick}: ${describe(err)}`, {
        cause: err,
      });
    }
  }

  /**
   * Ends the private session with `nick` (or its setup, or a request we made), telling
   * the other side.
   *
   * @throws {ChatError} `no_private` when there is none.
   */
  async stop(nick: string): Promise<void> {
    const key = nameKey(nick);
    const entry = this.#entries.get(key);
    if (entry === undefined || entry.closing) {
      throw new ChatError("no_private", `no private session with ${nick}`);
    }
    entry.closing = true;
    const session = entry.session;
    if (session !== null) {
      await session.close();
    } else {
      entry.fail(new ChatError("closed", "stopped"));
    }
    entry.relay?.close();
    await this.#tellServerStop(entry);
    this.#forget(entry);
    this.#emit({ type: "private_closed", nick: entry.nick, reason: "you closed it" });
  }

  /** Closes every private session (with a goodbye) and stops following the client. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const dispose of this.#unsubscribe) dispose();
    const entries = [...this.#entries.values()];
    this.#entries.clear();
    await Promise.all(entries.map(async (entry) => {
      entry.closing = true;
      if (entry.session !== null) await entry.session.close();
      else entry.fail(new ChatError("closed", "the client is closing"));
      entry.relay?.close();
    }));
  }

  /** Closes everything; for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  // ---------------------------------------------------------------------- setup

  #newEntry(nick: string, sid: string, role: "requester" | "target"): Entry {
    let fail!: (error: ChatError) => void;
    let resolve!: (session: PeerSession) => void;
    const ready = new Promise<PeerSession>((onOpen, onFail) => {
      resolve = onOpen;
      fail = onFail;
    });
    ready.catch(() => {});
    const entry: Entry = {
      nick,
      sid,
      role,
      session: null,
      relay: null,
      ready,
      resolve,
      fail,
      relayRequested: () => {},
      accepted: () => {},
      closing: false,
    };
    return entry;
  }

  #open(entry: Entry, session: PeerSession, via: "direct" | "relay"): void {
    entry.session = session;
    entry.resolve(session);
    this.#emit({ type: "private_open", nick: entry.nick, sas: session.sas, via });
    this.#follow(entry, session);
  }

  /** Requester: waits for the target's direct connection, or for a relay. */
  async #runRequester(
    entry: Entry,
    direct: Promise<PeerSession>,
    stopListening: AbortController,
  ): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const arm = (ms: number, what: string) => {
      clearTimeout(timer);
      timer = setTimeout(() => entry.fail(new ChatError("timeout", what)), ms);
    };
    arm(
      this.#options.answerTimeoutMs ?? DEFAULT_ANSWER_TIMEOUT_MS,
      `${entry.nick} did not answer the request`,
    );
    entry.accepted = () =>
      arm(
        this.#options.setupTimeoutMs ?? DEFAULT_SETUP_TIMEOUT_MS,
        `${entry.nick} accepted, but no connection came through`,
      );
    const relay = new Promise<"relay">((resolve) => entry.relayRequested = () => resolve("relay"));
    try {
      const winner = await Promise.race([direct, relay, entry.ready]);
      if (winner === "relay") {
        stopListening.abort();
        const channel = this.#relayOf(entry);
        const result = await Promise.race([
          performHandshake(channel, {
            role: "responder",
            nick: this.#client.nick,
            psk: pskOf(entry.sid),
            ...this.#handshakeTimeout(),
          }),
          entry.ready,
        ]) as Awaited<ReturnType<typeof performHandshake>>;
        const session = new PeerSession({
          channel: result.channel,
          role: "responder",
          localNick: this.#client.nick,
          remoteNick: result.remoteNick,
          sas: result.sas,
        });
        this.#checkRemote(entry, session);
        this.#open(entry, session, "relay");
      } else {
        const session = winner as PeerSession;
        this.#checkRemote(entry, session);
        this.#open(entry, session, "direct");
      }
    } catch (err) {
      stopListening.abort();
      this.#setupFailed(entry, err);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Target: dials the requester; relays through the server when that fails. */
  async #runTarget(entry: Entry, host: string, port: number): Promise<void> {
    const timer = setTimeout(
      () => entry.fail(new ChatError("timeout", `no session with ${entry.nick} in time`)),
      this.#options.setupTimeoutMs ?? DEFAULT_SETUP_TIMEOUT_MS,
    );
    try {
      let session: PeerSession;
      let via: "direct" | "relay" = "direct";
      try {
        session = await Promise.race([
          connectPeer({
            host,
            port,
            nick: this.#client.nick,
            psk: pskOf(entry.sid),
            connectTimeoutMs: this.#options.directTimeoutMs ?? DEFAULT_DIRECT_TIMEOUT_MS,
            ...this.#handshakeTimeout(),
          }),
          entry.ready,
        ]);
      } catch (err) {
        if (findPeerError(err)?.code !== "connect_failed") throw err;
        via = "relay";
        this.#emit({
          type: "private_info",
          nick: entry.nick,
          text: "direct connection failed; relaying encrypted records through the server",
        });
        const channel = this.#relayOf(entry);
        await this.#client.request("private_relay", { sid: entry.sid });
        const result = await Promise.race([
          performHandshake(channel, {
            role: "initiator",
            nick: this.#client.nick,
            psk: pskOf(entry.sid),
            ...this.#handshakeTimeout(),
          }),
          entry.ready,
        ]) as Awaited<ReturnType<typeof performHandshake>>;
        session = new PeerSession({
          channel: result.channel,
          role: "initiator",
          localNick: this.#client.nick,
          remoteNick: result.remoteNick,
          sas: result.sas,
        });
      }
      this.#checkRemote(entry, session);
      this.#open(entry, session, via);
    } catch (err) {
      this.#setupFailed(entry, err);
    } finally {
      clearTimeout(timer);
    }
  }

  /** The session must be with the nick the server introduced. */
  #checkRemote(entry: Entry, session: PeerSession): void {
    if (nameKey(session.remoteNick) !== nameKey(entry.nick)) {
      session.abort();
      throw new ChatError(
        "handshake_failed",
        `the peer calls itself ${session.remoteNick}, not ${entry.nick}`,
      );
    }
  }

  #setupFailed(entry: Entry, err: unknown): void {
    entry.fail(err instanceof ChatError ? err : new ChatError("closed", describe(err)));
    entry.relay?.close();
    if (entry.closing || this.#entries.get(nameKey(entry.nick)) !== entry) return;
    this.#forget(entry);
    const code = err instanceof ChatError
      ? String(err.code)
      : findPeerError(err)?.code ?? "handshake_failed";
    this.#emit({
      type: "private_closed",
      nick: entry.nick,
      reason: describe(err),
      code,
    });
    void this.#tellServerStop(entry);
  }

  /** Reports the session's messages until it ends. */
  async #follow(entry: Entry, session: PeerSession): Promise<void> {
    let reason = `${entry.nick} closed the private session`;
    let code: string | undefined;
    try {
      for await (const event of session) {
        if (event.type === "text") {
          this.#emit({
            type: "private_text",
            id: event.id,
            ts: event.ts,
            from: event.from,
            to: this.#client.nick,
            text: event.text,
          });
        }
      }
    } catch (err) {
      const peerError = findPeerError(err);
      reason = describe(err);
      code = peerError?.code ?? "connection_lost";
    }
    // A local stop ends the iteration at once; stop() closes the relay after the goodbye.
    if (entry.closing || this.#entries.get(nameKey(entry.nick)) !== entry) return;
    entry.relay?.close();
    entry.closing = true;
    this.#forget(entry);
    this.#emit({
      type: "private_closed",
      nick: entry.nick,
      reason,
      ...(code !== undefined ? { code } : {}),
    });
    void this.#tellServerStop(entry);
  }

  // ---------------------------------------------------------------- chat events

  #onChatEvent(event: ChatEvent): void {
    switch (event.type) {
      case "private_request":
        this.#offers.set(nameKey(event.from), { sid: event.sid, from: event.from });
        return;
      case "private_ready": {
        const entry = this.#bySid(event.sid);
        if (entry === undefined || entry.role !== "requester") return;
        entry.accepted();
        this.#emit({
          type: "private_info",
          nick: entry.nick,
          text: `${entry.nick} accepted; waiting for the direct connection from ${event.host}`,
        });
        return;
      }
      case "private_relay": {
        const entry = this.#bySid(event.sid);
        if (entry === undefined || entry.role !== "requester") return;
        this.#relayOf(entry); // from now on, relayed bytes are kept
        this.#emit({
          type: "private_info",
          nick: entry.nick,
          text: "direct connection failed; relaying encrypted records through the server",
        });
        entry.relayRequested();
        return;
      }
      case "private_ended": {
        const key = nameKey(event.nick);
        if (this.#offers.get(key)?.sid === event.sid) {
          this.#offers.delete(key);
          this.#emit({
            type: "private_info",
            nick: event.nick,
            text: `${event.nick} withdrew the private session request`,
          });
          return;
        }
        const entry = this.#bySid(event.sid);
        if (entry === undefined) return;
        if (entry.session === null) {
          entry.fail(
            new ChatError(
              event.reason,
              event.reason === "declined"
                ? `${entry.nick} declined the private session`
                : `${entry.nick} ended the private session (${event.reason})`,
            ),
          );
        } else if (entry.relay !== null) {
          // Whatever the other side sent before it left is still read, then the end.
          entry.relay.end();
        }
        // A direct session speaks for itself: its goodbye (or loss) comes over the line.
        return;
      }
      case "disconnected":
      case "closed":
        for (const entry of [...this.#entries.values()]) {
          entry.relay?.fail(
            new Deno.errors.ConnectionReset("the relay through the server was lost"),
          );
          if (entry.session === null && entry.relay === null) {
            entry.fail(
              new ChatError("disconnected", "the connection to the server was lost"),
            );
          }
        }
        this.#offers.clear();
        return;
    }
  }

  // -------------------------------------------------------------------- helpers

  #relayOf(entry: Entry): RelayChannel {
    entry.relay ??= new RelayChannel(this.#client, entry.sid);
    return entry.relay;
  }

  #bySid(sid: string): Entry | undefined {
    for (const entry of this.#entries.values()) if (entry.sid === sid) return entry;
    return undefined;
  }

  #forget(entry: Entry): void {
    const key = nameKey(entry.nick);
    if (this.#entries.get(key) === entry) this.#entries.delete(key);
  }

  async #tellServerStop(entry: Entry): Promise<void> {
    if (this.#closed) return;
    try {
      await this.#client.request("private_stop", { nick: entry.nick });
    } catch {
      // already ended there, or the server is gone: nothing to tell
    }
  }

  #emit(event: PrivateEvent): void {
    try {
      this.#options.onEvent(event);
    } catch (err) {
      log.error("onEvent threw: {error}", { error: describe(err) });
    }
  }

  #handshakeTimeout(): { handshakeTimeoutMs?: number; timeoutMs?: number } {
    const ms = this.#options.handshakeTimeoutMs;
    return ms === undefined ? {} : { handshakeTimeoutMs: ms, timeoutMs: ms };
  }

  #checkOpen(): void {
    if (this.#closed) throw new ChatError("closed", "private sessions are closed");
  }

  #checkNick(nick: string): void {
    const problem = nameProblem(nick);
    if (problem !== null) throw new ChatError("bad_name", `bad nick "${nick}": ${problem}`);
  }

  #checkFree(nick: string): void {
    const existing = this.#entries.get(nameKey(nick));
    if (existing !== undefined && !existing.closing) {
      throw new ChatError(
        "already_private",
        `a private session with ${existing.nick} is already open or being set up`,
      );
    }
  }
}

/** A fresh private session id: 16 random bytes, base64url. */
function newSid(): string {
  return crypto.getRandomValues(new Uint8Array(16)).toBase64({
    alphabet: "base64url",
    omitPadding: true,
  });
}

/** The pre-shared key of a brokered session: its id (keeps strangers off the listener). */
function pskOf(sid: string): Uint8Array {
  return new TextEncoder().encode(`chat-private ${sid}`);
}

function hostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

function describe(err: unknown): string {
  if (err instanceof Error) return err.message || err.name;
  return String(err);
}
