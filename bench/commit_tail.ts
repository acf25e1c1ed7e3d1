/**
 * The store's share of a room message's latency at a steady load: how long an append waits
 * for its commit (until `onCommitted`, when receivers are sent it), for the SQLite store
 * of one or more checkouts, in turn. No server, no socket: what the group commit, the WAL
 * syncs and the checkpoints add, which the fan-out's p99 includes.
 *
 * ```sh
 * # this checkout and a worktree of main, 32,000 messages/s (3.2M deliveries/s in a room of
 * # 100), 4 s each, 3 rounds
 * deno run -A bench/commit_tail.ts --rate 32000 --ms 4000 --rounds 3 . /tmp/base
 * ```
 *
 * Appends come every millisecond (the rate's share of the time that passed, as a steady
 * stream of senders would bring them), each timed from its call to its `onCommitted`.
 * Prints p50, p99, p99.9 and max per checkout and round, with the store's checkpoint count.
 *
 * @module
 */

import { Histogram } from "./histogram.ts";

/** What to measure. */
interface Plan {
  rate: number;
  ms: number;
  rounds: number;
  targets: string[];
}

function parse(args: string[]): Plan {
  const plan: Plan = { rate: 32_000, ms: 4000, rounds: 3, targets: [] };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    const next = () => Number(args[++i]);
    if (arg === "--rate") plan.rate = next();
    else if (arg === "--ms") plan.ms = next();
    else if (arg === "--rounds") plan.rounds = next();
    else plan.targets.push(arg);
  }
  if (plan.targets.length === 0) plan.targets.push(".");
  return plan;
}

/** What {@linkcode run} needs of a checkout's SQLite store. */
interface TailStore {
  createRoom(room: object): Promise<unknown>;
  appendMessage(
    message: object,
    options: { onCommitted: () => void },
  ): Promise<unknown>;
  readonly stats: { checkpoints: number; commits: number };
  close(): Promise<void>;
}

/** Appends at `rate` per second for `ms` (after a second of warm-up); the commit latencies. */
async function run(dir: string, plan: Plan): Promise<{ h: Histogram; checkpoints: number }> {
  const module = await import(
    new URL(`${dir}/server/sqlite_store.ts`, `file://${Deno.cwd()}/`).href
  );
  const data = await Deno.makeTempDir({ prefix: "chat-commit-tail-" });
  const store: TailStore = await module.SqliteStore.open(data);
  const h = new Histogram();
  try {
    await store.createRoom({ key: "lobby", name: "Lobby", topic: "", topicBy: "", createdAt: 1 });
    const text = "x".repeat(100);
    const warmupMs = 1000;
    const start = performance.now();
    let sent = 0;
    let checkpointsAtStart = -1;
    const acks: Promise<unknown>[] = [];
    while (performance.now() - start < warmupMs + plan.ms) {
      const now = performance.now();
      const due = Math.floor(((now - start) / 1000) * plan.rate);
      const counted = now - start >= warmupMs;
      if (counted && checkpointsAtStart < 0) checkpointsAtStart = store.stats.checkpoints;
      for (; sent < due; sent++) {
        const at = performance.now();
        acks.push(
          store.appendMessage(
            {
              fromKey: "alice",
              from: "Alice",
              room: "lobby",
              text,
              ts: sent,
              clientId: `c${sent}`,
            },
            { onCommitted: counted ? () => h.record(performance.now() - at) : () => {} },
          ),
        );
      }
      if (acks.length > 10_000) await Promise.all(acks.splice(0));
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    await Promise.all(acks);
    return { h, checkpoints: store.stats.checkpoints - checkpointsAtStart };
  } finally {
    await store.close();
    await Deno.remove(data, { recursive: true });
  }
}

if (import.meta.main) {
  const plan = parse(Deno.args);
  for (let round = 0; round < plan.rounds; round++) {
    for (const target of plan.targets) {
      const load = (await Deno.readTextFile("/proc/loadavg")).split(" ")[0];
      const { h, checkpoints } = await run(target, plan);
      const f = (q: number) => h.percentile(q).toFixed(2);
      console.log(
        `${target}: ${h.count} appends at ${plan.rate}/s, commit wait p50 ${f(0.5)} ms, ` +
          `p99 ${f(0.99)}, p99.9 ${f(0.999)}, max ${h.max.toFixed(2)}; ` +
          `${checkpoints} checkpoint passes; load ${load}`,
      );
    }
  }
}
