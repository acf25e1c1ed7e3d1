/**
 * The chat server: listener, accept loop, deadline wheel and graceful shutdown,
 * wiring connections to the chat hub, the store and the broker.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { FramedConnection } from "../transport/framed_connection.ts";
import { listen, tuneAccepted } from "../transport/net.ts";
import { PartialFrameBudget } from "../transport/partial_frame_budget.ts";
import { ServerTls, ServerTlsConn } from "../transport/server_tls.ts";
import type { ByteChannel } from "../transport/framed_connection.ts";
import type { Broker } from "./broker.ts";
import type { ClusterBus } from "./cluster_bus.ts";
import type { ServerConfig } from "./config.ts";
import { DeadlineWheel, type Timed } from "./deadline_wheel.ts";
import { ClientConnection } from "./connection.ts";
import { IrcConnection } from "./irc_connection.ts";
import { encodeIrcLine } from "../protocol/irc_line.ts";
import { LineConnection } from "../transport/line_connection.ts";
import { isDiskFull } from "./disk_space.ts";
import { CHUNK_PAYLOADS, FileService, type FileServiceDeps } from "./files.ts";
import { openEngines } from "./engines.ts";
import { PostgresStore } from "./postgres_store.ts";
import { CatchUpBroker } from "./reconnect_catch_up.ts";
import { ChatHub } from "./hub.ts";
import { startPrivateSessions } from "./private.ts";
import { instrumentStore } from "./instrumented_store.ts";
import { ServerMetrics } from "./metrics.ts";
import type { Store } from "./store.ts";
import { startWebServer, type WebServer } from "./web_server.ts";

const log = getLogger(["chat", "server"]);

/** Gives a file chunk's payload a pooled buffer (one function for every connection). */
function takeChunkPayload(length: number): Uint8Array {
  return CHUNK_PAYLOADS.take(length);
}

/** Milliseconds of a tick of the deadline wheel (login, idle, stalled writes). */
const SWEEP_INTERVAL_MS = 250;

/** A running server. */
export interface ChatServer {
  /** The address it listens on (the actual port when 0 was asked). */
  readonly addr: Deno.NetAddr;
  /** Whether it serves TLS. */
  readonly tls: boolean;
  /** The metrics endpoint's address, when it is on. */
  readonly metricsAddr: Deno.NetAddr | null;
  /** The browser client's address (HTTP, or HTTPS with TLS), when it is on. */
  readonly webAddr: Deno.NetAddr | null;
  /** The IRC listener's address, when it is on (`--irc-port`). */
  readonly ircAddr: Deno.NetAddr | null;
  /** The IRC-over-TLS listener's address, when it is on (`--irc-tls-port`). */
  readonly ircTlsAddr: Deno.NetAddr | null;
  /** The chat state (for tests and metrics). */
  readonly hub: ChatHub;
  /**
   * Drains and stops: stops accepting, tells every client to reconnect elsewhere,
   * closes sessions a few at a time over the drain window, finishes writes, closes the
   * store. Safe to call more than once.
   */
  shutdown(reason?: string): Promise<void>;
  /** Resolves when the server has shut down. */
  readonly finished: Promise<void>;
  /** Bytes queued to clients and not yet written, over every connection. */
  readonly queuedBytes: number;
  /** Connections being served (chat, browser and IRC clients). */
  readonly connectionCount: number;
  /**
   * Connections waiting on a deadline (login, idle timeout, a write under way, an
   * unfinished frame; an IRC connection always): none once every chat client is logged
   * in and quiet, without an idle timeout.
   */
  readonly deadlinesPending: number;
}

/** Replaceable parts of a server (tests inject an in-memory store). */
export interface ServerDeps {
  /** Storage; default SQLite in `config.dataDir`, or memory when it is null. */
  store?: Store;
  /** Fan-out; default in-process. */
  broker?: Broker;
  /**
   * Node-to-node messages of a cluster (presence, caches, limits); default a bus of its
   * own (a single server). Closed at shutdown.
   */
  bus?: ClusterBus;
  /**
   * Held files' metadata and bytes (closed with the server); default the file folder
   * (`files.db` and the bytes), or memory and a temporary folder without a data folder.
   */
  files?: FileServiceDeps;
}

/**
 * Starts a chat server.
 *
 * @throws {Error} with a clear message when the port is in use, the data folder is
 * not writable, or the TLS material is unusable.
 * @example
 * ```ts ignore
 * import { startServer } from "./server.ts";
 * import { resolveServerConfig } from "./config.ts";
 * const server = await startServer(resolveServerConfig({ port: 0, dataDir: null }));
 * console.log(server.addr.port);
 * await server.shutdown();
 * ```
 */
export async function startServer(
  config: ServerConfig,
  deps: ServerDeps = {},
): Promise<ChatServer> {
  const metrics = new ServerMetrics();
  const engines = await openEngines(config, deps);
  log.info("engines: {engines}", { engines: engines.description });
  const store = instrumentStore(engines.store, metrics);
  const broker = engines.broker;
  let listener: Deno.Listener;
  let ircListener: Deno.Listener | null = null;
  let ircTlsListener: Deno.Listener | null = null;
  let tls: ServerTls | null = null;
  try {
    await closeOpenSessions(store);
    // TLS runs over accepted TCP connections (see transport/server_tls.ts for why).
    if (config.tls !== undefined) tls = new ServerTls(config.tls);
    listener = listen({ host: config.host, port: config.port });
  } catch (err) {
    await broker.close().catch(() => {});
    await engines.bus.close().catch(() => {});
    await store.close().catch(() => {});
    throw describeListenError(err, config);
  }
  const closeEngines = async () => {
    await broker.close().catch(() => {});
    await engines.bus.close().catch(() => {});
    await store.close().catch(() => {});
  };
  if (config.ircTlsPort !== null && tls === null) {
    listener.close();
    await closeEngines();
    throw new Error("--irc-tls-port needs the server's certificate: --tls-cert and --tls-key");
  }
  for (
    const [port, what] of [[config.ircPort, "IRC"], [config.ircTlsPort, "IRC over TLS"]] as const
  ) {
    if (port === null) continue;
    try {
      const opened = listen({ host: config.host, port });
      if (what === "IRC") ircListener = opened;
      else ircTlsListener = opened;
    } catch (err) {
      listener.close();
      ircListener?.close();
      await closeEngines();
      throw describeListenError(err, config, `${config.host}:${port} (${what})`);
    }
  }
  const bus = engines.bus;
  const hub = new ChatHub(store, broker, config, metrics, bus);
  if (broker instanceof CatchUpBroker) broker.watchNodes(hub.presence, config.clusterHeartbeatMs);
  const shared = engines.store;
  if (shared instanceof PostgresStore) {
    // A node taken for dead cannot end its sessions in the login history: the others do.
    hub.presence.onNodeGone((node) => {
      shared.closeNodeSessions(node, Date.now()).catch((err) =>
        log.warn("ending the sessions of node {node} failed: {err}", { node, err })
      );
    });
  }
  let files: FileService;
  try {
    await hub.start();
    await startPrivateSessions(hub);
    const imported = await hub.importCredentials(config.credentials);
    if (imported > 0) log.info("imported {imported} accounts", { imported });
    files = await FileService.open(hub, engines.files);
  } catch (err) {
    hub.close();
    listener.close();
    ircListener?.close();
    ircTlsListener?.close();
    await broker.close().catch(() => {});
    await bus.close().catch(() => {});
    await store.close().catch(() => {});
    throw err;
  }
  const server = new RunningServer(listener, tls, hub, config, files, ircListener, ircTlsListener);
  if (config.metricsPort !== null) {
    try {
      await server.serveMetrics(config.metricsHost, config.metricsPort);
    } catch (err) {
      await server.shutdown("the metrics endpoint could not start");
      const where = `${config.metricsHost}:${config.metricsPort} (metrics endpoint)`;
      throw describeListenError(err, config, where);
    }
  }
  if (config.webPort !== null) {
    try {
      await server.serveWeb(config.host, config.webPort);
    } catch (err) {
      await server.shutdown("the browser client's endpoint could not start");
      const where = `${config.host}:${config.webPort} (browser client, --web-port)`;
      throw describeListenError(err, config, where);
    }
  }
  return server;
}

class RunningServer implements ChatServer {
  readonly addr: Deno.NetAddr;
  readonly tls: boolean;
  readonly hub: ChatHub;
  readonly finished: Promise<void>;
  metricsAddr: Deno.NetAddr | null = null;
  webAddr: Deno.NetAddr | null = null;
  #webServer: WebServer | null = null;
  readonly ircAddr: Deno.NetAddr | null;
  readonly ircTlsAddr: Deno.NetAddr | null;
  readonly #listener: Deno.Listener;
  readonly #ircListener: Deno.Listener | null;
  readonly #ircTlsListener: Deno.Listener | null;
  readonly #tls: ServerTls | null;
  /** TLS connections accepted and still in their handshake (counted against the caps). */
  readonly #handshaking = new Set<ServerTlsConn>();
  readonly #config: ServerConfig;
  readonly #connections = new Set<ClientConnection | IrcConnection>();
  readonly #perIp = new Map<string, number>();
  /**
   * Connections served over a channel whose resource may outlive them (a WebSocket cut
   * off while the peer reads nothing): their address's slot is freed when it is gone.
   */
  readonly #lingering = new Map<ClientConnection | IrcConnection, Promise<void>>();
  /** TLS handshakes under way (a connection served is in {@linkcode #connections}). */
  readonly #running = new Set<Promise<void>>();
  /** Resolves {@linkcode #allEnded}'s promise when the last connection ends. */
  #noConnections: (() => void) | null = null;
  /**
   * The deadlines of every connection (login, idle, stalled writes, unfinished frames):
   * one timer, which visits only the connections with a deadline due.
   */
  readonly #deadlines = new DeadlineWheel(SWEEP_INTERVAL_MS);
  readonly #files: FileService;
  #metricsServer: Deno.HttpServer | null = null;
  #shutdown: Promise<void> | null = null;
  #resolveFinished!: () => void;
  #closedTraffic = { bytesIn: 0, bytesOut: 0 };
  /** Refused connections being told why (each holds a descriptor until closed). */
  #refusing = 0;
  /** Bytes held for unfinished frames, over every connection, against their bound. */
  readonly #partialFrames: PartialFrameBudget;
  /** Bytes file chunks may hold read ahead of one being written, all connections together. */
  readonly #readAhead: PartialFrameBudget;

  constructor(
    listener: Deno.Listener,
    tls: ServerTls | null,
    hub: ChatHub,
    config: ServerConfig,
    files: FileService,
    ircListener: Deno.Listener | null = null,
    ircTlsListener: Deno.Listener | null = null,
  ) {
    this.#listener = listener;
    this.#ircListener = ircListener;
    this.#ircTlsListener = ircTlsListener;
    this.ircAddr = ircListener === null ? null : ircListener.addr as Deno.NetAddr;
    this.ircTlsAddr = ircTlsListener === null ? null : ircTlsListener.addr as Deno.NetAddr;
    this.#tls = tls;
    this.#files = files;
    this.hub = hub;
    this.#config = config;
    this.#partialFrames = new PartialFrameBudget(() => config.maxPartialFrameBytes);
    this.#readAhead = new PartialFrameBudget(() => config.maxPartialFrameBytes);
    this.addr = listener.addr as Deno.NetAddr;
    this.tls = tls !== null;
    this.finished = new Promise((resolve) => this.#resolveFinished = resolve);
    log.info("listening on {host}:{port}{tls}", {
      host: this.addr.hostname,
      port: this.addr.port,
      tls: this.tls ? " (TLS)" : "",
    });
    this.#acceptLoop(this.#listener, "chat");
    if (ircListener !== null) {
      log.info("IRC on {host}:{port}", { host: this.ircAddr!.hostname, port: this.ircAddr!.port });
      this.#acceptLoop(ircListener, "irc");
    }
    if (ircTlsListener !== null) {
      const { hostname: host, port } = this.ircTlsAddr!;
      log.info("IRC over TLS on {host}:{port}", { host, port });
      this.#acceptLoop(ircTlsListener, "ircs");
    }
  }

  shutdown(reason = "server shutting down"): Promise<void> {
    this.#shutdown ??= this.#doShutdown(reason);
    return this.#shutdown;
  }

  /** Serves `/metrics` (Prometheus text) and `/healthz` over HTTP. */
  serveMetrics(hostname: string, port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      try {
        this.#metricsServer = Deno.serve({
          hostname,
          port,
          onListen: (addr) => {
            this.metricsAddr = addr as Deno.NetAddr;
            log.info("metrics on http://{host}:{port}/metrics", {
              host: addr.hostname,
              port: (addr as Deno.NetAddr).port,
            });
            resolve();
          },
          onError: (err) => {
            log.error("metrics request failed: {err}", { err });
            return new Response("internal error\n", { status: 500 });
          },
        }, (request) => this.#metricsResponse(request));
      } catch (err) {
        reject(err);
      }
    });
  }

  /** Serves the browser client: the page, and WebSockets served as client connections. */
  async serveWeb(hostname: string, port: number): Promise<void> {
    this.#webServer = await startWebServer({
      hostname,
      port,
      ...(this.#config.tls ? { tls: this.#config.tls } : {}),
      maxUnreadBytes: this.#config.maxQueueBytes,
      admit: (channel, host, remotePort) => {
        if (this.#shutdown !== null) channel.close();
        else this.#admitChannel(channel, plainIp(host), remotePort);
      },
    });
    this.webAddr = this.#webServer.addr;
    log.info("browser client on {scheme}://{host}:{port}/", {
      scheme: this.tls ? "https" : "http",
      host: this.webAddr.hostname,
      port: this.webAddr.port,
    });
  }

  #metricsResponse(request: Request): Response {
    const path = new URL(request.url).pathname;
    if (request.method !== "GET" && request.method !== "HEAD") {
      return new Response("method not allowed\n", { status: 405, headers: { allow: "GET, HEAD" } });
    }
    if (path === "/metrics") {
      return new Response(this.#renderMetrics(), {
        headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" },
      });
    }
    if (path === "/healthz") {
      return this.#shutdown === null
        ? new Response("ok\n")
        : new Response("draining\n", { status: 503 });
    }
    return new Response("not found: try /metrics or /healthz\n", { status: 404 });
  }

  /** Connections being served (chat, browser and IRC clients). */
  get connectionCount(): number {
    return this.#connections.size;
  }

  /** Bytes queued to clients and not yet written, over every connection. */
  get queuedBytes(): number {
    let queued = 0;
    for (const connection of this.#connections) queued += connection.outbound().queued;
    return queued;
  }

  get deadlinesPending(): number {
    return this.#deadlines.size;
  }

  #renderMetrics(): string {
    const traffic = { ...this.#closedTraffic };
    for (const connection of this.#connections) {
      const stats = connection.traffic;
      traffic.bytesIn += stats.bytesIn;
      traffic.bytesOut += stats.bytesOut;
    }
    let onlineAccounts = 0;
    for (const _ of this.hub.onlineAccounts) onlineAccounts++;
    return this.hub.metrics.render({
      connections: this.#connections.size,
      sessions: this.hub.sessionCount,
      onlineAccounts,
      draining: this.#shutdown !== null,
      partialFrameBytes: this.#partialFrames.held,
      diskFreeBytes: this.#files.freeBytes,
    }, traffic);
  }

  /**
   * Accepts until the listener closes. A failed accept (out of descriptors: EMFILE,
   * ENFILE; or any other passing error) is logged and retried after a bounded
   * exponential back-off; the sessions already open keep running meanwhile, and the
   * connections waiting in the kernel's backlog are taken once descriptors free up.
   */
  async #acceptLoop(listener: Deno.Listener, kind: ListenerKind): Promise<void> {
    let backoffMs = 0;
    while (this.#shutdown === null) {
      let conn: Deno.Conn;
      try {
        conn = await listener.accept();
      } catch (err) {
        if (this.#shutdown !== null || err instanceof Deno.errors.BadResource) return;
        backoffMs = Math.min(ACCEPT_BACKOFF_MAX_MS, Math.max(ACCEPT_BACKOFF_MIN_MS, backoffMs * 2));
        this.hub.metrics.counters.acceptErrors++;
        log.error("accepting a connection failed: {err}; accepting again in {backoffMs} ms", {
          err: err instanceof Error ? err.message : String(err),
          backoffMs,
        });
        await delay(backoffMs);
        continue;
      }
      backoffMs = 0;
      this.#admit(conn, kind);
    }
  }

  /**
   * Counts an accepted connection and serves it, or refuses it over a cap. A TLS
   * connection counts from its TCP accept, through its handshake.
   */
  #admit(tcp: Deno.Conn, kind: ListenerKind = "chat"): void {
    const irc = kind !== "chat";
    tuneAccepted(tcp);
    const addr = tcp.remoteAddr as Deno.NetAddr;
    // The plain IRC listener is plain TCP whether the chat port has TLS or not.
    const conn = this.#tls === null || kind === "irc" ? tcp : this.#tls.wrap(tcp);
    this.#admitChannel(conn, plainIp(addr.hostname), addr.port, irc);
  }

  /**
   * Counts a connection (TCP, TLS, a browser's WebSocket, or an IRC client's) against the
   * caps and serves it, or refuses it saying why (an error frame, or an IRC `ERROR` line).
   */
  #admitChannel(conn: ByteChannel, ip: string, port: number, irc = false): void {
    const refusal = this.#refusal(ip);
    if (refusal !== null) {
      this.hub.metrics.counters.connectionsRefused++;
      log.warn("refusing a connection from {ip}: {refusal}", { ip, refusal });
      this.#refuse(conn, refusal, irc);
      return;
    }
    this.hub.metrics.counters.connectionsAccepted++;
    this.#perIp.set(ip, (this.#perIp.get(ip) ?? 0) + 1);
    if (conn instanceof ServerTlsConn) {
      const handshake: Promise<void> = this.#handshake(conn, ip, port, irc).then((served) => {
        this.#running.delete(handshake);
        if (!served) this.#release(ip);
      });
      this.#running.add(handshake);
    } else {
      this.#serve(conn, ip, port, irc);
    }
  }

  /**
   * Runs a TLS connection's handshake under its deadline, then serves the connection.
   * Resolves to whether it is served (else it is closed).
   */
  async #handshake(conn: ServerTlsConn, ip: string, port: number, irc: boolean): Promise<boolean> {
    this.#handshaking.add(conn);
    try {
      await conn.handshake(this.#config.tlsHandshakeTimeoutMs);
    } catch (err) {
      // handshake() has closed the connection: its descriptor is released.
      this.hub.metrics.counters.tlsHandshakeFailures++;
      log.info("closing {remote}: {err}", {
        remote: `${ip}:${port}`,
        err: err instanceof Error ? err.message : String(err),
      });
      return false;
    } finally {
      this.#handshaking.delete(conn);
    }
    if (this.#shutdown !== null) {
      conn.close();
      return false;
    }
    this.#serve(conn, ip, port, irc);
    return true;
  }

  /**
   * Serves an accepted (and, with TLS, handshaken) connection until it ends, as an IRC
   * client's or a chat client's. Nothing waits on it: an idle connection holds only its
   * own read.
   */
  #serve(conn: ByteChannel, ip: string, port: number, irc: boolean): void {
    const loginTimeoutMs = this.#config.loginTimeoutMs;
    const connection = irc
      ? new IrcConnection(conn, this.hub, { remote: `${ip}:${port}`, ip, loginTimeoutMs })
      : new ClientConnection(conn, this.hub, {
        ip,
        port,
        loginTimeoutMs,
        // File chunks arrive in buffers that are reused once their bytes are on disk.
        allocatePayload: takeChunkPayload,
        partialFrames: this.#partialFrames,
        readAhead: this.#readAhead,
        deadlines: this.#deadlines,
      });
    this.#connections.add(connection);
    if (conn.gone !== undefined) this.#lingering.set(connection, conn.gone);
    connection.serve(this.#ended);
    if (connection instanceof IrcConnection) this.#sweepEveryTick(connection);
  }

  /** Checks an IRC connection's deadlines at every tick, as long as it is served. */
  #sweepEveryTick(connection: IrcConnection): void {
    const timed: Timed = {
      deadlineAt: 0,
      onDeadline: (now) => {
        if (!this.#connections.has(connection)) return;
        connection.sweep(now, SWEEP_INTERVAL_MS);
        this.#deadlines.scheduleNextTick(timed);
      },
    };
    this.#deadlines.scheduleNextTick(timed);
  }

  /** Forgets a connection that has ended (one function for them all). */
  readonly #ended = (connection: ClientConnection | IrcConnection): void => {
    if (!this.#connections.delete(connection)) return;
    const traffic = connection.traffic;
    this.#closedTraffic.bytesIn += traffic.bytesIn;
    this.#closedTraffic.bytesOut += traffic.bytesOut;
    const gone = this.#lingering.get(connection);
    if (gone === undefined) this.#release(connection.ip);
    else {
      this.#lingering.delete(connection);
      gone.then(() => this.#release(connection.ip));
    }
    if (this.#connections.size === 0) {
      this.#noConnections?.();
      this.#noConnections = null;
    }
  };

  /** Resolves once every connection has ended. */
  #allEnded(): Promise<void> {
    if (this.#connections.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#noConnections = resolve);
  }

  /** Counts a connection from `ip` gone. */
  #release(ip: string): void {
    const left = (this.#perIp.get(ip) ?? 1) - 1;
    if (left > 0) this.#perIp.set(ip, left);
    else this.#perIp.delete(ip);
  }

  /**
   * Tells a refused connection why, in one error frame, and closes it. A graceful close
   * lingers until the client has read it (up to `LINGER_MS`), holding a descriptor; past
   * a few refusals under way at once (a flood), the next are closed without a word.
   */
  #refuse(conn: ByteChannel, reason: string, irc = false): void {
    if (this.#refusing >= MAX_REFUSING) {
      conn.close();
      return;
    }
    this.#refusing++;
    if (irc) {
      const lines = new LineConnection(conn);
      lines.closeWith(encodeIrcLine(`ERROR :${reason}`), REFUSAL_WRITE_MS)
        .then(() => this.#refusing--);
      return;
    }
    const framed = new FramedConnection(conn);
    framed.send({ type: "error", code: "too_many_connections", message: reason });
    framed.close(REFUSAL_WRITE_MS);
    framed.done.then(() => this.#refusing--);
  }

  /** Why a new connection from `ip` must be refused, or null. */
  #refusal(ip: string): string | null {
    const { maxConnections, maxConnectionsPerIp } = this.#config;
    const open = this.#connections.size + this.#handshaking.size;
    if (maxConnections > 0 && open >= maxConnections) {
      return `the server is full (${maxConnections} connections)`;
    }
    const fromIp = this.#perIp.get(ip) ?? 0;
    if (maxConnectionsPerIp > 0 && fromIp >= maxConnectionsPerIp) {
      return `too many connections from ${ip} (${maxConnectionsPerIp} at most)`;
    }
    return null;
  }

  async #doShutdown(reason: string): Promise<void> {
    const drainMs = this.#config.drainWindowMs;
    this.hub.draining = true;
    log.info("draining over {drainMs} ms: {reason}", { drainMs, reason });
    for (const listener of [this.#listener, this.#ircListener, this.#ircTlsListener]) {
      try {
        listener?.close();
      } catch {
        // already closed
      }
    }
    for (const conn of this.#handshaking) conn.close();
    // Everyone hears it first; then sessions close a few at a time across the window.
    const notice = { code: "shutdown" as const, text: `${reason}; reconnect in a moment` };
    const connections = [...this.#connections];
    for (const connection of connections) connection.notify(notice);
    const ticks = Math.max(1, Math.floor(drainMs / DRAIN_TICK_MS));
    const perTick = Math.ceil(connections.length / ticks);
    for (let i = 0; i < connections.length; i += perTick) {
      for (const connection of connections.slice(i, i + perTick)) connection.end();
      if (i + perTick < connections.length) await delay(DRAIN_TICK_MS);
    }
    await withTimeout(
      Promise.allSettled([...this.#running, this.#allEnded()]),
      this.#config.shutdownGraceMs + 1000,
    );
    this.#deadlines.stop();
    await this.#metricsServer?.shutdown().catch(() => {});
    await this.#webServer?.shutdown().catch(() => {});
    this.hub.close();
    await this.hub.broker.close();
    await this.hub.bus.close();
    await this.#files.close().catch((err) =>
      log.error("closing the file service failed: {err}", { err })
    );
    await this.hub.store.close().catch((err) =>
      log.error("closing the store failed: {err}", { err })
    );
    log.info("shut down");
    this.#resolveFinished();
  }
}

/**
 * Ends the sessions a previous run left open in the store's session log; on a full disk
 * they stay open (the log is bookkeeping: the server starts all the same).
 */
async function closeOpenSessions(store: Store): Promise<void> {
  try {
    await store.closeOpenSessions(Date.now());
  } catch (err) {
    if (!isDiskFull(err)) throw err;
    log.warn("the disk is full: sessions of the previous run stay open in the session log");
  }
}

/**
 * A client's IP address as people write it: IPv4-mapped IPv6 addresses (a dual-stack
 * listener's view of an IPv4 client) unwrapped, so per-address limits and the addresses
 * handed to peers see one form.
 *
 * @example
 * ```ts
 * import { plainIp } from "./server.ts";
 * plainIp("::ffff:192.0.2.7"); // "192.0.2.7"
 * plainIp("2001:db8::1"); // "2001:db8::1"
 * ```
 */
export function plainIp(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return mapped ? mapped[1] : address;
}

/** What a listener serves: the chat protocol, IRC, or IRC over TLS. */
type ListenerKind = "chat" | "irc" | "ircs";

/** First wait after a failed accept; it doubles with each failure in a row. */
const ACCEPT_BACKOFF_MIN_MS = 5;
/** Longest wait between two accepts after failures. */
const ACCEPT_BACKOFF_MAX_MS = 1000;

/** Refused connections told why at once; past this, refusals close without a word. */
const MAX_REFUSING = 16;
/** Longest a refusal waits for its error frame to be written. */
const REFUSAL_WRITE_MS = 1000;

/** Milliseconds between two batches of closes while draining. */
const DRAIN_TICK_MS = 100;

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function withTimeout(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([promise, new Promise((resolve) => timer = setTimeout(resolve, ms))]);
  clearTimeout(timer);
}

function describeListenError(
  err: unknown,
  config: Pick<ServerConfig, "host" | "port" | "tls">,
  what?: string,
): Error {
  const where = what ?? `${config.host}:${config.port}`;
  if (err instanceof Deno.errors.AddrInUse) {
    return new Error(`cannot listen on ${where}: the port is already in use`, { cause: err });
  }
  if (err instanceof Deno.errors.PermissionDenied) {
    return new Error(`cannot listen on ${where}: permission denied`, { cause: err });
  }
  if (err instanceof Deno.errors.AddrNotAvailable) {
    return new Error(`cannot listen on ${where}: address not available on this machine`, {
      cause: err,
    });
  }
  const message = err instanceof Error ? err.message : String(err);
  if (config.tls !== undefined && /cert|key|pem|tls/i.test(message)) {
    return new Error(`cannot use the TLS certificate or key: ${message}`, { cause: err });
  }
  return new Error(`cannot listen on ${where}: ${message}`, { cause: err });
}
