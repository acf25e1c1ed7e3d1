/**
 * What the server allocates per room message, over the chat protocol or the IRC listener:
 * a server in this process (memory store, `--auth none`, no limits), a room of `members`
 * raw-socket clients of one kind, `senders` of them writing `burst` messages each per
 * round in one write, the next round once every other member read them all. V8's count of
 * bytes allocated (`total_allocated_bytes`, the whole process: the clients here read into
 * one buffer and count bytes, so nearly all of it is the server's) over the measured
 * rounds, per message; with `--profile`, a sampling heap profile of those rounds (garbage
 * included) by allocating function, the clients' own frames apart.
 *
 * ```sh
 * deno run -A bench/irc_alloc.ts                      # both listeners, 10 members
 * deno run -A bench/irc_alloc.ts --listener irc --profile --top 30
 * deno run -A bench/irc_alloc.ts --caps server-time,message-tags,account-tag
 * deno run -A --v8-flags=--expose-gc bench/irc_alloc.ts --survivors  # what outlived a scavenge
 * deno run -A --v8-flags=--expose-gc bench/irc_alloc.ts --survivors --json  # a JSON line per listener
 * ```
 *
 * @module
 */

import { Session } from "node:inspector";
import v8 from "node:v8";
import { encodeFrame } from "../protocol/frame.ts";
import { MemoryStore } from "../server/memory_store.ts";
import type { ChatServer } from "../server/server.ts";
import { ircFanout } from "../server/irc_fanout.ts";
import { testServer } from "../tests/helpers/harness.ts";

/** Options of {@linkcode allocationPerMessage}. */
export interface AllocationOptions {
  /** Which listener the clients speak to. */
  listener: "chat" | "irc";
  /** Members of the room, senders included. Default 10. */
  members?: number;
  /** Members that send. Default 4. */
  senders?: number;
  /** Messages each sender writes per round, in one write. Default 8. */
  burst?: number;
  /** Rounds before the measured ones (the JIT). Default 300. */
  warmupRounds?: number;
  /** Measured rounds. Default 300. */
  rounds?: number;
  /** IRC capabilities each IRC client requests (`CAP REQ`). Default none, as the load clients. */
  caps?: readonly string[];
  /**
   * Take a sampling heap profile of the measured rounds: of every allocation (true), or
   * of those that outlived a scavenge (`"survivors"`: what the garbage collector promotes).
   */
  profile?: boolean | "survivors";
  /** Text bytes of each message (the first is the `~` the receivers count). Default 100. */
  textBytes?: number;
}

/** One allocating function in the profile. */
export interface AllocationSite {
  /** `name file:line`. */
  where: string;
  /** Bytes per message (sampled, scaled). */
  bytes: number;
}

/** What {@linkcode allocationPerMessage} measured. */
export interface AllocationResult {
  /** Messages sent in the measured rounds. */
  messages: number;
  /** Bytes allocated per message (whole process). */
  bytesPerMessage: number;
  /** Frames the IRC fan-out cache decoded, per message. */
  decodesPerMessage: number;
  /** Events the IRC fan-out cache formatted, per message. */
  formatsPerMessage: number;
  /** With `profile`: per message, by allocating function (self), largest first. */
  sites?: AllocationSite[];
  /** With `profile`: per message, bytes allocated under the clients' own frames. */
  clientBytes?: number;
  /**
   * With `profile`: per message, the bytes of the server's sites in all (`"survivors"`:
   * what outlived a scavenge, which the garbage collector copied and promoted).
   */
  serverBytes?: number;
}

/** V8's `gc`, when the process was started with `--v8-flags=--expose-gc`. */
function exposedGc(): ((options: { type: "minor" }) => void) | undefined {
  return (globalThis as { gc?: (options: { type: "minor" }) => void }).gc;
}

/** V8's count of bytes allocated in this process so far (not in Deno's `HeapInfo` type). */
export function allocatedBytes(): number {
  const bytes = (v8.getHeapStatistics() as { total_allocated_bytes?: number })
    .total_allocated_bytes;
  if (bytes === undefined) throw new Error("this runtime does not count allocated bytes");
  return bytes;
}

const MARK = 0x7e; // "~": only in the messages' texts
const HERE = new URL(import.meta.url).pathname;

/** A raw client: counts the marks in what it reads, after its setup. */
class RawClient {
  readonly conn: Deno.Conn;
  readonly ended: Promise<void>;
  marks = 0;
  /** During setup: what was read, as Latin-1 text. */
  setupText = "";
  setup = true;
  onRead: () => void = () => {};

  constructor(conn: Deno.Conn) {
    this.conn = conn;
    this.ended = this.#read();
  }

  async #read(): Promise<void> {
    const buffer = new Uint8Array(64 * 1024);
    try {
      for (;;) {
        const n = await this.conn.read(buffer);
        if (n === null) return;
        if (this.setup) {
          this.setupText += String.fromCharCode(...buffer.subarray(0, n));
        } else {
          let marks = 0;
          for (let i = 0; i < n; i++) if (buffer[i] === MARK) marks++;
          this.marks += marks;
        }
        this.onRead();
      }
    } catch {
      // closed
    }
  }

  /** Resolves once the setup text holds `needle`. */
  async waitFor(needle: string, what: string, timeoutMs = 30_000): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (!this.setupText.includes(needle)) {
      if (performance.now() > deadline) throw new Error(`no ${what} within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 50);
        this.onRead = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    this.onRead = () => {};
  }

  async write(bytes: Uint8Array): Promise<void> {
    for (let at = 0; at < bytes.length;) at += await this.conn.write(bytes.subarray(at));
  }
}

const encoder = new TextEncoder();

async function connectChat(server: ChatServer, nick: string, room: string): Promise<RawClient> {
  const client = new RawClient(
    await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port }),
  );
  const frames = [
    { type: "hello", v: 1, features: ["rooms", "presence", "history"], agent: "irc_alloc" },
    { type: "login", id: "l1", nick },
    { type: "join", id: "j1", room },
  ].map((header) => encodeFrame(header));
  for (const frame of frames) await client.write(frame);
  await client.waitFor(`"re":"j1"`, `${nick}'s join`);
  return client;
}

async function connectIrc(
  server: ChatServer,
  nick: string,
  room: string,
  caps: readonly string[],
): Promise<RawClient> {
  const port = server.ircAddr!.port;
  const client = new RawClient(await Deno.connect({ hostname: "127.0.0.1", port }));
  const cap = caps.length > 0 ? `CAP LS 302\r\nCAP REQ :${caps.join(" ")}\r\nCAP END\r\n` : "";
  await client.write(encoder.encode(`${cap}NICK ${nick}\r\nUSER ${nick} 0 * :${nick}\r\n`));
  await client.waitFor(" 001 ", `${nick}'s welcome`);
  await client.write(encoder.encode(`JOIN #${room}\r\n`));
  await client.waitFor(` 366 ${nick} #${room} `, `${nick}'s join`);
  return client;
}

/** A sender's burst: `burst` messages to `room` in one write (chat ids from `next`). */
function burstBytes(
  listener: "chat" | "irc",
  room: string,
  burst: number,
  text: string,
  next: () => number,
): Uint8Array {
  if (listener === "irc") {
    return encoder.encode(`PRIVMSG #${room} :${text}\r\n`.repeat(burst));
  }
  const frames = Array.from(
    { length: burst },
    () => encodeFrame({ type: "say", id: `s${next()}`, room, text }),
  );
  const out = new Uint8Array(frames.reduce((sum, f) => sum + f.length, 0));
  let at = 0;
  for (const frame of frames) {
    out.set(frame, at);
    at += frame.length;
  }
  return out;
}

interface SamplingNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: SamplingNode[];
}

function post<T>(session: Session, method: string, params: object = {}): Promise<T> {
  return new Promise((resolve, reject) =>
    session.post(method, params, (err: unknown, result: unknown) => {
      if (err) reject(err);
      else resolve(result as T);
    })
  );
}

/** Self bytes by function of a sampling heap profile, and the bytes under the clients' frames. */
export function sitesOf(
  root: SamplingNode,
  messages: number,
): { sites: AllocationSite[]; client: number } {
  const bySite = new Map<string, number>();
  let client = 0;
  const walk = (node: SamplingNode, underClient: boolean) => {
    const frame = node.callFrame;
    const inClient = underClient || frame.url.endsWith(HERE);
    if (node.selfSize > 0) {
      if (inClient) client += node.selfSize;
      else {
        const file = frame.url.replace(/^.*\/(?=[^/]+\/[^/]+$)/, "");
        const key = `${frame.functionName || "(anonymous)"} ${file}:${frame.lineNumber + 1}`;
        bySite.set(key, (bySite.get(key) ?? 0) + node.selfSize);
      }
    }
    for (const child of node.children) walk(child, inClient);
  };
  walk(root, false);
  const sites = [...bySite].map(([where, bytes]) => ({ where, bytes: bytes / messages }))
    .sort((a, b) => b.bytes - a.bytes);
  return { sites, client: client / messages };
}

/** Measures the bytes the server allocates per room message; see the module's notes. */
export async function allocationPerMessage(options: AllocationOptions): Promise<AllocationResult> {
  const members = options.members ?? 10;
  const senders = options.senders ?? 4;
  const burst = options.burst ?? 8;
  const warmupRounds = options.warmupRounds ?? 300;
  const rounds = options.rounds ?? 300;
  const text = "~" + "x".repeat((options.textBytes ?? 100) - 1);
  if (senders >= members) throw new Error("at least one member must only receive");
  // Exposed later (`node:v8` setFlagsFromString), what outlived a scavenge came out about
  // 5× larger for the chat listener, run after run: not to be trusted.
  if (options.profile === "survivors" && exposedGc() === undefined) {
    throw new Error("what outlives a scavenge is measured with --v8-flags=--expose-gc");
  }
  const room = "alloc";
  const server = await testServer(
    { ircPort: 0, auth: "none", historyOnJoin: 0 },
    { store: new MemoryStore({ roomHistory: 1000 }) },
  );
  const clients: RawClient[] = [];
  try {
    for (let i = 0; i < members; i++) {
      const nick = `m${i}`;
      clients.push(
        options.listener === "irc"
          ? await connectIrc(server, nick, room, options.caps ?? [])
          : await connectChat(server, nick, room),
      );
    }
    // Joins told to the earlier members are read before counting starts: the last
    // member's join reached everyone once its own join is done... except in flight.
    for (const client of clients) {
      client.setup = false;
      client.setupText = "";
    }
    const receivers = clients.slice(senders);
    let seq = 0;
    const next = () => ++seq;
    let expected = 0;
    const round = async () => {
      expected += senders * burst;
      const arrived = new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`round not delivered within 30 s (${expected} expected)`)),
          30_000,
        );
        const check = () => {
          if (receivers.every((r) => r.marks >= expected)) {
            clearTimeout(timer);
            resolve();
          }
        };
        for (const r of receivers) r.onRead = check;
        check();
      });
      await Promise.all(
        clients.slice(0, senders).map((s) =>
          s.write(burstBytes(options.listener, room, burst, text, next))
        ),
      );
      await arrived;
    };
    for (let i = 0; i < warmupRounds; i++) await round();
    let session: Session | null = null;
    if (options.profile) {
      session = new Session();
      session.connect();
      await post(session, "HeapProfiler.enable");
      await post(session, "HeapProfiler.startSampling", {
        samplingInterval: 256,
        includeObjectsCollectedByMajorGC: true,
        // `--survivors`: only what outlived a scavenge (promoted, or still young at the end).
        includeObjectsCollectedByMinorGC: options.profile !== "survivors",
      });
    }
    const { decodes, formats } = ircFanout;
    const before = allocatedBytes();
    for (let i = 0; i < rounds; i++) await round();
    const allocated = allocatedBytes() - before;
    const messages = rounds * senders * burst;
    const result: AllocationResult = {
      messages,
      bytesPerMessage: allocated / messages,
      decodesPerMessage: (ircFanout.decodes - decodes) / messages,
      formatsPerMessage: (ircFanout.formats - formats) / messages,
    };
    if (session !== null) {
      // What is still in the young generation has outlived no scavenge yet: one now
      // leaves only what outlives it.
      if (options.profile === "survivors") exposedGc()!({ type: "minor" });
      const { profile } = await post<{ profile: { head: SamplingNode } }>(
        session,
        "HeapProfiler.stopSampling",
      );
      session.disconnect();
      const { sites, client } = sitesOf(profile.head, messages);
      result.sites = sites;
      result.clientBytes = client;
      result.serverBytes = sites.reduce((sum, site) => sum + site.bytes, 0);
    }
    return result;
  } finally {
    for (const client of clients) {
      try {
        client.conn.close();
      } catch {
        // already closed
      }
    }
    await Promise.all(clients.map((c) => c.ended));
    await server.shutdown();
  }
}

if (import.meta.main) {
  const flag = (name: string) => {
    const at = Deno.args.indexOf(name);
    return at < 0 ? undefined : Deno.args[at + 1];
  };
  const listeners = flag("--listener") === undefined
    ? ["chat", "irc"] as const
    : [flag("--listener") as "chat" | "irc"];
  const top = Number(flag("--top") ?? 25);
  const caps = flag("--caps")?.split(",").filter((c) => c !== "") ?? [];
  for (const listener of listeners) {
    const result = await allocationPerMessage({
      listener,
      caps,
      profile: Deno.args.includes("--survivors") ? "survivors" : Deno.args.includes("--profile"),
      ...(flag("--members") ? { members: Number(flag("--members")) } : {}),
      ...(flag("--senders") ? { senders: Number(flag("--senders")) } : {}),
      ...(flag("--burst") ? { burst: Number(flag("--burst")) } : {}),
      ...(flag("--rounds") ? { rounds: Number(flag("--rounds")) } : {}),
      ...(flag("--warmup") ? { warmupRounds: Number(flag("--warmup")) } : {}),
    });
    if (Deno.args.includes("--json")) {
      console.log(JSON.stringify({ listener, ...result, sites: result.sites?.slice(0, top) }));
      continue;
    }
    console.log(
      `${listener}: ${
        result.bytesPerMessage.toFixed(0)
      } B allocated per message (${result.messages} messages)` +
        (listener === "irc"
          ? `; the IRC fan-out decoded ${result.decodesPerMessage.toFixed(2)} and formatted ${
            result.formatsPerMessage.toFixed(2)
          } frames per message`
          : ""),
    );
    if (result.sites !== undefined) {
      console.log(
        `  the server's sites: ${
          result.serverBytes!.toFixed(0)
        } B per message; the clients' own frames: ${result.clientBytes!.toFixed(0)} B`,
      );
      for (const site of result.sites.slice(0, top)) {
        console.log(`  ${site.bytes.toFixed(0).padStart(7)} B  ${site.where}`);
      }
    }
  }
}
