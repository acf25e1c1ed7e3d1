/**
 * The chat server: listener, accept loop, deadlines sweep and graceful shutdown,
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
import { type Broker, LocalBroker } from "./broker.ts";
import type { ServerConfig } from "./config.ts";
import { ClientConnection } from "./connection.ts";
import { isDiskFull } from "./disk_space.ts";
import { CHUNK_PAYLOADS, FileService } from "./files.ts";
import { ChatHub } from "./hub.ts";
import { instrumentStore } from "./instrumented_store.ts";
import { ServerMetrics } from "./metrics.ts";
import { MemoryStore } from "./memory_store.ts";
import { SqliteStore } from "./sqlite_store.ts";
import type { Store } from "./store.ts";

const log = getLogger(["chat", "server"]);

/** Gives a file chunk's payload a pooled buffer (one function for every connection). */
function takeChunkPayload(length: number): Uint8Array {
  return CHUNK_PAYLOADS.take(length);
}

/** Milliseconds between sweeps for deadlines (login, idle, stalled writes). */
const SWEEP_INTERVAL_MS = 250;

/** A running server. */
export interface ChatServer {
  /** The address it listens on (the actual port when 0 was asked). */
  readonly addr: Deno.NetAddr;
  /** Whether it serves TLS. */
  readonly tls: boolean;
  /** The metrics endpoint's address, when it is on. */
  readonly metricsAddr: Deno.NetAddr | null;
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
}

/** Replaceable parts of a server (tests inject an in-memory store). */
export interface ServerDeps {
  /** Storage; default SQLite in `config.dataDir`, or memory when it is null. */
  store?: Store;
  /** Fan-out; default in-process. */
  broker?: Broker;
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
  const store = instrumentStore(
    deps.store ??
      (config.dataDir === null ? new MemoryStore() : await SqliteStore.open(config.dataDir)),
    metrics,
  );
  const broker = deps.broker ?? new LocalBroker();
  let listener: Deno.Listener;
  let tls: ServerTls | null = null;
  try {
    await closeOpenSessions(store);
    // TLS runs over accepted TCP connections (see transport/server_tls.ts for why).
    if (config.tls !== undefined) tls = new ServerTls(config.tls);
    listener = listen({ host: config.host, port: config.port });
  } catch (err) {
    await store.close().catch(() => {});
    throw describeListenError(err, config);
  }
  const hub = new ChatHub(store, broker, config, metrics);
  let files: FileService;
  try {
    const imported = await hub.importCredentials(config.credentials);
    if (imported > 0) log.info("imported {imported} accounts", { imported });
    files = await FileService.open(hub);
  } catch (err) {
    listener.close();
    await store.close().catch(() => {});
    throw err;
  }
  const server = new RunningServer(listener, tls, hub, config, files);
  if (config.metricsPort !== null) {
    try {
      await server.serveMetrics(config.metricsHost, config.metricsPort);
    } catch (err) {
      await server.shutdown("the metrics endpoint could not start");
      const where = `${config.metricsHost}:${config.metricsPort} (metrics endpoint)`;
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
  readonly #listener: Deno.Listener;
  readonly #tls: ServerTls | null;
  /** TLS connections accepted and still in their handshake (counted against the caps). */
  readonly #handshaking = new Set<ServerTlsConn>();
  readonly #config: ServerConfig;
  readonly #connections = new Set<ClientConnection>();
  readonly #perIp = new Map<string, number>();
  readonly #running = new Set<Promise<void>>();
  readonly #sweeper: ReturnType<typeof setInterval>;
  readonly #files: FileService;
  #metricsServer: Deno.HttpServer | null = null;
  #shutdown: Promise<void> | null = null;
  #resolveFinished!: () => void;
  #closedTraffic = { bytesIn: 0, bytesOut: 0 };
  /** Refused connections being told why (each holds a descriptor until closed). */
  #refusing = 0;
  /** Bytes held for unfinished frames, over every connection, against their bound. */
  readonly #partialFrames: PartialFrameBudget;

  constructor(
    listener: Deno.Listener,
    tls: ServerTls | null,
    hub: ChatHub,
    config: ServerConfig,
    files: FileService,
  ) {
    this.#listener = listener;
    this.#tls = tls;
    this.#files = files;
    this.hub = hub;
    this.#config = config;
    this.#partialFrames = new PartialFrameBudget(() => config.maxPartialFrameBytes);
    this.addr = listener.addr as Deno.NetAddr;
    this.tls = tls !== null;
    this.finished = new Promise((resolve) => this.#resolveFinished = resolve);
    this.#sweeper = setInterval(() => this.#sweep(), SWEEP_INTERVAL_MS);
    log.info("listening on {host}:{port}{tls}", {
      host: this.addr.hostname,
      port: this.addr.port,
      tls: this.tls ? " (TLS)" : "",
    });
    this.#acceptLoop();
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

  /** Bytes queued to clients and not yet written, over every connection. */
  get queuedBytes(): number {
    let queued = 0;
    for (const connection of this.#connections) queued += connection.outbound().queued;
    return queued;
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
  async #acceptLoop(): Promise<void> {
    let backoffMs = 0;
    while (this.#shutdown === null) {
      let conn: Deno.Conn;
      try {
        conn = await this.#listener.accept();
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
      this.#admit(conn);
    }
  }

  /**
   * Counts an accepted connection and serves it, or refuses it over a cap. A TLS
   * connection counts from its TCP accept, through its handshake.
   */
  #admit(tcp: Deno.Conn): void {
    tuneAccepted(tcp);
    const addr = tcp.remoteAddr as Deno.NetAddr;
    const ip = plainIp(addr.hostname);
    const conn = this.#tls === null ? tcp : this.#tls.wrap(tcp);
    const refusal = this.#refusal(ip);
    if (refusal !== null) {
      this.hub.metrics.counters.connectionsRefused++;
      log.warn("refusing a connection from {ip}: {refusal}", { ip, refusal });
      this.#refuse(conn, refusal);
      return;
    }
    this.hub.metrics.counters.connectionsAccepted++;
    this.#perIp.set(ip, (this.#perIp.get(ip) ?? 0) + 1);
    if (conn instanceof ServerTlsConn) {
      const handshake: Promise<void> = this.#handshake(conn, ip, addr.port).then((served) => {
        this.#running.delete(handshake);
        if (!served) this.#release(ip);
      });
      this.#running.add(handshake);
    } else {
      this.#serve(conn, ip, addr.port);
    }
  }

  /**
   * Runs a TLS connection's handshake under its deadline, then serves the connection.
   * Resolves to whether it is served (else it is closed).
   */
  async #handshake(conn: ServerTlsConn, ip: string, port: number): Promise<boolean> {
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
    this.#serve(conn, ip, port);
    return true;
  }

  /**
   * Serves an accepted (and, with TLS, handshaken) connection until it ends. Nothing
   * waits on it in an async function: an idle connection holds only its own read.
   */
  #serve(conn: Deno.Conn | ServerTlsConn, ip: string, port: number): void {
    const connection = new ClientConnection(conn, this.hub, {
      remote: `${ip}:${port}`,
      ip,
      loginTimeoutMs: this.#config.loginTimeoutMs,
      // File chunks arrive in buffers that are reused once their bytes are on disk.
      allocatePayload: takeChunkPayload,
      partialFrames: this.#partialFrames,
    });
    this.#connections.add(connection);
    const ended = () => this.#ended(connection, running);
    const running: Promise<void> = connection.run().then(ended, ended); // run() never throws
    this.#running.add(running);
  }

  /** Forgets a connection that has ended. */
  #ended(connection: ClientConnection, running: Promise<void>): void {
    this.#running.delete(running);
    this.#connections.delete(connection);
    const traffic = connection.traffic;
    this.#closedTraffic.bytesIn += traffic.bytesIn;
    this.#closedTraffic.bytesOut += traffic.bytesOut;
    this.#release(connection.ip);
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
  #refuse(conn: ByteChannel, reason: string): void {
    if (this.#refusing >= MAX_REFUSING) {
      conn.close();
      return;
    }
    this.#refusing++;
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

  #sweep(): void {
    const now = performance.now();
    for (const connection of this.#connections) connection.sweep(now, SWEEP_INTERVAL_MS);
  }

  async #doShutdown(reason: string): Promise<void> {
    const drainMs = this.#config.drainWindowMs;
    this.hub.draining = true;
    log.info("draining over {drainMs} ms: {reason}", { drainMs, reason });
    try {
      this.#listener.close();
    } catch {
      // already closed
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
    await withTimeout(Promise.allSettled([...this.#running]), this.#config.shutdownGraceMs + 1000);
    clearInterval(this.#sweeper);
    await this.#metricsServer?.shutdown().catch(() => {});
    this.hub.close();
    await this.hub.broker.close();
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
