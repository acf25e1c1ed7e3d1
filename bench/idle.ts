/**
 * Idle connections: many logged-in clients that say nothing; the target's memory
 * per connection from VmRSS (/proc/<pid>/status) and `Deno.memoryUsage()` (asked over
 * its side channel) before and after, each after a full GC. The same count of bare
 * connections held by the ceiling relay is the baseline: what the runtime itself
 * needs per socket.
 *
 * @module
 */

import { type Cluster, cpuMeter, type CpuUse, round, sleep } from "./cluster.ts";
import { rssKiB } from "../tools/side_channel.ts";

/** Sizes of an idle run. */
export interface IdlePlan {
  /** Connections in all. */
  connections: number;
  /** Logins in flight per load process. */
  concurrency: number;
  /** Milliseconds to wait for the connections to fall quiet. */
  settleTimeoutMs: number;
  /** No new connection is started after this many milliseconds. */
  deadlineMs: number;
  /**
   * VmRSS counts as settled once it fell by less than 1% over this many milliseconds.
   * Default 12 s.
   */
  rssSettleWindowMs?: number;
}

/** Result of an idle run. */
export interface IdleResult {
  /** `server` or `relay`. */
  target: string;
  /** Connections asked for. */
  wanted: number;
  /** Connections logged in (or joined, for the relay) and still open at the end. */
  connections: number;
  /** Why some failed, if some did. */
  firstFailure: string;
  /** Milliseconds to connect and log in all of them. */
  openMs: number;
  /** Logins per second while opening. */
  loginsPerSec: number;
  /** Logins per second over the first tenth of the logins. */
  loginsPerSecFirst: number;
  /** Logins per second over the last tenth (with the most clients already online). */
  loginsPerSecLast: number;
  /** Connections not attempted because the deadline passed. */
  skipped: number;
  /** Bytes each client received while the others logged in (presence notices). */
  bytesPerClient: number;
  /** Whether the connections fell quiet before measuring. */
  settled: boolean;
  /** VmRSS before and after, KiB. */
  rssBeforeKiB: number;
  /** VmRSS after, KiB. */
  rssAfterKiB: number;
  /** RSS growth per connection, bytes. */
  rssPerConn: number;
  /** JS heap growth per connection (used), bytes. */
  heapPerConn: number;
  /** JS heap growth per connection (committed by V8, used or not), bytes. */
  heapTotalPerConn: number;
  /** Growth of external (ArrayBuffer) memory per connection, bytes. */
  externalPerConn: number;
  /**
   * Milliseconds the final reading waited, after the full GC, for resident memory to
   * stop falling (V8 returns freed pages to the system in the background).
   */
  rssSettleMs: number;
  /** Whether a full GC ran before each reading. */
  gc: boolean;
  /** Milliseconds the target took to shut down gracefully with every client connected. */
  shutdownMs: number;
  /** CPU use while the clients connected. */
  cpu: CpuUse;
}

/**
 * Longest wait for the server to write what it still holds for its clients (on a busy
 * machine, slow load processes take a while to read a 10,000-client storm's presence).
 */
const DRAIN_TIMEOUT_MS = 180_000;

/** Longest wait for the target's resident memory to stop falling after a collection. */
const RSS_SETTLE_MAX_MS = 40_000;
/**
 * Resident memory counts as settled once it fell by less than this share over the last
 * {@linkcode RSS_SETTLE_WINDOW_MS} (V8 starts giving pages back some seconds after the
 * allocations stop: a shorter window can end before it begins).
 */
const RSS_SETTLE_SHARE = 0.01;
/** See {@linkcode RSS_SETTLE_SHARE}. */
const RSS_SETTLE_WINDOW_MS = 12_000;

async function memory(cluster: Cluster, settleWindowMs: number): Promise<
  { rss: number; heap: number; heapTotal: number; external: number; gc: boolean; settleMs: number }
> {
  const gc = await cluster.target.request("gc");
  await sleep(300);
  await cluster.target.request("gc");
  const rss = async () => {
    const mem = await cluster.target.request("mem");
    return { mem, rss: Number(mem.rssKiB ?? rssKiB(cluster.target.pid)) };
  };
  // V8 hands the pages a collection freed (after a login storm, tens of MB) back to the
  // system seconds later, in the background: what an idle server holds is what is left
  // once resident memory stops falling, not what it held just after the storm.
  const start = performance.now();
  let reading = await rss();
  const window: { at: number; rss: number }[] = [{ at: start, rss: reading.rss }];
  while (performance.now() - start < RSS_SETTLE_MAX_MS) {
    await sleep(1000);
    reading = await rss();
    const now = performance.now();
    window.push({ at: now, rss: reading.rss });
    while (now - window[0].at > settleWindowMs) window.shift();
    const fell = Math.max(...window.map((w) => w.rss)) - reading.rss;
    if (now - start >= settleWindowMs && fell < reading.rss * RSS_SETTLE_SHARE) break;
  }
  const usage = reading.mem.memory as { heapUsed: number; heapTotal: number; external: number };
  return {
    rss: reading.rss,
    heap: usage.heapUsed,
    heapTotal: usage.heapTotal,
    external: usage.external,
    gc: Boolean(gc.collected),
    settleMs: round(performance.now() - start, 0),
  };
}

/** Opens `plan.connections` idle clients spread over the load processes and measures. */
export async function measureIdle(cluster: Cluster, plan: IdlePlan): Promise<IdleResult> {
  const loads = cluster.loads;
  const before = await memory(cluster, plan.rssSettleWindowMs ?? RSS_SETTLE_WINDOW_MS);
  const per = Math.ceil(plan.connections / loads.length);
  const t0 = performance.now();
  const cpu = cpuMeter(cluster);
  const answers = await Promise.all(loads.map((load, i) => {
    const count = Math.min(per, plan.connections - i * per);
    return load.request("open", {
      group: "idle",
      prefix: `i${i}_`,
      count,
      rooms: [],
      concurrency: plan.concurrency,
      discard: true,
      bufferSize: 16 * 1024,
      timeoutMs: 60_000,
      deadlineMs: plan.deadlineMs,
    }, plan.deadlineMs + 120_000);
  }));
  const openMs = performance.now() - t0;
  const cpuUse = cpu();
  const opened = answers.reduce((n, a) => n + Number(a.opened), 0);
  const quiet = await Promise.all(
    loads.map((l) =>
      l.request(
        "quiet",
        { quietMs: 1000, timeoutMs: plan.settleTimeoutMs },
        plan.settleTimeoutMs + 10_000,
      )
    ),
  );
  // Quiet clients may only be slow ones: the server may still hold what they have not
  // read (a login storm's presence). Memory is read once it has written everything.
  const drainStart = performance.now();
  let drained = false;
  while (!drained && performance.now() - drainStart < DRAIN_TIMEOUT_MS) {
    const queued = (await cluster.target.request("stats")).queuedBytes;
    drained = queued === undefined || Number(queued) === 0;
    if (!drained) await sleep(250);
  }
  const stats = await Promise.all(loads.map((l) => l.request("stats", { reset: true })));
  const after = await memory(cluster, plan.rssSettleWindowMs ?? RSS_SETTLE_WINDOW_MS);
  const open = stats.reduce((n, s) => n + Number(s.open), 0);
  const bytes = stats.reduce(
    (n, s) => n + Number((s.counters as Record<string, number>).bytesIn),
    0,
  );
  const n = Math.max(open, 1);
  const shutdownStart = performance.now();
  await cluster.target.request("exit", {}, 120_000);
  const shutdownMs = performance.now() - shutdownStart;
  return {
    target: cluster.mode === "chat" ? "server" : "relay",
    wanted: plan.connections,
    connections: open,
    firstFailure: String(answers.find((a) => a.firstFailure)?.firstFailure ?? ""),
    openMs: round(openMs, 0),
    loginsPerSec: round(opened / (openMs / 1000), 0),
    loginsPerSecFirst: round(answers.reduce((n, a) => n + Number(a.rateFirst), 0), 0),
    loginsPerSecLast: round(answers.reduce((n, a) => n + Number(a.rateLast), 0), 0),
    skipped: answers.reduce((n, a) => n + Number(a.skipped), 0),
    bytesPerClient: round(bytes / n, 0),
    settled: drained && quiet.every((q) => q.quiet === true),
    rssBeforeKiB: before.rss,
    rssAfterKiB: after.rss,
    rssPerConn: round(((after.rss - before.rss) * 1024) / n, 0),
    heapPerConn: round((after.heap - before.heap) / n, 0),
    heapTotalPerConn: round((after.heapTotal - before.heapTotal) / n, 0),
    externalPerConn: round((after.external - before.external) / n, 0),
    rssSettleMs: after.settleMs,
    gc: before.gc && after.gc,
    shutdownMs: round(shutdownMs, 0),
    cpu: cpuUse,
  };
}
