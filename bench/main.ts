/**
 * The performance suite: `deno task bench` (full, under 5 minutes) or
 * `deno task bench --quick` (smaller sizes and durations, under 1 minute).
 *
 * ```sh
 * deno task bench [--quick] [--only fanout,durable,idle,storm,slow,files] [--profile] [--no-pin]
 * ```
 *
 * The chat server and the ceiling relay each run in their own process; load comes from
 * one to four load-client processes; everything talks over 127.0.0.1. Prints a table,
 * writes `bench/results/<date>.json` and `.svg` (a `-quick` suffix in quick mode) and
 * copies them to `latest.json` / `latest.svg` (`latest-quick.*`). File transfer
 * (`files.ts`) runs each end of a transfer in its own process instead.
 *
 * - `--only` runs some of the benchmarks (the goals of the others show ERROR "not run").
 * - `--profile` writes a CPU profile of every server process (and of every process of
 *   the file transfers) under `bench/results/profiles/` and prints its busiest functions.
 * - The target (server or relay) runs pinned to CPU 1 and the load processes to CPU 0
 *   (`taskset`), where `taskset` exists and the machine has two CPUs or more: on two
 *   cores, a server that shares its core with its own load measures the scheduler, not
 *   itself. `--no-pin` lets the kernel place them.
 *
 * @module
 */

import { type ChartSeries, renderChart } from "./chart.ts";
import { childrenCpuSeconds, cpuSecondsOf, stopAllChildren } from "./child.ts";
import { type ClusterOptions, type CpuUse, round, withCluster } from "./cluster.ts";
import { type DurablePlan, type DurableResult, measureDurable } from "./durable.ts";
import { type FanoutPlan, type FanoutResult, measureFanout } from "./fanout.ts";
import { type FilesPlan, type FilesResult, measureFiles } from "./files.ts";
import { type IdlePlan, type IdleResult, measureIdle } from "./idle.ts";
import { codeVersion, machineBusySeconds, machineInfo } from "./machine.ts";
import { formatProfile, type ProfileSummary, summariseProfileDir } from "./profile_summary.ts";
import {
  fmtBytes,
  fmtCount,
  fmtMs,
  fmtRatio,
  type GoalVerdict,
  renderTable,
  type Row,
} from "./report.ts";
import { measureSlowConsumer, type SlowPlan, type SlowResult } from "./slow_consumer.ts";
import { measureStorm, type StormPlan, type StormResult } from "./storm.ts";
import { MIN_READ_BUFFER } from "../transport/framed_connection.ts";

const HERE = new URL(".", import.meta.url).pathname;
/** Other programs' CPU share (% of one core) above which a figure is marked disturbed. */
const DISTURBED_PCT = 25;
const RESULTS = `${HERE}results`;
const BENCHMARKS = ["fanout", "durable", "idle", "storm", "slow", "files"] as const;
type Benchmark = (typeof BENCHMARKS)[number];

/** Sizes and durations of one suite mode. */
interface SuitePlan {
  fanoutSizes: number[];
  fanout: Omit<FanoutPlan, "members">;
  durable: DurablePlan;
  idle: IdlePlan & { loads: number };
  storm: StormPlan;
  slow: Omit<SlowPlan, "rate"> & { fallbackRate: number };
  files: FilesPlan;
}

const FULL: SuitePlan = {
  fanoutSizes: [10, 100, 1000],
  fanout: {
    sendersPerLoad: 2,
    probesPerLoad: 8,
    startDeliveries: 50_000,
    step: 2,
    maxLevels: 9,
    levelMs: 1500,
  },
  durable: { sendersPerLoad: 8, window: 64, durationMs: 3000 },
  idle: {
    connections: 10_000,
    concurrency: 32,
    settleTimeoutMs: 20_000,
    deadlineMs: 90_000,
    loads: 4,
  },
  storm: { clients: 1000, senderRate: 100, leadMs: 1000, tailMs: 3000 },
  slow: { members: 100, durationMs: 3000, queueFillBytes: 3 * 1024 * 1024, fallbackRate: 2000 },
  files: { sizeBytes: 128 * 1024 * 1024 },
};

const QUICK: SuitePlan = {
  fanoutSizes: [10, 100],
  fanout: {
    sendersPerLoad: 2,
    probesPerLoad: 8,
    startDeliveries: 100_000,
    step: 2.5,
    maxLevels: 6,
    levelMs: 500,
  },
  durable: { sendersPerLoad: 8, window: 64, durationMs: 1000 },
  idle: {
    connections: 1000,
    concurrency: 32,
    settleTimeoutMs: 10_000,
    deadlineMs: 10_000,
    loads: 2,
  },
  storm: { clients: 200, senderRate: 100, leadMs: 500, tailMs: 1000 },
  slow: { members: 100, durationMs: 1000, queueFillBytes: 3 * 1024 * 1024, fallbackRate: 2000 },
  files: { sizeBytes: 32 * 1024 * 1024 },
};

/** The outcome of one measurement: its result, or why it failed. */
type Outcome<T> = { ok: true; value: T; profile?: ProfileSummary } | {
  ok: false;
  error: string;
};

interface Options {
  quick: boolean;
  only: Set<Benchmark>;
  profile: boolean;
  pin: boolean;
}

/** Whether processes can be pinned to CPUs here: `taskset` runs and there are two CPUs. */
function canPin(): boolean {
  if (navigator.hardwareConcurrency < 2) return false;
  try {
    return new Deno.Command("taskset", {
      args: ["-p", String(Deno.pid)],
      stdout: "null",
      stderr: "null",
    })
      .outputSync().success;
  } catch {
    return false;
  }
}

function parseOptions(args: string[]): Options {
  const options: Options = {
    quick: false,
    only: new Set(BENCHMARKS),
    profile: false,
    pin: !args.includes("--no-pin") && canPin(),
  };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--quick") options.quick = true;
    else if (arg === "--profile") options.profile = true;
    else if (arg === "--no-pin") options.pin = false;
    else if (arg === "--only" || arg.startsWith("--only=")) {
      const list = arg.includes("=") ? arg.slice(7) : args[++i] ?? "";
      const names = list.split(",").map((s) => s.trim()).filter(Boolean);
      for (const name of names) {
        if (!(BENCHMARKS as readonly string[]).includes(name)) {
          throw new Error(`--only: unknown benchmark "${name}" (known: ${BENCHMARKS.join(", ")})`);
        }
      }
      options.only = new Set(names as Benchmark[]);
    } else if (arg === "--help" || arg === "-h") {
      console.log(
        "deno task bench [--quick] [--only fanout,durable,idle,storm,slow,files] [--profile] [--no-pin]",
      );
      Deno.exit(0);
    } else {
      throw new Error(`unknown argument ${arg}`);
    }
  }
  return options;
}

function log(message: string): void {
  const t = new Date().toISOString().slice(11, 19);
  console.error(`[${t}] ${message}`);
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Runs one measurement in its own cluster; failures become an error outcome. */
async function attempt<T>(
  name: string,
  options: Options,
  cluster: ClusterOptions,
  fn: Parameters<typeof withCluster<T>>[1],
  profileName: string,
): Promise<Outcome<T>> {
  const started = performance.now();
  log(`${name} …`);
  let profileDir: string | undefined;
  if (options.profile && cluster.target === "server") {
    profileDir = `${RESULTS}/profiles/${profileName}`;
    await Deno.remove(profileDir, { recursive: true }).catch(() => {});
    await Deno.mkdir(profileDir, { recursive: true });
  }
  const clusterOptions: ClusterOptions = {
    ...cluster,
    ...(profileDir ? { cpuProfDir: profileDir } : {}),
    ...(options.pin ? { pin: { target: "1", loads: "0" } } : {}),
  };
  try {
    const value = await withCluster(clusterOptions, fn);
    log(`${name} done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    let profile: ProfileSummary | undefined;
    if (profileDir) {
      try {
        [profile] = await summariseProfileDir(profileDir, 15);
      } catch (err) {
        log(`profile of ${name} unreadable: ${errorText(err)}`);
      }
    }
    return { ok: true, value, ...(profile ? { profile } : {}) };
  } catch (err) {
    log(`${name} FAILED: ${errorText(err)}`);
    return { ok: false, error: errorText(err) };
  }
}

/** The profile of every process of the file-transfer run (one subfolder each), by name. */
async function summariseFilesProfiles(dir: string): Promise<[string, ProfileSummary][]> {
  const out: [string, ProfileSummary][] = [];
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) if (entry.isDirectory) names.push(entry.name);
  for (const name of names.sort()) {
    try {
      const [profile] = await summariseProfileDir(`${dir}/${name}`, 12);
      if (profile) out.push([name, profile]);
    } catch (err) {
      log(`profile of ${name} unreadable: ${errorText(err)}`);
    }
  }
  return out;
}

/** Runs a measurement that starts its own processes; failures become an error outcome. */
async function attemptAlone<T>(name: string, fn: () => Promise<T>): Promise<Outcome<T>> {
  const started = performance.now();
  log(`${name} …`);
  try {
    const value = await fn();
    log(`${name} done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    return { ok: true, value };
  } catch (err) {
    log(`${name} FAILED: ${errorText(err)}`);
    return { ok: false, error: errorText(err) };
  }
}

const FANOUT_SERVER_ARGS = [
  "--memory",
  // The newest 10,000 messages of each room, not every one: a SQLite server holds none
  // in its heap, and a heap growing through the run adds garbage-collector pauses.
  "--room-history",
  "10000",
  // A large queue and write timeout so that overload shows as latency, not cut-offs.
  "--queue-bytes",
  String(256 * 1024 * 1024),
  "--write-timeout-ms",
  "120000",
];

interface FanoutPair {
  members: number;
  server: Outcome<FanoutResult>;
  ceiling: Outcome<FanoutResult>;
}

async function main(): Promise<void> {
  const options = parseOptions(Deno.args);
  const plan = options.quick ? QUICK : FULL;
  const suiteStart = performance.now();
  const busyStart = machineBusySeconds();
  const selfStart = cpuSecondsOf(Deno.pid) ?? 0;
  const machine = machineInfo();
  const code = await codeVersion();
  const date = new Date().toISOString().slice(0, 10);
  const tempDirs: string[] = [];
  const tempDir = async () => {
    const dir = await Deno.makeTempDir({ prefix: "chat-bench-" });
    tempDirs.push(dir);
    return dir;
  };
  log(
    `chat benchmarks (${
      options.quick ? "quick" : "full"
    }) on ${machine.cpu}, ${machine.cores} cores, Deno ${machine.deno}`,
  );
  // Other programs competing for the CPU skew every figure: measure and say so.
  const idleBusy = machineBusySeconds();
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const busyBeforePct = round((machineBusySeconds() - idleBusy) * 100, 0);
  if (busyBeforePct > 20) {
    log(`warning: other programs use ${busyBeforePct}% of one core; figures will be disturbed`);
  }

  const fanout: FanoutPair[] = [];
  let durable: { sqlite: Outcome<DurableResult>; memory: Outcome<DurableResult> } | null = null;
  let idle: { server: Outcome<IdleResult>; relay: Outcome<IdleResult> } | null = null;
  let storm: Outcome<StormResult> | null = null;
  let slow: Outcome<SlowResult> | null = null;
  let files: Outcome<FilesResult> | null = null;
  let filesProfiles: [string, ProfileSummary][] = [];

  try {
    if (options.only.has("fanout")) {
      for (const members of plan.fanoutSizes) {
        const fanoutPlan: FanoutPlan = { ...plan.fanout, members };
        const ceiling = await attempt(
          `ceiling relay, room of ${members}`,
          options,
          { target: "relay", loads: 2 },
          (c) => measureFanout(c, fanoutPlan),
          `ceiling-${members}`,
        );
        const server = await attempt(
          `server fan-out, room of ${members}`,
          options,
          { target: "server", loads: 2, serverArgs: FANOUT_SERVER_ARGS },
          (c) => measureFanout(c, fanoutPlan),
          `fanout-${members}`,
        );
        fanout.push({ members, server, ceiling });
      }
    }
    if (options.only.has("slow")) {
      const f100 = fanout.find((f) => f.members === plan.slow.members)?.server;
      const rate = f100?.ok && f100.value.half
        ? f100.value.half.offeredMsgs
        : plan.slow.fallbackRate;
      slow = await attempt(
        `slow consumer, room of ${plan.slow.members} at ${Math.round(rate)} msg/s`,
        options,
        { target: "server", loads: 2, serverArgs: ["--memory"] },
        (c) => measureSlowConsumer(c, { ...plan.slow, rate }),
        "slow-consumer",
      );
    }
    if (options.only.has("durable")) {
      const dir = await tempDir();
      const sqlite = await attempt(
        "durable throughput, SQLite",
        options,
        { target: "server", loads: 1, serverArgs: ["--data-dir", dir] },
        (c) => measureDurable(c, plan.durable),
        "durable-sqlite",
      );
      const memory = await attempt(
        "durable throughput baseline, memory store",
        options,
        { target: "server", loads: 1, serverArgs: ["--memory"] },
        (c) => measureDurable(c, plan.durable),
        "durable-memory",
      );
      durable = { sqlite, memory };
    }
    if (options.only.has("storm")) {
      const dir = await tempDir();
      storm = await attempt(
        `reconnect storm, ${plan.storm.clients} clients`,
        options,
        { target: "server", loads: 2, serverArgs: ["--data-dir", dir] },
        (c) => measureStorm(c, plan.storm),
        "storm",
      );
    }
    if (options.only.has("idle")) {
      const idleArgs = [
        "--memory",
        // Logins queue behind the presence notices of earlier ones (see the report).
        "--login-timeout-ms",
        "120000",
        "--write-timeout-ms",
        "120000",
      ];
      const relay = await attempt(
        `idle connections baseline, relay, ${fmtCount(plan.idle.connections)}`,
        options,
        {
          target: "relay",
          loads: plan.idle.loads,
          v8Flags: ["--expose-gc"],
          // The read buffer the server's transport starts each connection with.
          relayArgs: ["--read-buffer", String(MIN_READ_BUFFER)],
        },
        (c) => measureIdle(c, plan.idle),
        "idle-relay",
      );
      const server = await attempt(
        `idle connections, server, ${fmtCount(plan.idle.connections)}`,
        options,
        {
          target: "server",
          loads: plan.idle.loads,
          v8Flags: ["--expose-gc"],
          serverArgs: idleArgs,
        },
        (c) => measureIdle(c, plan.idle),
        "idle-server",
      );
      idle = { server, relay };
    }
    if (options.only.has("files")) {
      let cpuProfDir: string | undefined;
      if (options.profile) {
        cpuProfDir = `${RESULTS}/profiles/files`;
        await Deno.remove(cpuProfDir, { recursive: true }).catch(() => {});
        await Deno.mkdir(cpuProfDir, { recursive: true });
      }
      files = await attemptAlone(
        `file transfer, ${fmtMiB(plan.files.sizeBytes)}: raw, relay, peer-to-peer`,
        () => measureFiles({ ...plan.files, ...(cpuProfDir ? { cpuProfDir } : {}) }),
      );
      if (cpuProfDir && files.ok) filesProfiles = await summariseFilesProfiles(cpuProfDir);
    }
  } finally {
    await stopAllChildren();
    for (const dir of tempDirs) await Deno.remove(dir, { recursive: true }).catch(() => {});
  }

  const elapsedSec = (performance.now() - suiteStart) / 1000;
  // Machine CPU not used by the suite's processes: other programs on this machine.
  const suiteCpu = childrenCpuSeconds() + (cpuSecondsOf(Deno.pid) ?? 0) - selfStart;
  const otherCpu = Math.max(0, ((machineBusySeconds() - busyStart - suiteCpu) / elapsedSec) * 100);

  // ---- goals and table
  let disturbed = false;
  const mark = (cpu: CpuUse | undefined): string => {
    if (cpu === undefined || !(cpu.other > DISTURBED_PCT)) return "";
    disturbed = true;
    return "*";
  };
  const atMax = (f: FanoutResult): CpuUse | undefined =>
    f.levels.find((l) => l.deliveredPerSec === f.maxDeliveries)?.cpu;
  const rows: Row[] = [];
  const goals: GoalVerdict[] = [];
  const verdict = (
    goal: string,
    figure: number | null,
    unit: string,
    baseline: number | null,
    met: boolean | null,
    note?: string,
  ): Row["status"] => {
    const status = met === null ? "ERROR" : met ? "MET" : "MISSED";
    goals.push({ goal, figure, unit, baseline, status, ...(note ? { note } : {}) });
    return status;
  };
  const fail = (o: Outcome<unknown> | null | undefined) =>
    o === null || o === undefined ? "not run" : o.ok ? "" : `ERROR: ${o.error}`;

  for (const pair of fanout) {
    const s = pair.server.ok ? pair.server.value : null;
    const c = pair.ceiling.ok ? pair.ceiling.value : null;
    const isGoalRoom = pair.members === 100;
    const maxGoal = isGoalRoom ? "≥ 1,000,000/s" : "";
    let maxStatus: Row["status"] = "";
    if (isGoalRoom) {
      maxStatus = verdict(
        "≥ 1,000,000 deliveries/s in a 100-member room",
        s?.maxDeliveries ?? null,
        "deliveries/s",
        c?.maxDeliveries ?? null,
        s ? s.maxDeliveries >= 1_000_000 : null,
        s ? undefined : fail(pair.server),
      );
    }
    rows.push({
      measure: `Fan-out, ${pair.members} members: max deliveries/s`,
      result: s ? fmtCount(s.maxDeliveries) + mark(atMax(s)) : fail(pair.server),
      baseline: c
        ? `${fmtCount(c.maxDeliveries)}${mark(atMax(c))} (ceiling)`
        : `ceiling ${fail(pair.ceiling)}`,
      ratio: fmtRatio(s?.maxDeliveries, c?.maxDeliveries),
      goal: maxGoal,
      status: maxStatus,
    });
    const sh = s?.half ?? null;
    const ch = c?.half ?? null;
    let p99Status: Row["status"] = "";
    if (isGoalRoom) {
      p99Status = verdict(
        "p99 < 10 ms at half of max (100-member room)",
        sh?.p99 ?? null,
        "ms",
        ch?.p99 ?? null,
        sh ? sh.p99 < 10 : null,
        sh ? `at ${fmtCount(sh.offeredDeliveries)} deliveries/s` : fail(pair.server),
      );
    }
    rows.push({
      measure: `  latency at half of max p50 / p99 / p99.9`,
      result: sh ? `${fmtMs(sh.p50)} / ${fmtMs(sh.p99)} / ${fmtMs(sh.p999)}${mark(sh.cpu)}` : "—",
      baseline: ch ? `${fmtMs(ch.p50)} / ${fmtMs(ch.p99)} / ${fmtMs(ch.p999)}${mark(ch.cpu)}` : "—",
      ratio: fmtRatio(sh?.p99, ch?.p99),
      goal: isGoalRoom ? "p99 < 10 ms" : "",
      status: p99Status,
    });
  }

  if (slow !== null) {
    const v = slow.ok ? slow.value : null;
    rows.push({
      measure: `Slow consumer (room of ${plan.slow.members}): others' p99`,
      result: v
        ? `${fmtMs(v.slow.p99)}${mark(v.slow.cpu)}, ${
          v.cutOffDuringRun ? "cut off in the run" : "not cut off in the run"
        }`
        : fail(slow),
      baseline: v ? `${fmtMs(v.baseline.p99)}${mark(v.baseline.cpu)} (all reading)` : "",
      ratio: v ? `${v.p99Ratio}×` : "",
      goal: "≤ 2×",
      status: verdict(
        "slow consumer leaves others' p99 within 2×",
        v?.p99Ratio ?? null,
        "× p99 without it",
        1,
        v ? v.p99Ratio <= 2 : null,
        v ? undefined : fail(slow),
      ),
    });
  }

  if (durable !== null) {
    const d = durable.sqlite.ok ? durable.sqlite.value : null;
    const m = durable.memory.ok ? durable.memory.value : null;
    rows.push({
      measure: "Durable messages/s (acked after SQLite commit)",
      result: d ? fmtCount(d.ackedPerSec) + mark(d.cpu) : fail(durable.sqlite),
      baseline: m
        ? `${fmtCount(m.ackedPerSec)}${mark(m.cpu)} (memory store)`
        : `memory ${fail(durable.memory)}`,
      ratio: fmtRatio(d?.ackedPerSec, m?.ackedPerSec),
      goal: "≥ 50,000/s",
      status: verdict(
        "≥ 50,000 durable messages/s",
        d?.ackedPerSec ?? null,
        "messages/s",
        m?.ackedPerSec ?? null,
        d ? d.ackedPerSec >= 50_000 : null,
        d ? undefined : fail(durable.sqlite),
      ),
    });
    rows.push({
      measure: "  ack latency p50 / p99",
      result: d ? `${fmtMs(d.p50)} / ${fmtMs(d.p99)}` : "—",
      baseline: m ? `${fmtMs(m.p50)} / ${fmtMs(m.p99)}` : "—",
      ratio: "",
      goal: "",
      status: "",
    });
  }

  if (storm !== null) {
    const v = storm.ok ? storm.value : null;
    rows.push({
      measure: `Reconnect storm, ${fmtCount(plan.storm.clients)} clients: all resumed`,
      result: v ? `${fmtMs(v.allResumedMs)} (p50 ${fmtMs(v.p50)})${mark(v.cpu)}` : fail(storm),
      baseline: v ? `${fmtMs(v.coldStartMs)} (cold start)` : "",
      ratio: fmtRatio(v?.allResumedMs, v?.coldStartMs),
      goal: "",
      status: "",
    });
    const lost = v ? v.missing + v.duplicates + v.failed : null;
    rows.push({
      measure: "  lost / duplicated / not resumed",
      result: v
        ? `${v.missing} / ${v.duplicates} / ${v.failed} of ${fmtCount(v.sent)} msgs × ${v.clients}`
        : "—",
      baseline: "",
      ratio: "",
      goal: "nothing lost",
      status: verdict(
        "reconnect storm: nothing lost, nothing twice",
        lost,
        "lost + duplicated + not resumed",
        0,
        v ? lost === 0 : null,
        v ? undefined : fail(storm),
      ),
    });
  }

  if (idle !== null) {
    const s = idle.server.ok ? idle.server.value : null;
    const r = idle.relay.ok ? idle.relay.value : null;
    const partial = s !== null && s.connections < s.wanted
      ? `only ${fmtCount(s.connections)} of ${fmtCount(s.wanted)} connected`
      : undefined;
    rows.push({
      measure: `Idle connections: memory per connection (RSS)`,
      result: s
        ? `${fmtBytes(s.rssPerConn)} × ${fmtCount(s.connections)}${mark(s.cpu)}`
        : fail(idle.server),
      baseline: r ? `${fmtBytes(r.rssPerConn)} (relay)` : `relay ${fail(idle.relay)}`,
      ratio: fmtRatio(s?.rssPerConn, r?.rssPerConn),
      goal: "≤ 8 KiB",
      status: verdict(
        `≤ 8 KiB per idle connection (${fmtCount(plan.idle.connections)} logged in)`,
        s?.rssPerConn ?? null,
        "bytes",
        r?.rssPerConn ?? null,
        s ? s.rssPerConn <= 8 * 1024 : null,
        s ? partial : fail(idle.server),
      ),
    });
    rows.push({
      measure: "  JS heap used / committed / external per conn.",
      result: s
        ? `${fmtBytes(s.heapPerConn)} / ${fmtBytes(s.heapTotalPerConn)} / ${
          fmtBytes(s.externalPerConn)
        }`
        : "—",
      baseline: r
        ? `${fmtBytes(r.heapPerConn)} / ${fmtBytes(r.heapTotalPerConn)} / ${
          fmtBytes(r.externalPerConn)
        }`
        : "—",
      ratio: "",
      goal: "",
      status: "",
    });
    rows.push({
      measure: "  logins/s: overall (first tenth → last tenth)",
      result: s
        ? `${fmtCount(s.loginsPerSec)} (${fmtCount(s.loginsPerSecFirst)} → ${
          fmtCount(s.loginsPerSecLast)
        })`
        : "—",
      baseline: r ? `${fmtCount(r.loginsPerSec)} joins/s (relay)` : "—",
      ratio: "",
      goal: "",
      status: "",
    });
    rows.push({
      measure: "  presence bytes per client / graceful shutdown",
      result: s ? `${fmtBytes(s.bytesPerClient)} / ${fmtMs(s.shutdownMs)}` : "—",
      baseline: r ? `${fmtBytes(r.bytesPerClient)} / ${fmtMs(r.shutdownMs)}` : "—",
      ratio: "",
      goal: "",
      status: "",
    });
  }

  if (files !== null) {
    const v = files.ok ? files.value : null;
    const raw = v ? `${fmtMBs(v.raw.mbPerSec)} (raw loopback)` : "";
    const fileRows: [string, "relay" | "peer", number, string, string][] = [
      ["through the server (relay)", "relay", 0.5, "relay", "store-and-forward"],
      ["encrypted peer-to-peer", "peer", 0.4, "encrypted p2p", "encrypted stream"],
    ];
    for (const [label, key, share, goalName, ceilingName] of fileRows) {
      const f = v ? v[key] : null;
      const ratio = v ? (key === "relay" ? v.relayRatio : v.peerRatio) : null;
      const pct = Math.round(share * 100);
      rows.push({
        measure: `File ${fmtMiB(plan.files.sizeBytes)} ${label}: MB/s`,
        result: f ? `${fmtMBs(f.mbPerSec)} (${fmtMs(f.ms)})` : fail(files),
        baseline: raw,
        ratio: fmtRatio(f?.mbPerSec, v?.raw.mbPerSec),
        goal: `≥ ${pct}% of raw`,
        status: verdict(
          `file transfer, ${goalName}: ≥ ${pct}% of a raw loopback copy's MB/s`,
          f?.mbPerSec ?? null,
          "MB/s",
          v?.raw.mbPerSec ?? null,
          ratio === null ? null : ratio >= share,
          v ? `${Math.round((ratio ?? 0) * 100)}% of raw` : fail(files),
        ),
      });
      const c = v ? v[key === "relay" ? "relayCeiling" : "peerCeiling"] : null;
      rows.push({
        measure: `  ceiling: bare ${ceilingName} (bench/file_ceiling.ts)`,
        result: c ? `${fmtMBs(c.mbPerSec)} (${fmtMs(c.ms)})` : fail(files),
        baseline: raw,
        ratio: fmtRatio(c?.mbPerSec, v?.raw.mbPerSec),
        goal: "",
        status: "",
      });
    }
  }

  const results = {
    date,
    mode: options.quick ? "quick" : "full",
    durationSec: round(elapsedSec, 1),
    machine: {
      ...machine,
      otherProgramsCpuPctBefore: busyBeforePct,
      otherProgramsCpuPct: round(otherCpu, 0),
    },
    code,
    setup: {
      network: "127.0.0.1; target and load generators in separate processes",
      pinned: options.pin ? "target on CPU 1, load processes on CPU 0" : "no",
      fanoutStore:
        "memory (dataDir null) keeping each room's newest 10,000 messages: storage is not what fan-out measures",
      fanoutServerConfig:
        "auth none, queue bound 256 MiB and write timeout 120 s so that overload shows as latency rather than cut-offs",
      durableStore:
        "SQLite in a temp dir (WAL, group commit, acknowledged after the WAL is synced to disk); baseline: memory store",
      stormStore: "SQLite in a temp dir",
      idleStore: "memory; login and write timeouts raised to 120 s",
      slowConsumerConfig: "server defaults: 4 MiB queue bound, 10 s write timeout",
      filesSetup:
        "each end in its own process; relay: server with SQLite and its data folder in a temp dir, file stored on its disk then downloaded; peer: encrypted direct session; raw: disk → one TCP socket on 127.0.0.1 → disk (bench/raw_copy.ts); timed from the sender's ready line to the receiver's done line; SHA-256 of every received file checked; MB = 10^6 bytes",
      latency:
        "send time stamped in the message text when handed to the socket; measured by probe receivers in the same process as the sender (same clock)",
      plan,
    },
    goals,
    fanout: fanout.map((p) => ({
      members: p.members,
      server: p.server,
      ceiling: p.ceiling,
      ratioToCeiling: p.server.ok && p.ceiling.ok
        ? round(p.server.value.maxDeliveries / p.ceiling.value.maxDeliveries, 3)
        : null,
    })),
    slowConsumer: slow,
    durable: durable === null ? null : {
      ...durable,
      ratioToMemory: durable.sqlite.ok && durable.memory.ok
        ? round(durable.sqlite.value.ackedPerSec / durable.memory.value.ackedPerSec, 3)
        : null,
    },
    reconnectStorm: storm,
    idle,
    files,
  };

  // ---- output
  console.log("");
  console.log(
    `chat benchmarks, ${results.mode}, ${date}: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, Deno ${machine.deno}, code ${code.commit}${
      code.uncommitted.length > 0 ? ` + ${code.uncommitted.length} uncommitted files` : ""
    }${options.pin ? "; target on CPU 1, load on CPU 0" : ""}`,
  );
  console.log(renderTable(rows));
  if (disturbed) {
    console.log(
      `* measured while other programs used more than ${DISTURBED_PCT}% of a core (cpu.other in the JSON)`,
    );
  }
  console.log("");
  const cpuLines: string[] = [];
  for (const pair of fanout) {
    for (const [label, o] of [["server", pair.server], ["ceiling", pair.ceiling]] as const) {
      if (!o.ok) continue;
      const top = [...o.value.levels].sort((a, b) => b.deliveredPerSec - a.deliveredPerSec)[0];
      if (top) {
        cpuLines.push(
          `  ${label} ${pair.members}: at ${
            fmtCount(top.deliveredPerSec)
          }/s target ${top.cpu.target}%, load ${
            top.cpu.loads.map((l) => `${l}%`).join(" + ")
          }, other ${top.cpu.other}%`,
        );
      }
    }
  }
  if (cpuLines.length > 0) {
    console.log("CPU at the highest delivered rate (% of one core):");
    console.log(cpuLines.join("\n"));
  }
  if (files?.ok) {
    const v = files.value;
    console.log(
      `File transfers, MB/s of each of ${v.rounds} runs (the median one is reported): ${
        (["raw", "relay", "peer", "relayCeiling", "peerCeiling"] as const).map((k) =>
          `${k} ${v.runsMbPerSec[k].join(", ")}`
        ).join("; ")
      }`,
    );
    console.log("CPU during each median file transfer (ms, every thread of each process):");
    const figures = [
      ["raw", v.raw],
      ["relay", v.relay],
      ["peer", v.peer],
      ["relay ceiling", v.relayCeiling],
      ["peer ceiling", v.peerCeiling],
    ] as const;
    for (const [name, f] of figures) {
      const parts = Object.entries(f.cpuMs).map(([who, ms]) => `${who} ${ms}`);
      const total = Object.values(f.cpuMs).reduce((a, b) => a + b, 0);
      console.log(`  ${name}: ${parts.join(", ")}; ${total} of ${Math.round(f.ms)} ms wall`);
    }
  }
  console.log(
    `${
      otherCpu > 20 ? "WARNING, figures disturbed: " : ""
    }CPU used by other programs on the machine during the suite: ${
      round(otherCpu, 0)
    }% of one core (${busyBeforePct}% just before).`,
  );
  if (options.profile) {
    const profiled: [string, Outcome<unknown> | null | undefined][] = [
      ...fanout.map((p) => [`fan-out ${p.members}`, p.server] as [string, Outcome<unknown>]),
      ["durable sqlite", durable?.sqlite],
      ["idle", idle?.server],
      ["storm", storm],
      ["slow consumer", slow],
    ];
    for (const [name, o] of profiled) {
      if (o?.ok && o.profile) {
        console.log(`\nServer profile, ${name}:\n${formatProfile(o.profile)}`);
      }
    }
    for (const [name, profile] of filesProfiles) {
      console.log(`\nFile transfer profile, ${name}:\n${formatProfile(profile)}`);
    }
  }

  await Deno.mkdir(RESULTS, { recursive: true });
  // A run of some benchmarks only never replaces a whole run's results.
  const partial = options.only.size < BENCHMARKS.length;
  const suffix = `${options.quick ? "-quick" : ""}${partial ? "-partial" : ""}`;
  const json = JSON.stringify(results, null, 2) + "\n";
  const svg = renderChart({
    title: `chat fan-out: delivered and p99 latency vs offered load (${results.mode}, ${date})`,
    subtitle:
      `${machine.cpu}, ${machine.cores} cores, Deno ${machine.deno}; solid: chat server, dashed: ceiling relay`,
    series: chartSeries(fanout),
    throughputGoal: 1_000_000,
    latencyGoal: 10,
  });
  await Deno.writeTextFile(`${RESULTS}/${date}${suffix}.json`, json);
  await Deno.writeTextFile(`${RESULTS}/${date}${suffix}.svg`, svg);
  await Deno.writeTextFile(`${RESULTS}/latest${suffix}.json`, json);
  await Deno.writeTextFile(`${RESULTS}/latest${suffix}.svg`, svg);
  console.log(
    `\nWrote bench/results/${date}${suffix}.json and .svg (and latest${suffix}.*) in ${
      elapsedSec.toFixed(0)
    } s.`,
  );
}

function fmtMiB(bytes: number): string {
  return `${Math.round(bytes / (1024 * 1024))} MiB`;
}

function fmtMBs(mbPerSec: number): string {
  return `${mbPerSec >= 100 ? Math.round(mbPerSec) : Number(mbPerSec.toPrecision(3))} MB/s`;
}

const COLORS: Record<number, string> = { 10: "#1f77b4", 100: "#d62728", 1000: "#2ca02c" };

function chartSeries(fanout: FanoutPair[]): ChartSeries[] {
  const series: ChartSeries[] = [];
  for (const pair of fanout) {
    const color = COLORS[pair.members] ?? "#555";
    for (
      const [label, o, dashed] of [
        [`server, ${pair.members} members`, pair.server, false],
        [`ceiling, ${pair.members} members`, pair.ceiling, true],
      ] as const
    ) {
      if (!o.ok) continue;
      series.push({
        label,
        color,
        dashed,
        points: o.value.levels.map((l) => ({
          offered: l.offeredDeliveries,
          delivered: l.deliveredPerSec,
          p99: l.p99,
        })),
      });
    }
  }
  return series;
}

if (import.meta.main) {
  const stop = async () => {
    await stopAllChildren();
    Deno.exit(130);
  };
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
  try {
    await main();
  } catch (err) {
    console.error(`bench failed: ${errorText(err)}`);
    await stopAllChildren();
    Deno.exit(1);
  }
  Deno.exit(0);
}
