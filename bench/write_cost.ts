/**
 * What one socket write costs the sending process, per way of writing (issue #16, goal
 * 6): FIXED work, a fan-out of `--rounds-per-s` rounds a second for `--ms`, each round
 * one `--bytes` write to each of `--receivers` loopback connections whose other ends are
 * in a separate process that only reads. For each way, the sender (its own process)
 * reports its CPU time over the work (getrusage: user + system, every thread) and its
 * main thread's (`/proc/self/task/PID/stat`), divided by the writes made; with `--perf`
 * the sender runs under `perf stat` and the system calls it made are counted too. The
 * `idle` way paces the same rounds and writes nothing: its CPU is the pacing's own.
 *
 * ```sh
 * deno run -A bench/write_cost.ts                        # every way, 3 rounds in turn
 * deno run -A bench/write_cost.ts --ways deno-write,node-write --turns 2 --perf
 * deno run -A bench/write_cost.ts --receivers 10 --ms 300 --turns 1   # a quick check
 * ```
 *
 * Ways: `deno-write` (`Deno.TcpConn.write`, one promise per write, as OutboundQueue
 * uses it), `deno-writable` (the connection's `WritableStream`), `node-write`
 * (`node:net` `socket.write`, no callback), `node-write-cb` (with a callback, as
 * `NodeSocketChannel` uses it), `node-cork` (`cork()`, write, `uncork()`), `queue-deno`
 * (the whole `OutboundQueue` over `Deno.TcpConn`), `queue-node` (`OutboundQueue` over
 * `NodeSocketChannel`), `deno-write-view` (`deno-write` of a view into a 1 MiB buffer, as the
 * queue's pooled buffers are), `ffi-send` (libc `send` through FFI on the connection's own
 * descriptor: the kernel's cost with none of the runtime's I/O path), `ffi-send-empty` (the
 * same sending 0 bytes: a bare system call), `node-handle` (`node:net`'s native handle,
 * `socket._handle.writeBuffer`: the system call in the call), `idle`.
 *
 * Measured with Deno 2.9.6 (2026-12-05, 2 shared cores, load 2-5; 100 receivers, 700
 * rounds/s, 3 s, 2 KiB, seven runs in turn): `Deno.TcpConn.write` 6.9-10.5 µs of process CPU
 * per write, 64-68% of it in the kernel (one `sendto` each: on loopback the sender's call
 * also runs the receiver's TCP input); `node:net` write 1.04-1.40× that (median 1.11×), with
 * a callback median 1.16×, cork/uncork no better; the `WritableStream` 1.1-1.9× (median
 * 1.74×). A C sender doing the same (blocking `send`, paced) 4.6-5.5 µs, 3.9-4.9 of it
 * kernel: the runtime and JavaScript add ~2-2.5 µs to a write, no API here less. The whole
 * `OutboundQueue` over `Deno.TcpConn` costs less per write than either (5.1-8.0 µs): when a
 * round comes before the last write settled, it joins (0.3-0.5 `sendto` per write).
 *
 * The floor, 2026-12-06 (Deno 2.9.6, six turns on a quiet machine, net of `idle`, medians):
 * `deno-write` 8.0 µs a write, `node-handle` 0.94× it in the same turn (0.80-1.06),
 * `ffi-send` 0.85× (0.72-0.93; in nine turns on a busier machine 0.57-1.22, median 0.85),
 * `ffi-send-empty` 1.6-2.6 µs (a system call in this PVM guest costs that much before any
 * TCP work), `deno-write-view` 1.04× `deno-write`: a view into a large buffer costs nothing
 * more. `Deno.TcpConn.write` makes its system call in the event loop's next poll, not in
 * the call (`strace` around a marker `statSync`); the native `node:net` handle in the call.
 * The breakdown is in `bench/README.md` ("What a socket write costs").
 *
 * @module
 */

import net from "node:net";
import process, { cpuUsage } from "node:process";
import { OutboundQueue } from "../transport/outbound_queue.ts";
import { NodeSocketChannel } from "../transport/node_socket_channel.ts";

/** The settings of one measurement. */
export interface WriteCostSettings {
  receivers: number;
  roundsPerSecond: number;
  ms: number;
  bytes: number;
}

/** What a sender measured for one way. */
export interface WriteCostResult {
  way: string;
  writes: number;
  /** Process CPU (user + system, all threads) over the work, µs. */
  cpuUs: number;
  /** Of which in the kernel (system time), µs. */
  systemUs: number;
  /** The main (JavaScript) thread's CPU over the work, µs (10 ms resolution). */
  mainThreadUs: number;
  /** Bytes the receivers read in all (they read until the sender closes). */
  receivedBytes: number;
  /** Wall time of the work, ms. */
  wallMs: number;
  /** System call counts from `perf stat`, when run with it. */
  syscalls?: Record<string, number>;
}

/** The sockets of one way: `writeRound` writes the payload once on each; `settled` waits until all are written. */
interface Sender {
  writeRound(payload: Uint8Array): void;
  settled(): Promise<void>;
  close(): void;
}

type Opener = (n: number, connectReceivers: (port: number) => void) => Promise<Sender>;

/** Accepts `n` Deno connections on a fresh listener, after starting the receivers. */
async function acceptDeno(
  n: number,
  connectReceivers: (port: number) => void,
): Promise<Deno.TcpConn[]> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  connectReceivers((listener.addr as Deno.NetAddr).port);
  const conns: Deno.TcpConn[] = [];
  for await (const conn of listener) {
    conn.setNoDelay(true);
    conns.push(conn);
    if (conns.length === n) break;
  }
  return conns;
}

/** Accepts `n` node:net sockets on a fresh server, after starting the receivers. */
async function acceptNode(
  n: number,
  connectReceivers: (port: number) => void,
): Promise<net.Socket[]> {
  const sockets: net.Socket[] = [];
  let allIn: () => void = () => {};
  const done = new Promise<void>((resolve) => allIn = resolve);
  const server = net.createServer((socket) => {
    socket.setNoDelay(true);
    socket.on("error", () => {});
    sockets.push(socket);
    if (sockets.length === n) {
      server.close();
      allIn();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  connectReceivers((server.address() as net.AddressInfo).port);
  await done;
  return sockets;
}

/** Counts writes under way and wakes `settled` at zero. */
class Pending {
  count = 0;
  #wake: (() => void) | null = null;
  done(): void {
    if (--this.count === 0 && this.#wake !== null) {
      this.#wake();
      this.#wake = null;
    }
  }
  settled(): Promise<void> {
    if (this.count === 0) return Promise.resolve();
    return new Promise((resolve) => this.#wake = resolve);
  }
}

/** `Deno.TcpConn.write`, one write under way per connection (later rounds wait their turn). */
const denoWrite: Opener = async (n, connect) => {
  const conns = await acceptDeno(n, connect);
  const pending = new Pending();
  const backlog = new Array<number>(n).fill(0);
  const busy = new Array<boolean>(n).fill(false);
  let payload: Uint8Array = new Uint8Array(0);
  const writeOn = async (i: number) => {
    busy[i] = true;
    const conn = conns[i];
    for (;;) {
      let offset = 0;
      while (offset < payload.length) {
        offset += await conn.write(offset === 0 ? payload : payload.subarray(offset));
      }
      pending.done();
      if (backlog[i] === 0) break;
      backlog[i]--;
    }
    busy[i] = false;
  };
  return {
    writeRound(p) {
      payload = p;
      for (let i = 0; i < n; i++) {
        pending.count++;
        if (busy[i]) backlog[i]++;
        else writeOn(i);
      }
    },
    settled: () => pending.settled(),
    close: () => conns.forEach((c) => c.close()),
  };
};

/** Each connection's `WritableStream` writer: the stream queues, one write promise each. */
const denoWritable: Opener = async (n, connect) => {
  const conns = await acceptDeno(n, connect);
  const writers = conns.map((c) => c.writable.getWriter());
  const pending = new Pending();
  const done = () => pending.done();
  return {
    writeRound(p) {
      for (const writer of writers) {
        pending.count++;
        writer.write(p).then(done);
      }
    },
    settled: () => pending.settled(),
    close: () => conns.forEach((c) => c.close()),
  };
};

/** Waits until every node socket has handed all it buffered to the kernel. */
async function nodeDrained(sockets: net.Socket[]): Promise<void> {
  for (const socket of sockets) {
    if (socket.writableLength > 0) await new Promise((resolve) => socket.once("drain", resolve));
  }
}

const nodeWrite: Opener = async (n, connect) => {
  const sockets = await acceptNode(n, connect);
  return {
    writeRound(p) {
      for (const socket of sockets) socket.write(p);
    },
    settled: () => nodeDrained(sockets),
    close: () => sockets.forEach((s) => s.destroy()),
  };
};

const nodeWriteCallback: Opener = async (n, connect) => {
  const sockets = await acceptNode(n, connect);
  const pending = new Pending();
  const done = () => pending.done();
  return {
    writeRound(p) {
      for (const socket of sockets) {
        pending.count++;
        socket.write(p, done);
      }
    },
    settled: () => pending.settled(),
    close: () => sockets.forEach((s) => s.destroy()),
  };
};

const nodeCork: Opener = async (n, connect) => {
  const sockets = await acceptNode(n, connect);
  return {
    writeRound(p) {
      for (const socket of sockets) {
        socket.cork();
        socket.write(p);
        socket.uncork();
      }
    },
    settled: () => nodeDrained(sockets),
    close: () => sockets.forEach((s) => s.destroy()),
  };
};

/** What `node:net`'s native stream handle says of its last write (Node's `streamBaseState`). */
const streamBaseState = (process as unknown as {
  binding(name: string): { streamBaseState: Int32Array };
}).binding("stream_wrap").streamBaseState;
/** Index in {@linkcode streamBaseState}: whether the last write went on after the call. */
const LAST_WRITE_WAS_ASYNC = 3;

/** The native handle under a `node:net` socket (Node's `_handle`: a `TCPWrap`). */
interface StreamHandle {
  writeBuffer(req: object, data: Uint8Array): number;
}

/**
 * `node:net`'s native handle written directly (`socket._handle.writeBuffer`, what
 * `socket.write` ends in): the system call is made in the call when the kernel takes it
 * all (as libuv's `uv_try_write`), no promise, no event-loop turn; a write that could not
 * finish completes later through `req.oncomplete`.
 */
const nodeHandle: Opener = async (n, connect) => {
  const sockets = await acceptNode(n, connect);
  const handles = sockets.map((s) => (s as unknown as { _handle: StreamHandle })._handle);
  const pending = new Pending();
  const failed = (status: number) => {
    if (status < 0) throw new Error(`write failed: ${status}`);
  };
  return {
    writeRound(p) {
      for (const handle of handles) {
        const req = {
          handle,
          async: false,
          bytes: 0,
          buffer: null as Uint8Array | null,
          callback: null,
          oncomplete(status: number) {
            failed(status);
            pending.done();
          },
        };
        const err = handle.writeBuffer(req, p);
        if (err !== 0) throw new Error(`writeBuffer: ${err}`);
        if (streamBaseState[LAST_WRITE_WAS_ASYNC] !== 0) {
          req.buffer = p;
          pending.count++;
        }
      }
    },
    settled: () => pending.settled(),
    close: () => sockets.forEach((s) => s.destroy()),
  };
};

/** A socket's file descriptor in this process, found by its ports (`/proc/net/tcp`, `/proc/self/fd`). */
function socketFd(
  conn: Deno.TcpConn,
  inodeByPorts: Map<string, string>,
  fdByInode: Map<string, number>,
): number {
  const local = (conn.localAddr as Deno.NetAddr).port;
  const remote = (conn.remoteAddr as Deno.NetAddr).port;
  const fd = fdByInode.get(inodeByPorts.get(`${local}:${remote}`) ?? "");
  if (fd === undefined) throw new Error(`no descriptor for the connection ${local}:${remote}`);
  return fd;
}

/** The descriptors of `conns`, in order (Linux). */
function socketFds(conns: Deno.TcpConn[]): number[] {
  const inodeByPorts = new Map<string, string>();
  for (const line of Deno.readTextFileSync("/proc/net/tcp").split("\n").slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 10) continue;
    const port = (address: string) => parseInt(address.split(":")[1], 16);
    inodeByPorts.set(`${port(fields[1])}:${port(fields[2])}`, fields[9]);
  }
  const fdByInode = new Map<string, number>();
  for (const entry of Deno.readDirSync("/proc/self/fd")) {
    try {
      const target = Deno.readLinkSync(`/proc/self/fd/${entry.name}`);
      if (target.startsWith("socket:[")) fdByInode.set(target.slice(8, -1), Number(entry.name));
    } catch {
      // closed meanwhile
    }
  }
  return conns.map((conn) => socketFd(conn, inodeByPorts, fdByInode));
}

/**
 * libc's `send` called straight from JavaScript through FFI on each connection's
 * descriptor (non-blocking, as the runtime made it): the kernel's cost and an FFI call,
 * none of the runtime's I/O path: the floor a runtime API could reach. `bytes` 0 sends
 * nothing (a system call that does no TCP work). Measurement only: a server cannot
 * write behind the runtime's back like this.
 */
function ffiSend(empty: boolean): Opener {
  return async (n, connect) => {
    const conns = await acceptDeno(n, connect);
    const fds = socketFds(conns);
    const libc = Deno.dlopen("libc.so.6", {
      send: { parameters: ["i32", "buffer", "usize", "i32"], result: "isize" },
    });
    const MSG_DONTWAIT = 0x40;
    return {
      writeRound(p) {
        const length = empty ? 0 : p.length;
        const lengthArg = BigInt(length);
        for (const fd of fds) {
          const sent = Number(libc.symbols.send(fd, p, lengthArg, MSG_DONTWAIT));
          if (sent !== length) throw new Error(`send on ${fd}: ${sent} of ${length}`);
        }
      },
      settled: () => Promise.resolve(),
      close() {
        conns.forEach((c) => c.close());
        libc.close();
      },
    };
  };
}

/**
 * `Deno.TcpConn.write` with the payload a view into a large shared buffer (as the
 * queue's pooled buffers are), not an array owning its buffer.
 */
const denoWriteView: Opener = async (n, connect) => {
  const inner = await denoWrite(n, connect);
  const big = new Uint8Array(1024 * 1024);
  return {
    writeRound(p) {
      const view = big.subarray(4096, 4096 + p.length);
      view.set(p);
      inner.writeRound(view);
    },
    settled: () => inner.settled(),
    close: () => inner.close(),
  };
};

function queueSender(channels: { close(): void }[], queues: OutboundQueue[]): Sender {
  return {
    writeRound(p) {
      for (const queue of queues) queue.push(p);
    },
    async settled() {
      for (const queue of queues) await queue.flush();
    },
    close: () => channels.forEach((c) => c.close()),
  };
}

/** The queues' bound here: fixed work completes when the machine falls behind (a server would cut the receiver off). */
const QUEUE_BYTES = 256 * 1024 * 1024;

const failed = (err: unknown) => {
  throw err;
};

const queueDeno: Opener = async (n, connect) => {
  const conns = await acceptDeno(n, connect);
  return queueSender(
    conns,
    conns.map((c) => new OutboundQueue(c, { onWriteFailed: failed, maxQueueBytes: QUEUE_BYTES })),
  );
};

const queueNode: Opener = async (n, connect) => {
  const channels = (await acceptNode(n, connect)).map((s) => new NodeSocketChannel(s));
  return queueSender(
    channels,
    channels.map((c) =>
      new OutboundQueue(c, { onWriteFailed: failed, maxQueueBytes: QUEUE_BYTES })
    ),
  );
};

const idle: Opener = async (n, connect) => {
  const conns = await acceptDeno(n, connect);
  return {
    writeRound() {},
    settled: () => Promise.resolve(),
    close: () => conns.forEach((c) => c.close()),
  };
};

/** Every way, by name, in the order they are measured. */
export const WAYS: Record<string, Opener> = {
  "idle": idle,
  "deno-write": denoWrite,
  "deno-write-view": denoWriteView,
  "ffi-send": ffiSend(false),
  "ffi-send-empty": ffiSend(true),
  "deno-writable": denoWritable,
  "node-write": nodeWrite,
  "node-write-cb": nodeWriteCallback,
  "node-cork": nodeCork,
  "node-handle": nodeHandle,
  "queue-deno": queueDeno,
  "queue-node": queueNode,
};

/** The main thread's CPU time so far, µs (clock ticks of 10 ms). */
function mainThreadUs(): number {
  const stat = Deno.readTextFileSync(`/proc/self/task/${Deno.pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the name.
  return (Number(fields[11]) + Number(fields[12])) * 10_000;
}

/** Spawns the receiver process for `n` connections to `port`; it reads until they close. */
function spawnReceivers(n: number, port: number): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", import.meta.filename!, "--receive", String(port), String(n)],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
}

/**
 * The receiver process: `n` connections to `port`, each read and discarded until closed;
 * prints the bytes read in all.
 */
async function receive(port: number, n: number): Promise<void> {
  let received = 0;
  const conns: Deno.TcpConn[] = [];
  for (let i = 0; i < n; i++) conns.push(await Deno.connect({ hostname: "127.0.0.1", port }));
  await Promise.all(conns.map(async (conn) => {
    const buffer = new Uint8Array(256 * 1024);
    try {
      for (let got = await conn.read(buffer); got !== null; got = await conn.read(buffer)) {
        received += got;
      }
    } catch {
      // reset: the sender is gone
    }
  }));
  console.log(JSON.stringify({ received }));
}

/** Runs `way` in this process and measures it (the sender). */
export async function measure(way: string, settings: WriteCostSettings): Promise<WriteCostResult> {
  const open = WAYS[way];
  if (open === undefined) throw new Error(`unknown way ${way}; ways: ${Object.keys(WAYS)}`);
  let receivers: Deno.ChildProcess | null = null;
  const sender = await open(settings.receivers, (port) => {
    receivers = spawnReceivers(settings.receivers, port);
  });
  const payload = new Uint8Array(settings.bytes).fill(120);
  const totalRounds = Math.max(1, Math.round(settings.roundsPerSecond * settings.ms / 1000));
  const cpu0 = cpuUsage();
  const main0 = mainThreadUs();
  const t0 = performance.now();
  let rounds = 0;
  // Paced: each timer turn writes the rounds due by now (a timer is late under load:
  // the work stays the same, only bunched).
  await new Promise<void>((resolve) => {
    const tick = () => {
      const due = Math.min(
        totalRounds,
        Math.floor((performance.now() - t0) * settings.roundsPerSecond / 1000) + 1,
      );
      while (rounds < due) {
        sender.writeRound(payload);
        rounds++;
      }
      if (rounds < totalRounds) setTimeout(tick, 1);
      else resolve();
    };
    tick();
  });
  await sender.settled();
  const wallMs = performance.now() - t0;
  const cpu = cpuUsage(cpu0);
  const mainUs = mainThreadUs() - main0;
  sender.close();
  const heard = await (receivers as Deno.ChildProcess | null)?.output();
  const receivedBytes = heard === undefined
    ? 0
    : JSON.parse(new TextDecoder().decode(heard.stdout)).received as number;
  return {
    way,
    writes: way === "idle" ? 0 : totalRounds * settings.receivers,
    cpuUs: cpu.user + cpu.system,
    systemUs: cpu.system,
    receivedBytes,
    mainThreadUs: mainUs,
    wallMs,
  };
}

const PERF_EVENTS = [
  "syscalls:sys_enter_sendto",
  "syscalls:sys_enter_write",
  "syscalls:sys_enter_writev",
  "syscalls:sys_enter_epoll_wait",
  "syscalls:sys_enter_futex",
];

/** Whether `perf stat` can count system calls here. */
async function perfWorks(): Promise<boolean> {
  try {
    const out = await new Deno.Command("perf", {
      args: ["stat", "-x,", "-e", PERF_EVENTS[0], "--", "true"],
      stdout: "null",
      stderr: "piped",
    }).output();
    return out.success && !new TextDecoder().decode(out.stderr).includes("not supported");
  } catch {
    return false;
  }
}

/**
 * Runs `way` in a sender process of its own (under `perf stat` when `perf`), and returns
 * what it measured.
 */
export async function runSender(
  way: string,
  settings: WriteCostSettings,
  perf = false,
): Promise<WriteCostResult> {
  const senderArgs = [
    "run",
    "-A",
    import.meta.filename!,
    "--send",
    way,
    "--receivers",
    String(settings.receivers),
    "--rounds-per-s",
    String(settings.roundsPerSecond),
    "--ms",
    String(settings.ms),
    "--bytes",
    String(settings.bytes),
  ];
  const perfOut = perf ? await Deno.makeTempFile({ prefix: "write_cost_perf_" }) : null;
  const command = perfOut === null
    ? new Deno.Command(Deno.execPath(), { args: senderArgs, stdout: "piped", stderr: "inherit" })
    : new Deno.Command("perf", {
      args: [
        "stat",
        "-x,",
        "-o",
        perfOut,
        "-e",
        PERF_EVENTS.join(","),
        "--",
        Deno.execPath(),
        ...senderArgs,
      ],
      stdout: "piped",
      stderr: "inherit",
    });
  const out = await command.output();
  if (!out.success) throw new Error(`sender ${way} failed (${out.code})`);
  const lines = new TextDecoder().decode(out.stdout).trim().split("\n");
  const result = JSON.parse(lines[lines.length - 1]) as WriteCostResult;
  if (perfOut !== null) {
    result.syscalls = {};
    for (const line of (await Deno.readTextFile(perfOut)).split("\n")) {
      const [count, , event] = line.split(",");
      if (event?.startsWith("syscalls:sys_enter_")) {
        result.syscalls[event.slice("syscalls:sys_enter_".length)] = Number(count);
      }
    }
    await Deno.remove(perfOut);
  }
  return result;
}

/** One line of the report. */
export function formatResult(result: WriteCostResult, idleUs: number | null): string {
  const perWrite = (us: number) => result.writes > 0 ? (us / result.writes).toFixed(2) : "-";
  const net = idleUs !== null && result.writes > 0
    ? ` net ${((result.cpuUs - idleUs) / result.writes).toFixed(2)}`
    : "";
  const calls = result.syscalls === undefined ? "" : " " +
    Object.entries(result.syscalls).map(([name, count]) =>
      `${name}=${result.writes > 0 ? (count / result.writes).toFixed(2) + "/w" : count}`
    ).join(" ");
  return `${result.way.padEnd(14)} writes ${result.writes} cpu ${
    (result.cpuUs / 1000).toFixed(0)
  } ms ` +
    `(${perWrite(result.cpuUs)} µs/write${net}, system ${perWrite(result.systemUs)}) main thread ${
      perWrite(result.mainThreadUs)
    } µs/write ` +
    `wall ${result.wallMs.toFixed(0)} ms${calls}`;
}

if (import.meta.main) {
  const args = Deno.args;
  const flag = (name: string, fallback: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : fallback;
  };
  const receiveAt = args.indexOf("--receive");
  if (receiveAt >= 0) {
    await receive(Number(args[receiveAt + 1]), Number(args[receiveAt + 2]));
    Deno.exit(0);
  }
  const settings: WriteCostSettings = {
    receivers: Number(flag("--receivers", "100")),
    roundsPerSecond: Number(flag("--rounds-per-s", "700")),
    ms: Number(flag("--ms", "3000")),
    bytes: Number(flag("--bytes", "2048")),
  };
  const sendAt = args.indexOf("--send");
  if (sendAt >= 0) {
    console.log(JSON.stringify(await measure(args[sendAt + 1], settings)));
    Deno.exit(0);
  }
  const ways = flag("--ways", Object.keys(WAYS).join(",")).split(",");
  const turns = Number(flag("--turns", "3"));
  const perf = args.includes("--perf") && await perfWorks();
  console.log(
    `${settings.receivers} receivers, ${settings.roundsPerSecond} rounds/s, ${settings.ms} ms, ` +
      `${settings.bytes} B a write; loadavg ${
        Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ")
      }`,
  );
  for (let turn = 1; turn <= turns; turn++) {
    let idleUs: number | null = null;
    for (const way of ways) {
      const result = await runSender(way, settings, perf);
      if (way === "idle") idleUs = result.cpuUs;
      console.log(`turn ${turn} ${formatResult(result, idleUs)}`);
    }
  }
  console.log(`loadavg ${Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ")}`);
}
