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
 * Dials a TCP or TLS connection with Nagle's algorithm off (the writer coalesces).
 *
 * @example
 * ```ts ignore
 * import { dial } from "./net.ts";
 * const conn = await dial({ host: "127.0.0.1", port: 44444 });
 * ```
 */
export async function dial(options: DialOptions): Promise<Deno.TcpConn | Deno.TlsConn> {
  const hostname = options.host ?? "127.0.0.1";
  if (!options.tls) {
    const conn = await Deno.connect({ hostname, port: options.port });
    conn.setNoDelay(true);
    return conn;
  }
  const tls = options.tls === true ? {} : options.tls;
  const tcp = await Deno.connect({ hostname, port: options.port });
  tcp.setNoDelay(true);
  let conn: Deno.TlsConn;
  try {
    conn = await Deno.startTls(tcp, {
      hostname: tls.serverName ?? hostname,
      ...(tls.caCerts ? { caCerts: tls.caCerts } : {}),
    });
  } catch (err) {
    closeQuietly(tcp);
    throw err;
  }
  try {
    await conn.handshake();
  } catch (err) {
    // A failed handshake (e.g. an untrusted certificate) must not leak the socket.
    closeQuietly(conn);
    throw err;
  }
  return conn;
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
