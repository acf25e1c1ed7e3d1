/**
 * A load-generating process for the benchmarks: many raw client connections to the
 * chat server (or to the ceiling relay), driven by the coordinator over JSON lines
 * on stdin/stdout (see `side_channel.ts`).
 *
 * ```sh
 * deno run -A bench/load_client.ts --tag 0
 * ```
 *
 * Receivers are cheap on purpose: they walk length prefixes, tell frame types from
 * the header's first bytes and read the send timestamp from the end of the text
 * (`frame_scan.ts`); only setup replies, and the messages of groups that track ids
 * (the reconnect storm), are JSON-parsed. Latency is recorded only for messages sent
 * by this same process (same clock), by the connections marked as probes.
 *
 * Commands (besides `mem`, `gc`, `exit`): `target`, `open`, `run`, `closedLoop`,
 * `stats`, `quiet`, `pause`, `checkPaused`, `drop`, `resume`, `verify`, `ackedIds`,
 * `localPorts`, `fill`, `closeGroup`. Every loop is bounded in count and in time.
 *
 * @module
 */

import { concatBytes } from "../protocol/bytes.ts";
import { Histogram } from "./histogram.ts";
import {
  FrameKind,
  frameKind,
  lineStamp,
  replyTo,
  type Stamp,
  trailingStamp,
  u32,
} from "./frame_scan.ts";
import { emit, serveSideChannel } from "../tools/side_channel.ts";
import { LoadWebSocket } from "./load_websocket.ts";

/** Where the connections go and what they speak. */
interface Target {
  host: string;
  port: number;
  /**
   * `chat`: hello + login + join; `relay`: one join frame to the ceiling relay; `irc`:
   * the server's IRC listener (PASS when a password is set, NICK, USER, JOIN, PRIVMSG).
   */
  mode: "chat" | "relay" | "irc";
  /** Over the browser client's WebSocket (`port` is then the web port). */
  web: boolean;
  /** In `irc` mode, the password given with PASS; null: none (`--auth none`). */
  password: string | null;
}

interface OpenOptions {
  group: string;
  prefix: string;
  start: number;
  count: number;
  rooms: string[];
  concurrency: number;
  probes: number;
  track: string | null;
  trackAcks: boolean;
  discard: boolean;
  bufferSize: number;
  timeoutMs: number;
  /** Another port than the target's for this group (a node of a cluster); 0: the target's. */
  port: number;
}

const tag = Number(valueOf("--tag") ?? "0");
const encoder = new TextEncoder();
let target: Target = { host: "127.0.0.1", port: 0, mode: "chat", web: false, password: null };
let seq = 0;

const counters = {
  frames: 0,
  messages: 0,
  acks: 0,
  errors: 0,
  presence: 0,
  member: 0,
  notices: 0,
  other: 0,
  bytesIn: 0,
  firstError: "",
};
/** Notices received, by code (slow_consumer, idle_timeout, …). */
let noticeCodes: Record<string, number> = {};
const latency = new Histogram();
const ackLatency = new Histogram();
let lastFrameAt = 0;
const groups = new Map<string, LoadConn[]>();
const dropTimes = new Map<string, number>();

function valueOf(flag: string): string | undefined {
  const i = Deno.args.indexOf(flag);
  return i >= 0 ? Deno.args[i + 1] : undefined;
}

function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** One frame of ASCII JSON, length prefixes included, written into `out` at `offset`. */
function putFrame(out: Uint8Array, offset: number, json: string): number {
  const n = json.length;
  const payload = n + 4;
  out[offset] = payload >>> 24;
  out[offset + 1] = (payload >>> 16) & 0xff;
  out[offset + 2] = (payload >>> 8) & 0xff;
  out[offset + 3] = payload & 0xff;
  out[offset + 4] = n >>> 24;
  out[offset + 5] = (n >>> 16) & 0xff;
  out[offset + 6] = (n >>> 8) & 0xff;
  out[offset + 7] = n & 0xff;
  encoder.encodeInto(json, out.subarray(offset + 8, offset + 8 + n));
  return offset + 8 + n;
}

/** Encodes headers (ASCII-only JSON objects) as consecutive frames. */
function frames(headers: object[]): Uint8Array {
  const jsons = headers.map((h) => JSON.stringify(h));
  let total = 0;
  for (const j of jsons) total += j.length + 8;
  const out = new Uint8Array(total);
  let offset = 0;
  for (const j of jsons) offset = putFrame(out, offset, j);
  return out;
}

/** A reply awaited: settled with the reply's header, or failed when none can come. */
interface Waiter {
  settle: (header: Record<string, unknown>) => void;
  fail: (error: LoadError) => void;
}

/**
 * A load client's connection: TCP (read by a loop into a buffer), or the browser
 * client's WebSocket (its messages' payloads handed to the receive path read by read).
 */
type LoadSocket = Deno.TcpConn | LoadWebSocket;

async function dialTcp(port = target.port): Promise<Deno.TcpConn> {
  const conn = await Deno.connect({ hostname: target.host, port });
  conn.setNoDelay(true);
  return conn;
}

/** One client connection with a cheap receive path and a coalescing writer. */
class LoadConn {
  readonly nick: string;
  readonly options: OpenOptions;
  readonly probe: boolean;
  conn: LoadSocket | null = null;
  closed = false;
  paused = false;
  /** Set once set up when the group discards what it receives (idle clients). */
  discarding = false;
  #resume: (() => void) | null = null;
  #carry: Uint8Array | null = null;
  /** WebSocket bytes received while paused (copied; `pause` stops only TCP reads). */
  #held: Uint8Array[] = [];
  readonly #stamp: Stamp = { tag: -1, ms: 0 };
  #waiters = new Map<string, Waiter>();
  /** The last error or notice from the server that answered no request (for a failure's cause). */
  #lastWord = "";
  #controlSeq = 0;
  #pending: Uint8Array[] = [];
  pendingBytes = 0;
  /** The socket a write loop is running for; null when none is. */
  #writingConn: LoadSocket | null = null;
  notice = "";
  ended: Promise<void> = Promise.resolve();
  // closed-loop sending
  window = 0;
  outstanding = 0;
  closedLoopUntil = 0;
  closedLoopRoom = "";
  // id tracking (reconnect storm)
  live = new Set<number>();
  synced = new Set<number>();
  dupLive = 0;
  dupSync = 0;
  lastSeen = 0;
  ackedIds: number[] = [];
  /** Bytes of presence frames received (length prefixes included). */
  presenceBytes = 0;
  /** Rooms of this connection when not the group's (`roomGroup`). */
  rooms: string[] | null = null;

  constructor(nick: string, options: OpenOptions, probe: boolean) {
    this.nick = nick;
    this.options = options;
    this.probe = probe;
  }

  /** Connects and, in chat mode, logs in and joins; rejects with the server's refusal. */
  async connect(joinRooms: boolean): Promise<void> {
    this.closed = false;
    this.#carry = null;
    this.#held = [];
    this.#lastWord = "";
    if (target.web === true) {
      const socket = await LoadWebSocket.open(target.host, target.port, (bytes) => {
        if (this.paused) this.#held.push(bytes.slice()); // a view into a reused buffer
        else this.#receive(bytes);
      }, this.options.bufferSize);
      this.conn = socket;
      this.ended = socket.ended.then(() => {
        if (this.conn !== socket) return;
        this.closed = true;
        this.#failWaiters("ended");
      });
    } else {
      const conn = await dialTcp(this.options.port || target.port);
      this.conn = conn;
      this.ended = this.#readLoop(conn);
    }
    if (target.mode === "irc") {
      await this.#registerIrc(joinRooms);
      return;
    }
    if (target.mode === "relay") {
      await this.request({ type: "join", room: this.options.rooms[0] ?? "idle" });
      return;
    }
    const hello = this.#await("hello");
    const requests: Record<string, unknown>[] = [
      { type: "login", id: this.#nextControlId(), nick: this.nick },
    ];
    if (joinRooms) {
      for (const room of this.rooms ?? this.options.rooms) {
        requests.push({ type: "join", id: this.#nextControlId(), room });
      }
    }
    const replies = requests.map((r) => this.#await(r.id as string));
    // Once one step fails the rest are not awaited: keep their rejections handled.
    for (const reply of [hello, ...replies]) reply.catch(() => {});
    this.enqueue(frames([
      { type: "hello", v: 1, features: ["rooms", "presence", "history"], agent: "bench" },
      ...requests,
    ]));
    await hello;
    for (let i = 0; i < replies.length; i++) {
      const reply = await replies[i];
      if (reply.type !== "ok") {
        throw new LoadError(
          String(reply.code ?? "refused"),
          `${requests[i].type} of ${this.nick}: ${reply.code}: ${reply.message}`,
        );
      }
    }
  }

  /**
   * IRC registration: PASS (with a password), NICK, USER; once welcomed (001), a JOIN
   * per room, each done at its end of NAMES (366). An error numeric before that fails it.
   */
  async #registerIrc(joinRooms: boolean): Promise<void> {
    const welcome = this.#await("001");
    welcome.catch(() => {});
    const pass = target.password === null ? "" : `PASS ${target.password}\r\n`;
    this.enqueue(encoder.encode(`${pass}NICK ${this.nick}\r\nUSER ${this.nick} 0 * :bench\r\n`));
    const reply = await welcome;
    if (reply.type !== "ok") {
      throw new LoadError(String(reply.code), `registration of ${this.nick}: ${reply.message}`);
    }
    if (!joinRooms) return;
    const rooms = this.rooms ?? this.options.rooms;
    const joined = rooms.map((room) => this.#await(`366 #${room.toLowerCase()}`));
    for (const j of joined) j.catch(() => {});
    this.enqueue(encoder.encode(rooms.map((room) => `JOIN #${room}\r\n`).join("")));
    for (let i = 0; i < joined.length; i++) {
      const answer = await joined[i];
      if (answer.type !== "ok") {
        throw new LoadError(
          String(answer.code),
          `JOIN #${rooms[i]} of ${this.nick}: ${answer.message}`,
        );
      }
    }
  }

  /**
   * The receive path in IRC mode: PRIVMSG lines are counted (and the probes' stamps
   * read) without decoding; other lines are decoded for the registration's waits.
   * Returns the offset of the first byte not scanned (an unfinished line).
   */
  #scanLines(data: Uint8Array, now: number, stamp: Stamp): number {
    let o = 0;
    for (let nl = data.indexOf(0x0a, o); nl >= 0; nl = data.indexOf(0x0a, o)) {
      const start = o;
      const end = nl > start && data[nl - 1] === 0x0d ? nl - 1 : nl;
      o = nl + 1;
      counters.frames++;
      // :source COMMAND ...
      let c = start;
      if (data[c] === 0x3a) {
        while (c < end && data[c] !== 0x20) c++;
        c++;
      }
      if (
        data[c] === 0x50 && data[c + 1] === 0x52 && data[c + 2] === 0x49 &&
        data[c + 3] === 0x56 && data[c + 7] === 0x20 // "PRIV…G "
      ) {
        counters.messages++;
        if (this.probe && lineStamp(data, start, end, stamp) && stamp.tag === tag) {
          latency.record(now - stamp.ms);
        }
      } else {
        this.#onIrcLine(textDecoder.decode(data.subarray(c, end)));
      }
    }
    return o;
  }

  /** A line other than PRIVMSG, from its command on. */
  #onIrcLine(line: string): void {
    const space = line.indexOf(" ");
    const command = space < 0 ? line : line.slice(0, space);
    const params = space < 0 ? [] : line.slice(space + 1).split(" ");
    const settle = (key: string, header: Record<string, unknown>) => {
      const waiter = this.#waiters.get(key);
      this.#waiters.delete(key);
      waiter?.settle(header);
    };
    if (command === "001") settle("001", { type: "ok" });
    else if (command === "366") settle(`366 ${params[1]?.toLowerCase()}`, { type: "ok" });
    else if (command === "PING") this.enqueue(encoder.encode(`PONG ${params.join(" ")}\r\n`));
    else if (command === "JOIN" || command === "PART" || command === "QUIT") counters.member++;
    else if (command === "ERROR") {
      counters.notices++;
      this.notice = "error";
      this.#lastWord = line;
      noticeCodes.error = (noticeCodes.error ?? 0) + 1;
    } else if (/^(263|4\d\d|5\d\d)$/.test(command)) {
      counters.errors++;
      const message = `${command}: ${line.slice(line.indexOf(":") + 1)}`;
      if (counters.firstError === "") counters.firstError = message;
      // Registration or a JOIN under way fails with it.
      for (const [key, waiter] of [...this.#waiters]) {
        this.#waiters.delete(key);
        waiter.settle({ type: "error", code: command, message });
      }
    } else counters.other++;
  }

  /** Sends a control request (id assigned) and awaits its reply header. */
  request(header: Record<string, unknown>): Promise<Record<string, unknown>> {
    const id = this.#nextControlId();
    const reply = this.#await(id);
    this.enqueue(frames([{ ...header, id }]));
    return reply;
  }

  /**
   * The connection ended: every reply still awaited fails now, saying how and what the
   * server last said, instead of at its timeout as "no reply" (which reads like a reply
   * held up somewhere when the server had in fact closed the connection).
   */
  #failWaiters(how: string): void {
    if (this.#waiters.size === 0) return;
    const said = this.#lastWord === "" ? "" : `; the server's last word: ${this.#lastWord}`;
    for (const [id, waiter] of [...this.#waiters]) {
      this.#waiters.delete(id);
      waiter.fail(
        new LoadError("closed", `${this.nick}: connection ${how} before the reply to ${id}${said}`),
      );
    }
  }

  #nextControlId(): string {
    return `c${++this.#controlSeq}`;
  }

  #await(id: string): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(id);
        reject(new LoadError("timeout", `${this.nick}: no reply to ${id}`));
      }, this.options.timeoutMs);
      this.#waiters.set(id, {
        settle: (header) => {
          clearTimeout(timer);
          resolve(header);
        },
        fail: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
    });
  }

  /** Queues bytes; one write per wake-up carries everything queued. */
  enqueue(bytes: Uint8Array): void {
    const conn = this.conn;
    if (this.closed || conn === null) return;
    this.#pending.push(bytes);
    this.pendingBytes += bytes.length;
    if (this.#writingConn !== conn) {
      this.#writingConn = conn;
      queueMicrotask(() => this.#writeLoop(conn));
    }
  }

  async #writeLoop(conn: LoadSocket): Promise<void> {
    try {
      while (this.#pending.length > 0 && !this.closed && this.conn === conn) {
        const batch = this.#pending.length === 1 ? this.#pending[0] : concatBytes(this.#pending);
        this.#pending = [];
        let offset = 0;
        while (offset < batch.length) offset += await conn.write(batch.subarray(offset));
        this.pendingBytes -= batch.length;
      }
    } catch {
      if (this.conn === conn) this.close();
    } finally {
      if (this.#writingConn === conn) this.#writingConn = null;
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.#pending = [];
    this.pendingBytes = 0;
    try {
      this.conn?.close();
    } catch {
      // already closed
    }
    this.#resume?.();
  }

  pause(): void {
    this.paused = true;
  }

  unpause(): void {
    this.paused = false;
    const held = this.#held;
    this.#held = [];
    for (const bytes of held) if (!this.closed) this.#receive(bytes);
    const resume = this.#resume;
    this.#resume = null;
    resume?.();
  }

  /** The TCP receive path: reads into one buffer, each read handed to {@linkcode #receive}. */
  async #readLoop(conn: Deno.TcpConn): Promise<void> {
    const buffer = new Uint8Array(this.options.bufferSize);
    let how = "closed locally";
    try {
      while (!this.closed) {
        if (this.paused) {
          await new Promise<void>((resolve) => this.#resume = resolve);
          if (this.closed) break;
        }
        const n = await conn.read(buffer);
        if (n === null) {
          how = "closed by the server";
          break;
        }
        this.#receive(buffer.subarray(0, n));
      }
    } catch (err) {
      // reset or closed locally: the connection is over
      if (!this.closed) how = `failed (${err instanceof Error ? err.message : String(err)})`;
    } finally {
      if (this.conn === conn) {
        this.closed = true;
        this.#failWaiters(how);
      }
      try {
        conn.close();
      } catch {
        // already closed
      }
    }
  }

  /**
   * Counts and scans received bytes (a TCP read, or the payload bytes of the WebSocket
   * messages in one read: the same byte stream, `load_websocket.ts`); an unfinished frame
   * or line is carried over (copied: `bytes` may be a reused buffer).
   */
  #receive(bytes: Uint8Array): void {
    counters.bytesIn += bytes.length;
    lastFrameAt = performance.now();
    if (this.discarding) return;
    let data = bytes;
    if (this.#carry !== null) {
      data = concatBytes([this.#carry, data]);
      this.#carry = null;
    }
    const now = nowMs();
    const o = target.mode === "irc"
      ? this.#scanLines(data, now, this.#stamp)
      : this.#scanFrames(data, now, this.#stamp);
    if (o < data.length) this.#carry = data.slice(o);
  }

  /**
   * The receive path of the chat protocol (and the relay): frames told apart by their
   * header's first bytes. Returns the offset of the first byte not scanned.
   */
  #scanFrames(data: Uint8Array, now: number, stamp: Stamp): number {
    let o = 0;
    const len = data.length;
    while (o + 4 <= len) {
      const payloadLength = u32(data, o);
      if (o + 4 + payloadLength > len) break;
      const hs = o + 8;
      const he = hs + u32(data, o + 4);
      o += 4 + payloadLength;
      counters.frames++;
      const kind = frameKind(data, hs, he);
      if (kind === FrameKind.Message) {
        counters.messages++;
        if (this.options.track !== null) this.#trackLive(data, hs, he);
        else if (this.probe && trailingStamp(data, hs, he, stamp) && stamp.tag === tag) {
          latency.record(now - stamp.ms);
        }
      } else if (kind === FrameKind.Ok || kind === FrameKind.Error) {
        this.#onReply(data, hs, he, kind, now);
      } else if (kind === FrameKind.Presence) {
        counters.presence++;
        this.presenceBytes += 4 + payloadLength;
      } else if (kind === FrameKind.Member) {
        counters.member++;
      } else if (kind === FrameKind.Hello) {
        const waiter = this.#waiters.get("hello");
        this.#waiters.delete("hello");
        waiter?.settle({ type: "hello" });
      } else if (kind === FrameKind.Notice) {
        counters.notices++;
        const header = parseHeader(data, hs, he);
        this.notice = String(header?.code ?? "notice");
        this.#lastWord = `${this.notice}: ${header?.text}`;
        noticeCodes[this.notice] = (noticeCodes[this.notice] ?? 0) + 1;
      } else {
        counters.other++;
      }
    }
    return o;
  }

  #onReply(data: Uint8Array, hs: number, he: number, kind: number, now: number): void {
    const re = replyTo(data, hs, he);
    if (re !== null && re.charCodeAt(0) === 0x63 /* c */) {
      const waiter = this.#waiters.get(re);
      if (waiter !== undefined) {
        this.#waiters.delete(re);
        waiter.settle(parseHeader(data, hs, he) ?? { type: "error", code: "bad_json" });
      }
      return;
    }
    if (kind === FrameKind.Error) {
      counters.errors++;
      // Parsed only when it may explain a failure: the first, or one while replies are awaited.
      if (counters.firstError === "" || this.#waiters.size > 0) {
        const header = parseHeader(data, hs, he);
        this.#lastWord = `${header?.code}: ${header?.message}`;
        if (counters.firstError === "") counters.firstError = this.#lastWord;
      }
    } else {
      counters.acks++;
      if (this.options.trackAcks) {
        const header = parseHeader(data, hs, he) as { msg?: { id?: number } } | null;
        if (typeof header?.msg?.id === "number") this.ackedIds.push(header.msg.id);
      }
    }
    if (re !== null) {
      const sent = Number(re.slice(re.indexOf("_") + 1));
      if (Number.isFinite(sent)) ackLatency.record(now - sent);
    }
    if (this.window > 0) {
      this.outstanding--;
      if (performance.now() < this.closedLoopUntil) {
        this.enqueue(sayBytes(this.closedLoopRoom, [nowMs()]));
        this.outstanding++;
      }
    }
  }

  #trackLive(data: Uint8Array, hs: number, he: number): void {
    const header = parseHeader(data, hs, he);
    if (header === null || header.room !== this.options.track) return;
    const id = header.id as number;
    if (this.live.has(id)) this.dupLive++;
    else this.live.add(id);
  }

  trackSynced(id: number): void {
    if (this.synced.has(id)) this.dupSync++;
    else this.synced.add(id);
  }
}

class LoadError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = "LoadError";
    this.code = code;
  }
}

const textDecoder = new TextDecoder();

function parseHeader(data: Uint8Array, hs: number, he: number): Record<string, unknown> | null {
  try {
    return JSON.parse(textDecoder.decode(data.subarray(hs, he)));
  } catch {
    return null;
  }
}

/** What the target speaks: `say` frames, or IRC PRIVMSG lines, stamped with `stamps`. */
function sayBytes(room: string, stamps: number[]): Uint8Array {
  return target.mode === "irc" ? privmsgLines(room, stamps) : sayFrames(room, stamps);
}

/** PRIVMSG lines to `#room` whose text is the stamp `b<tag>|<ms>`. */
function privmsgLines(room: string, stamps: number[]): Uint8Array {
  let text = "";
  for (const ms of stamps) text += `PRIVMSG #${room} :b${tag}|${ms.toFixed(3)}\r\n`;
  return encoder.encode(text);
}

/** `say` frames stamped with the given send times (ms since the epoch). */
function sayFrames(room: string, stamps: number[]): Uint8Array {
  const jsons: string[] = [];
  let total = 0;
  for (const ms of stamps) {
    const t = ms.toFixed(3);
    const json = `{"type":"say","id":"${++seq}_${t}","room":"${room}","text":"b${tag}|${t}"}`;
    jsons.push(json);
    total += json.length + 8;
  }
  const out = new Uint8Array(total);
  let offset = 0;
  for (const json of jsons) offset = putFrame(out, offset, json);
  return out;
}

function groupOf(name: unknown): LoadConn[] {
  const group = groups.get(String(name));
  if (group === undefined) throw new Error(`no group "${name}"`);
  return group;
}

/** Runs `fn` over `items` with at most `limit` at once. */
async function pool<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, async () => {
    while (next < items.length) await fn(items[next++]);
  });
  await Promise.all(workers);
}

function percentileOf(values: number[], q: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

async function open(request: Record<string, unknown>): Promise<object> {
  const options: OpenOptions = {
    group: String(request.group),
    prefix: String(request.prefix ?? `u${tag}_`),
    start: Number(request.start ?? 0),
    count: Number(request.count),
    rooms: (request.rooms as string[] | undefined) ?? [],
    concurrency: Number(request.concurrency ?? 64),
    probes: Number(request.probes ?? 0),
    track: (request.track as string | undefined) ?? null,
    trackAcks: Boolean(request.trackAcks),
    discard: Boolean(request.discard),
    bufferSize: Number(request.bufferSize ?? 64 * 1024),
    timeoutMs: Number(request.timeoutMs ?? 30_000),
    port: Number(request.port ?? 0),
  };
  const group = groups.get(options.group) ?? [];
  groups.set(options.group, group);
  // Probes spread evenly over the group: a fan-out serves members in the order they
  // joined, so the first ones would see the best latency and the last the worst.
  const probes = new Set<number>();
  const probeCount = Math.min(options.probes, options.count);
  for (let k = 0; k < probeCount; k++) {
    probes.add(Math.round(((k + 1) * options.count) / probeCount) - 1);
  }
  const conns: LoadConn[] = [];
  // `roomGroup`: each run of that many connections joins a room of its own (besides `rooms`).
  const roomGroup = Number(request.roomGroup ?? 0);
  for (let i = 0; i < options.count; i++) {
    const c = new LoadConn(`${options.prefix}${options.start + i}`, options, probes.has(i));
    if (roomGroup > 0) {
      c.rooms = [
        ...options.rooms,
        `${options.prefix}g${Math.floor((options.start + i) / roomGroup)}`,
      ];
    }
    conns.push(c);
  }
  const t0 = performance.now();
  const times: number[] = [];
  const done: number[] = [];
  let failed = 0;
  let firstFailure = "";
  const deadline = request.deadlineMs === undefined
    ? Infinity
    : performance.now() + Number(request.deadlineMs);
  let skipped = 0;
  await pool(conns, options.concurrency, async (c) => {
    if (performance.now() > deadline) {
      skipped++;
      return;
    }
    const started = performance.now();
    try {
      await c.connect(true);
      c.discarding = options.discard;
      times.push(performance.now() - started);
      done.push(performance.now());
      group.push(c);
    } catch (err) {
      failed++;
      if (firstFailure === "") firstFailure = err instanceof Error ? err.message : String(err);
      c.close();
    }
  });
  // Login rate over the first and the last tenth of the completions.
  const tenth = Math.max(1, Math.floor(done.length / 10));
  const rate = (a: number, b: number) =>
    done.length > tenth ? (tenth * 1000) / Math.max(1, done[b] - done[a]) : NaN;
  return {
    opened: conns.length - failed - skipped,
    failed,
    skipped,
    rateFirst: rate(0, tenth),
    rateLast: rate(done.length - 1 - tenth, done.length - 1),
    firstFailure,
    ms: performance.now() - t0,
    p50: percentileOf(times, 0.5),
    p99: percentileOf(times, 0.99),
  };
}

/** Open-loop sending: `rate` messages/s over the group's connections for `durationMs`. */
async function run(request: Record<string, unknown>): Promise<object> {
  const senders = groupOf(request.group).filter((c) => !c.closed);
  if (senders.length === 0) throw new Error("no open senders");
  const rate = Number(request.rate);
  const durationMs = Number(request.durationMs);
  const room = String(request.room);
  const maxBacklog = Number(request.maxBacklogBytes ?? 8 * 1024 * 1024);
  const total = Math.floor(rate * durationMs / 1000);
  const startPerf = performance.now();
  let sent = 0;
  let dropped = 0;
  let maxLagMs = 0;
  let k = 0;
  const perConn: number[][] = senders.map(() => []);
  while (k < total) {
    const elapsed = performance.now() - startPerf;
    if (elapsed > durationMs + 5000) break; // bounded even if the loop falls behind
    const due = Math.min(total, Math.floor(elapsed * rate / 1000) + 1);
    if (due > k) maxLagMs = Math.max(maxLagMs, elapsed - (k * 1000) / rate);
    // Stamped when handed to the socket: the timer's granularity (about 2 ms) is
    // the load generator's, not the server's; the schedule lag is reported apart.
    const stamp = nowMs();
    for (; k < due; k++) perConn[k % senders.length].push(stamp);
    for (let i = 0; i < senders.length; i++) {
      const stamps = perConn[i];
      if (stamps.length === 0) continue;
      const c = senders[i];
      if (c.closed || c.pendingBytes > maxBacklog) {
        dropped += stamps.length;
      } else {
        c.enqueue(sayBytes(room, stamps));
        sent += stamps.length;
      }
      perConn[i] = [];
    }
    await sleep(1);
  }
  return { sent, dropped, offered: total, elapsedMs: performance.now() - startPerf, maxLagMs };
}

/** Closed-loop sending: each connection keeps `window` says outstanding for `durationMs`. */
async function closedLoop(request: Record<string, unknown>): Promise<object> {
  const senders = groupOf(request.group).filter((c) => !c.closed);
  const durationMs = Number(request.durationMs);
  const window = Number(request.window);
  const rooms = request.rooms as string[];
  const until = performance.now() + durationMs;
  const acksBefore = counters.acks;
  senders.forEach((c, i) => {
    c.window = window;
    c.outstanding = window;
    c.closedLoopUntil = until;
    c.closedLoopRoom = rooms[i % rooms.length];
    c.enqueue(sayBytes(c.closedLoopRoom, Array.from({ length: window }, () => nowMs())));
  });
  const t0 = performance.now();
  while (performance.now() < until) await sleep(20);
  const ackedInWindow = counters.acks - acksBefore;
  const elapsedMs = performance.now() - t0;
  const drainUntil = performance.now() + 10_000;
  while (senders.some((c) => c.outstanding > 0 && !c.closed) && performance.now() < drainUntil) {
    await sleep(10);
  }
  for (const c of senders) c.window = 0;
  return { acked: ackedInWindow, elapsedMs, connections: senders.length };
}

/**
 * The counters, latency histograms and state of the connections; `reset`: zeroes them
 * after; `light`: the counters alone (polled while a level drains).
 */
function stats(request: Record<string, unknown>): object {
  if (request.light) return { counters: { ...counters } };
  const result = {
    counters: { ...counters },
    noticeCodes,
    latency: latency.toJSON(),
    ackLatency: ackLatency.toJSON(),
    idleMs: lastFrameAt === 0 ? Infinity : performance.now() - lastFrameAt,
    open: [...groups.values()].reduce((n, g) => n + g.filter((c) => !c.closed).length, 0),
  };
  if (request.reset) {
    for (const key of Object.keys(counters) as (keyof typeof counters)[]) {
      if (key === "firstError") counters.firstError = "";
      else counters[key] = 0;
    }
    latency.reset();
    ackLatency.reset();
    noticeCodes = {};
  }
  return result;
}

/** Waits until no bytes arrived for `quietMs` (at most `timeoutMs`). */
async function quiet(request: Record<string, unknown>): Promise<object> {
  const quietMs = Number(request.quietMs ?? 200);
  const deadline = performance.now() + Number(request.timeoutMs ?? 10_000);
  while (performance.now() < deadline) {
    if (performance.now() - lastFrameAt >= quietMs) return { quiet: true };
    await sleep(Math.min(20, quietMs / 4));
  }
  return { quiet: false };
}

function pause(request: Record<string, unknown>): object {
  const group = groupOf(request.group);
  const count = Math.min(group.length, Number(request.count ?? 1));
  for (let i = 0; i < count; i++) group[i].pause();
  return { paused: count };
}

/** Resumes reading paused connections and reports which the server cut off. */
async function checkPaused(request: Record<string, unknown>): Promise<object> {
  const paused = groupOf(request.group).filter((c) => c.paused);
  for (const c of paused) c.unpause();
  const deadline = performance.now() + Number(request.waitMs ?? 2000);
  while (performance.now() < deadline && paused.some((c) => !c.closed && c.notice === "")) {
    await sleep(20);
  }
  return {
    paused: paused.length,
    cutOff: paused.filter((c) => c.notice === "slow_consumer").length,
    closed: paused.filter((c) => c.closed).length,
    notices: paused.map((c) => c.notice),
  };
}

/** Closes every socket of a group at once, remembering the last message id each saw. */
async function drop(request: Record<string, unknown>): Promise<object> {
  const group = groupOf(request.group);
  for (const c of group) {
    let last = 0;
    for (const id of c.live) if (id > last) last = id;
    c.lastSeen = last;
    c.close();
  }
  dropTimes.set(String(request.group), performance.now());
  await Promise.allSettled(group.map((c) => c.ended));
  return { dropped: group.length };
}

/** Reconnects a dropped group: login (retrying while the nick is still in use) and sync. */
async function resume(request: Record<string, unknown>): Promise<object> {
  const group = groupOf(request.group);
  const droppedAt = dropTimes.get(String(request.group)) ?? performance.now();
  const deadline = performance.now() + Number(request.timeoutMs ?? 60_000);
  const times: number[] = [];
  let retries = 0;
  let failed = 0;
  let syncMessages = 0;
  let syncRequests = 0;
  let firstFailure = "";
  await pool(group, Number(request.concurrency ?? group.length), async (c) => {
    try {
      while (true) {
        try {
          await c.connect(false);
          break;
        } catch (err) {
          c.close();
          await c.ended;
          const retryable = err instanceof LoadError && err.code === "nick_in_use" ||
            err instanceof Deno.errors.ConnectionRefused ||
            err instanceof Deno.errors.ConnectionReset;
          if (!retryable || performance.now() > deadline) throw err;
          retries++;
          await sleep(20 + Math.random() * 30);
        }
      }
      let after = c.lastSeen;
      for (let page = 0; page < 1000; page++) {
        syncRequests++;
        const reply = await c.request({ type: "sync", after, limit: 500 });
        if (reply.type !== "ok") throw new Error(`sync: ${reply.code}: ${reply.message}`);
        const messages = reply.messages as { type: string; id: number; room?: string }[];
        for (const m of messages) {
          if (m.type === "msg" && m.room === c.options.track) {
            c.trackSynced(m.id);
            syncMessages++;
          }
          after = Math.max(after, m.id);
        }
        if (!reply.more) break;
      }
      times.push(performance.now() - droppedAt);
    } catch (err) {
      failed++;
      if (firstFailure === "") firstFailure = err instanceof Error ? err.message : String(err);
    }
  });
  return {
    resumed: times.length,
    failed,
    firstFailure,
    retries,
    syncMessages,
    syncRequests,
    allMs: times.length > 0 ? Math.max(...times) : NaN,
    p50: percentileOf(times, 0.5),
    p99: percentileOf(times, 0.99),
  };
}

/** Checks that every expected id reached every connection of the group exactly once. */
function verify(request: Record<string, unknown>): object {
  const ids = request.ids as number[];
  let missing = 0;
  let clientsMissing = 0;
  let dupLive = 0;
  let dupSync = 0;
  let overlap = 0;
  let viaSync = 0;
  for (const c of groupOf(request.group)) {
    let mine = 0;
    for (const id of ids) {
      const live = c.live.has(id);
      const synced = c.synced.has(id);
      if (!live && !synced) mine++;
      if (live && synced) overlap++;
      if (synced && !live) viaSync++;
    }
    missing += mine;
    if (mine > 0) clientsMissing++;
    dupLive += c.dupLive;
    dupSync += c.dupSync;
  }
  return { missing, clientsMissing, dupLive, dupSync, overlap, viaSync };
}

/** The local ports of a group's sockets (to find them in `ss`). */
function localPorts(request: Record<string, unknown>): object {
  return {
    ports: groupOf(request.group).map((c) =>
      (c.conn?.localAddr as Deno.NetAddr | undefined)?.port ?? 0
    ),
  };
}

/** Queues direct messages of `textSize` characters to `to` until `bytes` are queued. */
function fill(request: Record<string, unknown>): object {
  const [c] = groupOf(request.group).filter((x) => !x.closed);
  if (c === undefined) throw new Error("no open connection to fill from");
  const text = "x".repeat(Number(request.textSize ?? 3000));
  const to = String(request.to);
  const headers: object[] = [];
  let bytes = 0;
  while (bytes < Number(request.bytes)) {
    const header = { type: "dm", id: `${++seq}_f`, to, text };
    headers.push(header);
    bytes += text.length + 60;
  }
  c.enqueue(frames(headers));
  return { queued: headers.length, pendingBytes: c.pendingBytes };
}

function ackedIds(request: Record<string, unknown>): object {
  return { ids: groupOf(request.group).flatMap((c) => c.ackedIds) };
}

/** Presence bytes each connection of a group received: mean and most. */
function presenceBytes(request: Record<string, unknown>): object {
  const group = groups.get(String(request.group)) ?? [];
  let sum = 0;
  let max = 0;
  for (const c of group) {
    sum += c.presenceBytes;
    max = Math.max(max, c.presenceBytes);
  }
  return { clients: group.length, mean: group.length ? sum / group.length : 0, max };
}

async function closeGroup(request: Record<string, unknown>): Promise<object> {
  const group = groups.get(String(request.group)) ?? [];
  for (const c of group) c.close();
  await Promise.allSettled(group.map((c) => c.ended));
  groups.delete(String(request.group));
  return { closed: group.length };
}

async function closeAll(): Promise<void> {
  for (const name of [...groups.keys()]) await closeGroup({ group: name });
}

if (import.meta.main) {
  emit({ ready: true, pid: Deno.pid, tag });
  await serveSideChannel({
    target: (r) => {
      target = {
        host: String(r.host ?? "127.0.0.1"),
        port: Number(r.port),
        mode: r.mode as Target["mode"],
        web: r.web === true,
        password: typeof r.password === "string" ? r.password : null,
      };
      return {};
    },
    open,
    presenceBytes,
    run,
    closedLoop,
    stats,
    quiet,
    pause,
    checkPaused,
    drop,
    resume,
    verify,
    ackedIds,
    localPorts,
    fill,
    closeGroup,
    exit: closeAll,
  });
  Deno.exit(0);
}
