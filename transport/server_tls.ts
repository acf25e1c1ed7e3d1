/**
 * The server side of TLS over an accepted TCP connection, with an explicit handshake
 * that can be given up on.
 *
 * `Deno.listenTls` runs the handshake lazily and, once it has started, closing the
 * connection waits for it to end: a client that opens TCP and sends nothing (or half a
 * ClientHello) keeps its socket open for as long as it likes, whatever the server does.
 * Here the server accepts plain TCP itself (so its accept loop, with its back-off, is
 * the same for both) and runs TLS from `node:tls` over the connection, which a close
 * ends at once, handshake or not: the descriptor is released.
 *
 * @module
 */

import { Duplex } from "node:stream";
import tls from "node:tls";
import type { ByteChannel } from "./framed_connection.ts";
import { NodeSocketChannel } from "./node_socket_channel.ts";

/** Raised when a TLS handshake does not finish in time or fails. */
export class TlsHandshakeError extends Error {
  /** Stable error code: `tls_handshake_timeout` or `tls_handshake_failed`. */
  readonly code: "tls_handshake_timeout" | "tls_handshake_failed";

  /** Creates the error. */
  constructor(code: TlsHandshakeError["code"], message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "TlsHandshakeError";
    this.code = code;
  }
}

/**
 * A fatal TLS alert (`protocol_version`), sent in the clear to a client that opened with
 * something other than a TLS handshake record: a plain chat client, which recognises
 * the record and tells its user to add `--tls` (client/first_bytes.ts).
 */
const PLAIN_CLIENT_ALERT = new Uint8Array([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x46]);
/** A TLS handshake record's content type: what a TLS client's first byte is. */
const HANDSHAKE_RECORD = 0x16;
/** Milliseconds the alert to a plain client may take to be written. */
const ALERT_WRITE_MS = 1000;

/**
 * A certificate and key ready to serve TLS on accepted connections.
 *
 * @example
 * ```ts ignore
 * import { ServerTls } from "./server_tls.ts";
 * const tls = new ServerTls({ cert, key });
 * const conn = tls.wrap(await listener.accept() as Deno.TcpConn);
 * await conn.handshake(10_000);
 * ```
 */
export class ServerTls {
  readonly #context: tls.SecureContext;

  /**
   * Checks and loads the PEM certificate chain and key.
   *
   * @throws {Error} when they are not usable.
   */
  constructor(material: { cert: string; key: string }) {
    this.#context = tls.createSecureContext({ cert: material.cert, key: material.key });
  }

  /** Starts serving TLS on `conn` (which the result owns from now on). */
  wrap(conn: Deno.Conn): ServerTlsConn {
    return new ServerTlsConn(conn, this.#context);
  }
}

/** A server-side TLS connection over an accepted TCP connection. */
export class ServerTlsConn implements ByteChannel {
  /** The client's address. */
  readonly remoteAddr: Deno.Addr;
  /** The local address. */
  readonly localAddr: Deno.Addr;
  readonly #handshake: Promise<void>;
  readonly #channel: NodeSocketChannel;

  /** Wraps `tcp`; prefer {@linkcode ServerTls.wrap}. */
  constructor(tcp: Deno.Conn, context: tls.SecureContext) {
    this.remoteAddr = tcp.remoteAddr;
    this.localAddr = tcp.localAddr;
    const socket = new tls.TLSSocket(duplexOf(tcp), { isServer: true, secureContext: context });
    this.#handshake = new Promise<void>((resolve, reject) => {
      socket.once("secure", () => resolve());
      socket.once(
        "error",
        (err: Error) =>
          reject(new TlsHandshakeError("tls_handshake_failed", err.message, { cause: err })),
      );
      socket.once(
        "close",
        () =>
          reject(new TlsHandshakeError("tls_handshake_failed", "closed during the TLS handshake")),
      );
    });
    this.#handshake.catch(() => {});
    this.#channel = new NodeSocketChannel(socket, {
      onClose: () => {
        try {
          tcp.close();
        } catch {
          // closed already by the socket's destruction
        }
      },
      // A client's unread bytes cost the server memory: little of them.
      highWater: 64 * 1024,
    });
  }

  /**
   * Resolves once the handshake is done; closes the connection (releasing its socket) and
   * rejects with a {@linkcode TlsHandshakeError} when it fails or takes over `timeoutMs`.
   */
  async handshake(timeoutMs: number): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new TlsHandshakeError(
              "tls_handshake_timeout",
              `the TLS handshake did not finish within ${timeoutMs} ms`,
            ),
          ),
        timeoutMs,
      );
    });
    try {
      await Promise.race([this.#handshake, deadline]);
    } catch (err) {
      this.close();
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Reads decrypted bytes into `p`; null at the end of the stream. */
  read(p: Uint8Array): Promise<number | null> {
    return this.#channel.read(p);
  }

  /** Encrypts and writes all of `p` (not copied: see {@linkcode NodeSocketChannel.write}). */
  write(p: Uint8Array): Promise<number> {
    return this.#channel.write(p);
  }

  /** Sends the TLS close_notify and the TCP FIN; reading goes on. */
  closeWrite(): Promise<void> {
    return this.#channel.closeWrite();
  }

  /** Closes at once, handshake or not, and releases the socket. */
  close(): void {
    this.#channel.close();
  }
}

/**
 * A Node duplex stream over a Deno connection, for `node:tls` to run over. When it is
 * destroyed (the TLS socket fails or is closed) after the client opened with something
 * other than a TLS handshake record, {@linkcode PLAIN_CLIENT_ALERT} is written first.
 */
function duplexOf(conn: Deno.Conn): Duplex {
  let firstByte: number | null = null;
  const buffer = new Uint8Array(16 * 1024);
  let reading = false;
  const duplex: Duplex = new Duplex({
    read() {
      if (reading) return;
      reading = true;
      (async () => {
        try {
          while (true) {
            const n = await conn.read(buffer);
            if (n === null) {
              duplex.push(null);
              return;
            }
            if (n > 0) firstByte ??= buffer[0];
            if (!duplex.push(buffer.slice(0, n))) return;
          }
        } catch (err) {
          duplex.destroy(err as Error);
        } finally {
          reading = false;
        }
      })();
    },
    write(chunk: Uint8Array, _encoding, callback) {
      (async () => {
        let offset = 0;
        while (offset < chunk.length) offset += await conn.write(chunk.subarray(offset));
      })().then(() => callback(), (err) => callback(err));
    },
    final(callback) {
      conn.closeWrite().then(() => callback(), (err) => callback(err));
    },
    destroy(err, callback) {
      const close = () => {
        try {
          conn.close();
        } catch {
          // closed already
        }
      };
      if (firstByte === null || firstByte === HANDSHAKE_RECORD) close();
      else {
        let timer: ReturnType<typeof setTimeout> | undefined;
        Promise.race([
          conn.write(PLAIN_CLIENT_ALERT).catch(() => 0),
          new Promise((resolve) => timer = setTimeout(resolve, ALERT_WRITE_MS)),
        ]).finally(() => {
          clearTimeout(timer);
          close();
        });
      }
      callback(err);
    },
  });
  return duplex;
}
