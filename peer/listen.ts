/**
 * Waiting for one peer to dial in: {@linkcode listenPeer}.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { nameProblem } from "../protocol/names.ts";
import { listen, tuneAccepted } from "../transport/net.ts";
import { PeerError } from "./errors.ts";
import { performHandshake } from "./handshake.ts";
import { normalizeCode } from "./code.ts";
import { PeerSession } from "./session.ts";

const log = getLogger(["chat", "peer"]);

/** Default bound on handshakes running at once while waiting for the peer. */
export const DEFAULT_MAX_PENDING_HANDSHAKES = 8;
const ACCEPT_RETRY_MS = 100;

/** Options of {@linkcode listenPeer}. */
export interface ListenPeerOptions {
  /** Address to bind. Default `0.0.0.0`. */
  host?: string;
  /** TCP port; 0 picks a free one (see `onListening`). */
  port: number;
  /** This side's nick. */
  nick: string;
  /** Bound on each handshake, in milliseconds. Default 10 s. */
  handshakeTimeoutMs?: number;
  /** Handshakes allowed at once; further connections are closed at once. Default 8. */
  maxPendingHandshakes?: number;
  /** Called once the listener is bound, with its address (its port when `port` was 0). */
  onListening?: (addr: Deno.NetAddr) => void;
  /**
   * Called for each connection whose handshake failed (something that does not speak
   * the protocol, a version mismatch, a tampered handshake). Listening goes on.
   */
  onRejected?: (error: PeerError, remoteAddr: Deno.Addr) => void;
  /** Stops waiting: the listener closes and the promise rejects with `aborted`. */
  signal?: AbortSignal;
  /** A session code the dialling side must also give (CPace); see `performHandshake`. */
  code?: string;
  /** A secret the dialling side must also have, mixed into the key schedule. */
  psk?: Uint8Array;
}

/**
 * Listens until exactly one peer completes the handshake, then stops listening and
 * returns the session. Connections whose handshake fails are reported through
 * `onRejected` and closed; they never end the wait. Several handshakes may run at once
 * (bounded), so a silent connection cannot block the real peer; the first to complete
 * wins and the rest are closed.
 *
 * @throws {PeerError} `invalid_nick`, `invalid_code` or `aborted`; errors of binding the
 * address as is.
 * @example
 * ```ts ignore
 * import { listenPeer } from "./listen.ts";
 * const session = await listenPeer({
 *   port: 0,
 *   nick: "alice",
 *   onListening: (addr) => console.log(`listening on port ${addr.port}`),
 * });
 * console.log(`Compare with your peer: ${session.sas}`);
 * ```
 */
export async function listenPeer(options: ListenPeerOptions): Promise<PeerSession> {
  const problem = nameProblem(options.nick);
  if (problem !== null) throw new PeerError("invalid_nick", `nick ${problem}`);
  if (options.code !== undefined) normalizeCode(options.code); // fails before listening
  if (options.signal?.aborted) throw abortedError(options.signal);
  const maxPending = options.maxPendingHandshakes ?? DEFAULT_MAX_PENDING_HANDSHAKES;
  const listener = listen({ host: options.host ?? "0.0.0.0", port: options.port });
  const pending = new Set<Deno.Conn>();
  let settled = false;

  return await new Promise<PeerSession>((resolve, reject) => {
    const finish = (outcome: { session: PeerSession } | { error: unknown }): void => {
      if (settled) return;
      settled = true;
      options.signal?.removeEventListener("abort", onAbort);
      try {
        listener.close();
      } catch {
        // already closed
      }
      for (const conn of pending) closeQuietly(conn);
      pending.clear();
      if ("session" in outcome) resolve(outcome.session);
      else reject(outcome.error);
    };
    const onAbort = (): void => finish({ error: abortedError(options.signal!) });
    options.signal?.addEventListener("abort", onAbort, { once: true });

    const handle = async (conn: Deno.Conn): Promise<void> => {
      try {
        const result = await performHandshake(conn, {
          role: "responder",
          nick: options.nick,
          ...(options.handshakeTimeoutMs ? { timeoutMs: options.handshakeTimeoutMs } : {}),
          ...(options.code !== undefined ? { code: options.code } : {}),
          ...(options.psk !== undefined ? { psk: options.psk } : {}),
        });
        pending.delete(conn);
        const session = new PeerSession({
          channel: result.channel,
          role: "responder",
          localNick: options.nick,
          remoteNick: result.remoteNick,
          sas: result.sas,
          remoteAddr: conn.remoteAddr,
        });
        if (settled) session.abort();
        else finish({ session });
      } catch (err) {
        pending.delete(conn);
        if (settled) return;
        const error = err instanceof PeerError
          ? err
          : new PeerError("handshake_failed", String(err), { cause: err });
        log.info("rejected a connection from {addr}: {message}", {
          addr: describe(conn.remoteAddr),
          message: error.message,
        });
        try {
          options.onRejected?.(error, conn.remoteAddr);
        } catch (callbackError) {
          log.error("onRejected threw: {error}", { error: callbackError });
        }
      }
    };

    const acceptLoop = async (): Promise<void> => {
      while (!settled) {
        let conn: Deno.Conn;
        try {
          conn = await listener.accept();
        } catch (err) {
          if (settled) return;
          if (err instanceof Deno.errors.BadResource || err instanceof Deno.errors.Interrupted) {
            finish({ error: new PeerError("aborted", "the listener was closed", { cause: err }) });
            return;
          }
          // A connection that failed between the SYN and accept: keep listening.
          log.warn("accept failed: {error}", { error: err });
          await new Promise((resolve) => setTimeout(resolve, ACCEPT_RETRY_MS));
          continue;
        }
        if (settled) {
          closeQuietly(conn);
          return;
        }
        if (pending.size >= maxPending) {
          log.warn("too many handshakes at once; closing a connection from {addr}", {
            addr: describe(conn.remoteAddr),
          });
          closeQuietly(conn);
          continue;
        }
        tuneAccepted(conn);
        pending.add(conn);
        handle(conn);
      }
    };

    try {
      options.onListening?.(listener.addr as Deno.NetAddr);
    } catch (err) {
      finish({ error: err });
      return;
    }
    acceptLoop();
  });
}

function abortedError(signal: AbortSignal): PeerError {
  return new PeerError("aborted", "stopped waiting for a peer", { cause: signal.reason });
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // already closed
  }
}

function describe(addr: Deno.Addr): string {
  return "hostname" in addr ? `${addr.hostname}:${addr.port}` : addr.transport;
}
