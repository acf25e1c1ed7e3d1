/**
 * What the soak's abusive connections share: how a connection ended (`Outcome`), what
 * it is told (`AbuseContext`), and the few exchanges every attacker script needs
 * (hello, login, one request, reading how the server answered).
 *
 * @module
 */

import { encodeFrame } from "../protocol/frame.ts";
import { clientHello, SERVER_FEATURES } from "../protocol/hello.ts";
import type { AbuseStats } from "./abuse.ts";
import type { Header, RawConn } from "./raw_conn.ts";
import type { Rng } from "./rng.ts";

/**
 * How one abusive connection ended: the server answered as it should
 * (`expected`), the connection was refused by the connection caps (`refused`), it
 * broke before the answer could be told (`interrupted`, e.g. the server was being
 * killed), or the server answered otherwise (`unexpected`, with a description).
 */
export type Outcome =
  | { kind: "expected" }
  | { kind: "refused" }
  | { kind: "interrupted"; why: string }
  | { kind: "unexpected"; why: string };

/** What an abusive connection needs to know. */
export interface AbuseContext {
  /** The server's port on 127.0.0.1. */
  port: number;
  /** Random choices. */
  rng: Rng;
  /** A fresh nick for each abuser that logs in. */
  nextNick: () => string;
  /** The server's login deadline, in ms (slowloris connections expect it). */
  loginTimeoutMs: number;
  /** The server's frame deadline, in ms (0: none); a frame started must finish by then. */
  frameTimeoutMs: number;
  /** How long a connection that never reads holds out before looking, in ms. */
  neverReadHoldMs: number;
  /** Most frames a flooder sends (in batches, until it is disconnected). */
  floodFrames: number;
  /** Rooms of the well-behaved clients (some abusers go there). */
  goodRooms: number;
  /** Well-behaved clients (some flooders send them direct messages). */
  goodClients: number;
  /** Keeps track of open connections, to close them when the run ends. */
  track: (conn: RawConn) => () => void;
  /** Aborted when the run ends: waits stop early. */
  signal: AbortSignal;
  /**
   * Counts the server restarts announced so far: a connection that spans one and
   * ends oddly was cut short by the restart, not answered wrongly.
   */
  epoch: () => number;
  /** The nick the good clients' login probe uses (wrong-password attacks aim at it). */
  probeNick: string;
  /**
   * Other loopback addresses (127.0.0.2, ...) some attackers connect from, so that the
   * server sees other client addresses than the well-behaved clients'; empty when the
   * machine has none.
   */
  attackerAddresses: string[];
  /**
   * How long a partial frame may stay unfinished before its holder calls it a defect,
   * in ms (the server should close it sooner).
   */
  partialFrameDeadlineMs: number;
  /**
   * The server's file byte budget per session and second (`--rate-file-bytes`), which
   * paces `file_flood`; 0: unlimited.
   */
  fileBytesPerSec: number;
}

/** The password of every abuser account. */
export const ABUSER_PASSWORD = "abuser-password";
/** The room the flooders fill. */
export const FLOOD_ROOM = "soak-flood";
/** Time allowed for an answer to a bad frame. */
export const ANSWER_MS = 5000;
/** The largest frame a server accepts after login, by default. */
export const MAX_FRAME = 1024 * 1024;

/** Sends the hello and waits for the server's; false when refused or broken. */
export async function hello(conn: RawConn): Promise<boolean> {
  conn.startReading();
  await conn.write(encodeFrame(clientHello(SERVER_FEATURES, "soak-abuser")));
  const answer = await conn.waitFor((h) => h.type === "hello" || h.type === "error", ANSWER_MS);
  return answer?.type === "hello";
}

/** Hello and login as a fresh abuser account; false when refused or broken. */
export async function login(conn: RawConn, ctx: AbuseContext, stats: AbuseStats): Promise<boolean> {
  if (!(await hello(conn))) return false;
  const ok = await request(conn, {
    type: "login",
    id: "login",
    nick: ctx.nextNick(),
    password: ABUSER_PASSWORD,
  });
  if (ok) stats.logins++;
  return ok;
}

/** Sends one request and waits for its reply; true when it is `ok`. */
export async function request(conn: RawConn, header: { id: string } & Header): Promise<boolean> {
  await conn.write(encodeFrame(header));
  const reply = await conn.waitFor(
    (h) => (h.type === "ok" || h.type === "error") && h.re === header.id,
    ANSWER_MS,
  );
  return reply?.type === "ok";
}

/** Expects an error (of `code`, when given) and then the end of the connection. */
export async function expectErrorAndClose(
  conn: RawConn,
  code: string | null,
  timeoutMs: number,
): Promise<Outcome> {
  const closed = await conn.waitClosed(timeoutMs);
  const error = conn.received.find((h) => h.type === "error" && h.code !== "too_many_connections");
  if (!closed) return { kind: "unexpected", why: `still open ${timeoutMs} ms after a bad frame` };
  if (error === undefined) return brokeOff(conn, "the answer to a bad frame");
  if (code !== null && error.code !== code) {
    return { kind: "unexpected", why: `answered ${error.code}, not ${code}` };
  }
  return { kind: "expected" };
}

/**
 * Sends bad frames to a logged-in session; expects an error for each and a session
 * that still answers a ping.
 */
export async function sendAndCheckAlive(
  conn: RawConn,
  frames: object[],
  stats: AbuseStats,
): Promise<Outcome> {
  const before = conn.received.length;
  await conn.write(concat(frames.map((f) => encodeFrame(f))));
  stats.badFramesSent += frames.length;
  await conn.write(encodeFrame({ type: "ping", id: "alive" }));
  const pong = await conn.waitFor((h) => h.type === "ok" && h.re === "alive", ANSWER_MS);
  if (pong === null) {
    if (conn.closed) {
      const error = conn.received.slice(before).find((h) => h.type === "error");
      return error !== undefined
        ? { kind: "unexpected", why: `session closed after bad frames (last error ${error.code})` }
        : brokeOff(conn, "bad frames");
    }
    return { kind: "unexpected", why: "no answer to a ping after bad frames" };
  }
  // Pipelined requests are answered as they finish, not in order: the error of one that
  // asks the store first (a direct message to an unknown user) may follow the ping's reply.
  const errorsIn = () => conn.received.slice(before).filter((h) => h.type === "error").length;
  await conn.waitFor(() => errorsIn() >= frames.length, ANSWER_MS);
  const errors = errorsIn();
  if (errors < frames.length) {
    return { kind: "unexpected", why: `${errors} errors for ${frames.length} bad frames` };
  }
  return { kind: "expected" };
}

/**
 * The exchange stopped before the answer: refused by a cap, broken off (a restart),
 * or answered with an unexpected error or not at all.
 */
export function brokeOff(conn: RawConn, during: string): Outcome {
  const code = errorCode(conn);
  if (code === "too_many_connections") return { kind: "refused" };
  if (code !== undefined) return { kind: "unexpected", why: `error ${code} during ${during}` };
  if (conn.closed) return { kind: "interrupted", why: `connection ended during ${during}` };
  return { kind: "unexpected", why: `no answer during ${during} within ${ANSWER_MS} ms` };
}

export function errorCode(conn: RawConn): string | undefined {
  const error = conn.received.find((h) => h.type === "error");
  return error === undefined ? undefined : String(error.code);
}

export function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}

export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done);
  });
}
