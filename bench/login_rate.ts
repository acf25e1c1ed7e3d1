/**
 * Logins as the server fills: N clients log in (`--auth none`, new accounts) a few at a
 * time, each then joining a small room of its own group (rooms of `roomSize`), and stay
 * online. Measures the login rate over all of them, over the first and the last tenth
 * (flat as the server fills, or not), the server's CPU, and the presence bytes each
 * client received while the others logged in (mean and most). The baseline of the same
 * run is the same storm with presence told to everyone (`--presence-all-max` above N).
 *
 * @module
 */

import { type Cluster, cpuMeter, type CpuUse, round } from "./cluster.ts";
import { checkOpened } from "./fanout.ts";

/** Sizes of a login-rate run. */
export interface LoginRatePlan {
  /** Clients that log in. */
  clients: number;
  /** Logins at once. */
  concurrency: number;
  /** Members of each small room (consecutive clients share one). */
  roomSize: number;
  /**
   * Milliseconds after which no more logins start (the rest are skipped): the baseline,
   * everyone told of everyone, would take many minutes to fill 10,000. Its rate is then
   * over the part done, the easier one, which flatters it.
   */
  deadlineMs?: number;
}

/** Result of a login-rate run. */
export interface LoginRateResult {
  /** Clients logged in. */
  clients: number;
  /** Clients asked for (more than `clients` when the deadline cut the run short). */
  wanted: number;
  /** Logins per second over the whole run. */
  loginsPerSec: number;
  /** Over the first tenth. */
  loginsPerSecFirst: number;
  /** Over the last tenth. */
  loginsPerSecLast: number;
  /** Presence bytes per client, mean. */
  presenceBytesMean: number;
  /** Presence bytes of the client that received the most. */
  presenceBytesMax: number;
  /**
   * Server CPU per login, ms (what a loaded machine distorts least: on a busy one the
   * rate mostly measures waiting for a core).
   */
  cpuMsPerLogin: number;
  /** CPU use while they logged in. */
  cpu: CpuUse;
}

/** Runs the logins on a started cluster (one load process suffices). */
export async function measureLoginRate(
  cluster: Cluster,
  plan: LoginRatePlan,
): Promise<LoginRateResult> {
  const [load] = cluster.loads;
  const cpu = cpuMeter(cluster);
  const opened = await load.request("open", {
    group: "logins",
    prefix: "lr",
    count: plan.clients,
    rooms: [],
    roomGroup: plan.roomSize,
    concurrency: plan.concurrency,
    timeoutMs: 120_000,
    ...(plan.deadlineMs === undefined ? {} : { deadlineMs: plan.deadlineMs }),
  }, 900_000);
  const cpuUse = cpu();
  const done = Number(opened.opened);
  if (plan.deadlineMs === undefined) checkOpened(opened, plan.clients);
  else if (Number(opened.failed) > 0 || done === 0) {
    throw new Error(`${opened.failed} logins failed: ${opened.firstFailure}`);
  }
  // The last presence notices may still be on their way.
  await load.request("quiet", { quietMs: 500, timeoutMs: 60_000 }, 90_000);
  const bytes = await load.request("presenceBytes", { group: "logins" });
  await load.request("closeGroup", { group: "logins" }, 60_000);
  return {
    clients: done,
    wanted: plan.clients,
    loginsPerSec: round((done * 1000) / Number(opened.ms), 0),
    loginsPerSecFirst: round(Number(opened.rateFirst), 0),
    loginsPerSecLast: round(Number(opened.rateLast), 0),
    presenceBytesMean: round(Number(bytes.mean), 0),
    presenceBytesMax: Number(bytes.max),
    cpuMsPerLogin: round((cpuUse.target / 100) * Number(opened.ms) / done, 2),
    cpu: cpuUse,
  };
}
