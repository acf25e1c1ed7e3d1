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
import type { RecordAead } from "./record_aead.ts";
import { normalizeCode } from "./code.ts";
import { type PeerKeepaliveOptions, PeerSession } from "./session.ts";

const log = getLogger(["chat", "peer"]);

/** Default bound on handshakes running at once while waiting for the peer. */
export const DEFAULT_MAX_PENDING_HANDSHAKES = 8;
/**
 * Default bound on waiting for a new connection's hello, in milliseconds: the real peer
 * sends it as soon as it is connected, so a connection silent this long is closed.
 */
export const DEFAULT_HELLO_TIMEOUT_MS = 3_000;
/**
 * Default number of connections with a wrong session code after which the listener
 * stops (the code is burned): each one tested one guess of the code.
 */
export const DEFAULT_MAX_CODE_FAILURES = 3;
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
  /**
   * Handshakes allowed at once. Default 8. When they are all under way, a new connection
   * closes the oldest one: the real peer finishes its handshake in a few round trips, so
   * the oldest is a connection that holds a slot without completing.
   */
  maxPendingHandshakes?: number;
  /**
   * Bound on waiting for a new connection's hello, in milliseconds (within
   * `handshakeTimeoutMs`). Default {@linkcode DEFAULT_HELLO_TIMEOUT_MS}.
   */
  helloTimeoutMs?: number;
  /**
   * With a code: connections that fail after this side answered with its CPace share
   * (each tested one guess of the code) after which listening ends with
   * `too_many_attempts`. Attempts under way count too, so that parallel connections
   * cannot test more guesses. Default {@linkcode DEFAULT_MAX_CODE_FAILURES}.
   */
  maxCodeFailures?: number;
  /** Called once the listener is bound, with its address (its port when `port` was 0). */
  onListening?: (addr: Deno.NetAddr) => void;
  /**
   * Called for each connection whose handshake failed (something that does not speak
   * the protocol, a version mismatch, a tampered handshake, a wrong code). Listening goes
   * on, except after `maxCodeFailures` wrong codes. `codeFailures` is given when this
   * connection tested a guess of the code: the failed guesses so far, and the limit.
   */
  onRejected?: (
    error: PeerError,
    remoteAddr: Deno.Addr,
    codeFailures?: { count: number; limit: number },
  ) => void;
  /** Stops waiting: the listener closes and the promise rejects with `aborted`. */
  signal?: AbortSignal;
  /** A session code the dialling side must also give (CPace); see `performHandshake`. */
  code?: string;
  /** A secret the dialling side must also have, mixed into the key schedule. */
  psk?: Uint8Array;
  /**
   * The records' ChaCha20-Poly1305 implementation. Default: the process's (`recordAead`:
   * OpenSSL through FFI when allowed and present, else `node:crypto`; same bytes either way).
   */
  aead?: RecordAead;
  /** The session's keepalive (see `PeerSession`). Default: a ping after 15 s, the end at 45 s. */
  keepalive?: PeerKeepaliveOptions;
}

/**
 * Listens until exactly one peer completes the handshake, then stops listening and
 * returns the session. Connections whose handshake fails are reported through
 * `onRejected` and closed; they do not end the wait, except wrong session codes: after
 * `maxCodeFailures` of them listening ends (as a burned code), so the code cannot be
 * guessed by trying. Several handshakes may run at once (bounded); a connection that
 * sends no hello is closed after `helloTimeoutMs`, and when all slots are taken a new
 * connection closes the oldest, so silent connections cannot keep the real peer out.
 * The first handshake to complete wins and the rest are closed.
 *
 * @throws {PeerError} `invalid_nick`, `invalid_code`, `aborted`, `too_many_attempts`, or
 * `listen_failed` (the port is in use, no such address, ...).
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
  const maxPending = Math.max(1, options.maxPendingHandshakes ?? DEFAULT_MAX_PENDING_HANDSHAKES);
  const maxCodeFailures = Math.max(1, options.maxCodeFailures ?? DEFAULT_MAX_CODE_FAILURES);
  const helloTimeoutMs = options.helloTimeoutMs ?? DEFAULT_HELLO_TIMEOUT_MS;
  const listener = bind(options.host ?? "0.0.0.0", options.port);
  // Oldest first (a Set keeps insertion order): the one to close when all slots are taken.
  const pending = new Set<Deno.Conn>();
  const evicted = new WeakSet<Deno.Conn>();
  let codeFailures = 0;
  let codeAttempts = 0; // under way: this side has sent its share, no outcome yet
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
      let triedCode = false;
      const onCodeAttempt = (): void => {
        if (codeFailures + codeAttempts >= maxCodeFailures) {
          throw new PeerError(
            "too_many_attempts",
            "other attempts with the session code are under way; try again in a few seconds",
          );
        }
        codeAttempts++;
        triedCode = true;
      };
      try {
        const result = await performHandshake(conn, {
          role: "responder",
          nick: options.nick,
          helloTimeoutMs,
          ...(options.handshakeTimeoutMs ? { timeoutMs: options.handshakeTimeoutMs } : {}),
          ...(options.code !== undefined ? { code: options.code, onCodeAttempt } : {}),
          ...(options.psk !== undefined ? { psk: options.psk } : {}),
          ...(options.aead !== undefined ? { aead: options.aead } : {}),
        });
        pending.delete(conn);
        if (triedCode) codeAttempts--;
        const session = new PeerSession({
          channel: result.channel,
          role: "responder",
          localNick: options.nick,
          remoteNick: result.remoteNick,
          sas: result.sas,
          remoteAddr: conn.remoteAddr,
          ...(options.keepalive !== undefined ? { keepalive: options.keepalive } : {}),
        });
        if (settled) session.abort();
        else finish({ session });
      } catch (err) {
        pending.delete(conn);
        if (triedCode) {
          codeAttempts--;
          codeFailures++;
        }
        if (settled) return;
        const error = evicted.has(conn)
          ? new PeerError(
            "handshake_failed",
            `closed to make room: ${maxPending} connections were already waiting for their ` +
              `handshake`,
            { cause: err },
          )
          : err instanceof PeerError
          ? err
          : new PeerError("handshake_failed", String(err), { cause: err });
        log.info("rejected a connection from {addr}: {message}", {
          addr: describe(conn.remoteAddr),
          message: error.message,
        });
        try {
          options.onRejected?.(
            error,
            conn.remoteAddr,
            triedCode ? { count: codeFailures, limit: maxCodeFailures } : undefined,
          );
        } catch (callbackError) {
          log.error("onRejected threw: {error}", { error: callbackError });
        }
        if (triedCode && codeFailures >= maxCodeFailures) {
          finish({
            error: new PeerError(
              "too_many_attempts",
              `${codeFailures} connections failed with the session code; stopped listening ` +
                `so that it cannot be guessed by trying (the code is burned: start again ` +
                `with a new code)`,
            ),
          });
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
          const oldest = pending.values().next().value!;
          log.warn("too many handshakes at once; closing the oldest, from {addr}", {
            addr: describe(oldest.remoteAddr),
          });
          pending.delete(oldest);
          evicted.add(oldest);
          closeQuietly(oldest);
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

/** Binds the listener; a failure says what is wrong in words, not an `os error` number. */
function bind(host: string, port: number): Deno.Listener {
  try {
    return listen({ host, port });
  } catch (err) {
    const where = host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
    const reason = err instanceof Deno.errors.AddrInUse
      ? `port ${port} is already in use (another program listens there): pick another ` +
        `port, or 0 for a free one`
      : err instanceof Deno.errors.AddrNotAvailable
      ? "this machine has no such address"
      : err instanceof Deno.errors.PermissionDenied || err instanceof Deno.errors.NotCapable
      ? "permission denied"
      : err instanceof Error
      ? err.message
      : String(err);
    throw new PeerError("listen_failed", `cannot listen on ${where}: ${reason}`, { cause: err });
  }
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
