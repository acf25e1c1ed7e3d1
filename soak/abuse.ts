/**
 * The soak's abusive connections: one function per kind of abuse, each opening one
 * connection, misbehaving in one of a few ways, and classifying how the server
 * answered. Every wait is bounded; nothing here throws. The kinds here are the mixed
 * phase's; attacks.ts adds the attacks of issue #13, and runAbuse runs either.
 *
 * @module
 */

import { encodeFrame } from "../protocol/frame.ts";
import { clientHello, SERVER_FEATURES } from "../protocol/hello.ts";
import {
  type AbuseContext,
  ABUSER_PASSWORD,
  ANSWER_MS,
  brokeOff,
  concat,
  errorCode,
  expectErrorAndClose,
  FLOOD_ROOM,
  hello,
  login,
  MAX_FRAME,
  type Outcome,
  request,
  sendAndCheckAlive,
  sleep,
} from "./abuse_io.ts";
import { ATTACK_BEHAVIOURS, ATTACK_KINDS, type AttackKind, TLS_ATTACK_KINDS } from "./attacks.ts";
import { goodNick, roomName } from "./plan.ts";
import { type Header, RawConn } from "./raw_conn.ts";

export type { AbuseContext, Outcome } from "./abuse_io.ts";
export { ABUSER_PASSWORD, FLOOD_ROOM } from "./abuse_io.ts";

/** Frames a flooder writes at once, every 100 ms. */
const FLOOD_BATCH = 50;

const encoder = new TextEncoder();

/** Kinds that connect from another loopback address than the well-behaved clients. */
const FROM_ELSEWHERE: ReadonlySet<AbuseKind> = new Set<AbuseKind>([
  "wrong_password",
  "register_flood",
  "prelogin_flood",
  "fd_exhaust",
  "dm_backlog",
]);

/**
 * The kinds of the mixed phase (the first soak's), in the order they take turns
 * there; each can also have a phase of its own.
 */
export const MIXED_KINDS = [
  "random_bytes",
  "garbage_payload",
  "truncated",
  "oversized",
  "invalid_json",
  "wrong_fields",
  "unknown_command",
  "flood",
  "slowloris",
  "never_read",
] as const;

/** A kind of the mixed phase. */
export type MixedKind = typeof MIXED_KINDS[number];

/** Every kind of abusive connection: the mixed phase's, then the attacks of issue #13. */
export const ABUSE_KINDS: readonly AbuseKind[] = [
  ...MIXED_KINDS,
  ...ATTACK_KINDS,
  ...TLS_ATTACK_KINDS,
];

/** A kind of abusive connection. */
export type AbuseKind = MixedKind | AttackKind;

/** Counts of one kind's runs. */
export interface KindStats {
  /** Connections of this kind. */
  runs: number;
  /** Answered as expected. */
  expected: number;
  /** Refused by a connection cap. */
  refused: number;
  /** Broken off before the answer (server restart). */
  interrupted: number;
  /** Answered otherwise. */
  unexpected: number;
  /**
   * Messages the server acknowledged to an attacker's own accounts and then never
   * delivered (the held direct messages of `dm_backlog`).
   */
  lost: number;
}

/** Everything the abusers count. */
export interface AbuseStats {
  /** Connection attempts. */
  connectionsTried: number;
  /** Attempts the server accepted at the TCP level. */
  connected: number;
  /** Attempts that could not connect (server down). */
  connectFailed: number;
  /** Malformed frames or byte blobs sent. */
  badFramesSent: number;
  /** Valid messages sent by flooders. */
  floodMessagesSent: number;
  /** `rate_limited` errors received. */
  rateLimited: number;
  /** `flood` notices received (disconnected for flooding). */
  floodDisconnects: number;
  /** `slow_consumer` notices received by connections that did not read. */
  slowConsumerCutoffs: number;
  /** Silent connections closed by the server at the login deadline. */
  slowlorisClosed: number;
  /** Shortest and longest time until such a close, in ms. */
  slowlorisCloseMs: { min: number; max: number } | null;
  /** Logins that succeeded. */
  logins: number;
  /** Error frames received, by code. */
  errorCodes: Record<string, number>;
  /** Per kind. */
  kinds: Record<string, KindStats>;
  /** A few descriptions of unexpected answers. */
  unexpected: string[];
}

/** Creates empty counts. */
export function emptyAbuseStats(): AbuseStats {
  const kinds: Record<string, KindStats> = {};
  for (const kind of ABUSE_KINDS) {
    kinds[kind] = { runs: 0, expected: 0, refused: 0, interrupted: 0, unexpected: 0, lost: 0 };
  }
  return {
    connectionsTried: 0,
    connected: 0,
    connectFailed: 0,
    badFramesSent: 0,
    floodMessagesSent: 0,
    rateLimited: 0,
    floodDisconnects: 0,
    slowConsumerCutoffs: 0,
    slowlorisClosed: 0,
    slowlorisCloseMs: null,
    logins: 0,
    errorCodes: {},
    kinds,
    unexpected: [],
  };
}

/** Adds `b`'s counts into `a`. */
export function mergeAbuseStats(a: AbuseStats, b: AbuseStats): AbuseStats {
  const sum = (x: number, y: number): number => x + y;
  a.connectionsTried = sum(a.connectionsTried, b.connectionsTried);
  a.connected += b.connected;
  a.connectFailed += b.connectFailed;
  a.badFramesSent += b.badFramesSent;
  a.floodMessagesSent += b.floodMessagesSent;
  a.rateLimited += b.rateLimited;
  a.floodDisconnects += b.floodDisconnects;
  a.slowConsumerCutoffs += b.slowConsumerCutoffs;
  a.slowlorisClosed += b.slowlorisClosed;
  if (b.slowlorisCloseMs !== null) {
    a.slowlorisCloseMs = a.slowlorisCloseMs === null ? { ...b.slowlorisCloseMs } : {
      min: Math.min(a.slowlorisCloseMs.min, b.slowlorisCloseMs.min),
      max: Math.max(a.slowlorisCloseMs.max, b.slowlorisCloseMs.max),
    };
  }
  a.logins += b.logins;
  for (const [code, n] of Object.entries(b.errorCodes)) {
    a.errorCodes[code] = (a.errorCodes[code] ?? 0) + n;
  }
  for (const [kind, k] of Object.entries(b.kinds)) {
    const into = a.kinds[kind] ??= {
      runs: 0,
      expected: 0,
      refused: 0,
      interrupted: 0,
      unexpected: 0,
      lost: 0,
    };
    into.runs += k.runs;
    into.expected += k.expected;
    into.refused += k.refused;
    into.interrupted += k.interrupted;
    into.unexpected += k.unexpected;
    into.lost += k.lost;
  }
  for (const line of b.unexpected) if (a.unexpected.length < 20) a.unexpected.push(line);
  return a;
}

/**
 * Runs one abusive connection of `kind` and records it in `stats`. Never throws;
 * the connection is closed when it returns.
 */
export async function runAbuse(
  kind: AbuseKind,
  ctx: AbuseContext,
  stats: AbuseStats,
): Promise<void> {
  stats.connectionsTried++;
  const k = stats.kinds[kind]!;
  let conn: RawConn;
  try {
    const from = FROM_ELSEWHERE.has(kind) && ctx.attackerAddresses.length > 0
      ? ctx.rng.pick(ctx.attackerAddresses)
      : undefined;
    conn = await RawConn.open(ctx.port, from);
  } catch {
    stats.connectFailed++;
    return;
  }
  stats.connected++;
  k.runs++;
  const untrack = ctx.track(conn);
  const epoch = ctx.epoch();
  let outcome: Outcome;
  try {
    outcome = await BEHAVIOURS[kind](conn, ctx, stats);
  } catch (err) {
    outcome = { kind: "unexpected", why: `abuser failed: ${err}` };
  } finally {
    conn.close();
    untrack();
  }
  for (const header of conn.received) {
    if (header.type !== "error") continue;
    const code = String(header.code);
    stats.errorCodes[code] = (stats.errorCodes[code] ?? 0) + 1;
    if (code === "rate_limited") stats.rateLimited++;
  }
  for (const header of conn.received) {
    if (header.type !== "notice") continue;
    if (header.code === "flood") stats.floodDisconnects++;
    if (header.code === "slow_consumer") stats.slowConsumerCutoffs++;
  }
  if (outcome.kind !== "refused" && errorCode(conn) === "too_many_connections") {
    outcome = { kind: "refused" };
  }
  if (outcome.kind === "unexpected" && ctx.epoch() !== epoch) {
    outcome = { kind: "interrupted", why: `server restarted (${outcome.why})` };
  }
  k[outcome.kind]++;
  if (outcome.kind === "unexpected" && stats.unexpected.length < 20) {
    stats.unexpected.push(`${kind}: ${outcome.why}`);
  }
}

type Behaviour = (conn: RawConn, ctx: AbuseContext, stats: AbuseStats) => Promise<Outcome>;

const MIXED_BEHAVIOURS: Record<MixedKind, Behaviour> = {
  async random_bytes(conn, ctx, stats) {
    if (ctx.rng.chance(0.3) && !(await hello(conn))) return brokeOff(conn, "hello");
    await conn.write(ctx.rng.bytes(ctx.rng.int(64, 4096)));
    stats.badFramesSent++;
    // A random length prefix is nearly always too large; a small one waits for the
    // login deadline instead.
    return expectErrorAndClose(conn, null, ctx.loginTimeoutMs + 3000);
  },

  async garbage_payload(conn, ctx, stats) {
    if (ctx.rng.chance(0.5) && !(await hello(conn))) return brokeOff(conn, "hello");
    const length = ctx.rng.int(8, 1024);
    const frame = new Uint8Array(4 + length);
    new DataView(frame.buffer).setUint32(0, length);
    frame.set(ctx.rng.bytes(length), 4);
    // A header length that cannot fit: always a bad frame.
    new DataView(frame.buffer).setUint32(4, length + ctx.rng.int(1, 1 << 20));
    await conn.write(frame);
    stats.badFramesSent++;
    return expectErrorAndClose(conn, "bad_frame", ANSWER_MS);
  },

  async truncated(conn, ctx, stats) {
    let frame: Uint8Array;
    if (ctx.rng.chance(0.5)) {
      frame = encodeFrame(clientHello(SERVER_FEATURES, "soak-abuser"));
    } else {
      if (!(await login(conn, ctx, stats))) return brokeOff(conn, "login");
      frame = encodeFrame({ type: "say", id: "t1", room: FLOOD_ROOM, text: "cut short" });
    }
    await conn.write(frame.subarray(0, ctx.rng.int(1, frame.length - 1)));
    stats.badFramesSent++;
    await conn.closeWrite();
    if (await conn.waitClosed(ANSWER_MS)) return { kind: "expected" };
    return {
      kind: "unexpected",
      why: "still open 5 s after a frame cut short and the end of the stream",
    };
  },

  async oversized(conn, ctx, stats) {
    const variant = ctx.rng.int(0, 3);
    let length: number;
    if (variant === 0) {
      length = 0xffff_ffff;
    } else if (variant === 1) {
      if (!(await hello(conn))) return brokeOff(conn, "hello");
      length = 64 * 1024 + 1; // over the limit before login
    } else {
      if (!(await login(conn, ctx, stats))) return brokeOff(conn, "login");
      length = variant === 2 ? MAX_FRAME + 1 : 0x8000_0000;
    }
    const prefix = new Uint8Array(4 + ctx.rng.int(0, 64));
    new DataView(prefix.buffer).setUint32(0, length);
    await conn.write(prefix);
    stats.badFramesSent++;
    return expectErrorAndClose(conn, "frame_too_large", ANSWER_MS);
  },

  async invalid_json(conn, ctx, stats) {
    if (ctx.rng.chance(0.5) && !(await hello(conn))) return brokeOff(conn, "hello");
    const header = ctx.rng.pick<Uint8Array>([
      encoder.encode('{"type":"ping","id":'),
      encoder.encode("not json at all"),
      encoder.encode("[1,2,3]"),
      encoder.encode('"just a string"'),
      encoder.encode("null"),
      new Uint8Array([0x7b, 0x22, 0xc3, 0x28, 0xff, 0xfe, 0x22, 0x7d]), // invalid UTF-8
      encoder.encode('{"type":"hello","v":1,"features":["' + "x".repeat(500)),
    ]);
    const frame = new Uint8Array(8 + header.length);
    const view = new DataView(frame.buffer);
    view.setUint32(0, 4 + header.length);
    view.setUint32(4, header.length);
    frame.set(header, 8);
    await conn.write(frame);
    stats.badFramesSent++;
    return expectErrorAndClose(conn, null, ANSWER_MS);
  },

  async wrong_fields(conn, ctx, stats) {
    if (ctx.rng.chance(0.2)) {
      // A valid-looking request where the hello belongs: refused and closed.
      await conn.write(encodeFrame({ type: "login", id: "x", nick: "nobody" }));
      stats.badFramesSent++;
      return expectErrorAndClose(conn, "bad_message", ANSWER_MS);
    }
    if (!(await login(conn, ctx, stats))) return brokeOff(conn, "login");
    const frames: object[] = [
      { type: "say", id: "w1", room: 5, text: "x" },
      { type: "dm", id: "w2" },
      { type: "join", id: "w3", room: "no spaces allowed" },
      { type: "sync", id: "w4", after: -1 },
      { type: "history", id: "w5", room: "a", with: "b" },
      { type: "say", id: 7, room: "x", text: "y" },
      { type: "login", id: "w7", nick: "someone", password: ABUSER_PASSWORD },
      { type: "hello", v: 1, features: [] },
      { type: "read", id: "w9", ids: [] },
      { type: "say", id: "w10", room: roomName(0), text: "not a member" },
      { type: "dm", id: "w11", to: "nobody-at-all", text: "x" },
      { type: "ping", id: "x".repeat(65) },
      { type: "topic", id: "w13", room: roomName(0), topic: "t".repeat(2000) },
      { type: "whoelse", id: "w14", since: -5 },
      { type: "history", id: "w15", room: roomName(0), limit: 100_000 },
      { type: "private_start", id: "w16", nick: goodNick(0), sid: "short", port: 99999 },
    ];
    return sendAndCheckAlive(conn, frames, stats);
  },

  async unknown_command(conn, ctx, stats) {
    if (ctx.rng.chance(0.2)) {
      await conn.write(encodeFrame({ type: "frobnicate", id: "u0" }));
      stats.badFramesSent++;
      return expectErrorAndClose(conn, "bad_message", ANSWER_MS);
    }
    if (!(await login(conn, ctx, stats))) return brokeOff(conn, "login");
    const frames: object[] = [
      { type: "frobnicate", id: "u1" },
      { type: "", id: "u2" },
      { type: 42, id: "u3" },
      { id: "u4" },
      { type: "__proto__", id: "u5" },
      { type: "constructor", id: "u6" },
      { type: "toString", id: "u7" },
      { type: "hasOwnProperty", id: "u8" },
      { type: "SAY", id: "u9", room: FLOOD_ROOM, text: "x" },
      { type: "ok", re: "u10" },
    ];
    return sendAndCheckAlive(conn, frames, stats);
  },

  async flood(conn, ctx, stats) {
    if (!(await login(conn, ctx, stats))) return brokeOff(conn, "login");
    const variant = ctx.rng.next();
    let frame: (i: number) => Uint8Array;
    let what: string;
    if (variant < 0.6) {
      what = "say";
      const room = ctx.rng.chance(0.3) ? roomName(ctx.rng.int(0, ctx.goodRooms - 1)) : FLOOD_ROOM;
      if (!(await request(conn, { type: "join", id: "j", room }))) return brokeOff(conn, "join");
      frame = (i) => encodeFrame({ type: "say", id: `f${i}`, room, text: `flood ${i}` });
    } else if (variant < 0.8) {
      what = "dm";
      const to = goodNick(ctx.rng.int(0, ctx.goodClients - 1));
      frame = (i) => encodeFrame({ type: "dm", id: `f${i}`, to, text: `flood ${i}` });
    } else {
      // Requests, not messages: the requests bucket (50/s) is what stops these.
      what = "who";
      frame = (i) => encodeFrame({ type: "who", id: `f${i}` });
    }
    // Persistent excess: a batch every 100 ms, far over every rate, until the server
    // disconnects the flooder or the frames run out.
    let sent = 0;
    let notice: Header | null = null;
    while (sent < ctx.floodFrames && !conn.closed && notice === null) {
      const batch = Math.min(FLOOD_BATCH, ctx.floodFrames - sent);
      const ok = await conn.write(concat(Array.from({ length: batch }, (_, k) => frame(sent + k))));
      if (!ok) break;
      sent += batch;
      notice = await conn.waitFor((h) => h.type === "notice" && h.code === "flood", 100);
    }
    stats.floodMessagesSent += sent;
    notice ??= await conn.waitFor((h) => h.type === "notice" && h.code === "flood", ANSWER_MS);
    const limited = conn.received.some((h) => h.type === "error" && h.code === "rate_limited");
    if (notice !== null && limited) {
      return (await conn.waitClosed(ANSWER_MS))
        ? { kind: "expected" }
        : { kind: "unexpected", why: "still open 5 s after the flood notice" };
    }
    if (conn.closed && notice === null) {
      if (errorCode(conn) === "too_many_connections") return { kind: "refused" };
      return { kind: "interrupted", why: "connection ended during the flood, without a notice" };
    }
    return {
      kind: "unexpected",
      why: `${sent} ${what} frames, ${FLOOD_BATCH} every 100 ms: rate_limited ${limited}, ` +
        `flood notice ${notice !== null}`,
    };
  },

  async slowloris(conn, ctx, stats) {
    const variant = ctx.rng.int(0, 3);
    if (variant === 1) {
      if (!(await hello(conn))) return brokeOff(conn, "hello");
    } else if (variant === 2) {
      await conn.write(new Uint8Array([0, 0]));
    } else if (variant === 3) {
      const frame = encodeFrame(clientHello(SERVER_FEATURES, "soak-abuser"));
      await conn.write(frame.subarray(0, Math.floor(frame.length / 2)));
    }
    // Part of a frame sent: the frame deadline may come first.
    const deadlineMs = variant >= 2 && ctx.frameTimeoutMs > 0
      ? Math.min(ctx.loginTimeoutMs, ctx.frameTimeoutMs)
      : ctx.loginTimeoutMs;
    const closed = await conn.waitClosed(deadlineMs + 4000);
    if (!closed) {
      return { kind: "unexpected", why: `still open ${deadlineMs + 4000} ms without a login` };
    }
    const ms = Math.round(conn.closedAfterMs!);
    if (ms < deadlineMs - 500) return brokeOff(conn, `${ms} ms of silence`);
    stats.slowlorisClosed++;
    stats.slowlorisCloseMs = stats.slowlorisCloseMs === null ? { min: ms, max: ms } : {
      min: Math.min(stats.slowlorisCloseMs.min, ms),
      max: Math.max(stats.slowlorisCloseMs.max, ms),
    };
    return { kind: "expected" };
  },

  async never_read(conn, ctx, stats) {
    if (!(await login(conn, ctx, stats))) return brokeOff(conn, "login");
    const room = roomName(ctx.rng.int(0, ctx.goodRooms - 1));
    if (!(await request(conn, { type: "join", id: "j", room }))) return brokeOff(conn, "join");
    // From here on nothing is read: large replies pile up on the server's side.
    const chunks: Uint8Array[] = [];
    for (let i = 0; i < 90; i++) {
      chunks.push(encodeFrame({ type: "history", id: `h${i}`, room, limit: 500 }));
    }
    await conn.write(concat(chunks));
    await sleep(ctx.neverReadHoldMs, ctx.signal);
    // Then look: still served, or cut off as a slow consumer with a notice.
    conn.startReading();
    await conn.waitFor((h) => h.type === "notice" && h.code === "slow_consumer", 3000);
    return { kind: "expected" };
  },
};

const BEHAVIOURS: Record<AbuseKind, Behaviour> = { ...MIXED_BEHAVIOURS, ...ATTACK_BEHAVIOURS };
