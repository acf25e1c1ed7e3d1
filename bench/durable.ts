/**
 * Durable throughput: acknowledged, persisted room messages per second. Each sender
 * keeps a window of `say` requests outstanding in a room of its own (no fan-out), and
 * the server acknowledges a message only after the SQLite group commit that holds it
 * (WAL, `synchronous=FULL`). The same run on the in-memory store is the baseline.
 *
 * @module
 */

import { type Cluster, cpuMeter, type CpuUse, round } from "./cluster.ts";
import { checkOpened } from "./fanout.ts";
import { Histogram, type HistogramJson } from "./histogram.ts";

/** Sizes of a durable run. */
export interface DurablePlan {
  /** Sender connections per load process. */
  sendersPerLoad: number;
  /** Requests outstanding per sender. */
  window: number;
  /** Milliseconds of sending. */
  durationMs: number;
}

/** Result of a durable run. */
export interface DurableResult {
  /** `sqlite` or `memory`. */
  store: string;
  /** Acknowledged messages per second. */
  ackedPerSec: number;
  /**
   * Acknowledged messages per second of the server's CPU time (every thread): the figure
   * that other programs on the machine disturb least.
   */
  ackedPerCpuSec: number;
  /** Acknowledgement latency percentiles, ms. */
  p50: number;
  /** 99th percentile, ms. */
  p99: number;
  /** 99.9th percentile, ms. */
  p999: number;
  /** Error replies. */
  errors: number;
  /** The first error, if any. */
  firstError: string;
  /** Group-commit counters of the SQLite store, when it is one. */
  commits?: { appends: number; commits: number; largestBatch: number };
  /** CPU use while sending. */
  cpu: CpuUse;
  /** Senders × window. */
  outstanding: number;
}

/** Sizes of a lone-writer run. */
export interface LonePlan {
  /** Milliseconds of sending first, not counted (the WAL grows to its working size). */
  warmupMs: number;
  /** Milliseconds of sending counted. */
  durationMs: number;
}

/** Runs the durable measurement on a started cluster. */
export function measureDurable(cluster: Cluster, plan: DurablePlan): Promise<DurableResult> {
  return closedLoopRun(cluster, {
    group: "durable",
    roomPrefix: "d",
    senders: plan.sendersPerLoad,
    window: plan.window,
    warmupMs: 0,
    durationMs: plan.durationMs,
  });
}

/**
 * The lone writer: one client sends room messages one at a time, each once the previous
 * one is acknowledged (a window of 1), on the first load process only. What a message
 * costs when nothing else is pending: its acknowledgement latency is the server's
 * floor, and messages/s is its inverse.
 */
export function measureLoneWriter(cluster: Cluster, plan: LonePlan): Promise<DurableResult> {
  return closedLoopRun({ ...cluster, loads: cluster.loads.slice(0, 1) }, {
    group: "lone",
    roomPrefix: "lone",
    senders: 1,
    window: 1,
    warmupMs: plan.warmupMs,
    durationMs: plan.durationMs,
  });
}

interface ClosedLoopPlan {
  group: string;
  roomPrefix: string;
  senders: number;
  window: number;
  warmupMs: number;
  durationMs: number;
}

/** Closed-loop `say` senders, each in a room of its own; counts what the server acknowledged. */
async function closedLoopRun(cluster: Cluster, plan: ClosedLoopPlan): Promise<DurableResult> {
  const loads = cluster.loads;
  const roomsOf = (i: number) =>
    Array.from({ length: plan.senders }, (_, k) => `${plan.roomPrefix}${i}_${k}`);
  await Promise.all(loads.map(async (load, i) => {
    const rooms = roomsOf(i);
    // Each sender joins its own room (join creates it); one connection per room.
    for (let k = 0; k < plan.senders; k++) {
      const answer = await load.request("open", {
        group: plan.group,
        prefix: `${rooms[k]}_`,
        count: 1,
        rooms: [rooms[k]],
      }, 60_000);
      checkOpened(answer, 1);
    }
  }));
  const send = (durationMs: number) =>
    Promise.all(loads.map((load, i) =>
      load.request("closedLoop", {
        group: plan.group,
        window: plan.window,
        durationMs,
        rooms: roomsOf(i),
      }, durationMs + 30_000)
    ));
  if (plan.warmupMs > 0) await send(plan.warmupMs);
  const before = await cluster.target.request("stats");
  await Promise.all(loads.map((l) => l.request("stats", { reset: true })));
  const cpu = cpuMeter(cluster);
  const runs = await send(plan.durationMs);
  const cpuUse = cpu();
  const after = await cluster.target.request("stats");
  const stats = await Promise.all(loads.map((l) => l.request("stats", { reset: true })));
  const histogram = new Histogram();
  for (const s of stats) histogram.merge(s.ackLatency as HistogramJson);
  const acked = runs.reduce((n, r) => n + Number(r.acked), 0);
  const seconds = Math.max(...runs.map((r) => Number(r.elapsedMs))) / 1000;
  const counters = stats.map((s) => s.counters as Record<string, number | string>);
  const storeBefore = before.store as DurableResult["commits"] | undefined;
  const storeAfter = after.store as DurableResult["commits"] | undefined;
  return {
    store: String(cluster.target.info.store),
    ackedPerSec: round(acked / seconds, 0),
    ackedPerCpuSec: round(acked / Math.max(seconds * cpuUse.target / 100, 0.001), 0),
    p50: round(histogram.percentile(0.5), 3),
    p99: round(histogram.percentile(0.99), 3),
    p999: round(histogram.percentile(0.999), 3),
    errors: counters.reduce((n, c) => n + Number(c.errors), 0),
    firstError: String(counters.find((c) => c.firstError)?.firstError ?? ""),
    ...(storeAfter && storeBefore
      ? {
        commits: {
          appends: storeAfter.appends - storeBefore.appends,
          commits: storeAfter.commits - storeBefore.commits,
          largestBatch: storeAfter.largestBatch,
        },
      }
      : {}),
    cpu: cpuUse,
    outstanding: plan.senders * loads.length * plan.window,
  };
}
