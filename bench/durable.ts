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

/** Runs the durable measurement on a started cluster. */
export async function measureDurable(cluster: Cluster, plan: DurablePlan): Promise<DurableResult> {
  const loads = cluster.loads;
  await Promise.all(loads.map(async (load, i) => {
    const rooms = Array.from({ length: plan.sendersPerLoad }, (_, k) => `d${i}_${k}`);
    // Each sender joins its own room (join creates it); one connection per room.
    for (let k = 0; k < plan.sendersPerLoad; k++) {
      const answer = await load.request("open", {
        group: "durable",
        prefix: `d${i}_${k}_`,
        count: 1,
        rooms: [rooms[k]],
      }, 60_000);
      checkOpened(answer, 1);
    }
  }));
  const before = await cluster.target.request("stats");
  await Promise.all(loads.map((l) => l.request("stats", { reset: true })));
  const cpu = cpuMeter(cluster);
  const runs = await Promise.all(loads.map((load, i) =>
    load.request("closedLoop", {
      group: "durable",
      window: plan.window,
      durationMs: plan.durationMs,
      rooms: Array.from({ length: plan.sendersPerLoad }, (_, k) => `d${i}_${k}`),
    }, plan.durationMs + 30_000)
  ));
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
    outstanding: plan.sendersPerLoad * loads.length * plan.window,
  };
}
