/**
 * File transfer throughput: one file of pseudo-random bytes sent through the chat server
 * (store-and-forward: uploaded to the server's data folder, then downloaded by the
 * recipient) and directly between two peers over the encrypted peer-to-peer session,
 * each against a raw loopback copy of the same bytes measured in the same run
 * (`raw_copy.ts`: disk → one TCP socket on 127.0.0.1 → disk, no protocol), against the
 * same copy whose receiver makes its file durable as the chat recipient does (syncs in
 * the background as it writes and one at the end: the relay's files are durable, the
 * plain copy's are not), and against
 * their ceilings (`file_ceiling.ts`: the work every byte needs, hashing, storing,
 * encrypting, done by bare programs without a protocol).
 *
 * Every end runs in its own process (`tests/helpers/file_endpoint.ts`, `raw_copy.ts`,
 * the server in `server_process.ts`). A run is timed from the sender's ready line (it
 * is connected, logged in or through the handshake, and starts sending right after) to
 * the receiver's done line (the file written and closed); the received file's SHA-256
 * is then checked against the sent one's, so a figure never counts corrupted bytes.
 *
 * @module
 */

import { sha256Of, writeRandomFile } from "../tests/helpers/files.ts";
import { type Child, cpuSecondsOf, spawnChild, trackCpu } from "./child.ts";
import { round } from "./cluster.ts";
import { textLines } from "../tools/lines.ts";
import {
  type ByteCosts,
  measureByteCosts,
  peerBound,
  relayBound,
  type TransferBound,
} from "./file_bound.ts";

const HERE = new URL(".", import.meta.url).pathname;
const ENDPOINT = new URL("../tests/helpers/file_endpoint.ts", import.meta.url).pathname;

/** Sizes of a file-transfer run. */
export interface FilesPlan {
  /** Bytes of the file sent (at most the server's 256 MiB file size limit). */
  sizeBytes: number;
  /** Runs of each kind (raw, durable raw, relay, peer, ceilings, in turn). Default 3; 1 when profiling. */
  rounds?: number;
  /** Milliseconds one transfer may take before it counts as failed. Default 120 s. */
  timeoutMs?: number;
  /**
   * Write a V8 CPU profile of every process (each end, the server, the ceilings' bare
   * programs) into a subfolder of this folder named after it (`relay-sender`,
   * `relay-server`, `peer-receiver`, `relay-ceiling-hop`...).
   */
  cpuProfDir?: string;
  /**
   * The kinds of transfer to run (default all): `["raw", "relay"]` compares the relay
   * with its baseline alone; figures of kinds not run are zero.
   */
  kinds?: readonly FileTransferKind[];
}

/** One timed transfer. */
export interface TransferFigure {
  /** Milliseconds from the sender's start to the receiver's done. */
  ms: number;
  /** Throughput in MB/s (10^6 bytes per second). */
  mbPerSec: number;
  /**
   * CPU milliseconds (user + system, every thread) each process used during the timed
   * transfer, by name (`sender`, `receiver`, `server`), from /proc (10 ms ticks); empty
   * where /proc cannot be read.
   */
  cpuMs: Record<string, number>;
  /**
   * Through the server: of the bytes it sent the recipient, the share it took from the
   * upload in memory (cut-through, `chat_file_bytes_sent_from_memory_total`) rather than
   * reading them back from disk, 0 to 1; absent for the other kinds.
   */
  fromMemory?: number;
  /**
   * Through the server: of the bytes it read back from disk for the recipient, the share
   * read synchronously as just written (in the page cache), 0 to 1; absent for the
   * other kinds.
   */
  readSync?: number;
}

/** Result of a file-transfer run. */
export interface FilesResult {
  /** Bytes of the file. */
  sizeBytes: number;
  /** Runs of each kind; each figure below is the median one. */
  rounds: number;
  /** Every run's MB/s, in order, by kind. */
  runsMbPerSec: Record<FileTransferKind, number[]>;
  /** The raw loopback copy (the baseline). */
  raw: TransferFigure;
  /**
   * The raw loopback copy made durable: its receiver syncs as the chat recipient does
   * (in the background every 16 MiB, the rest before its done line).
   */
  rawDurable: TransferFigure;
  /** Through the chat server (upload to its disk, then download). */
  relay: TransferFigure;
  /** Encrypted peer-to-peer. */
  peer: TransferFigure;
  /** The bare store-and-forward pipeline (`file_ceiling.ts`): the relay's ceiling. */
  relayCeiling: TransferFigure;
  /** The bare encrypted stream (`file_ceiling.ts`): the peer-to-peer ceiling. */
  peerCeiling: TransferFigure;
  /** relay ÷ raw throughput (the goal's ratio, issue #16). */
  relayRatio: number;
  /** peer ÷ raw throughput (the goal's ratio). */
  peerRatio: number;
  /** Durable raw ÷ raw throughput: what making the file durable costs the bare copy. */
  rawDurableRatio: number;
  /** relay ÷ durable raw throughput. */
  relayDurableRatio: number;
  /** peer ÷ durable raw throughput. */
  peerDurableRatio: number;
  /** Store-and-forward ceiling ÷ raw throughput. */
  relayCeilingRatio: number;
  /** Encrypted ceiling ÷ raw throughput. */
  peerCeilingRatio: number;
  /** Nanoseconds per byte of hashing and encryption here (`file_bound.ts`); null without a raw run. */
  byteCosts: ByteCosts | null;
  /** What this machine's cores allow a transfer through the server (`file_bound.ts`). */
  relayBound: TransferBound | null;
  /** What this machine's cores allow an encrypted peer-to-peer transfer. */
  peerBound: TransferBound | null;
}

/** A transfer end in its own process: JSON lines `ready`, then `done` or `error`. */
class Endpoint {
  readonly process: Deno.ChildProcess;
  readonly name: string;
  readonly ready: Promise<Record<string, unknown>>;
  readonly done: Promise<Record<string, unknown>>;
  #stderr = "";

  readonly #profiled: boolean;

  constructor(name: string, script: string, args: string[], cpuProfDir?: string) {
    this.name = name;
    this.#profiled = cpuProfDir !== undefined;
    const profile = cpuProfDir === undefined
      ? []
      : ["--cpu-prof", `--cpu-prof-dir=${cpuProfDir}/${name.replaceAll(" ", "-")}`];
    this.process = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--no-prompt", ...profile, script, ...args],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).spawn();
    trackCpu(this.process.pid, this.process.status);
    const sampler = setInterval(() => this.cpuSeconds(), 20);
    this.process.status.finally(() => clearInterval(sampler));
    const lines = this.#lines();
    // Progress lines (`{"progress": N}`, once a second) are passed over.
    const next = async () => {
      let r = await lines.next();
      while (!r.done && "progress" in r.value) r = await lines.next();
      return r;
    };
    this.ready = next().then((r) => this.#expect(r, "ready"));
    this.done = this.ready.then(next).then((r) => this.#expect(r, "done"));
    this.ready.catch(() => {});
    this.done.catch(() => {});
    this.#readStderr();
  }

  /**
   * CPU seconds (user + system) the process used so far; once it has exited, its last
   * reading (taken every 20 ms), or null when /proc cannot be read.
   */
  cpuSeconds(): number | null {
    const now = cpuSecondsOf(this.process.pid);
    if (now !== null) this.#lastCpuSeconds = now;
    return this.#lastCpuSeconds;
  }

  #lastCpuSeconds: number | null = null;

  #expect(
    r: IteratorResult<Record<string, unknown>>,
    key: "ready" | "done",
  ): Record<string, unknown> {
    if (r.done) {
      throw new Error(
        `${this.name} exited before "${key}"${
          this.#stderr ? `: ${this.#stderr.trim().slice(-600)}` : ""
        }`,
      );
    }
    if (typeof r.value.error === "string") throw new Error(`${this.name}: ${r.value.error}`);
    if (r.value[key] !== true) {
      throw new Error(`${this.name}: expected "${key}", got ${JSON.stringify(r.value)}`);
    }
    return r.value;
  }

  async *#lines(): AsyncGenerator<Record<string, unknown>> {
    for await (const line of textLines(this.process.stdout)) {
      try {
        yield JSON.parse(line);
      } catch {
        // a stray print; not ours
      }
    }
  }

  async #readStderr(): Promise<void> {
    const decoder = new TextDecoder();
    try {
      for await (const chunk of this.process.stderr) {
        this.#stderr = (this.#stderr + decoder.decode(chunk, { stream: true })).slice(-4000);
      }
    } catch {
      // the process ended
    }
  }

  /**
   * Ends the process (if still running) and waits for it. Never throws. A profiled
   * process gets a few seconds to end on its own first (its profile is written then).
   */
  async kill(): Promise<void> {
    if (this.#profiled) {
      await within(this.process.status, 5000, this.name).catch(() => {});
    }
    try {
      this.process.kill("SIGKILL");
    } catch {
      // already gone
    }
    await this.process.status.catch(() => {});
    await this.process.stdout.cancel().catch(() => {});
  }
}

/** Waits for `promise`, failing after `ms` with a message naming `what`. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) =>
        timer = setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms)
      ),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** The processes of one timed transfer. */
interface TransferSetup {
  /** What it is, for errors. */
  what: string;
  /** Starts the receiving end. */
  receiver: () => Endpoint;
  /** Starts a process between the ends (the ceiling's hop), given the receiver's ready line. */
  middle?: (ready: Record<string, unknown>) => Endpoint;
  /** Starts the sending end, given the ready line of the process it sends to. */
  sender: (ready: Record<string, unknown>) => Endpoint;
  /** Where the receiver saved the file, from its done line. */
  receivedPath: (done: Record<string, unknown>) => string;
  /** The chat server in between, whose CPU time counts too. */
  server?: Child;
}

/**
 * Times one transfer: starts the receiver, then the middle process if any, then the
 * sender, from the sender's ready to the receiver's done; checks the received file.
 */
async function timeTransfer(
  setup: TransferSetup,
  plan: FilesPlan,
  hash: string,
): Promise<TransferFigure> {
  const { what, server } = setup;
  const timeoutMs = plan.timeoutMs ?? 120_000;
  const ends: Endpoint[] = [];
  try {
    const rx = setup.receiver();
    ends.push(rx);
    let ready = await within(rx.ready, 30_000, `${what} receiver`);
    const cpu: [string, () => number | null][] = [["receiver", () => rx.cpuSeconds()]];
    if (setup.middle !== undefined) {
      const middle = setup.middle(ready);
      ends.push(middle);
      ready = await within(middle.ready, 30_000, `${what} ${middle.name}`);
      cpu.push(["hop", () => middle.cpuSeconds()]);
    }
    const tx = setup.sender(ready);
    ends.push(tx);
    await within(tx.ready, 30_000, `${what} sender`);
    cpu.unshift(["sender", () => tx.cpuSeconds()]);
    if (server !== undefined) cpu.push(["server", () => cpuSecondsOf(server.pid)]);
    const cpuBefore = cpu.map(([, read]) => read());
    const sentBefore = server === undefined ? null : await sentFrom(server);
    const start = performance.now();
    // Another end that fails ends the wait early with its error.
    const failed = ends.slice(1).map((e) => e.done.then(() => new Promise<never>(() => {})));
    const done = await within(Promise.race([rx.done, ...failed]), timeoutMs, `${what} transfer`);
    const ms = performance.now() - start;
    const cpuMs: Record<string, number> = {};
    cpu.forEach(([name, read], i) => {
      const before = cpuBefore[i];
      const after = read();
      if (before !== null && after !== null) cpuMs[name] = Math.round((after - before) * 1000);
    });
    let fromMemory: number | undefined;
    let readSync: number | undefined;
    if (server !== undefined && sentBefore !== null) {
      const after = await sentFrom(server);
      const memory = after.memory - sentBefore.memory;
      const disk = after.disk - sentBefore.disk;
      const all = memory + disk;
      fromMemory = all > 0 ? round(memory / all, 3) : 0;
      readSync = disk > 0 ? round((after.sync - sentBefore.sync) / disk, 3) : 0;
    }
    const path = setup.receivedPath(done);
    const received = await sha256Of(path);
    if (received !== hash) throw new Error(`${what}: received file ${path} differs from the sent`);
    await Deno.remove(path).catch(() => {});
    return {
      ms: round(ms, 1),
      mbPerSec: round(plan.sizeBytes / 1e6 / (ms / 1000), 1),
      cpuMs,
      ...(fromMemory !== undefined ? { fromMemory } : {}),
      ...(readSync !== undefined ? { readSync } : {}),
    };
  } finally {
    await Promise.all(ends.map((e) => e.kill()));
  }
}

/**
 * The bytes of held files the bench server sent readers so far, from memory and from
 * disk, and of the latter those read synchronously.
 */
async function sentFrom(server: Child): Promise<{ memory: number; disk: number; sync: number }> {
  const stats = await server.request("stats") as {
    fileBytesSentFromMemory?: number;
    fileBytesSentFromDisk?: number;
    fileBytesReadSync?: number;
  };
  return {
    memory: stats.fileBytesSentFromMemory ?? 0,
    disk: stats.fileBytesSentFromDisk ?? 0,
    sync: stats.fileBytesReadSync ?? 0,
  };
}

/** The kinds of transfer measured. */
export const FILE_TRANSFER_KINDS = [
  "raw",
  "rawDurable",
  "relay",
  "peer",
  "relayCeiling",
  "peerCeiling",
] as const;
const KINDS = FILE_TRANSFER_KINDS;
/** A kind of transfer measured. */
export type FileTransferKind = typeof FILE_TRANSFER_KINDS[number];
type Kind = FileTransferKind;

/**
 * Measures raw (plain and durable), relay and peer-to-peer transfers of one file of
 * `plan.sizeBytes`, and their ceilings (`file_ceiling.ts`), `plan.rounds` times each, in
 * turn (raw, durable raw, relay, peer, ceilings, raw, ...: a disturbance of the machine
 * falls on all alike); each
 * figure is the median run.
 */
export async function measureFiles(plan: FilesPlan): Promise<FilesResult> {
  const work = await Deno.makeTempDir({ prefix: "chat-bench-files-" });
  let server: Child | undefined;
  const prof = plan.cpuProfDir;
  const rounds = prof !== undefined ? 1 : Math.max(1, plan.rounds ?? 3);
  try {
    const source = `${work}/source.bin`;
    const hash = await writeRandomFile(source, plan.sizeBytes, 7);
    // On the disk before any run: left dirty, the kernel's flusher would write it out
    // about 30 s later, in the middle of whichever run is timed then (its disk and a
    // kernel thread's CPU taken from that run's syncs).
    await syncFile(source);
    // Warm the page cache: every run then reads the source from memory.
    await sha256Of(source);

    const out = `${work}/out.bin`;
    const hopOut = `${work}/hop.bin`;
    const dataDir = `${work}/server`;
    const relayDir = `${work}/relay-in`;
    const peerDir = `${work}/peer-in`;
    await Deno.mkdir(dataDir);
    await Deno.mkdir(relayDir);
    await Deno.mkdir(peerDir);
    server = await spawnChild(HERE + "server_process.ts", ["--data-dir", dataDir], {
      name: "server",
      ...(prof !== undefined ? { cpuProfDir: `${prof}/relay-server` } : {}),
    });
    const port = String(server.info.port);
    const portOf = (ready: Record<string, unknown>) => String(ready.port);
    const ceiling = HERE + "file_ceiling.ts";
    const setups: Record<Kind, TransferSetup> = {
      raw: {
        what: "raw copy",
        receiver: () => new Endpoint("raw receiver", HERE + "raw_copy.ts", ["receive", out], prof),
        sender: (ready) =>
          new Endpoint("raw sender", HERE + "raw_copy.ts", ["send", portOf(ready), source], prof),
        receivedPath: () => out,
      },
      rawDurable: {
        what: "raw copy made durable",
        receiver: () =>
          new Endpoint(
            "raw durable receiver",
            HERE + "raw_copy.ts",
            ["receive-durable", out],
            prof,
          ),
        sender: (ready) =>
          new Endpoint(
            "raw durable sender",
            HERE + "raw_copy.ts",
            ["send", portOf(ready), source],
            prof,
          ),
        receivedPath: () => out,
      },
      relay: {
        what: "relay",
        receiver: () =>
          new Endpoint("relay receiver", ENDPOINT, ["relay-receive", port, relayDir], prof),
        sender: () =>
          new Endpoint("relay sender", ENDPOINT, ["relay-send", port, source, "bob"], prof),
        receivedPath: (done) => String(done.path),
        server,
      },
      peer: {
        what: "peer-to-peer",
        receiver: () => new Endpoint("peer receiver", ENDPOINT, ["peer-receive", peerDir], prof),
        sender: (ready) =>
          new Endpoint("peer sender", ENDPOINT, ["peer-send", portOf(ready), source], prof),
        receivedPath: (done) => String(done.path),
      },
      relayCeiling: {
        what: "store-and-forward ceiling",
        receiver: () =>
          new Endpoint("relay ceiling receiver", ceiling, ["relay-receive", out], prof),
        middle: (ready) =>
          new Endpoint("relay ceiling hop", ceiling, ["relay-hop", hopOut, portOf(ready)], prof),
        sender: (ready) =>
          new Endpoint(
            "relay ceiling sender",
            ceiling,
            ["relay-send", portOf(ready), source],
            prof,
          ),
        receivedPath: () => out,
      },
      peerCeiling: {
        what: "encrypted ceiling",
        receiver: () => new Endpoint("peer ceiling receiver", ceiling, ["peer-receive", out], prof),
        sender: (ready) =>
          new Endpoint("peer ceiling sender", ceiling, ["peer-send", portOf(ready), source], prof),
        receivedPath: () => out,
      },
    };
    const runs = Object.fromEntries(KINDS.map((k) => [k, [] as TransferFigure[]])) as Record<
      Kind,
      TransferFigure[]
    >;
    const kinds = KINDS.filter((k) => plan.kinds?.includes(k) ?? true);
    for (let round = 0; round < rounds; round++) {
      for (const kind of kinds) runs[kind].push(await timeTransfer(setups[kind], plan, hash));
    }
    await server.stop();
    server = undefined;
    const [raw, rawDurable, relay, peer, relayCeiling, peerCeiling] = KINDS.map((k) =>
      median(runs[k])
    );
    // The bounds: the raw copy's measured work plus the hashing or encryption each adds.
    const byteCosts = raw.mbPerSec > 0
      ? measureByteCosts(Math.min(plan.sizeBytes, 64 * 1024 * 1024))
      : null;
    const cores = navigator.hardwareConcurrency;
    return {
      sizeBytes: plan.sizeBytes,
      rounds,
      runsMbPerSec: Object.fromEntries(
        KINDS.map((k) => [k, runs[k].map((r) => r.mbPerSec)]),
      ) as Record<Kind, number[]>,
      raw,
      rawDurable,
      relay,
      peer,
      relayCeiling,
      peerCeiling,
      relayRatio: ratio(relay, raw),
      peerRatio: ratio(peer, raw),
      rawDurableRatio: ratio(rawDurable, raw),
      relayDurableRatio: ratio(relay, rawDurable),
      peerDurableRatio: ratio(peer, rawDurable),
      relayCeilingRatio: ratio(relayCeiling, raw),
      peerCeilingRatio: ratio(peerCeiling, raw),
      byteCosts,
      relayBound: byteCosts && relayBound(raw, plan.sizeBytes, byteCosts, cores),
      peerBound: byteCosts && peerBound(raw, plan.sizeBytes, byteCosts, cores),
    };
  } finally {
    await server?.stop();
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
}

/** `figure` ÷ `raw` throughput, rounded; 0 when either was not run. */
function ratio(figure: TransferFigure, raw: TransferFigure): number {
  return raw.mbPerSec > 0 ? round(figure.mbPerSec / raw.mbPerSec, 3) : 0;
}

/** The run of median throughput (the lower middle one of an even count); zeros for none. */
function median(runs: TransferFigure[]): TransferFigure {
  if (runs.length === 0) return { ms: 0, mbPerSec: 0, cpuMs: {} };
  const sorted = [...runs].sort((a, b) => a.mbPerSec - b.mbPerSec);
  return sorted[Math.floor((sorted.length - 1) / 2)];
}

/** Syncs the file at `path` to the disk. */
async function syncFile(path: string): Promise<void> {
  using file = await Deno.open(path, { write: true });
  await file.sync();
}
