/**
 * Fan-out: one room of N members, several senders, open-loop load at rising rates
 * until saturation, then a run at half of the maximum. Used for the chat server and
 * for the ceiling relay with the same load clients, and (server, 100 members) for the
 * slow-consumer comparison. {@linkcode measureFixed}: one fixed offered load after a
 * warm-up (the latency goal of issue #16 at 0.50M deliveries/s).
 *
 * @module
 */

import { type Cluster, cpuMeter, type CpuUse, type Measured, round, sleep } from "./cluster.ts";
import { Histogram, type HistogramJson } from "./histogram.ts";

/** How hard and how long to push. */
export interface FanoutPlan {
  /** Room size, senders included. */
  members: number;
  /** Senders per load process. */
  sendersPerLoad: number;
  /** Latency probes per load process. */
  probesPerLoad: number;
  /** First offered load, in deliveries/s. */
  startDeliveries: number;
  /** Factor between levels. */
  step: number;
  /** Most levels before the half-max run. */
  maxLevels: number;
  /** Milliseconds each level sends for. */
  levelMs: number;
}

/** One open-loop level. */
export interface LevelResult {
  /** `ramp`, `ramp-repeat` (a saturated level run again), `half`, `slow-baseline`, `slow`. */
  kind: string;
  /** Offered messages/s (all senders). */
  offeredMsgs: number;
  /** Offered deliveries/s: messages × (members - 1). */
  offeredDeliveries: number;
  /** Deliveries/s counted at the receivers while sending. */
  deliveredPerSec: number;
  /** Messages actually handed to the sockets. */
  sent: number;
  /** Messages the senders dropped because their socket backlog was full. */
  dropped: number;
  /** Error replies received. */
  errors: number;
  /** The first error, if any. */
  firstError: string;
  /** Latency percentiles in ms (receivers, same-process senders). */
  p50: number;
  /** 10th percentile, ms: the floor, what the fastest tenth of deliveries took. */
  p10: number;
  /** 99th percentile, ms. */
  p99: number;
  /** 99.9th percentile, ms. */
  p999: number;
  /** Latency samples. */
  samples: number;
  /** Whether this level is past saturation (an undelivered one is). */
  saturated: boolean;
  /** CPU use while sending. */
  cpu: CpuUse;
  /**
   * Deliveries still missing when the level gave up waiting ({@linkcode DRAIN_MS} after
   * sending): 0 when every message sent reached every other member. A level with some
   * missing failed: it left a backlog that the next one would measure.
   */
  undelivered: number;
  /** Milliseconds from the end of sending until the last delivery arrived (or the wait ended). */
  drainMs: number;
}

/** A whole fan-out measurement. */
export interface FanoutResult {
  /** `server`, `relay`, `irc` (the server, through IRC connections), or `inspircd`. */
  target: string;
  /** Room size. */
  members: number;
  /** Senders. */
  senders: number;
  /** Milliseconds to connect (and log in and join) every member. */
  setupMs: number;
  /** Every level, in order. */
  levels: LevelResult[];
  /** Highest deliveries/s measured. */
  maxDeliveries: number;
  /** The run at half of the maximum. */
  half: LevelResult | null;
  /**
   * Why the run failed, or null: a level whose deliveries did not all arrive in time
   * ({@linkcode levelFailure}). A ramp level that fails ends the ramp, and no half-max run
   * follows (it would not start idle); the half-max run can fail too.
   */
  failure: string | null;
}

/** What {@linkcode openRoom} needs of a plan: the room's size, senders and probes. */
export type RoomPlan = Pick<FanoutPlan, "members" | "sendersPerLoad" | "probesPerLoad">;

/** Connects the room's members across the load processes (senders first in each). */
export async function openRoom(cluster: Cluster, plan: RoomPlan, room: string): Promise<number> {
  const t0 = performance.now();
  const loads = cluster.loads;
  const receivers = plan.members - plan.sendersPerLoad * loads.length;
  if (receivers < 1) throw new Error(`a room of ${plan.members} is too small for its senders`);
  await Promise.all(loads.map(async (load, i) => {
    const mine = Math.floor(receivers / loads.length) + (i < receivers % loads.length ? 1 : 0);
    const sent = await load.request("open", {
      group: "senders",
      prefix: `s${i}_`,
      count: plan.sendersPerLoad,
      rooms: [room],
      concurrency: 8,
    }, 60_000);
    checkOpened(sent, plan.sendersPerLoad);
    const recv = await load.request("open", {
      group: "receivers",
      prefix: `r${i}_`,
      count: mine,
      rooms: [room],
      probes: plan.probesPerLoad,
      concurrency: 32,
    }, 120_000);
    checkOpened(recv, mine);
  }));
  // Let join and presence events settle before measuring.
  await Promise.all(
    loads.map((l) => l.request("quiet", { quietMs: 200, timeoutMs: 20_000 }, 30_000)),
  );
  return performance.now() - t0;
}

/** Throws when a load process could not open all it was asked to. */
export function checkOpened(answer: Record<string, unknown>, wanted: number): void {
  if (Number(answer.opened) !== wanted) {
    throw new Error(`opened ${answer.opened} of ${wanted} connections: ${answer.firstFailure}`);
  }
}

/**
 * How long a level waits, after sending, for every message sent to reach every other
 * member before it is reported as failed.
 */
export const DRAIN_MS = 60_000;
/** Milliseconds between two looks at the load processes' counters while draining. */
const DRAIN_POLL_MS = 25;

/** What {@linkcode awaitDeliveries} found. */
export interface DrainOutcome {
  /** Deliveries counted at the end. */
  delivered: number;
  /** Deliveries still missing (0: all arrived). */
  undelivered: number;
  /** Milliseconds waited. */
  ms: number;
}

/**
 * Polls `count` (the deliveries counted so far, and the error replies to sent messages)
 * until it reaches `expected` minus the refused messages' deliveries (`perMessage` each),
 * or `deadlineMs` passes.
 *
 * A level is over when its deliveries have arrived, not when the load clients have
 * heard nothing for a while: a server busy with a backlog can be silent for hundreds of
 * milliseconds while tens of megabytes wait in its queues, and a level started then
 * measured the backlog (ramp levels that delivered nothing, a half-max run that
 * delivered more than was offered).
 *
 * @example
 * ```ts
 * import { awaitDeliveries } from "./fanout.ts";
 * let n = 0;
 * const r = await awaitDeliveries(async () => ({ delivered: n += 50, errors: 0 }), 100, 1, 5000);
 * r.undelivered; // 0
 * ```
 */
export async function awaitDeliveries(
  count: () => Promise<{ delivered: number; errors: number }>,
  expected: number,
  perMessage: number,
  deadlineMs: number,
  pollMs = DRAIN_POLL_MS,
): Promise<DrainOutcome> {
  const t0 = performance.now();
  while (true) {
    const { delivered, errors } = await count();
    const missing = Math.max(0, expected - errors * perMessage - delivered);
    const ms = performance.now() - t0;
    if (missing === 0 || ms >= deadlineMs) return { delivered, undelivered: missing, ms };
    await sleep(Math.min(pollMs, Math.max(1, deadlineMs - ms)));
  }
}

/**
 * Runs one open-loop level and waits (at most {@linkcode DRAIN_MS}) until every message
 * sent has reached the `receivers` members other than its sender (default `members - 1`;
 * fewer when some do not read, as the slow consumer's paused member), so that the next
 * level starts from an idle target.
 */
export async function runLevel(
  cluster: Measured,
  room: string,
  members: number,
  offeredMsgs: number,
  durationMs: number,
  kind: string,
  receivers = members - 1,
): Promise<LevelResult> {
  const loads = cluster.loads;
  await Promise.all(loads.map((l) => l.request("stats", { reset: true })));
  const cpu = cpuMeter(cluster);
  const t0 = performance.now();
  const runs = await Promise.all(loads.map((l) =>
    l.request("run", {
      group: "senders",
      rate: offeredMsgs / loads.length,
      durationMs,
      room,
    }, durationMs + 30_000)
  ));
  const during = await Promise.all(loads.map((l) => l.request("stats")));
  const elapsed = (performance.now() - t0) / 1000;
  const cpuUse = cpu();
  const sentAll = sum(runs.map((r) => Number(r.sent)));
  const drain = await awaitDeliveries(
    async () => {
      const now = await Promise.all(loads.map((l) => l.request("stats", { light: true })));
      const counters = now.map((s) => s.counters as Record<string, number>);
      return {
        delivered: sum(counters.map((c) => c.messages)),
        errors: sum(counters.map((c) => c.errors)),
      };
    },
    sentAll * receivers,
    receivers,
    DRAIN_MS,
  );
  const after = await Promise.all(loads.map((l) => l.request("stats", { reset: true })));
  const delivered = sum(during.map((s) => (s.counters as Record<string, number>).messages));
  const histogram = new Histogram();
  for (const s of after) histogram.merge(s.latency as HistogramJson);
  const counters = after.map((s) => s.counters as Record<string, number | string>);
  const sent = sum(runs.map((r) => Number(r.sent)));
  const dropped = sum(runs.map((r) => Number(r.dropped)));
  const errors = sum(counters.map((c) => Number(c.errors)));
  const offeredDeliveries = offeredMsgs * (members - 1);
  const deliveredPerSec = delivered / elapsed;
  const p99 = histogram.percentile(0.99);
  return {
    kind,
    offeredMsgs: round(offeredMsgs, 0),
    offeredDeliveries: round(offeredDeliveries, 0),
    deliveredPerSec: round(deliveredPerSec, 0),
    sent,
    dropped,
    errors,
    firstError: String(counters.find((c) => c.firstError)?.firstError ?? ""),
    p50: round(histogram.percentile(0.5), 3),
    p10: round(histogram.percentile(0.1), 3),
    p99: round(p99, 3),
    p999: round(histogram.percentile(0.999), 3),
    samples: histogram.count,
    saturated: deliveredPerSec < 0.9 * offeredDeliveries || dropped > 0 || errors > 0 ||
      !(p99 < 1000) || drain.undelivered > 0,
    cpu: cpuUse,
    undelivered: drain.undelivered,
    drainMs: round(drain.ms, 0),
  };
}

/** Why a level failed (some deliveries never arrived), or null when it did not. */
export function levelFailure(level: LevelResult): string | null {
  if (level.undelivered === 0) return null;
  return `${level.kind} level at ${Math.round(level.offeredDeliveries)} deliveries/s offered: ` +
    `${level.undelivered} deliveries still missing ${
      Math.round(level.drainMs / 1000)
    } s after sending`;
}

/**
 * The level a target kept up with that delivered the most: its saturation point, where
 * its p99 and its CPU per delivery at saturation are read. A level past saturation (one
 * that fell behind, {@linkcode LevelResult.saturated}) builds a backlog for as long as it
 * runs, so its latency measures the level's length, not the target: a target whose
 * throughput still grows past that point would otherwise be judged by a queue that a
 * target whose throughput falls there never reaches. Undefined when no ramp level kept up.
 *
 * @example
 * ```ts
 * import { type FanoutResult, saturationLevel } from "./fanout.ts";
 * declare const result: FanoutResult; // a ramp measureFanout ran
 * const p99 = saturationLevel(result)?.p99; // at the most delivered level kept up with
 * ```
 */
export function saturationLevel(f: FanoutResult): LevelResult | undefined {
  let best: LevelResult | undefined;
  for (const l of f.levels) {
    if (!l.kind.startsWith("ramp") || l.saturated) continue;
    if (!best || l.deliveredPerSec > best.deliveredPerSec) best = l;
  }
  return best;
}

/**
 * Ramps the offered load until saturation (or `maxLevels`), then runs at half of
 * the highest delivered rate. `after` runs on the same room before the cluster stops.
 */
export async function measureFanout(
  cluster: Cluster,
  plan: FanoutPlan,
  after?: (room: string, result: FanoutResult) => Promise<void>,
): Promise<FanoutResult> {
  const room = `room${plan.members}`;
  const setupMs = await openRoom(cluster, plan, room);
  const result: FanoutResult = {
    target: cluster.mode === "chat" ? "server" : cluster.mode,
    members: plan.members,
    senders: plan.sendersPerLoad * cluster.loads.length,
    setupMs: round(setupMs, 0),
    levels: [],
    maxDeliveries: 0,
    half: null,
    failure: null,
  };
  let deliveries = plan.startDeliveries;
  // A saturated level is run once more before the ramp stops, so that one disturbance
  // (another program taking the CPU for a moment) does not end it early; the run again
  // is not one of the `maxLevels`.
  let repeated = false;
  let rung = 0; // the offered levels run so far, less one
  for (;;) {
    const level = await runLevel(
      cluster,
      room,
      plan.members,
      deliveries / (plan.members - 1),
      plan.levelMs,
      repeated ? "ramp-repeat" : "ramp",
    );
    result.levels.push(level);
    result.maxDeliveries = Math.max(result.maxDeliveries, level.deliveredPerSec);
    result.failure = levelFailure(level);
    if (result.failure !== null) break;
    if (level.saturated && (repeated || rung >= plan.maxLevels - 1)) break;
    if (level.saturated) repeated = true;
    else {
      if (rung >= plan.maxLevels - 1) break;
      rung++;
      repeated = false;
      deliveries *= plan.step;
    }
    await sleep(50);
  }
  if (result.failure !== null) return result;
  const halfMsgs = result.maxDeliveries / 2 / (plan.members - 1);
  result.half = await runLevel(
    cluster,
    room,
    plan.members,
    halfMsgs,
    plan.levelMs * 2,
    "half",
  );
  result.levels.push(result.half);
  result.failure = levelFailure(result.half);
  if (after) await after(room, result);
  return result;
}

/**
 * CPU microseconds per delivery of the target and of the load processes together, over
 * a fan-out's ramp levels (equal durations: CPU shares and rates summed). Less disturbed
 * by other programs than deliveries per second, and it tells whether the load clients
 * or the target spend more per delivery (a load client as costly as its target measures
 * itself as much as the target).
 */
export function cpuPerDelivery(levels: LevelResult[]): { target: number; loads: number } {
  let target = 0;
  let loads = 0;
  let delivered = 0;
  for (const l of levels) {
    if (!l.kind.startsWith("ramp")) continue;
    target += l.cpu.target;
    for (const share of l.cpu.loads) loads += share;
    delivered += l.deliveredPerSec;
  }
  const us = (pct: number) => delivered > 0 ? round((pct / 100 / delivered) * 1e6, 2) : NaN;
  return { target: us(target), loads: us(loads) };
}

function sum(values: number[]): number {
  let total = 0;
  for (const v of values) total += Number.isFinite(v) ? v : 0;
  return total;
}

/** A run at one fixed offered load (issue #16: 0.50M deliveries/s in a 100-member room). */
export interface FixedPlan extends RoomPlan {
  /** Offered deliveries/s: messages/s × (members - 1). */
  deliveries: number;
  /** Milliseconds sent at the same rate before measuring (JIT, heap, WAL and history warm). */
  warmupMs: number;
  /** Milliseconds of the measured run. */
  durationMs: number;
}

/** A fixed-load measurement. */
export interface FixedResult {
  /** `server`, `relay`, `irc`, or `inspircd`. */
  target: string;
  /** Room size. */
  members: number;
  /** Senders. */
  senders: number;
  /** Milliseconds to connect (and log in and join) every member. */
  setupMs: number;
  /** The measured run (`kind` "fixed"); the warm-up is not kept. */
  level: LevelResult;
  /** Deliveries per second of the target's CPU during the run. */
  deliveriesPerCpuSec: number;
  /**
   * The SQLite server's group commits during the run (sending and draining): appends,
   * commits and WAL syncs, and the wall time per sync (syncs run back to back while
   * appends come, so this is about the disk's fsync time: a message waits for the end of
   * the sync running when it arrives, then for a whole one). Absent for other targets.
   */
  store?: FixedStoreFigures;
}

/** See {@linkcode FixedResult.store}. */
export interface FixedStoreFigures {
  appends: number;
  commits: number;
  walSyncs: number;
  checkpoints: number;
  /** Milliseconds of the run per WAL sync. */
  msPerSync: number;
}

/** The SQLite store's counters from the server's `stats`, or null (memory store, relay). */
async function storeStats(cluster: Cluster): Promise<Record<string, number> | null> {
  if (cluster.mode === "relay" || cluster.mode === "inspircd") return null;
  const stats = await cluster.target.request("stats");
  return (stats.store as Record<string, number> | undefined) ?? null;
}

/**
 * Opens a room, sends at `plan.deliveries` for the warm-up, then measures the same rate.
 *
 * @example
 * ```ts ignore
 * import { withCluster } from "./cluster.ts";
 * import { measureFixed } from "./fanout.ts";
 * const plan = {
 *   members: 100,
 *   sendersPerLoad: 2,
 *   probesPerLoad: 8,
 *   deliveries: 500_000,
 *   warmupMs: 1000,
 *   durationMs: 3000,
 * };
 * const r = await withCluster({ target: "relay", loads: 2 }, (c) => measureFixed(c, plan));
 * console.log(r.level.p50, r.level.p99);
 * ```
 */
export async function measureFixed(cluster: Cluster, plan: FixedPlan): Promise<FixedResult> {
  const room = `room${plan.members}`;
  const setupMs = await openRoom(cluster, plan, room);
  const msgs = plan.deliveries / (plan.members - 1);
  if (plan.warmupMs > 0) {
    const warm = await runLevel(cluster, room, plan.members, msgs, plan.warmupMs, "warm-up");
    const failure = levelFailure(warm);
    if (failure !== null) throw new Error(failure);
  }
  const before = await storeStats(cluster);
  const t0 = performance.now();
  const level = await runLevel(cluster, room, plan.members, msgs, plan.durationMs, "fixed");
  const failure = levelFailure(level);
  if (failure !== null) throw new Error(failure);
  const after = await storeStats(cluster);
  const ms = performance.now() - t0;
  const delta = (key: string) => (after?.[key] ?? 0) - (before?.[key] ?? 0);
  const walSyncs = delta("walSyncs");
  return {
    target: cluster.mode === "chat" ? "server" : cluster.mode,
    members: plan.members,
    senders: plan.sendersPerLoad * cluster.loads.length,
    setupMs: round(setupMs, 0),
    level,
    deliveriesPerCpuSec: round(level.deliveredPerSec / Math.max(level.cpu.target / 100, 0.001), 0),
    ...(before && after
      ? {
        store: {
          appends: delta("appends"),
          commits: delta("commits"),
          walSyncs,
          checkpoints: delta("checkpoints"),
          msPerSync: round(ms / Math.max(walSyncs, 1), 3),
        },
      }
      : {}),
  };
}
