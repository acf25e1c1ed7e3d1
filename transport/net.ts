/**
 * Opening TCP and TLS connections and listeners for every mode.
 *
 * @module
 */

/** Where and how to dial. */
export interface DialOptions {
  /** Host name or address. Default `127.0.0.1`. */
  host?: string;
  /** TCP port. */
  port: number;
  /** Use TLS. `true` verifies against the system's roots; an object adds CA certificates. */
  tls?: boolean | DialTlsOptions;
}

/** TLS options for {@linkcode dial}. */
export interface DialTlsOptions {
  /** Extra root certificates (PEM) to trust besides the system's. */
  caCerts?: string[];
  /** The name to verify the certificate against, when it differs from `host`. */
  serverName?: string;
}

/**
 * Stable codes of {@linkcode DialError}:
 *
 * - `connect_failed`: no connection (refused, unreachable, a name that does not
 *   resolve), or it dropped during the TLS handshake: the server may be restarting,
 *   trying again later may work.
 * - `tls_failed`: the TLS handshake failed on the certificate (not trusted, another
 *   name): trying again will not help.
 * - `not_tls`: the server answered, but not in TLS (a plain server).
 */
export type DialErrorCode = "connect_failed" | "tls_failed" | "not_tls";

/** A failed {@linkcode dial}, with a stable {@linkcode DialErrorCode}; the original error is its `cause`. */
export class DialError extends Error {
  /** The stable, machine-readable reason. */
  readonly code: DialErrorCode;

  /** Creates the error. */
  constructor(code: DialErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "DialError";
    this.code = code;
  }
}

/**
 * Dials a TCP or TLS connection with Nagle's algorithm off (the writer coalesces).
 *
 * @throws {DialError} `connect_failed`, `tls_failed` or `not_tls`, with the
 * original error's message.
 * @example
 * ```ts ignore
 * import { dial } from "./net.ts";
 * const conn = await dial({ host: "127.0.0.1", port: 44444 });
 * ```
 */
export async function dial(options: DialOptions): Promise<Deno.TcpConn | Deno.TlsConn> {
  const hostname = options.host ?? "127.0.0.1";
  let tcp: Deno.TcpConn;
  try {
    tcp = await Deno.connect({ hostname, port: options.port });
  } catch (err) {
    throw new DialError("connect_failed", describe(err), { cause: err });
  }
  tcp.setNoDelay(true);
  if (!options.tls) return tcp;
  const tls = options.tls === true ? {} : options.tls;
  let conn: Deno.TlsConn;
  try {
    conn = await Deno.startTls(tcp, {
      hostname: tls.serverName ?? hostname,
      ...(tls.caCerts ? { caCerts: tls.caCerts } : {}),
    });
  } catch (err) {
    closeQuietly(tcp);
    throw new DialError(handshakeFailure(err), describe(err), { cause: err });
  }
  try {
    await conn.handshake();
  } catch (err) {
    // A failed handshake (e.g. an untrusted certificate) must not leak the socket.
    closeQuietly(conn);
    throw new DialError(handshakeFailure(err), describe(err), { cause: err });
  }
  return conn;
}

/**
 * What a failed TLS handshake means. Deno reports no code: a plain server's answer
 * shows as rustls' `InvalidContentType` (OpenSSL, behind `node:tls`, says `wrong
 * version number`); a connection lost mid-handshake as a reset or an early end.
 *
 * @example
 * ```ts
 * import { handshakeFailure } from "./net.ts";
 * handshakeFailure(new Error("received corrupt message of type InvalidContentType")); // "not_tls"
 * ```
 */
export function handshakeFailure(err: unknown): DialErrorCode {
  const text = describe(err);
  const code = (err as { code?: unknown } | null)?.code;
  if (
    code === "ERR_SSL_WRONG_VERSION_NUMBER" ||
    /InvalidContentType|wrong version number|packet length too long|unknown protocol/i.test(text)
  ) {
    return "not_tls";
  }
  const name = err instanceof Error ? err.name : "";
  if (
    ["ConnectionReset", "ConnectionAborted", "BrokenPipe", "UnexpectedEof"].includes(name) ||
    ["ECONNRESET", "ECONNABORTED", "EPIPE"].includes(String(code)) ||
    /unexpected eof|socket hang up|peer closed connection without sending TLS close_notify/i.test(
      text,
    )
  ) {
    return "connect_failed";
  }
  return "tls_failed";
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message || err.name : String(err);
}

/** Where and how to listen. */
export interface ListenOptions {
  /** Address to bind. Default `0.0.0.0`. */
  host?: string;
  /** TCP port; 0 picks a free one. */
  port: number;
  /** Serve TLS with this certificate chain and key (PEM text). */
  tls?: { cert: string; key: string };
}

/**
 * Opens a TCP or TLS listener.
 *
 * @example
 * ```ts ignore
 * import { listen } from "./net.ts";
 * const listener = listen({ host: "127.0.0.1", port: 0 });
 * ```
 */
export function listen(options: ListenOptions): Deno.Listener {
  const hostname = options.host ?? "0.0.0.0";
  if (options.tls) {
    return Deno.listenTls({ hostname, port: options.port, ...options.tls });
  }
  return Deno.listen({ hostname, port: options.port });
}

/** Turns off Nagle's algorithm on an accepted connection when it is plain TCP. */
export function tuneAccepted(conn: Deno.Conn): void {
  if ("setNoDelay" in conn && typeof conn.setNoDelay === "function") {
    (conn as Deno.TcpConn).setNoDelay(true);
  }
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // already closed, or its resource was taken over by startTls
  }
}
