/**
 * Dialling a peer that listens: {@linkcode connectPeer}.
 *
 * @module
 */

import { nameProblem } from "../protocol/names.ts";
import { dial } from "../transport/net.ts";
import { PeerError } from "./errors.ts";
import { performHandshake } from "./handshake.ts";
import { PeerSession } from "./session.ts";

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
}

/**
 * Connects to a listening peer, runs the handshake as initiator and returns the session.
 * Show `session.sas` to the user to compare with the other side's.
 *
 * @throws {PeerError} `invalid_nick`, `connect_failed`, `handshake_failed`, `version` or
 * `timeout`.
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
  const host = options.host ?? "127.0.0.1";
  let conn: Deno.TcpConn | Deno.TlsConn;
  try {
    conn = await dial({ host, port: options.port });
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
  });
  return new PeerSession({
    channel: result.channel,
    role: "initiator",
    localNick: options.nick,
    remoteNick: result.remoteNick,
    sas: result.sas,
    remoteAddr: conn.remoteAddr,
  });
}
