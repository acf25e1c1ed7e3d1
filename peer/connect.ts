/**
 * Dialling a peer that listens: {@linkcode connectPeer}.
 *
 * @module
 */

import { nameProblem } from "../protocol/names.ts";
import { dial } from "../transport/net.ts";
import { PeerError } from "./errors.ts";
import { performHandshake } from "./handshake.ts";
import type { RecordAead } from "./record_aead.ts";
import { normalizeCode } from "./code.ts";
import { type PeerKeepaliveOptions, PeerSession } from "./session.ts";

/** Options of {@linkcode connectPeer}. */
export interface ConnectPeerOptions {
  /** Host name or address of the listening peer. Default `127.0.0.1`. */
  host?: string;
  /** Its TCP port. */
  port: number;
  /** This side's nick. */
  nick: string;
  /** Bound on the handshake, in milliseconds. Default 10 s. */
  handshakeTimeoutMs?: number;
  /**
   * Bound on establishing the TCP connection, in milliseconds (a firewall that drops
   * packets would otherwise keep it waiting for minutes). Default 10 s.
   */
  connectTimeoutMs?: number;
  /** A session code the listening side must also give (CPace); see `performHandshake`. */
  code?: string;
  /** A secret the listening side must also have, mixed into the key schedule. */
  psk?: Uint8Array;
  /**
   * The records' ChaCha20-Poly1305 implementation. Default: the process's (`recordAead`:
   * OpenSSL through FFI when allowed and present, else `node:crypto`; same bytes either way).
   */
  aead?: RecordAead;
  /** The session's keepalive (see `PeerSession`). Default: a ping after 15 s, the end at 45 s. */
  keepalive?: PeerKeepaliveOptions;
}

/** Default bound on establishing the TCP connection of {@linkcode connectPeer}. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

/**
 * Connects to a listening peer, runs the handshake as initiator and returns the session.
 * Show `session.sas` to the user to compare with the other side's.
 *
 * @throws {PeerError} `invalid_nick`, `invalid_code`, `connect_failed` (also when the TCP
 * connection is not made within `connectTimeoutMs`), `handshake_failed`, `pake_failed`,
 * `version` or `timeout`.
 * @example
 * ```ts ignore
 * import { connectPeer } from "./connect.ts";
 * const session = await connectPeer({ host: "192.168.1.5", port: 40123, nick: "bob" });
 * console.log(`Compare with your peer: ${session.sas}`);
 * ```
 */
export async function connectPeer(options: ConnectPeerOptions): Promise<PeerSession> {
  const problem = nameProblem(options.nick);
  if (problem !== null) throw new PeerError("invalid_nick", `nick ${problem}`);
  if (options.code !== undefined) normalizeCode(options.code); // fails before dialling
  const host = options.host ?? "127.0.0.1";
  const timeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  let conn: Deno.TcpConn | Deno.TlsConn;
  try {
    conn = await withTimeout(dial({ host, port: options.port }), timeoutMs);
  } catch (cause) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    throw new PeerError("connect_failed", `cannot connect to ${host}:${options.port}: ${reason}`, {
      cause,
    });
  }
  const result = await performHandshake(conn, {
    role: "initiator",
    nick: options.nick,
    ...(options.handshakeTimeoutMs ? { timeoutMs: options.handshakeTimeoutMs } : {}),
    ...(options.code !== undefined ? { code: options.code } : {}),
    ...(options.psk !== undefined ? { psk: options.psk } : {}),
    ...(options.aead !== undefined ? { aead: options.aead } : {}),
  });
  return new PeerSession({
    channel: result.channel,
    role: "initiator",
    localNick: options.nick,
    remoteNick: result.remoteNick,
    sas: result.sas,
    remoteAddr: conn.remoteAddr,
    ...(options.keepalive !== undefined ? { keepalive: options.keepalive } : {}),
  });
}

/** Resolves like `dialing`, or rejects after `ms`; a late connection is closed. */
async function withTimeout(
  dialing: Promise<Deno.TcpConn | Deno.TlsConn>,
  ms: number,
): Promise<Deno.TcpConn | Deno.TlsConn> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let timedOut = false;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      timedOut = true;
      reject(new Error(`no connection within ${ms} ms`));
    }, ms);
  });
  try {
    return await Promise.race([dialing, timeout]);
  } finally {
    clearTimeout(timer);
    if (timedOut) dialing.then((late) => late.close(), () => {});
  }
}
