/**
 * The attacks of issue #13, as an attacker would write them: raw connections (see
 * raw_conn.ts), no client library. Each one opens its connection(s), misbehaves, and
 * tells how the server answered: `expected` when it defended itself as the issue
 * asks, `unexpected` (with what happened) when the defect showed. The soak runs each
 * in a phase of its own while the well-behaved clients chat (see phases.ts).
 *
 * | kind             | #13 item | what it does                                                      |
 * | ---------------- | -------- | ----------------------------------------------------------------- |
 * | `error_flood`    | 3        | logged-in sessions sending unknown types and bad fields, nonstop  |
 * | `ping_flood`     | 3        | logged-in sessions sending `ping`, nonstop                         |
 * | `prelogin_flood` | 3        | bad frames and wrong logins after hello, before any login          |
 * | `file_flood`     | 3        | `file_chunk` and `file_read` nonstop, from a sender and a recipient|
 * | `register_flood` | 7        | connections registering new nicks, from other loopback addresses  |
 * | `wrong_password` | 9        | wrong passwords for the login probe's nick, from other addresses  |
 * | `dm_backlog`     | 4        | 400 direct messages of 12 KB held for an offline account, its login|
 * | `huge_reply`     | 5        | rooms with control-character topics, then `rooms`; a join's history|
 * | `empty_offers`   | 6        | zero-byte file offers to one offline account, nonstop             |
 * | `partial_frame`  | 11       | logged-in sessions that send half a large frame and hold it       |
 * | `lookalike_nick` | 16       | registering "g0od1", "good1.", "server", "SYSTEM"                 |
 * | `fd_exhaust`     | 1        | idle connections past the server's descriptor limit (lowered for  |
 * |                  |          | the phase, Linux), then a fresh login once they go                |
 *
 * | `silent_tls`     | 2        | TCP connections to a TLS server that send nothing or half a hello |
 *
 * `silent_tls` runs only when the soak's server serves TLS (`--tls`); the others only
 * when it does not.
 *
 * @module
 */

import { encodeFrame } from "../protocol/frame.ts";
import {
  type AbuseContext,
  ABUSER_PASSWORD,
  ANSWER_MS,
  brokeOff,
  concat,
  hello,
  login,
  MAX_FRAME,
  type Outcome,
  request,
  sleep,
} from "./abuse_io.ts";
import type { AbuseStats } from "./abuse.ts";
import { goodNick } from "./plan.ts";
import { type Header, RawConn } from "./raw_conn.ts";

/** The attacks of issue #13, in the order their phases run. */
export const ATTACK_KINDS = [
  "error_flood",
  "ping_flood",
  "prelogin_flood",
  "file_flood",
  "register_flood",
  "dm_backlog",
  "huge_reply",
  "empty_offers",
  "partial_frame",
  "lookalike_nick",
  "fd_exhaust",
  // Last: a lockout it causes outlasts its phase (and would fail the next ones).
  "wrong_password",
] as const;

/**
 * The attacks that need the server to serve TLS (`deno task soak --tls`): the others
 * speak the protocol in the clear.
 */
export const TLS_ATTACK_KINDS = ["silent_tls"] as const;

/** An attack of issue #13. */
export type AttackKind = typeof ATTACK_KINDS[number] | typeof TLS_ATTACK_KINDS[number];

/** Connections each attack keeps open at once in its phase, by default (all processes). */
export const ATTACK_CONCURRENCY: Readonly<Record<AttackKind, number>> = Object.freeze({
  error_flood: 16,
  ping_flood: 16,
  prelogin_flood: 16,
  file_flood: 1,
  register_flood: 32,
  wrong_password: 4,
  dm_backlog: 1,
  huge_reply: 16,
  empty_offers: 2,
  partial_frame: 32,
  lookalike_nick: 2,
  fd_exhaust: 2,
  silent_tls: 64,
});

/** How long, once `fd_exhaust`'s connections go, a fresh login may take to succeed. */
export const FD_RECOVERY_MS = 15_000;

/**
 * How long the runs under way at the end of an attack's phase may take to finish
 * before their connections are closed, in ms, where not 1 s: a `dm_backlog` run
 * checks its victim's login after the messages are held.
 */
export const ATTACK_GRACE_MS: Readonly<Partial<Record<AttackKind, number>>> = Object.freeze({
  dm_backlog: 40_000,
  fd_exhaust: FD_RECOVERY_MS + 5000,
});

/** Idle connections one `fd_exhaust` run holds. */
export const FD_HOLD_PER_RUN = 100;
/**
 * Descriptors the soak leaves the server beyond those it has open when `fd_exhaust`'s
 * phase starts (its soft limit is lowered to that for the phase): far fewer than the
 * attack's connections.
 */
export const FD_ROOM = 40;

/** Connections one run of an attack opens at once, where more than one. */
export const ATTACK_CONNECTIONS_PER_RUN: Readonly<Partial<Record<AttackKind, number>>> = Object
  .freeze({ dm_backlog: 41, empty_offers: 2, file_flood: 2, fd_exhaust: FD_HOLD_PER_RUN + 1 });

/**
 * The attacks after which the login probe's failures are shown, not judged: while
 * `fd_exhaust` holds every descriptor the server may open, a new connection waits for
 * one (the probe's logins fail); its own check is that a fresh login succeeds once its
 * connections go.
 */
export const PROBE_NOT_JUDGED: ReadonlySet<string> = new Set(["fd_exhaust"]);

/** Frames one flooding session sends, at most, before it calls the flood uncontrolled. */
export const ATTACK_FLOOD_FRAMES = 2000;
/**
 * Zero-byte offers one sender may have held (the server's default `--max-held-files`):
 * the next one must be refused. Before that limit existed, every offer was held.
 */
export const EMPTY_OFFERS_LIMIT = 100;
/**
 * Replies a flooding session may get before it is cut off: the server cuts a session
 * off after `--flood-strikes` (50) errors or refusals, or errors in a row; ten times
 * that, answered (a quarter of ATTACK_FLOOD_FRAMES), is a flood not cut off.
 */
export const ATTACK_FLOOD_MAX_REPLIES = 500;
/** The file each `file_flood` run uploads once, then sends and reads again and again. */
const FLOOD_FILE = new Uint8Array(1024 * 1024);
/** Its chunks: as large as a `file_chunk` may be. */
const FLOOD_CHUNK = 512 * 1024;
/**
 * Bytes a paced session may move beyond its budget: the budget is taken before a
 * request runs, so one request (a chunk of 512 KiB, or a read of 1 MiB) may run before
 * the wait that pays for it.
 */
const FILE_FLOOD_SLACK = 1024 * 1024 + 64 * 1024;
/** Senders and direct messages each of `dm_backlog` (10 each: the message burst). */
const BACKLOG_SENDERS = 40;
const BACKLOG_PER_SENDER = 10;
/** 4000 three-byte characters: 12 KB, the longest text. */
const BACKLOG_TEXT = "€".repeat(4000);
/** Rooms one `huge_reply` run creates, each with a topic of control characters. */
const HUGE_ROOMS_PER_RUN = 50;
/**
 * The most expensive topic a server takes: control characters, 6 bytes each once
 * JSON-escaped, up to its limit of 1,024 bytes of JSON (longer ones are refused with
 * `bad_text`, which is a defence too, but would not test the list's size).
 */
const CONTROL_TOPIC = "\u0001".repeat(170);
/** The longest text, all control characters. */
const CONTROL_TEXT = "\u0002".repeat(4000);
/** The room whose history `huge_reply` fills with control characters. */
const HUGE_ROOM = "soak-huge";
/** SHA-256 of nothing: a zero-byte file. */
const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

type Behaviour = (conn: RawConn, ctx: AbuseContext, stats: AbuseStats) => Promise<Outcome>;

/** One function per attack; see runAbuse in abuse.ts. */
export const ATTACK_BEHAVIOURS: Record<AttackKind, Behaviour> = {
  error_flood(conn, ctx, stats) {
    // Requests that fail to parse (bad fields) or name an unknown type: answered with
    // an error each, before the flood control sees them.
    const unknown = ctx.rng.chance(0.5);
    return floodUntilCut(
      conn,
      ctx,
      stats,
      unknown ? "unknown-type" : "bad-field",
      (i) =>
        encodeFrame(
          unknown
            ? { type: "frobnicate", id: `e${i}` }
            : { type: "say", id: `e${i}`, room: 5, text: "x" },
        ),
    );
  },

  ping_flood(conn, ctx, stats) {
    return floodUntilCut(
      conn,
      ctx,
      stats,
      "ping",
      (i) => encodeFrame({ type: "ping", id: `p${i}` }),
    );
  },

  async prelogin_flood(conn, ctx, stats) {
    // After hello, never logged in: requests that fail to parse, name an unknown type,
    // need a login, or log in with a wrong password (to an account of the attacker's).
    const victim = await preloginVictim(ctx);
    if (victim === null) return { kind: "interrupted", why: "its account could not register" };
    if (!(await hello(conn))) return brokeOff(conn, "hello");
    const frame = (i: number): Uint8Array => {
      switch (i % 10) {
        case 0:
          return encodeFrame({ type: "login", id: `l${i}`, nick: victim, password: `no${i}` });
        case 1:
        case 2:
          return encodeFrame({ type: "frobnicate", id: `u${i}` });
        case 3:
        case 4:
          return encodeFrame({ type: "say", id: `s${i}`, room: "soak-flood", text: "hi" });
        default:
          return encodeFrame({ type: "say", id: `b${i}`, room: 5, text: "x" });
      }
    };
    const outcome = await floodUntilCut(conn, ctx, stats, "bad", frame, false);
    // The attacker comes back a few times a second per connection slot.
    if (outcome.kind === "expected") await sleep(250, ctx.signal);
    return outcome;
  },

  async file_flood(conn, ctx, stats) {
    // A recipient logs in and stays; the sender offers it 1 MiB and uploads it.
    const recipientNick = ctx.nextNick();
    const recipient = await openTracked(ctx);
    if (recipient === null || !(await loginAs(recipient, recipientNick))) {
      recipient?.close();
      return { kind: "interrupted", why: "the recipient could not log in" };
    }
    stats.logins++;
    try {
      const senderStart = performance.now();
      if (!(await login(conn, ctx, stats))) return brokeOff(conn, "login");
      const sha256 = await floodFileSha256();
      await conn.write(encodeFrame({
        type: "file_offer",
        id: "offer",
        to: recipientNick,
        name: "flood.bin",
        size: FLOOD_FILE.length,
        sha256,
      }));
      const offer = await conn.waitFor((h) => h.re === "offer", ANSWER_MS);
      const file = offer?.file;
      if (offer?.type !== "ok" || typeof file !== "number") return brokeOff(conn, "the offer");
      // The recipient accepts while the sender uploads; then both go on, nonstop: the
      // sender sends the file's chunks again (answered as resent ones), the recipient
      // reads the file again. Each is paced by its session's file byte budget.
      const recipientStart = performance.now();
      await recipient.write(encodeFrame({ type: "file_accept", id: "accept", file }));
      const sending = floodChunks(conn, file, ctx.signal);
      const reading = floodReads(recipient, file, ctx.signal);
      const [sent, read] = await Promise.all([sending, reading]);
      stats.floodMessagesSent += sent.requests + read.requests;
      const problems = [
        paceProblem("sender", sent, senderStart, ctx.fileBytesPerSec),
        paceProblem("recipient", read, recipientStart, ctx.fileBytesPerSec),
        sent.failure,
        read.failure,
      ].filter((p) => p !== null);
      if (problems.length > 0) return { kind: "unexpected", why: problems.join("; ") };
      if (sent.bytes === 0 || read.bytes === 0) {
        return { kind: "interrupted", why: `the phase ended after ${sent.bytes} bytes sent` };
      }
      return { kind: "expected" };
    } finally {
      recipient.close();
    }
  },

  async fd_exhaust(conn, ctx, stats) {
    // Idle connections (nothing sent) from another address, as many as a run holds,
    // for the whole phase: past the server's descriptor limit, lowered for the phase.
    const from = ctx.attackerAddresses.length > 0 ? ctx.rng.pick(ctx.attackerAddresses) : undefined;
    const held: RawConn[] = [conn];
    conn.startReading();
    while (!ctx.signal.aborted && held.length < FD_HOLD_PER_RUN) {
      const more = await openTrackedWithin(ctx, from, 1000);
      if (more === null) {
        await sleep(100, ctx.signal);
        continue;
      }
      more.startReading();
      held.push(more);
    }
    while (!ctx.signal.aborted) await sleep(1000, ctx.signal);
    const cut = held.filter((c) => c.closed && !c.closedByUs).length;
    for (const c of held) c.close();
    // They go: a fresh login must succeed again soon.
    const began = performance.now();
    while (performance.now() - began < FD_RECOVERY_MS) {
      const fresh = await openTrackedWithin(ctx, from, 2000);
      if (fresh !== null) {
        const ok = await loginAs(fresh, ctx.nextNick());
        fresh.close();
        if (ok) {
          stats.logins++;
          return { kind: "expected" };
        }
      }
      await delay(250);
    }
    return {
      kind: "unexpected",
      why: `${held.length} idle connections held (${cut} closed by the server); no fresh login ` +
        `within ${FD_RECOVERY_MS / 1000} s of their going`,
    };
  },

  async register_flood(conn, ctx, stats) {
    if (!(await hello(conn))) return brokeOff(conn, "hello");
    const nick = ctx.nextNick();
    await conn.write(encodeFrame({ type: "login", id: "r", nick, password: ABUSER_PASSWORD }));
    const reply = await conn.waitFor(
      (h) => (h.type === "ok" || h.type === "error") && h.re === "r",
      ctx.loginTimeoutMs,
    );
    if (reply === null) {
      return conn.closed ? brokeOff(conn, "registration") : {
        kind: "unexpected",
        why: `registration not answered within the login deadline (${ctx.loginTimeoutMs} ms)`,
      };
    }
    if (reply.type === "ok") stats.logins++;
    return { kind: "expected" };
  },

  async wrong_password(conn, ctx) {
    if (!(await hello(conn))) return brokeOff(conn, "hello");
    for (let attempt = 0; attempt < 3 && !ctx.signal.aborted && !conn.closed; attempt++) {
      const id = `w${attempt}`;
      await conn.write(encodeFrame({
        type: "login",
        id,
        nick: ctx.probeNick,
        password: `wrong-${ctx.rng.int(0, 1e9)}`,
      }));
      const reply = await conn.waitFor(
        (h) => (h.type === "ok" || h.type === "error") && h.re === id,
        ctx.loginTimeoutMs,
      );
      if (reply === null) {
        if (conn.closed) return { kind: "expected" }; // cut off: fine
        return { kind: "unexpected", why: "wrong password not answered" };
      }
      if (reply.type === "ok") {
        return { kind: "unexpected", why: `logged in as ${ctx.probeNick} with a wrong password` };
      }
      await sleep(100, ctx.signal);
    }
    return { kind: "expected" };
  },

  async dm_backlog(conn, ctx, stats) {
    // The victim registers, then goes offline.
    const victim = ctx.nextNick();
    if (!(await loginAs(conn, victim))) return brokeOff(conn, "the victim's registration");
    stats.logins++;
    conn.close();
    // Senders fill its backlog: each sends its burst of 12 KB messages. A stranger's:
    // from another address where there is one, as the victim's first connection was (on
    // the probe's own address, their 40 registrations would queue the probe's login
    // behind their password hashes, which are fair between addresses only).
    const from = ctx.attackerAddresses.length > 0 ? ctx.rng.pick(ctx.attackerAddresses) : undefined;
    const acked = new Set<number>();
    const senders = await Promise.all(
      Array.from({ length: BACKLOG_SENDERS }, () => openTracked(ctx, from)),
    );
    try {
      await Promise.all(senders.map(async (sender) => {
        if (sender === null || !(await loginAs(sender, ctx.nextNick()))) return;
        stats.logins++;
        const frames = Array.from(
          { length: BACKLOG_PER_SENDER },
          (_, i) => encodeFrame({ type: "dm", id: `d${i}`, to: victim, text: BACKLOG_TEXT }),
        );
        await sender.write(concat(frames));
        for (let i = 0; i < BACKLOG_PER_SENDER; i++) {
          const reply = await sender.waitFor((h) => h.re === `d${i}`, ANSWER_MS);
          const id = (reply?.msg as Header | undefined)?.id;
          if (reply?.type === "ok" && typeof id === "number") acked.add(id);
        }
      }));
    } finally {
      for (const sender of senders) sender?.close();
    }
    if (acked.size === 0) return { kind: "interrupted", why: "no message was acknowledged" };
    // The victim logs in (again, once, if cut off) and must get every one: as many
    // as its login reply says are pending, at least.
    const received = new Set<number>();
    const problems: string[] = [];
    let cutShort = false;
    for (let attempt = 0; attempt < 2 && received.size < acked.size; attempt++) {
      const victimConn = await openTracked(ctx, from);
      if (victimConn === null) break;
      try {
        const reply = await loginReply(victimConn, victim, 15_000);
        if (reply?.type !== "ok") {
          problems.push(`login ${attempt + 1} failed (${describeEnd(victimConn)})`);
        }
        const pending = typeof reply?.pending === "number" ? reply.pending : acked.size;
        const here = new Set<number>();
        const collect = (): void => {
          for (const h of victimConn.received) {
            if (h.type === "dm" && typeof h.id === "number") {
              received.add(h.id);
              here.add(h.id);
            }
          }
        };
        await victimConn.waitFor(() => {
          collect();
          return here.size >= pending || [...acked].every((id) => received.has(id));
        }, 15_000);
        collect();
        if (victimConn.closed) {
          problems.push(`login ${attempt + 1} cut off (${describeEnd(victimConn)})`);
        }
      } finally {
        if (!victimConn.closed && victimConn.closedByUs) cutShort = true;
        victimConn.close();
      }
    }
    const lost = [...acked].filter((id) => !received.has(id)).length;
    if (lost > 0 && cutShort) {
      // The end of the phase's grace closed the victim's connection: not finished.
      return { kind: "interrupted", why: "the phase ended before the victim's login was checked" };
    }
    stats.kinds.dm_backlog!.lost += lost;
    if (lost === 0 && problems.length === 0) return { kind: "expected" };
    return {
      kind: "unexpected",
      why: `${acked.size} held DMs acknowledged, ${acked.size - lost} delivered` +
        (problems.length > 0 ? `; ${problems.join("; ")}` : ""),
    };
  },

  async huge_reply(conn, ctx, stats) {
    if (!(await login(conn, ctx, stats))) return brokeOff(conn, "login");
    if (ctx.rng.chance(0.8)) {
      // Many rooms, each with a topic of control characters, then the room list.
      const prefix = ctx.nextNick();
      const frames: Uint8Array[] = [];
      for (let i = 0; i < HUGE_ROOMS_PER_RUN; i++) {
        const room = `${prefix}r${i}`;
        frames.push(encodeFrame({ type: "join", id: `j${i}`, room }));
        frames.push(encodeFrame({ type: "topic", id: `t${i}`, room, topic: CONTROL_TOPIC }));
      }
      await writePaced(conn, frames, ctx.signal);
      return checkReplySize(conn, { type: "rooms", id: "list" }, "rooms");
    }
    // A room's history full of control characters, then a join that sends it.
    if (!(await request(conn, { type: "join", id: "j", room: HUGE_ROOM }))) {
      return brokeOff(conn, "join");
    }
    const says = Array.from(
      { length: 10 },
      (_, i) => encodeFrame({ type: "say", id: `s${i}`, room: HUGE_ROOM, text: CONTROL_TEXT }),
    );
    await conn.write(concat(says));
    await conn.waitFor((h) => h.re === "s9", ANSWER_MS);
    if (!(await request(conn, { type: "leave", id: "l", room: HUGE_ROOM }))) {
      return brokeOff(conn, "leave");
    }
    return checkReplySize(conn, { type: "join", id: "again", room: HUGE_ROOM }, "join");
  },

  async empty_offers(conn, ctx, stats) {
    // The recipient registers and stays offline: the offers are held for it.
    const victim = ctx.nextNick();
    const victimConn = await openTracked(ctx);
    const registered = victimConn !== null && (await loginAs(victimConn, victim));
    victimConn?.close();
    if (!registered) return { kind: "interrupted", why: "the recipient could not register" };
    if (!(await login(conn, ctx, stats))) return brokeOff(conn, "login");
    // Offers in batches of 20, paced under the request rate after the burst; offers
    // refused as rate_limited are only the pace, any other refusal is the limit.
    let accepted = 0;
    let next = 0;
    while (accepted <= EMPTY_OFFERS_LIMIT && !ctx.signal.aborted && !conn.closed) {
      const ids = Array.from({ length: 20 }, () => `o${next++}`);
      await conn.write(concat(ids.map((id, k) =>
        encodeFrame({
          type: "file_offer",
          id,
          to: victim,
          name: `empty-${next - 20 + k}.txt`,
          size: 0,
          sha256: EMPTY_SHA256,
        })
      )));
      const last = ids[ids.length - 1];
      if ((await conn.waitFor((h) => h.re === last, ANSWER_MS)) === null && !conn.closed) {
        return { kind: "unexpected", why: `offer ${last} not answered within ${ANSWER_MS} ms` };
      }
      const wanted = new Set(ids);
      for (const h of conn.received) {
        if (typeof h.re !== "string" || !wanted.has(h.re)) continue;
        if (h.type === "ok") accepted++;
        else if (h.type === "error" && h.code !== "rate_limited") return { kind: "expected" };
      }
      if (next > 100) await sleep(400, ctx.signal);
    }
    if (conn.closed) return { kind: "expected" }; // cut off: fine too
    if (accepted <= EMPTY_OFFERS_LIMIT) {
      return { kind: "interrupted", why: `the phase ended after ${accepted} offers` };
    }
    return {
      kind: "unexpected",
      why: `${accepted} zero-byte offers held for one recipient, none refused`,
    };
  },

  async partial_frame(conn, ctx, stats) {
    if (!(await login(conn, ctx, stats))) return brokeOff(conn, "login");
    // A frame announced at (nearly) the largest size, of which half is sent.
    const length = MAX_FRAME - 64;
    const header = new TextEncoder().encode(JSON.stringify({ type: "ping", id: "half" }));
    const start = new Uint8Array(8 + header.length);
    new DataView(start.buffer).setUint32(0, length);
    new DataView(start.buffer).setUint32(4, header.length);
    start.set(header, 8);
    await conn.write(start);
    await conn.write(new Uint8Array(Math.floor(length / 2) - header.length - 4));
    stats.badFramesSent++;
    const began = performance.now();
    const limit = ctx.partialFrameDeadlineMs + 2000;
    while (!ctx.signal.aborted && !conn.closed && performance.now() - began < limit) {
      await conn.waitClosed(250);
    }
    const heldMs = Math.round(performance.now() - began);
    if (conn.closed) return { kind: "expected" };
    if (heldMs >= ctx.partialFrameDeadlineMs) {
      return {
        kind: "unexpected",
        why: `half a ${length}-byte frame held open for ${heldMs} ms, never closed`,
      };
    }
    return { kind: "interrupted", why: `the phase ended after ${heldMs} ms, before the deadline` };
  },

  async silent_tls(conn, ctx) {
    // Nothing, or the start of a ClientHello record that announces more than it sends.
    if (ctx.rng.chance(0.5)) {
      const partial = new Uint8Array(5 + 60);
      partial.set([0x16, 0x03, 0x01, 0x02, 0x00]);
      partial.set(ctx.rng.bytes(60), 5);
      await conn.write(partial);
    }
    const deadline = ctx.loginTimeoutMs + 5000;
    const began = performance.now();
    while (!ctx.signal.aborted && !conn.closed && performance.now() - began < deadline + 2000) {
      await conn.waitClosed(250);
    }
    const heldMs = Math.round(performance.now() - began);
    if (conn.closed) return { kind: "expected" };
    if (heldMs >= deadline) {
      return {
        kind: "unexpected",
        why: `a TLS connection without a finished handshake held open for ${heldMs} ms`,
      };
    }
    return { kind: "interrupted", why: `the phase ended after ${heldMs} ms, before the deadline` };
  },

  async lookalike_nick(conn, ctx) {
    if (!(await hello(conn))) return brokeOff(conn, "hello");
    const i = ctx.rng.int(0, Math.max(0, ctx.goodClients - 1));
    // Never a mere case change: that is the good client's own account, and a wrong
    // password for it would lock it.
    const good = goodNick(i);
    const nick = ctx.rng.pick([
      good.replaceAll("o", "0"),
      good.replace("o", "0"),
      `${good}.`,
      "server",
      "SYSTEM",
      ...(good.includes("1") ? [good.replaceAll("1", "l"), good.replaceAll("1", "I")] : []),
    ]);
    await conn.write(encodeFrame({ type: "login", id: "l", nick, password: ABUSER_PASSWORD }));
    const reply = await conn.waitFor(
      (h) => (h.type === "ok" || h.type === "error") && h.re === "l",
      ANSWER_MS,
    );
    await sleep(200, ctx.signal);
    if (reply === null) return brokeOff(conn, "login");
    if (reply.type === "ok") {
      return { kind: "unexpected", why: `registered the look-alike nick "${nick}"` };
    }
    return { kind: "expected" };
  },
};

/**
 * Logs in (unless `loggedIn` is false: the hello is done), then sends `frame(i)` in
 * batches of 100 every 50 ms (reading the replies) until the server cuts the session
 * off; `unexpected` when the server answered more than ATTACK_FLOOD_MAX_REPLIES and
 * still did not, `interrupted` when it answered less before the phase ended (a slow
 * server is not a defence failing).
 */
async function floodUntilCut(
  conn: RawConn,
  ctx: AbuseContext,
  stats: AbuseStats,
  what: string,
  frame: (i: number) => Uint8Array,
  loggedIn = true,
): Promise<Outcome> {
  if (loggedIn && !(await login(conn, ctx, stats))) return brokeOff(conn, "login");
  let sent = 0;
  while (
    sent < ATTACK_FLOOD_FRAMES && !conn.closed && !ctx.signal.aborted &&
    replies(conn) <= ATTACK_FLOOD_MAX_REPLIES
  ) {
    const batch = Array.from({ length: 100 }, (_, k) => frame(sent + k));
    if (!(await conn.write(concat(batch)))) break;
    sent += batch.length;
    await conn.waitClosed(50);
  }
  if (loggedIn) stats.floodMessagesSent += sent;
  else stats.badFramesSent += sent;
  // Let the server get through what was sent: a slow server is not a defence failing,
  // only answers without a cut-off are.
  await conn.waitFor(() => replies(conn) > ATTACK_FLOOD_MAX_REPLIES, ANSWER_MS);
  const answered = replies(conn);
  if (conn.closed && !conn.closedByUs) return { kind: "expected" };
  if (answered > ATTACK_FLOOD_MAX_REPLIES) {
    return {
      kind: "unexpected",
      why: `${answered} replies to ${sent} ${what} frames${loggedIn ? "" : " before login"}, ` +
        "never cut off",
    };
  }
  return {
    kind: "interrupted",
    why: `the phase ended after ${sent} ${what} frames, ${answered} answered`,
  };
}

/** Replies (errors mostly) a connection has received. */
function replies(conn: RawConn): number {
  return conn.received.filter((h) => typeof h.re === "string").length;
}

/** Per abuser process: the account `prelogin_flood` tries wrong passwords on. */
let preloginAccount: Promise<string | null> | null = null;

/** Registers the account of `prelogin_flood` once per process; its nick, or null. */
function preloginVictim(ctx: AbuseContext): Promise<string | null> {
  preloginAccount ??= (async () => {
    const nick = ctx.nextNick();
    const conn = await openTracked(ctx);
    const ok = conn !== null && (await loginAs(conn, nick));
    conn?.close();
    return ok ? nick : null;
  })();
  const pending = preloginAccount;
  pending.then((nick) => {
    if (nick === null && preloginAccount === pending) preloginAccount = null; // try again
  });
  return pending;
}

let floodSha256: Promise<string> | null = null;

/** SHA-256 of FLOOD_FILE, in hex. */
function floodFileSha256(): Promise<string> {
  floodSha256 ??= crypto.subtle.digest("SHA-256", FLOOD_FILE).then((digest) =>
    [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("")
  );
  return floodSha256;
}

/** What one side of a `file_flood` run moved, and when its last request was answered. */
interface FileFlow {
  /** File bytes acknowledged (chunks) or received (reads). */
  bytes: number;
  /** Requests answered. */
  requests: number;
  /** performance.now() of the last answer. */
  lastAt: number;
  /** What went wrong (an error, or the session cut off); null when nothing did. */
  failure: string | null;
}

/** Sends the flood file's chunks (4 in flight), then again, until `signal`. */
async function floodChunks(conn: RawConn, file: number, signal: AbortSignal): Promise<FileFlow> {
  const flow: FileFlow = { bytes: 0, requests: 0, lastAt: performance.now(), failure: null };
  const chunks = FLOOD_FILE.length / FLOOD_CHUNK;
  for (let round = 0; !signal.aborted && !conn.closed; round++) {
    const ids = Array.from({ length: 4 }, (_, k) => `c${round}-${k}`);
    await conn.write(concat(ids.map((id, k) => {
      const offset = (k % chunks) * FLOOD_CHUNK;
      return encodeFrame(
        { type: "file_chunk", id, file, offset },
        FLOOD_FILE.subarray(offset, offset + FLOOD_CHUNK),
      );
    })));
    if (!(await answered(conn, ids, flow, () => FLOOD_CHUNK))) break;
  }
  return flow;
}

/** Reads the flood file (two reads of 1 MiB in flight) again and again, until `signal`. */
async function floodReads(conn: RawConn, file: number, signal: AbortSignal): Promise<FileFlow> {
  const flow: FileFlow = { bytes: 0, requests: 0, lastAt: performance.now(), failure: null };
  const accepted = await conn.waitFor((h) => h.re === "accept", ANSWER_MS);
  if (accepted?.type !== "ok") {
    flow.failure = `file_accept answered ${accepted?.code ?? (conn.closed ? "by a close" : "not")}`;
    return flow;
  }
  for (let round = 0; !signal.aborted && !conn.closed; round++) {
    const ids = [`r${round}-0`, `r${round}-1`];
    await conn.write(
      concat(
        ids.map((id) =>
          encodeFrame({ type: "file_read", id, file, offset: 0, length: FLOOD_FILE.length })
        ),
      ),
    );
    if (!(await answered(conn, ids, flow, (h) => Number(h.length) || 0))) break;
  }
  return flow;
}

/**
 * Waits for the replies to `ids` and counts them into `flow`; false (with the failure
 * noted) on an error or a close. A slow answer is the pace, not a failure: it waits
 * as long as the phase lasts, and then some.
 */
async function answered(
  conn: RawConn,
  ids: string[],
  flow: FileFlow,
  bytesOf: (reply: Header) => number,
): Promise<boolean> {
  const wanted = new Set(ids);
  const done = (): Header[] => conn.received.filter((h) => wanted.has(h.re as string));
  await conn.waitFor(() => done().length === ids.length, 60_000);
  const replies = done();
  for (const reply of replies) {
    if (reply.type !== "ok") {
      flow.failure ??= `${ids[0]![0] === "c" ? "file_chunk" : "file_read"} answered ` +
        `${reply.type} ${reply.code}`;
      return false;
    }
    flow.bytes += bytesOf(reply);
    flow.requests++;
    flow.lastAt = performance.now();
  }
  if (replies.length < ids.length) {
    if (conn.closed && !conn.closedByUs) {
      flow.failure ??= `a paced session cut off (${describeEnd(conn)})`;
    }
    return false;
  }
  return true;
}

/**
 * Whether one side of a `file_flood` run moved more than its budget allows: `rate`
 * bytes a second from its login on, a second's worth at once (the budget's burst),
 * and one request's worth taken ahead.
 */
function paceProblem(who: string, flow: FileFlow, start: number, rate: number): string | null {
  if (rate <= 0) return null;
  const seconds = (flow.lastAt - start) / 1000;
  const allowed = rate * (seconds + 1) + FILE_FLOOD_SLACK;
  if (flow.bytes <= allowed) return null;
  const mib = (n: number): string => (n / 1024 / 1024).toFixed(1);
  return `the ${who} moved ${mib(flow.bytes)} MiB in ${seconds.toFixed(1)} s: over the budget ` +
    `of ${mib(rate)} MiB/s (${mib(allowed)} MiB)`;
}

/** Sends `header` and checks that its reply fits the client's frame limit. */
async function checkReplySize(conn: RawConn, header: Header & { id: string }, what: string) {
  const before = conn.largestFrame;
  await conn.write(encodeFrame(header));
  const reply = await conn.waitFor((h) => h.re === header.id, 15_000);
  const size = Math.max(before, conn.largestFrame);
  if (size > MAX_FRAME) {
    return {
      kind: "unexpected",
      why: `a ${what} reply of ${size} bytes: over the client's ${MAX_FRAME}-byte frame limit`,
    } as Outcome;
  }
  if (reply === null) return brokeOff(conn, what);
  return { kind: "expected" } as Outcome;
}

/** Writes frames 20 at a time, waiting for each batch's last reply (keeps under rates). */
async function writePaced(conn: RawConn, frames: Uint8Array[], signal: AbortSignal) {
  for (let i = 0; i < frames.length && !signal.aborted && !conn.closed; i += 20) {
    const batch = frames.slice(i, i + 20);
    await conn.write(concat(batch));
    const replies = conn.received.length + batch.length;
    await conn.waitFor(() => conn.received.length >= replies, ANSWER_MS);
  }
}

/** Hello and login as `nick` with the abusers' password; true when logged in. */
async function loginAs(conn: RawConn, nick: string): Promise<boolean> {
  return (await loginReply(conn, nick, ANSWER_MS))?.type === "ok";
}

/** Hello and login as `nick`; the login's reply, or null without one. */
async function loginReply(conn: RawConn, nick: string, timeoutMs: number): Promise<Header | null> {
  if (!(await hello(conn))) return null;
  await conn.write(encodeFrame({ type: "login", id: "login", nick, password: ABUSER_PASSWORD }));
  return await conn.waitFor(
    (h) => (h.type === "ok" || h.type === "error") && h.re === "login",
    timeoutMs,
  );
}

/** Opens one more connection, closed with the others when the run ends; null when refused. */
async function openTracked(ctx: AbuseContext, from?: string): Promise<RawConn | null> {
  try {
    const conn = await RawConn.open(ctx.port, from);
    const untrack = ctx.track(conn);
    conn.waitClosed(24 * 3600_000).then(untrack);
    return conn;
  } catch {
    return null;
  }
}

/**
 * Opens one more connection from `from` (a loopback address; 127.0.0.1 when undefined),
 * tracked like openTracked's; null when refused or not connected within `timeoutMs`
 * (one that connects later is closed).
 */
async function openTrackedWithin(
  ctx: AbuseContext,
  from: string | undefined,
  timeoutMs: number,
): Promise<RawConn | null> {
  let late = false;
  const opening = RawConn.open(ctx.port, from).then((conn) => {
    if (late) {
      conn.close();
      return null;
    }
    const untrack = ctx.track(conn);
    conn.waitClosed(24 * 3600_000).then(untrack);
    return conn;
  }, () => null);
  const conn = await Promise.race([opening, delay(timeoutMs).then(() => null)]);
  if (conn === null) late = true;
  return conn;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** How a connection ended, for a report line. */
function describeEnd(conn: RawConn): string {
  const codes = conn.received
    .filter((h) => h.type === "error" || h.type === "notice")
    .map((h) => `${h.type} ${h.code}`);
  return codes.length > 0 ? codes.slice(0, 3).join(", ") : conn.closed ? "closed" : "open";
}
