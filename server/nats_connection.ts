/**
 * One connection to NATS (core, no JetStream) shared by the NATS broker and cluster bus
 * of a `chat serve` node.
 *
 * It is opened from a server list such as `nats://a:4222,nats://b:4222`; credentials
 * may ride in the URLs (`nats://user:password@a:4222`, or `nats://token@a:4222`) and are
 * handed to the client as options, never logged. Once connected it reconnects forever,
 * trying the servers in turn with a bounded wait between attempts, and logs each
 * disconnect and reconnect. {@linkcode NatsLink.onReconnect} listeners run after the
 * client has resubscribed and the server confirmed it (a flush), so that what they read
 * again cannot miss anything published after.
 *
 * One link per node: by default the server does not send a connection its own
 * publications back (`noEcho`), since the broker and the bus deliver to their own node
 * directly; two "nodes" on one link would therefore not hear each other.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { NatsConnection } from "@nats-io/transport-node";
import { connectGuarded } from "./nats_transport.ts";

const log = getLogger(["chat", "server", "nats"]);

/** Raised when NATS cannot be reached at start, or a server list is malformed. */
export class NatsConnectError extends Error {
  /** Stable error code. */
  readonly code = "nats_unavailable";

  /** Creates the error with a one-line message. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "NatsConnectError";
  }
}

/** Raised by operations on a connection that was closed. */
export class NatsClosedError extends Error {
  /** Stable error code. */
  readonly code = "nats_closed";

  /** Creates the error. */
  constructor(message = "the NATS connection is closed") {
    super(message);
    this.name = "NatsClosedError";
  }
}

/** A server list split into addresses and credentials. */
export interface NatsServerList {
  /** `host:port` addresses (`nats://` and credentials removed). */
  readonly servers: readonly string[];
  /** User name, when the URLs carry `user:password@`. */
  readonly user?: string;
  /** Password, with {@linkcode user}. */
  readonly pass?: string;
  /** Token, when the URLs carry `token@` (a user without a password). */
  readonly token?: string;
}

/**
 * Splits a comma-separated server list. Credentials found in several URLs must agree.
 *
 * @example
 * ```ts
 * import { parseNatsServers } from "./nats_connection.ts";
 * const list = parseNatsServers("nats://chat:secret@a:4222, nats://b");
 * // list.servers: ["a:4222", "b:4222"]; list.user: "chat"; list.pass: "secret"
 * ```
 */
export function parseNatsServers(list: string): NatsServerList {
  const servers: string[] = [];
  let user: string | undefined;
  let pass: string | undefined;
  let token: string | undefined;
  for (const raw of list.split(",")) {
    const entry = raw.trim();
    if (entry === "") continue;
    const withScheme = entry.includes("://") ? entry : `nats://${entry}`;
    let url: URL;
    try {
      url = new URL(withScheme);
    } catch (err) {
      throw new NatsConnectError(`not a NATS server address: ${redact(entry)}`, { cause: err });
    }
    if (url.protocol !== "nats:") {
      throw new NatsConnectError(`unsupported NATS scheme ${url.protocol} in ${redact(entry)}`);
    }
    if (url.hostname === "") throw new NatsConnectError(`no host in ${redact(entry)}`);
    const u = url.username === "" ? undefined : decodeURIComponent(url.username);
    const p = url.password === "" ? undefined : decodeURIComponent(url.password);
    if (u !== undefined && p === undefined) {
      if (token !== undefined && token !== u) throw mixed();
      token = u;
    } else if (u !== undefined) {
      if ((user !== undefined && user !== u) || (pass !== undefined && pass !== p)) throw mixed();
      user = u;
      pass = p;
    }
    servers.push(`${url.hostname}:${url.port === "" ? "4222" : url.port}`);
  }
  if (servers.length === 0) throw new NatsConnectError("the NATS server list is empty");
  if (token !== undefined && user !== undefined) throw mixed();
  return { servers, user, pass, token };
}

function mixed(): NatsConnectError {
  return new NatsConnectError("the NATS server list carries different credentials");
}

/** `entry` with any credentials replaced by `***` (for messages and logs). */
export function redact(entry: string): string {
  return entry.replace(/\/\/[^@/]*@/, "//***@");
}

/** How {@linkcode NatsLink.open} connects. */
export interface NatsLinkOptions {
  /** Client name shown by the server's monitoring (default `chat`). */
  readonly name?: string;
  /** Wait between reconnect attempts, in ms (default 500; a random 0–250 ms is added). */
  readonly reconnectWaitMs?: number;
  /** How long the first connection and each handshake may take, in ms (default 10 000). */
  readonly connectTimeoutMs?: number;
  /** Interval of the client's pings, in ms (default 10 000; 3 unanswered mean dead). */
  readonly pingIntervalMs?: number;
  /**
   * Whether the server sends this connection its own publications back (default false:
   * the broker and the bus deliver to their own node directly).
   */
  readonly echo?: boolean;
  /** Whether the servers are tried in a random order, spreading nodes (default true). */
  readonly randomize?: boolean;
}

/**
 * An open NATS connection with its reconnect events.
 *
 * @example
 * ```ts ignore
 * import { NatsLink } from "./nats_connection.ts";
 * const link = await NatsLink.open("nats://127.0.0.1:4222");
 * link.onReconnect(() => console.log("back"));
 * await link.close();
 * ```
 */
export class NatsLink {
  /** The client connection. */
  readonly connection: NatsConnection;
  /** The server list as given, credentials redacted. */
  readonly description: string;
  readonly #reconnectListeners = new Set<() => void>();
  #connected = true;
  #closed = false;
  /** Resolved at the next confirmed reconnect (or close); replaced after each. */
  #nextReconnect = Promise.withResolvers<void>();

  private constructor(connection: NatsConnection, description: string) {
    this.connection = connection;
    this.description = description;
    this.#watch();
  }

  /**
   * Connects to the first reachable server of `servers` (a comma-separated list of
   * `nats://[user:password@|token@]host[:port]`); throws {@linkcode NatsConnectError}
   * when none answers within the connect timeout. Then reconnects forever.
   */
  static async open(servers: string, options: NatsLinkOptions = {}): Promise<NatsLink> {
    const list = parseNatsServers(servers);
    const description = list.servers.join(",");
    let connection: NatsConnection;
    try {
      connection = await connectGuarded({
        servers: [...list.servers],
        name: options.name ?? "chat",
        user: list.user,
        pass: list.pass,
        token: list.token,
        noEcho: !(options.echo ?? false),
        noRandomize: !(options.randomize ?? true),
        timeout: options.connectTimeoutMs ?? 10_000,
        reconnect: true,
        maxReconnectAttempts: -1,
        reconnectTimeWait: options.reconnectWaitMs ?? 500,
        reconnectJitter: 250,
        reconnectJitterTLS: 250,
        pingInterval: options.pingIntervalMs ?? 10_000,
        maxPingOut: 3,
        // Authentication failures must not end the connection for good either.
        ignoreAuthErrorAbort: true,
      });
    } catch (err) {
      throw new NatsConnectError(
        `cannot connect to NATS at ${description}: ${err instanceof Error ? err.message : err}`,
        { cause: err },
      );
    }
    // The first connection drops every server that refused it from the client's pool:
    // put the whole list back, so that reconnects try them all, forever.
    connection.setServers([...list.servers]);
    log.info("connected to NATS at {server}", { server: connection.getServer() });
    return new NatsLink(connection, description);
  }

  /** Whether the connection is up (publications are not sent while it is down). */
  get connected(): boolean {
    return this.#connected && !this.#closed;
  }

  /** Whether {@linkcode close} was called or the client gave up. */
  get closed(): boolean {
    return this.#closed;
  }

  /** The largest message the server accepts, in bytes. */
  get maxPayload(): number {
    return this.connection.info?.max_payload ?? 1024 * 1024;
  }

  /**
   * Calls `listener` after each reconnect, once the server has confirmed the
   * resubscriptions. Returns its removal.
   */
  onReconnect(listener: () => void): () => void {
    this.#reconnectListeners.add(listener);
    return () => this.#reconnectListeners.delete(listener);
  }

  /**
   * Resolves once the server has processed everything sent so far (subscriptions
   * included). While the connection is down it waits for the next reconnect (whose
   * resubscriptions cover what was subscribed meanwhile); throws
   * {@linkcode NatsClosedError} once closed.
   */
  async confirm(): Promise<void> {
    while (true) {
      if (this.#closed) throw new NatsClosedError();
      const next = this.#nextReconnect.promise;
      if (this.#connected) {
        try {
          await this.connection.flush();
          return;
        } catch {
          // Lost while waiting for the pong: confirmed by the next reconnect.
        }
      }
      await next;
    }
  }

  /** Closes the connection (idempotent); what was published is sent first. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#nextReconnect.resolve();
    try {
      if (this.#connected) await this.connection.flush();
    } catch { /* lost anyway */ }
    await this.connection.close();
  }

  async #watch(): Promise<void> {
    for await (const status of this.connection.status()) {
      switch (status.type) {
        case "disconnect":
          this.#connected = false;
          log.warn("disconnected from NATS at {server}; reconnecting", { server: status.server });
          break;
        case "reconnect":
          await this.#reconnected(status.server);
          break;
        case "error":
          log.warn("NATS error: {error}", { error: status.error.message });
          break;
        case "staleConnection":
          log.warn("NATS at {server} stopped answering pings", { server: this.description });
          break;
        case "ldm":
          log.info("NATS at {server} is entering lame duck mode", { server: status.server });
          break;
        case "close":
          this.#closed = true;
          this.#nextReconnect.resolve();
          return;
      }
    }
  }

  async #reconnected(server: string): Promise<void> {
    try {
      // The client resent its subscriptions on reconnecting: once the server answers
      // this ping they are in place, and listeners may read what they missed.
      await this.connection.flush();
    } catch {
      return; // lost again: the next reconnect will do it
    }
    this.#connected = true;
    log.info("reconnected to NATS at {server}", { server });
    const resolved = this.#nextReconnect;
    this.#nextReconnect = Promise.withResolvers<void>();
    resolved.resolve();
    for (const listener of [...this.#reconnectListeners]) {
      try {
        listener();
      } catch (err) {
        log.error("a NATS reconnect listener failed: {err}", { err });
      }
    }
  }
}
