/**
 * Fan-out at a fixed offered load: deliveries per second of the target's CPU, for
 * several targets in turn (round after round), each in its own processes as in the
 * suite. On a shared machine the suite's throughput figures move with what other
 * programs take, but the CPU a delivery costs at the same offered load moves less:
 * this compares code before and after a change, and against the bare relay.
 *
 * ```sh
 * # this checkout, another checkout (a worktree of main), and the relay; 3 rounds
 * deno run -A bench/fixed_rate.ts --members 100 --rates 300000 --rounds 3 . ../base relay
 * # against issue #16's baseline (goal 6), InspIRCd when installed (`inspircd.ts`)
 * deno run -A bench/fixed_rate.ts --sqlite --rates 500000 . inspircd
 * ```
 *
 * A target is the folder of a checkout (its `bench/` starts the server: its own code),
 * `relay` (this checkout's ceiling relay) or `inspircd` (InspIRCd 3 through this checkout's
 * IRC load clients); `DIR:FLAG,FLAG` runs that checkout's server with
 * these V8 flags (e.g. `.:--max-semi-space-size=16`); `DIR@irc` and `DIR@web` put the load
 * clients on that server's IRC or WebSocket listener (e.g. `.@irc:--max-semi-space-size=16`);
 * `DIR+FLAG=VALUE,...` adds server flags for that target alone (e.g. `.+--commit-gap-us=600`,
 * to compare settings in turn). Flags: `--sqlite` (the server on
 * SQLite in a temp dir, as the suite's fixed-load run; default the fan-out's memory
 * store), `--members` (room size, default 100), `--rates` (offered deliveries/s,
 * comma-separated, default 300000), `--ms` (per rate, default 2000), `--rounds` (default 3),
 * `--prof DIR` (each server's CPU profile under DIR, its busiest functions printed), `--gc-log DIR`
 * (each server run with `--trace-gc-nvp`, its trace kept under DIR and summarised: scavenges,
 * mark-compacts, their pauses, MB allocated and promoted; over the measured levels, the
 * mark-compacts and how fast the heap retained by scavenges grew between them), `--server-arg FLAG`
 * (repeated: more flags for every chat server, e.g. `--server-arg --commit-gap-us --server-arg 1500`),
 * `--stages` (each chat server's round stages: its reads, commit, fan-out and writes per
 * group commit, `transport/round_stages.ts`; p10 is printed beside p50 and p99: the floor), `--threads`
 * (each target's CPU by thread over each level, `thread_cpu.ts`: main, Deno's blocking pool,
 * V8's worker...). Pinned like the suite (target on CPU 1, load on
 * CPU 0) where it can be. Prints a line per measurement, then each target's figures.
 *
 * @module
 */

import type { Cluster, withCluster } from "./cluster.ts";
import type { openRoom, runLevel } from "./fanout.ts";
import { canPin, FANOUT_SERVER_ARGS, fixedServerArgs } from "./main.ts";
import { formatGcSummary, summariseGcTrace } from "./gc_trace.ts";
import { formatProfile, summariseProfileDir } from "./profile_summary.ts";
import { formatThreadCpu, readThreadTicks, threadCpuShares } from "./thread_cpu.ts";

/** What to measure. */
interface Plan {
  members: number;
  rates: number[];
  ms: number;
  rounds: number;
  targets: string[];
  /** The server on SQLite in a temp dir (the suite's fixed-load run) instead of the memory store. */
  sqlite: boolean;
  /** Write each server's CPU profile under this folder (`--prof DIR`) and print its busiest functions. */
  prof: string;
  /** Keep each server's `--trace-gc-nvp` trace under this folder (`--gc-log DIR`) and summarise it. */
  gcLog: string;
  /** More flags for every chat server (`--server-arg FLAG`, repeated; see `server_process.ts`). */
  serverArgs: string[];
  /** Load processes (`--loads N`, default 2, as the suite). */
  loads: number;
  /** Print each chat server's round stages (`--stages`: `transport/round_stages.ts`). */
  stages: boolean;
  /** Print each target's CPU by thread over each level (`--threads`: `thread_cpu.ts`). */
  threads: boolean;
}

function parse(args: string[]): Plan {
  const plan: Plan = {
    members: 100,
    rates: [300_000],
    ms: 2000,
    rounds: 3,
    targets: [],
    sqlite: false,
    prof: "",
    gcLog: "",
    serverArgs: [],
    loads: 2,
    stages: false,
    threads: false,
  };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    const next = () => {
      const v = args[++i];
      if (v === undefined) throw new Error(`${arg} needs a value`);
      return v;
    };
    if (arg === "--members") plan.members = Number(next());
    else if (arg === "--rates") plan.rates = next().split(",").map(Number);
    else if (arg === "--ms") plan.ms = Number(next());
    else if (arg === "--rounds") plan.rounds = Number(next());
    else if (arg === "--sqlite") plan.sqlite = true;
    else if (arg === "--prof") plan.prof = next();
    else if (arg === "--gc-log") plan.gcLog = next();
    else if (arg === "--server-arg") plan.serverArgs.push(next());
    else if (arg === "--loads") plan.loads = Number(next());
    else if (arg === "--stages") plan.stages = true;
    else if (arg === "--threads") plan.threads = true;
    else plan.targets.push(arg);
  }
  if (plan.targets.length === 0) plan.targets.push(".");
  return plan;
}

/** The SQLite store's group-commit counters of a chat server; null for other targets. */
async function storeStats(c: Cluster): Promise<Record<string, number> | null> {
  if (c.mode !== "chat") return null;
  const stats = await c.target.request("stats").catch(() => null);
  return (stats?.store as Record<string, number> | undefined) ?? null;
}

/**
 * Commits and WAL syncs over a level, appends per commit, and how long an append waited
 * for its commit on average (`heldMs`; not printed by servers older than it): each
 * commit's messages reach the receivers together, so its count sets how often every
 * receiver is written to.
 */
export function formatStoreStats(
  before: Record<string, number> | null,
  after: Record<string, number> | null,
): string {
  if (!before || !after) return "";
  const appends = after.appends - before.appends;
  const commits = after.commits - before.commits;
  const syncs = after.walSyncs - before.walSyncs;
  const held = after.heldMs === undefined
    ? ""
    : `, each held ${((after.heldMs - before.heldMs) / Math.max(appends, 1)).toFixed(3)} ms`;
  return `; store: ${appends} appends, ${commits} commits (${
    (appends / Math.max(commits, 1)).toFixed(1)
  } each), ${syncs} WAL syncs${held}`;
}

/**
 * A chat server's round stages over a level (`--stages`), one line: each stage's p10/p50/p90
 * over the rounds, in ms (counts for reads, messages and writes per round).
 */
export function formatStages(target: string, stages: Record<string, unknown>): string {
  const parts: string[] = [];
  for (const [name, v] of Object.entries(stages)) {
    if (typeof v === "number") parts.push(`${name} ${v}`);
    else {
      const f = v as { p10: number; p50: number; p90: number };
      parts.push(`${name} ${f.p10}/${f.p50}/${f.p90}`);
    }
  }
  return `${target} round stages (p10/p50/p90): ${parts.join(", ")}`;
}

/** Measures every target, round after round; resolves to each target's figures. */
async function measure(plan: Plan): Promise<Map<string, string[]>> {
  const figures = new Map<string, string[]>();
  const pin = canPin() ? { target: "1", loads: "0" } : undefined;
  for (let round = 0; round < plan.rounds; round++) {
    for (const target of plan.targets) {
      const relay = target === "relay";
      const inspircd = target === "inspircd";
      // `DIR:FLAG,FLAG`: the server of checkout DIR with these V8 flags; `DIR@irc`,
      // `DIR@web`: its load clients on that listener.
      const dataDir = plan.sqlite ? await Deno.makeTempDir({ prefix: "chat-fixed-" }) : "";
      // `DIR+FLAG=VALUE,...`: more flags for this target's chat server alone (e.g.
      // `.+--commit-gap-us=600`), so settings compare in turn in one run.
      const [spec, own = ""] = target.split("+");
      const ownArgs = own === "" ? [] : own.split(",").flatMap((kv) => kv.split("="));
      const [where, v8] = relay || inspircd
        ? [".", ""]
        : [spec.split(":")[0], spec.split(":")[1] ?? ""];
      const [dir, over = ""] = where.split("@");
      if (over !== "" && over !== "irc" && over !== "web") {
        throw new Error(`${target}: unknown listener "${over}" (irc or web)`);
      }
      const serverArgs = plan.sqlite ? fixedServerArgs(dataDir) : FANOUT_SERVER_ARGS;
      const cluster = await import(
        new URL(`${dir}/bench/cluster.ts`, `file://${Deno.cwd()}/`).href
      );
      const fanout = await import(new URL(`${dir}/bench/fanout.ts`, `file://${Deno.cwd()}/`).href);
      const run: typeof withCluster = cluster.withCluster;
      const profDir = plan.prof && !relay && !inspircd
        ? `${plan.prof}/${round}-${plan.targets.indexOf(target)}`
        : "";
      if (profDir) await Deno.mkdir(profDir, { recursive: true });
      const gcLog = plan.gcLog && !relay && !inspircd
        ? `${plan.gcLog}/${round}-${plan.targets.indexOf(target)}.log`
        : "";
      if (gcLog) await Deno.mkdir(plan.gcLog, { recursive: true });
      // With the pretenuring decisions: a site tenured (most often during the logins) sends
      // its objects to the old generation for the rest of the run (see gc_trace.ts).
      const gcFlags = ["--trace-gc-nvp", "--trace-pretenuring", "--trace-pretenuring-statistics"];
      const flags = [...(v8 ? v8.split(",") : []), ...(gcLog ? gcFlags : [])];
      // The measured levels' start, in ms after the server was started (its trace's clock
      // starts a little later: the window counted from there lies within the levels).
      const started = performance.now();
      let measuredFrom = 0;
      await run({
        target: relay ? "relay" : inspircd ? "inspircd" : "server",
        loads: plan.loads,
        serverArgs: [
          ...serverArgs,
          ...plan.serverArgs,
          ...ownArgs,
          ...(over === "" ? [] : [`--${over}`]),
        ],
        ...(over === "" ? {} : { [over]: true }),
        ...(flags.length > 0 ? { v8Flags: flags } : {}),
        ...(gcLog ? { targetLog: gcLog } : {}),
        ...(pin ? { pin } : {}),
        ...(profDir ? { cpuProfDir: profDir } : {}),
      }, async (c: Cluster) => {
        const room = `room${plan.members}`;
        const open: typeof openRoom = fanout.openRoom;
        const level: typeof runLevel = fanout.runLevel;
        // 4 senders and 16 probes in all, however many load processes share them.
        const perLoad = (n: number) => Math.max(1, Math.round(n / plan.loads));
        await open(c, {
          members: plan.members,
          sendersPerLoad: perLoad(4),
          probesPerLoad: perLoad(16),
        }, room);
        // Warm-up: the JIT, the room's history filling.
        await level(c, room, plan.members, plan.rates[0] / (plan.members - 1), 500, "warm-up");
        measuredFrom = Math.round(performance.now() - started);
        for (const rate of plan.rates) {
          const before = await storeStats(c);
          if (plan.stages) await c.target.request("stats", { resetStages: true }).catch(() => null);
          const threadsBefore = plan.threads ? readThreadTicks(c.target.pid) : [];
          const levelStarted = performance.now();
          const l = await level(c, room, plan.members, rate / (plan.members - 1), plan.ms, "fixed");
          const threadsAfter = plan.threads ? readThreadTicks(c.target.pid) : [];
          const levelSeconds = (performance.now() - levelStarted) / 1000;
          const perCpu = l.deliveredPerSec / Math.max(l.cpu.target / 100, 0.001);
          const after = await storeStats(c);
          console.log(
            `${target} ${rate}/s offered: ${l.deliveredPerSec}/s delivered, target CPU ${l.cpu.target}%` +
              `, load CPU ${l.cpu.loads.map((x) => `${x}%`).join(" + ")}` +
              ` (other programs ${l.cpu.other}%): ${Math.round(perCpu)} per CPU-second;` +
              ` p10 ${l.p10 ?? "?"} ms, p50 ${l.p50} ms, p99 ${l.p99} ms` +
              formatStoreStats(before, after),
          );
          if (plan.threads) {
            const shares = threadCpuShares(c.target.pid, threadsBefore, threadsAfter, levelSeconds);
            console.log(`${target} threads over the level: ${formatThreadCpu(shares)}`);
          }
          if (plan.stages && c.mode === "chat") {
            const s = await c.target.request("stats").catch(() => null);
            if (s?.stages) console.log(formatStages(target, s.stages as Record<string, unknown>));
          }
          const key = `${target} at ${rate}/s`;
          if (!figures.has(key)) figures.set(key, []);
          figures.get(key)!.push(
            `${Math.round(perCpu / 1000)}k (p10 ${
              l.p10 ?? "?"
            }, p50 ${l.p50}, p99 ${l.p99}, other ${l.cpu.other}%)`,
          );
        }
      }).finally(() => dataDir && Deno.remove(dataDir, { recursive: true }).catch(() => {}));
      if (gcLog) {
        const trace = await Deno.readTextFile(gcLog).catch(() => "");
        console.log(
          `${target}, GC in ${gcLog}: ${
            trace
              ? formatGcSummary(summariseGcTrace(trace, measuredFrom))
              : "no trace (its bench keeps none)"
          }`,
        );
      }
      if (profDir) {
        for (const summary of await summariseProfileDir(profDir, 25)) {
          console.log(`${target}, profile in ${profDir}:\n${formatProfile(summary)}`);
        }
      }
    }
  }
  return figures;
}

if (import.meta.main) {
  const plan = parse(Deno.args);
  // The servers it starts inherit it (`transport/round_stages.ts`).
  if (plan.stages) Deno.env.set("CHAT_ROUND_STAGES", "1");
  const figures = await measure(plan);
  console.log(`deliveries per target CPU-second, room of ${plan.members}, round by round:`);
  for (const [key, values] of figures) console.log(`  ${key}: ${values.join(", ")}`);
}
