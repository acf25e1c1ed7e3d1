/**
 * Several nodes against one (`deno task bench --only cluster`, issue #15): the same load on
 * one `chat serve` node and on three sharing PostgreSQL (the store) and NATS (the fan-out
 * between nodes), in one run, plus the single SQLite node as the embedded baseline.
 *
 * For each setup and room size (30 and 100 members, senders spread over the nodes): an
 * open-loop ramp to saturation, then a run at a fixed rate (the issue's 1,500 msgs/s in the
 * 30-member room); then durable appends: closed-loop senders in rooms of their own, each
 * `say` acknowledged once the store committed it.
 *
 * Layout: load process `i` connects its senders to node `i mod N` and its receivers (the
 * latency probes among them) to node `i + 1 mod N`. Probes time only their own process's
 * senders (same clock), so with three nodes every latency sample is a CROSS-NODE delivery
 * (sender on one node, receiver on another); with one node they are the same-node baseline.
 *
 * CPU: each node's CPU seconds over each level (sending and draining), PostgreSQL's (the
 * postmaster and its backends) and nats-server's, and deliveries per CPU-second. On a
 * two-core machine three nodes cannot beat one node's throughput: they share the cores.
 * With pinning, every node runs on CPU 1 and the load processes on CPU 0 (so one node and
 * three nodes get the same core); PostgreSQL and NATS are not pinned.
 *
 * The engines come from the tests' helpers (tests/helpers/postgres.ts, nats.ts), nodes are
 * started as users start them (tests/helpers/cluster_nodes.ts: `main.ts serve` with the
 * serve task's permissions). Without PostgreSQL or nats-server the cluster setups are
 * skipped with the reason; the SQLite node still runs.
 *
 * @module
 */

import { type Child, countCpuSeconds, cpuSecondsOf, spawnChild, trackCpu } from "./child.ts";
import { round, sleep } from "./cluster.ts";
import { checkOpened, type LevelResult, runLevel } from "./fanout.ts";
import { Histogram, type HistogramJson } from "./histogram.ts";
import {
  CLUSTER_SKIP,
  type ClusterNode,
  spawnNode,
  TEST_NODE_FLAGS,
} from "../tests/helpers/cluster_nodes.ts";
import { NatsServer } from "../tests/helpers/nats.ts";
import { type ScratchPostgres, startPostgres } from "../tests/helpers/postgres.ts";

const HERE = new URL(".", import.meta.url).pathname;

/** Flags of every bench node besides the tests' (no limits, loopback, free port). */
const BENCH_NODE_FLAGS = [
  "--auth",
  "none",
  // A large queue and write timeout so that overload shows as latency, not cut-offs.
  "--max-queue",
  String(256 * 1024 * 1024),
  "--write-timeout",
  "120",
  "--login-timeout",
  "120",
];

/** One setup: the engines and how many nodes. */
export interface ClusterSetup {
  /** `sqlite`: one embedded node (`--data`); `pg`: `--postgres` + `--nats`. */
  engines: "sqlite" | "pg";
  /** Nodes (1 for SQLite). */
  nodes: number;
}

/** One room size and its fixed rate. */
export interface ClusterRoomPlan {
  /** Members, senders included. */
  members: number;
  /** Messages/s of the fixed-rate run (all senders). */
  fixedMsgs: number;
}

/** Sizes and durations of the cluster benchmark. */
export interface ClusterPlan {
  /** Setups, in the order run. */
  setups: ClusterSetup[];
  /** Rooms measured on every setup. */
  rooms: ClusterRoomPlan[];
  /** Load processes (the same for every setup). */
  loads: number;
  /** Senders per load process. */
  sendersPerLoad: number;
  /** Latency probes per load process. */
  probesPerLoad: number;
  /** First offered load of the ramp, deliveries/s. */
  startDeliveries: number;
  /** Factor between ramp levels. */
  step: number;
  /** Most ramp levels. */
  maxLevels: number;
  /** Milliseconds each ramp level sends for (the fixed-rate run: twice that). */
  levelMs: number;
  /** Durable appends: senders per load, window per sender, duration. */
  durable: { sendersPerLoad: number; window: number; durationMs: number };
}

/** CPU seconds over an interval. */
export interface NodesCpu {
  /** Each node's CPU seconds. */
  nodes: number[];
  /** PostgreSQL's (postmaster and backends); 0 without it. */
  postgres: number;
  /** nats-server's; 0 without it. */
  nats: number;
  /** Wall-clock seconds of the interval. */
  wallSec: number;
}

/** A fan-out level with the nodes' CPU. */
export interface ClusterLevel extends LevelResult {
  /** CPU over the level, sending and draining. */
  nodesCpu: NodesCpu;
  /** Deliveries (sent × (members − 1)) per CPU-second of the nodes. */
  deliveriesPerNodeCpuSec: number;
  /** Deliveries per CPU-second of the nodes, PostgreSQL and NATS together. */
  deliveriesPerCpuSec: number;
}

/** One room on one setup. */
export interface ClusterRoomResult {
  /** Members. */
  members: number;
  /** Senders. */
  senders: number;
  /** Milliseconds to connect, log in and join every member. */
  setupMs: number;
  /** Every level, in order (the ramp, then the fixed rate). */
  levels: ClusterLevel[];
  /**
   * Highest deliveries/s of any level (the ramp's, or the fixed rate's when it delivered
   * more: a level counts deliveries while it sends, so high latency lowers a short one's).
   */
  maxDeliveries: number;
  /** The level that reached it. */
  atMax: ClusterLevel | null;
  /** The fixed-rate run. */
  fixed: ClusterLevel | null;
  /** Whether the backlog of the ramp had drained before the fixed-rate run began. */
  drainedBeforeFixed: boolean;
}

/** Durable appends on one setup. */
export interface ClusterDurable {
  /** Acknowledged (committed) appends per second. */
  ackedPerSec: number;
  /** Acknowledgement latency, ms. */
  p50: number;
  /** 99th percentile, ms. */
  p99: number;
  /** Error replies. */
  errors: number;
  /** The first error, if any. */
  firstError: string;
  /** Senders × window. */
  outstanding: number;
  /** CPU while sending. */
  nodesCpu: NodesCpu;
  /** Appends per CPU-second of the nodes. */
  appendsPerNodeCpuSec: number;
}

/** One setup's results. */
export interface SetupResult {
  /** E.g. `3 nodes, PostgreSQL + NATS`. */
  name: string;
  /** Its engines and node count. */
  setup: ClusterSetup;
  /** Whether the latency samples are cross-node deliveries. */
  crossNode: boolean;
  /** Milliseconds to start the nodes. */
  startMs: number;
  /** Each room, or why it failed. */
  rooms: (
    & { members: number }
    & ({ ok: true; value: ClusterRoomResult } | {
      ok: false;
      error: string;
    })
  )[];
  /** Durable appends, or why they failed. */
  durable: { ok: true; value: ClusterDurable } | { ok: false; error: string };
}

/** The whole cluster benchmark. */
export interface ClusterResult {
  /** Why the PostgreSQL + NATS setups did not run, or null. */
  skipped: string | null;
  /** Each setup that ran, or why it failed. */
  setups: (
    & { name: string; setup: ClusterSetup }
    & (
      | { ok: true; value: SetupResult }
      | { ok: false; error: string }
    )
  )[];
}

/** The setup's name for tables. */
export function setupName(setup: ClusterSetup): string {
  const nodes = `${setup.nodes} node${setup.nodes === 1 ? "" : "s"}`;
  return setup.engines === "sqlite" ? `${nodes}, SQLite` : `${nodes}, PostgreSQL + NATS`;
}

/** Options of {@linkcode measureClusterNodes}. */
export interface ClusterRunOptions {
  /** Pin nodes to CPU 1 and load processes to CPU 0. */
  pin: boolean;
  /** Progress lines. */
  log: (line: string) => void;
}

/** Runs every setup of `plan`; starts and stops PostgreSQL and NATS itself. */
export async function measureClusterNodes(
  plan: ClusterPlan,
  options: ClusterRunOptions,
): Promise<ClusterResult> {
  const result: ClusterResult = { skipped: CLUSTER_SKIP, setups: [] };
  const wantsEngines = plan.setups.some((s) => s.engines === "pg");
  let engines: Engines | null = null;
  if (wantsEngines && CLUSTER_SKIP === null) {
    try {
      engines = await Engines.start();
    } catch (err) {
      result.skipped = `PostgreSQL or NATS did not start: ${errorText(err)}`;
    }
  }
  if (result.skipped !== null) {
    options.log(`cluster: skipping PostgreSQL + NATS: ${result.skipped}`);
  }
  try {
    for (const setup of plan.setups) {
      const name = setupName(setup);
      if (setup.engines === "pg" && engines === null) continue;
      options.log(`cluster: ${name} …`);
      const started = performance.now();
      try {
        const value = await measureSetup(setup, plan, engines, options);
        result.setups.push({ name, setup, ok: true, value });
        options.log(
          `cluster: ${name} done in ${((performance.now() - started) / 1000).toFixed(1)} s`,
        );
      } catch (err) {
        options.log(`cluster: ${name} FAILED: ${errorText(err)}`);
        result.setups.push({ name, setup, ok: false, error: errorText(err) });
      }
    }
  } finally {
    await engines?.close();
  }
  return result;
}

/** PostgreSQL (fsync on, as in production) and nats-server, shared by the setups. */
class Engines {
  // PostgreSQL stops itself when the process ends (its helper's unload handler); NATS not.
  readonly #unload = () => void this.nats.close().catch(() => {});
  /** CPU seconds of PostgreSQL and NATS when started. */
  readonly #cpuAtStart: number;

  constructor(readonly postgres: ScratchPostgres, readonly nats: NatsServer) {
    globalThis.addEventListener("unload", this.#unload);
    const cpu = this.cpu();
    this.#cpuAtStart = cpu.postgres + cpu.nats;
  }

  static async start(): Promise<Engines> {
    const postgres = await startPostgres({ fsync: true });
    if (postgres === null) throw new Error(CLUSTER_SKIP ?? "no PostgreSQL");
    try {
      return new Engines(postgres, await NatsServer.start());
    } catch (err) {
      await postgres.close();
      throw err;
    }
  }

  /** CPU seconds of PostgreSQL (postmaster and children) and of nats-server now. */
  cpu(): { postgres: number; nats: number } {
    const procs = readProcs();
    let postmaster = 0;
    try {
      postmaster = Number(
        Deno.readTextFileSync(`${this.postgres.dataDir}/postmaster.pid`).split("\n")[0],
      );
    } catch { /* not running */ }
    let postgres = 0;
    let nats = 0;
    const natsPort = String(this.nats.port);
    for (const p of procs) {
      if (p.pid === postmaster || p.ppid === postmaster) postgres += p.cpu;
      else if (p.argv[0]?.endsWith("nats-server") && p.argv.includes(natsPort)) nats += p.cpu;
    }
    return { postgres, nats };
  }

  async close(): Promise<void> {
    globalThis.removeEventListener("unload", this.#unload);
    // The engines' CPU is the suite's: not counted as other programs'.
    const cpu = this.cpu();
    countCpuSeconds(cpu.postgres + cpu.nats - this.#cpuAtStart);
    await this.nats.close().catch(() => {});
    await this.postgres.close().catch(() => {});
  }
}

interface ProcInfo {
  pid: number;
  ppid: number;
  cpu: number;
  argv: string[];
}

/** Every process's parent, CPU seconds and command line, from /proc. */
function readProcs(): ProcInfo[] {
  const out: ProcInfo[] = [];
  let entries: Deno.DirEntry[] = [];
  try {
    entries = [...Deno.readDirSync("/proc")];
  } catch {
    return out;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry.name)) continue;
    const pid = Number(entry.name);
    try {
      const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
      const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      const argv = Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0");
      out.push({ pid, ppid: Number(rest[1]), cpu: cpuSecondsOf(pid) ?? 0, argv });
    } catch { /* gone */ }
  }
  return out;
}

/** Nodes and load processes of one setup. */
interface Running {
  nodes: ClusterNode[];
  loads: Child[];
  engines: Engines | null;
}

/** Starts a setup's nodes and load processes, measures, stops them whatever happens. */
async function measureSetup(
  setup: ClusterSetup,
  plan: ClusterPlan,
  engines: Engines | null,
  options: ClusterRunOptions,
): Promise<SetupResult> {
  const nodes: ClusterNode[] = [];
  const loads: Child[] = [];
  const killAll = () => {
    for (const node of nodes) {
      try {
        node.child.kill("SIGKILL");
      } catch { /* gone */ }
    }
  };
  globalThis.addEventListener("unload", killAll);
  let dataDir: string | null = null;
  const t0 = performance.now();
  try {
    let engineFlags: string[];
    if (setup.engines === "pg") {
      if (engines === null) throw new Error("no engines");
      const url = await engines.postgres.createDatabase();
      engineFlags = ["--postgres", url, "--nats", engines.nats.url, "--engine-wait", "60"];
    } else {
      dataDir = await Deno.makeTempDir({ prefix: "chat-bench-cluster-" });
      engineFlags = ["--data", dataDir];
    }
    const start = async (index: number) => {
      const node = await spawnNode(index, [
        ...TEST_NODE_FLAGS,
        ...engineFlags,
        ...BENCH_NODE_FLAGS,
      ]);
      nodes.push(node);
      trackCpu(node.child.pid, node.child.status);
      if (options.pin) await pin(node.child.pid, "1");
      return node;
    };
    // The first node creates the schema; the others start beside each other.
    await start(0);
    await Promise.all(Array.from({ length: setup.nodes - 1 }, (_, i) => start(i + 1)));
    nodes.sort((a, b) => a.index - b.index);
    loads.push(
      ...await Promise.all(Array.from(
        { length: plan.loads },
        (_, i) =>
          spawnChild(HERE + "load_client.ts", ["--tag", String(i)], {
            name: `load ${i}`,
            ...(options.pin ? { cpus: "0" } : {}),
          }),
      )),
    );
    await Promise.all(
      loads.map((l) =>
        l.request("target", { host: "127.0.0.1", port: nodes[0].port, mode: "chat" })
      ),
    );
    const startMs = performance.now() - t0;
    const running: Running = { nodes, loads, engines: setup.engines === "pg" ? engines : null };
    const result: SetupResult = {
      name: setupName(setup),
      setup,
      crossNode: setup.nodes > 1,
      startMs: round(startMs, 0),
      rooms: [],
      durable: { ok: false, error: "not run" },
    };
    for (const room of plan.rooms) {
      try {
        const value = await measureRoom(running, plan, room);
        result.rooms.push({ members: room.members, ok: true, value });
      } catch (err) {
        options.log(`cluster: ${result.name}, room of ${room.members} FAILED: ${errorText(err)}`);
        result.rooms.push({ members: room.members, ok: false, error: errorText(err) });
      }
      await Promise.all(loads.map(async (l) => {
        await l.request("closeGroup", { group: "senders" }, 30_000);
        await l.request("closeGroup", { group: "receivers" }, 30_000);
      }));
    }
    try {
      result.durable = { ok: true, value: await measureDurableAppends(running, plan) };
    } catch (err) {
      options.log(`cluster: ${result.name}, durable FAILED: ${errorText(err)}`);
      result.durable = { ok: false, error: errorText(err) };
    }
    return result;
  } finally {
    await Promise.allSettled(loads.map((l) => l.stop(5000)));
    await Promise.all(nodes.map(async (node) => {
      const timer = setTimeout(() => node.kill("SIGKILL"), 15_000);
      await node.kill("SIGTERM");
      clearTimeout(timer);
    }));
    globalThis.removeEventListener("unload", killAll);
    if (dataDir !== null) await Deno.remove(dataDir, { recursive: true }).catch(() => {});
  }
}

/** Pins every thread of `pid` to `cpus` (`taskset -a -p -c`). */
async function pin(pid: number, cpus: string): Promise<void> {
  const out = await new Deno.Command("taskset", {
    args: ["-a", "-p", "-c", cpus, String(pid)],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!out.success) throw new Error(`taskset: ${new TextDecoder().decode(out.stderr).trim()}`);
}

/** CPU seconds of the nodes and engines now. */
function cpuNow(running: Running): { nodes: number[]; postgres: number; nats: number } {
  return {
    nodes: running.nodes.map((n) => cpuSecondsOf(n.child.pid) ?? 0),
    ...(running.engines?.cpu() ?? { postgres: 0, nats: 0 }),
  };
}

/** Starts measuring the nodes' and engines' CPU; call the result to read it. */
function cpuSince(running: Running): () => NodesCpu {
  const before = cpuNow(running);
  const t0 = performance.now();
  return () => {
    const after = cpuNow(running);
    return {
      nodes: after.nodes.map((s, i) => round(s - before.nodes[i], 2)),
      postgres: round(after.postgres - before.postgres, 2),
      nats: round(after.nats - before.nats, 2),
      wallSec: round((performance.now() - t0) / 1000, 2),
    };
  };
}

/** Node CPU-seconds, and all CPU-seconds (nodes and engines), of a reading. */
function cpuTotals(cpu: NodesCpu): { nodes: number; all: number } {
  const nodes = cpu.nodes.reduce((a, b) => a + b, 0);
  return { nodes, all: nodes + cpu.postgres + cpu.nats };
}

/** Connects a room's members: load i's senders on node i, its receivers on node i + 1. */
async function openSpreadRoom(
  running: Running,
  plan: ClusterPlan,
  members: number,
  room: string,
): Promise<number> {
  const t0 = performance.now();
  const { loads, nodes } = running;
  const receivers = members - plan.sendersPerLoad * loads.length;
  if (receivers < 1) throw new Error(`a room of ${members} is too small for its senders`);
  await Promise.all(loads.map(async (load, i) => {
    const mine = Math.floor(receivers / loads.length) + (i < receivers % loads.length ? 1 : 0);
    const sent = await load.request("open", {
      group: "senders",
      prefix: `s${i}_`,
      count: plan.sendersPerLoad,
      rooms: [room],
      concurrency: 8,
      port: nodes[i % nodes.length].port,
      timeoutMs: 60_000,
    }, 120_000);
    checkOpened(sent, plan.sendersPerLoad);
    const recv = await load.request("open", {
      group: "receivers",
      prefix: `r${i}_`,
      count: mine,
      rooms: [room],
      probes: plan.probesPerLoad,
      concurrency: 16,
      port: nodes[(i + 1) % nodes.length].port,
      timeoutMs: 60_000,
    }, 120_000);
    checkOpened(recv, mine);
  }));
  // Let join and presence events (through NATS too) settle before measuring.
  await Promise.all(
    loads.map((l) => l.request("quiet", { quietMs: 300, timeoutMs: 30_000 }, 40_000)),
  );
  return performance.now() - t0;
}

/**
 * Waits until no load process has received anything for a second (an overloaded level
 * leaves a backlog in the nodes' queues that would count in the next level); false when
 * it did not drain within 90 s.
 */
async function drain(running: Running): Promise<boolean> {
  const answers = await Promise.all(
    running.loads.map((l) => l.request("quiet", { quietMs: 1000, timeoutMs: 90_000 }, 100_000)),
  );
  return answers.every((a) => a.quiet === true);
}

/** One open-loop level with the nodes' CPU. */
async function clusterLevel(
  running: Running,
  room: string,
  members: number,
  offeredMsgs: number,
  durationMs: number,
  kind: string,
): Promise<ClusterLevel> {
  const cpu = cpuSince(running);
  const level = await runLevel(
    { target: { pid: running.nodes[0].child.pid }, loads: running.loads },
    room,
    members,
    offeredMsgs,
    durationMs,
    kind,
  );
  const nodesCpu = cpu();
  const totals = cpuTotals(nodesCpu);
  const deliveries = level.sent * (members - 1);
  return {
    ...level,
    nodesCpu,
    deliveriesPerNodeCpuSec: round(deliveries / Math.max(totals.nodes, 0.01), 0),
    deliveriesPerCpuSec: round(deliveries / Math.max(totals.all, 0.01), 0),
  };
}

/** The ramp to saturation, then the fixed-rate run, in one room. */
async function measureRoom(
  running: Running,
  plan: ClusterPlan,
  roomPlan: ClusterRoomPlan,
): Promise<ClusterRoomResult> {
  const { members } = roomPlan;
  const room = `cluster${members}`;
  const setupMs = await openSpreadRoom(running, plan, members, room);
  const result: ClusterRoomResult = {
    members,
    senders: plan.sendersPerLoad * running.loads.length,
    setupMs: round(setupMs, 0),
    levels: [],
    maxDeliveries: 0,
    atMax: null,
    fixed: null,
    drainedBeforeFixed: false,
  };
  let deliveries = plan.startDeliveries;
  // A saturated level runs once more before the ramp stops (one disturbance of a shared
  // machine should not end it), as in fanout.ts.
  let repeated = false;
  for (let i = 0; i < plan.maxLevels; i++) {
    const level = await clusterLevel(
      running,
      room,
      members,
      deliveries / (members - 1),
      plan.levelMs,
      repeated ? "ramp-repeat" : "ramp",
    );
    result.levels.push(level);
    if (level.deliveredPerSec > result.maxDeliveries) {
      result.maxDeliveries = level.deliveredPerSec;
      result.atMax = level;
    }
    // Deliveries still missing (runLevel waited for them): the next level would measure them.
    if (level.undelivered > 0) break;
    if (level.saturated) {
      if (repeated) break;
      repeated = true;
      await drain(running);
    } else {
      repeated = false;
      deliveries *= plan.step;
    }
    await sleep(50);
  }
  const last = result.levels[result.levels.length - 1];
  result.drainedBeforeFixed = await drain(running) && (last?.undelivered ?? 0) === 0;
  result.fixed = await clusterLevel(
    running,
    room,
    members,
    roomPlan.fixedMsgs,
    plan.levelMs * 2,
    "fixed",
  );
  result.levels.push(result.fixed);
  if (result.fixed.deliveredPerSec > result.maxDeliveries) {
    result.maxDeliveries = result.fixed.deliveredPerSec;
    result.atMax = result.fixed;
  }
  return result;
}

/** Closed-loop senders, each in a room of its own on its load's node. */
async function measureDurableAppends(
  running: Running,
  plan: ClusterPlan,
): Promise<ClusterDurable> {
  const { loads, nodes } = running;
  const { sendersPerLoad, window, durationMs } = plan.durable;
  const roomsOf = (i: number) => Array.from({ length: sendersPerLoad }, (_, k) => `d${i}_${k}`);
  await Promise.all(loads.map(async (load, i) => {
    const rooms = roomsOf(i);
    for (let k = 0; k < sendersPerLoad; k++) {
      const answer = await load.request("open", {
        group: "durable",
        prefix: `d${i}_${k}_`,
        count: 1,
        rooms: [rooms[k]],
        port: nodes[i % nodes.length].port,
        timeoutMs: 60_000,
      }, 120_000);
      checkOpened(answer, 1);
    }
  }));
  await Promise.all(loads.map((l) => l.request("stats", { reset: true })));
  const cpu = cpuSince(running);
  const runs = await Promise.all(loads.map((load, i) =>
    load.request("closedLoop", {
      group: "durable",
      window,
      durationMs,
      rooms: roomsOf(i),
    }, durationMs + 60_000)
  ));
  const nodesCpu = cpu();
  const stats = await Promise.all(loads.map((l) => l.request("stats", { reset: true })));
  await Promise.all(loads.map((l) => l.request("closeGroup", { group: "durable" }, 30_000)));
  const histogram = new Histogram();
  for (const s of stats) histogram.merge(s.ackLatency as HistogramJson);
  const acked = runs.reduce((n, r) => n + Number(r.acked), 0);
  const seconds = Math.max(...runs.map((r) => Number(r.elapsedMs))) / 1000;
  const counters = stats.map((s) => s.counters as Record<string, number | string>);
  return {
    ackedPerSec: round(acked / seconds, 0),
    p50: round(histogram.percentile(0.5), 3),
    p99: round(histogram.percentile(0.99), 3),
    errors: counters.reduce((n, c) => n + Number(c.errors), 0),
    firstError: String(counters.find((c) => c.firstError)?.firstError ?? ""),
    outstanding: sendersPerLoad * loads.length * window,
    nodesCpu,
    appendsPerNodeCpuSec: round(acked / Math.max(cpuTotals(nodesCpu).nodes, 0.01), 0),
  };
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
