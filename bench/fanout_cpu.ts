/**
 * The chat server's CPU time for a fixed fan-out: 4 senders and `members` receivers in
 * the lobby (memory store), `perSender` 100-byte `say` each, every receiver reading all
 * of them. CPU seconds of the server process (/proc), which a loaded machine disturbs
 * less than deliveries per second; compare two versions of the code in turns.
 *
 * `--ws` runs every client over the browser client's WebSocket (the bench's RFC 6455
 * client, `load_websocket.ts`) instead of TCP, and also prints how many WebSocket
 * payload pieces the receivers got per delivery (a message split over two reads counts
 * twice: about the messages the server sent per frame).
 *
 * ```sh
 * deno run -A bench/fanout_cpu.ts [--ws] [--prof DIR] [members 100] [perSender 2000]
 * ```
 *
 * @module
 */

import { clientHello, SERVER_FEATURES } from "../protocol/hello.ts";
import { encodeFrame } from "../protocol/frame.ts";
import { FramedConnection } from "../transport/framed_connection.ts";
import { textLines } from "../tools/lines.ts";
import { LoadWebSocket } from "./load_websocket.ts";
import { FrameKind, frameKind, replyTo, u32 } from "./frame_scan.ts";
import { concatBytes } from "../protocol/bytes.ts";
import { serveV8FlagArgs } from "../scripts/v8_flags.ts";

const ws = Deno.args.includes("--ws");
const profIndex = Deno.args.indexOf("--prof");
const profDir = profIndex >= 0 ? Deno.args[profIndex + 1] : null;
const numbers = Deno.args.filter((a, i) =>
  !a.startsWith("--") && (profIndex < 0 || i !== profIndex + 1)
);
const members = Number(numbers[0] ?? 100);
const perSender = Number(numbers[1] ?? 2000);
const SENDERS = 4;
const here = new URL(".", import.meta.url).pathname;

const child = new Deno.Command(Deno.execPath(), {
  args: [
    "run",
    "-A",
    ...serveV8FlagArgs(),
    ...(profDir !== null ? ["--cpu-prof", `--cpu-prof-dir=${profDir}`] : []),
    `${here}server_process.ts`,
    "--memory",
    "--room-history",
    "1000",
    ...(ws ? ["--web"] : []),
  ],
  stdin: "piped",
  stdout: "piped",
  stderr: "inherit",
}).spawn();
const lines = textLines(child.stdout)[Symbol.asyncIterator]();
const info = JSON.parse((await lines.next()).value as string) as {
  port: number;
  webPort: number | null;
  pid: number;
};

/** The server's /proc stat fields after its name (state first). */
function stat(): string[] {
  return Deno.readTextFileSync(`/proc/${info.pid}/stat`).split(") ")[1].split(" ");
}

/** CPU seconds (user + system) of the server so far. */
function cpuSeconds(): number {
  const fields = stat();
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** Minor page faults of the server so far (fresh memory touched: large allocations). */
function pageFaults(): number {
  return Number(stat()[7]);
}

/** A logged-in client: sends frames, counts the `msg` frames and `ok` replies it receives. */
interface Client {
  send(header: Record<string, unknown>): void;
  flush(): Promise<void>;
  /** `msg` frames received so far. */
  readonly messages: number;
  /** `ok` replies received so far (after the login's). */
  readonly oks: number;
  /** Resolves at the next frame received (or at once when the client is gone). */
  progress(): Promise<void>;
  close(): void;
}

/** WebSocket payload pieces received by every client (`--ws`). */
let pieces = 0;

/** Counts and wake-ups shared by both kinds of client. */
class Counts {
  messages = 0;
  oks = 0;
  gone = false;
  #wake: (() => void)[] = [];
  progress(): Promise<void> {
    return this.gone ? Promise.resolve() : new Promise((resolve) => this.#wake.push(resolve));
  }
  woke(): void {
    const wake = this.#wake;
    this.#wake = [];
    for (const resolve of wake) resolve();
  }
}

function client(counts: Counts, parts: Pick<Client, "send" | "flush" | "close">): Client {
  return {
    ...parts,
    get messages() {
      return counts.messages;
    },
    get oks() {
      return counts.oks;
    },
    progress: () => counts.progress(),
  };
}

async function tcpClient(nick: string): Promise<Client> {
  const conn = new FramedConnection(await Deno.connect({ hostname: "127.0.0.1", port: info.port }));
  conn.send(clientHello(SERVER_FEATURES, "fanout-cpu"));
  conn.send({ type: "login", id: "l", nick });
  const batches = conn.batches();
  let loggedIn = false;
  while (!loggedIn) {
    const { value, done } = await batches.next();
    if (done) throw new Error(`${nick}: closed before its login`);
    for (const frame of value) if (frame.header.re === "l") loggedIn = true;
  }
  const counts = new Counts();
  (async () => {
    for await (const batch of batches) {
      for (const { header } of batch) {
        if (header.type === "msg") counts.messages++;
        else if (header.type === "ok") counts.oks++;
      }
      counts.woke();
    }
  })().catch(() => {}).finally(() => {
    counts.gone = true;
    counts.woke();
  });
  return client(counts, {
    send: (header) => conn.send(header),
    flush: () => conn.flush(),
    close: () => conn.abort(),
  });
}

async function wsClient(nick: string): Promise<Client> {
  const counts = new Counts();
  let carry: Uint8Array | null = null;
  let loggedIn: () => void = () => {};
  const login = new Promise<void>((resolve) => loggedIn = resolve);
  const socket = await LoadWebSocket.open("127.0.0.1", info.webPort!, (bytes) => {
    pieces++;
    const data = carry === null ? bytes : concatBytes([carry, bytes]);
    carry = null;
    let o = 0;
    while (o + 4 <= data.length) {
      const length = u32(data, o);
      if (o + 4 + length > data.length) break;
      const hs = o + 8;
      const he = hs + u32(data, o + 4);
      o += 4 + length;
      const kind = frameKind(data, hs, he);
      if (kind === FrameKind.Message) counts.messages++;
      else if (kind === FrameKind.Ok) {
        if (replyTo(data, hs, he) === "l") loggedIn();
        else counts.oks++;
      }
    }
    if (o < data.length) carry = data.slice(o);
    counts.woke();
  });
  socket.ended.then(() => {
    counts.gone = true;
    counts.woke();
  });
  const out: Uint8Array[] = [];
  let writing = Promise.resolve();
  const c = client(counts, {
    send(header) {
      out.push(encodeFrame(header));
      if (out.length === 1) {
        writing = writing.then(async () => {
          // One frame per message, as the page sends.
          while (out.length > 0) await socket.write(out.shift()!);
        });
      }
    },
    flush: () => writing,
    close: () => socket.close(),
  });
  c.send(clientHello(SERVER_FEATURES, "fanout-cpu"));
  c.send({ type: "login", id: "l", nick });
  await login;
  return c;
}

/** Resolves once `done()`; throws when `who` makes no progress for 30 s or is gone. */
async function until(who: Client, done: () => boolean, what: string): Promise<void> {
  while (!done()) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const stalled = await Promise.race([
      who.progress().then(() => false),
      new Promise<boolean>((resolve) => timer = setTimeout(() => resolve(true), 30_000)),
    ]);
    clearTimeout(timer);
    if (stalled && !done()) throw new Error(`no progress for 30 s waiting for ${what}`);
  }
}

const connect = ws ? wsClient : tcpClient;
const receivers: Client[] = [];
for (let i = 0; i < members; i++) receivers.push(await connect(`r${i}`));
const senders: Client[] = [];
for (let i = 0; i < SENDERS; i++) senders.push(await connect(`s${i}`));
const total = SENDERS * perSender;
await new Promise((resolve) => setTimeout(resolve, 500));
const pieces0 = pieces;
const cpu0 = cpuSeconds();
const faults0 = pageFaults();
const t0 = performance.now();
const text = "x".repeat(100);
/**
 * Says in flight per sender: a WebSocket cannot hold a sender back as TCP does (past
 * `--max-queue` unread bytes the server closes it), so senders wait for their replies.
 */
const WINDOW = 200;
await Promise.all(senders.map(async (conn, s) => {
  for (let i = 0; i < perSender; i++) {
    conn.send({ type: "say", id: `m${s}_${i}`, room: "lobby", text });
    if (i % 50 === 49) {
      await conn.flush();
      await until(conn, () => conn.oks >= i + 1 - WINDOW, `s${s}'s replies`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }
}));
await Promise.all(
  receivers.map((r, i) => until(r, () => r.messages >= total, `r${i}'s ${total} messages`)),
);
const cpu = cpuSeconds() - cpu0;
const faults = pageFaults() - faults0;
const deliveries = total * (members + SENDERS);
console.log(JSON.stringify({
  over: ws ? "websocket" : "tcp",
  deliveries,
  serverCpuSeconds: Math.round(cpu * 100) / 100,
  wallSeconds: Math.round(performance.now() - t0) / 1000,
  deliveriesPerCpuSecond: Math.round(deliveries / cpu),
  pageFaultsPer1000Deliveries: Math.round(faults / deliveries * 1000 * 100) / 100,
  ...(ws ? { piecesPerDelivery: Math.round((pieces - pieces0) / deliveries * 1000) / 1000 } : {}),
}));
for (const c of [...receivers, ...senders]) c.close();
if (profDir !== null) {
  // The profile is written at a graceful exit.
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(JSON.stringify({ id: 1, cmd: "exit" }) + "\n"));
} else child.kill("SIGTERM");
await child.status;
Deno.exit(0);
