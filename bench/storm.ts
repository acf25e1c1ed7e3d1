/**
 * Reconnect storm: N clients in one room drop at once (every socket closed in the same
 * instant) and reconnect at once: login, retried while the server still holds the old
 * session, then `sync` from the last message id each had seen. A separate sender keeps
 * talking in the room throughout; at the end every client must hold every message the
 * sender got acknowledged, none twice by the same path. The cold start of the same
 * clients (all connecting at once) is the baseline.
 *
 * @module
 */

import { type Cluster, cpuMeter, type CpuUse, round, sleep } from "./cluster.ts";
import { checkOpened } from "./fanout.ts";

/** Sizes of a storm run. */
export interface StormPlan {
  /** Clients that drop and reconnect. */
  clients: number;
  /** Messages per second from the separate sender. */
  senderRate: number;
  /** Milliseconds the sender talks before the drop. */
  leadMs: number;
  /** Milliseconds the sender goes on talking after the drop. */
  tailMs: number;
}

/** Result of a storm run. */
export interface StormResult {
  /** Clients. */
  clients: number;
  /** Milliseconds for the cold start (connect + login + join of all at once). */
  coldStartMs: number;
  /** Milliseconds from the drop until every client had logged in again and synced. */
  allResumedMs: number;
  /** Per-client resume time percentiles, ms. */
  p50: number;
  /** 99th percentile, ms. */
  p99: number;
  /** Clients that resumed. */
  resumed: number;
  /** Clients that did not, and why. */
  failed: number;
  /** The first failure. */
  firstFailure: string;
  /** Logins refused with `nick_in_use` (old session not yet gone) and retried. */
  retries: number;
  /** Messages the sender got acknowledged. */
  sent: number;
  /** (client, message) pairs missing at the end. */
  missing: number;
  /** Clients missing at least one message. */
  clientsMissing: number;
  /** Messages received twice live, or twice through sync. */
  duplicates: number;
  /** Messages received both live and through sync (the client keeps one by id). */
  overlap: number;
  /** Messages that reached a client only through sync. */
  viaSync: number;
  /** CPU use from the drop until every client had resumed. */
  cpu: CpuUse;
}

/** Runs the storm on a started cluster with at least two load processes. */
export async function measureStorm(cluster: Cluster, plan: StormPlan): Promise<StormResult> {
  const [clientsLoad, senderLoad] = cluster.loads;
  if (senderLoad === undefined) throw new Error("the storm needs two load processes");
  const cold = await clientsLoad.request("open", {
    group: "storm",
    prefix: "st",
    count: plan.clients,
    rooms: ["storm"],
    track: "storm",
    concurrency: plan.clients,
    timeoutMs: 60_000,
  }, 120_000);
  checkOpened(cold, plan.clients);
  checkOpened(
    await senderLoad.request("open", {
      group: "sender",
      prefix: "stormsender",
      count: 1,
      rooms: ["storm"],
      trackAcks: true,
    }),
    1,
  );
  await clientsLoad.request("quiet", { quietMs: 300, timeoutMs: 20_000 }, 30_000);
  const sending = senderLoad.request("run", {
    group: "sender",
    rate: plan.senderRate,
    durationMs: plan.leadMs + plan.tailMs,
    room: "storm",
  }, plan.leadMs + plan.tailMs + 30_000);
  let resumed: Record<string, unknown>;
  let cpu: (() => CpuUse) | undefined;
  let cpuUse: CpuUse = { target: NaN, loads: [], other: NaN };
  try {
    await sleep(plan.leadMs);
    cpu = cpuMeter(cluster);
    await clientsLoad.request("drop", { group: "storm" }, 30_000);
    resumed = await clientsLoad.request("resume", {
      group: "storm",
      concurrency: plan.clients,
      timeoutMs: 60_000,
    }, 90_000);
    cpuUse = cpu();
  } finally {
    await sending.catch(() => {});
  }
  await senderLoad.request("quiet", { quietMs: 300, timeoutMs: 10_000 }, 20_000);
  await clientsLoad.request("quiet", { quietMs: 500, timeoutMs: 20_000 }, 30_000);
  const { ids } = await senderLoad.request("ackedIds", { group: "sender" });
  const verdict = await clientsLoad.request("verify", { group: "storm", ids }, 60_000);
  return {
    clients: plan.clients,
    coldStartMs: round(Number(cold.ms), 0),
    allResumedMs: round(Number(resumed.allMs), 0),
    p50: round(Number(resumed.p50), 0),
    p99: round(Number(resumed.p99), 0),
    resumed: Number(resumed.resumed),
    failed: Number(resumed.failed),
    firstFailure: String(resumed.firstFailure ?? ""),
    retries: Number(resumed.retries),
    sent: (ids as number[]).length,
    missing: Number(verdict.missing),
    clientsMissing: Number(verdict.clientsMissing),
    duplicates: Number(verdict.dupLive) + Number(verdict.dupSync),
    overlap: Number(verdict.overlap),
    viaSync: Number(verdict.viaSync),
    cpu: cpuUse,
  };
}
