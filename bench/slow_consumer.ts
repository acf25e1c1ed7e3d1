/**
 * Slow consumer: a room of N members under steady load, then the same load with one
 * extra member that has stopped reading. The others' latency is compared.
 *
 * A member that stops reading only costs the server anything once the kernel's socket
 * buffers towards it are full (tens of MB on loopback, minutes at chat rates), so
 * before the measured run a filler fills them with large direct messages to that
 * member, watching the socket queues with `ss`, until they stop growing, and then 3 MiB
 * more, which wait in the server's own outbound queue for the member. The measured run
 * then sees that queue reach its bound and the member cut off (server defaults: 4 MiB
 * queue, 10 s write stall).
 *
 * @module
 */

import { type Cluster, round, sleep } from "./cluster.ts";
import { checkOpened, type FanoutPlan, type LevelResult, openRoom, runLevel } from "./fanout.ts";

/** Sizes of a slow-consumer run. */
export interface SlowPlan {
  /** Room size (before the slow member joins). */
  members: number;
  /** Messages per second (all senders). */
  rate: number;
  /** Milliseconds of each measured run. */
  durationMs: number;
  /** Bytes of the server's outbound queue to fill before the run (below its bound). */
  queueFillBytes: number;
}

/** Result of a slow-consumer run. */
export interface SlowResult {
  /** Room size without the slow member. */
  members: number;
  /** Messages per second offered. */
  rate: number;
  /** The run with every member reading. */
  baseline: LevelResult;
  /** The run with one member not reading. */
  slow: LevelResult;
  /** p99 with the slow member ÷ p99 without. */
  p99Ratio: number;
  /** Bytes sitting in the kernel's socket buffers towards the member before the run. */
  prefilledBytes: number;
  /** Whether the server cut the member off (its session ended) during the measured run. */
  cutOffDuringRun: boolean;
  /** Whether the server had closed its connection by the end. */
  closed: boolean;
  /** Whether the `slow_consumer` notice reached it (it is dropped when the socket stays full). */
  noticeSeen: boolean;
}

/** Sum of Send-Q and Recv-Q of the loopback sockets on `port` (either end), from `ss`. */
async function socketQueueBytes(port: number): Promise<number> {
  const out = await new Deno.Command("ss", {
    args: ["-tnH", "state", "established", `( sport = :${port} or dport = :${port} )`],
    stdout: "piped",
    stderr: "null",
  }).output();
  let total = 0;
  for (const line of new TextDecoder().decode(out.stdout).split("\n")) {
    const fields = line.trim().split(/\s+/);
    if (fields.length >= 2) total += Number(fields[0]) + Number(fields[1]);
  }
  return total;
}

/** Runs the slow-consumer comparison on a started cluster with two load processes. */
export async function measureSlowConsumer(cluster: Cluster, plan: SlowPlan): Promise<SlowResult> {
  const room = `slow${plan.members}`;
  const fanoutPlan: FanoutPlan = {
    members: plan.members,
    sendersPerLoad: 2,
    probesPerLoad: 8,
    startDeliveries: 0,
    step: 1,
    maxLevels: 0,
    levelMs: plan.durationMs,
  };
  await openRoom(cluster, fanoutPlan, room);
  const [first, second] = cluster.loads;
  checkOpened(
    await first.request("open", { group: "slow", prefix: "slowpoke", count: 1, rooms: [room] }),
    1,
  );
  checkOpened(
    await second.request("open", { group: "filler", prefix: "filler", count: 1, rooms: [] }),
    1,
  );
  const members = plan.members + 1;
  const baseline = await runLevel(
    cluster,
    room,
    members,
    plan.rate,
    plan.durationMs,
    "slow-baseline",
  );

  await first.request("pause", { group: "slow", count: 1 });
  const [port] = (await first.request("localPorts", { group: "slow" })).ports as number[];
  // Fill the kernel's buffers towards the member until they stop growing (bounded).
  let last = -1;
  let queued = 0;
  for (let i = 0; i < 400 && queued < 256 * 1024 * 1024; i++) {
    await second.request("fill", { group: "filler", to: "slowpoke0", bytes: 256 * 1024 });
    queued += 256 * 1024;
    await sleep(60);
    const now = await socketQueueBytes(port);
    if (now - last < 64 * 1024 && now > 0) {
      last = now;
      break;
    }
    last = now;
  }
  // Then most of the server's own queue towards it (its bound is the default 4 MiB).
  for (let filled = 0; filled < plan.queueFillBytes; filled += 256 * 1024) {
    await second.request("fill", { group: "filler", to: "slowpoke0", bytes: 256 * 1024 });
  }
  await Promise.all(
    cluster.loads.map((l) => l.request("quiet", { quietMs: 300, timeoutMs: 10_000 }, 20_000)),
  );
  const before = Number((await cluster.target.request("stats")).sessions);
  // The paused member reads nothing: the level waits for the others' deliveries only.
  const slow = await runLevel(
    cluster,
    room,
    members,
    plan.rate,
    plan.durationMs,
    "slow",
    members - 2,
  );
  const after = Number((await cluster.target.request("stats")).sessions);
  const check = await first.request("checkPaused", { group: "slow", waitMs: 3000 }, 10_000);
  return {
    members: plan.members,
    rate: round(plan.rate, 0),
    baseline,
    slow,
    p99Ratio: round(slow.p99 / baseline.p99, 2),
    prefilledBytes: Math.max(0, last),
    cutOffDuringRun: after === before - 1,
    closed: Number(check.closed) > 0,
    noticeSeen: Number(check.cutOff) > 0,
  };
}
