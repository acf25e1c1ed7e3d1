/**
 * The SQLite store's CPU per group commit at the shape of the fixed-load run at 500,000
 * deliveries/s in a room of 100 (about 5,000 messages/s, 6–8 per commit, from 4 senders):
 * no server, no socket, only the commit path, for one or more checkouts in turn.
 *
 * ```sh
 * # this checkout and a worktree of main, 3 rounds, 2,000 commits of 8 appends each
 * deno run -A bench/commit_cpu.ts --commits 2000 --batch 8 --rounds 3 . /tmp/base
 * ```
 *
 * Each commit: `--batch` appends from `--senders` senders (request ids as the bench's load
 * clients make them, `--ids uuid` for time-ordered UUIDs as real clients send), queued in
 * one turn, awaited until durable (the WAL sync included). Prints, per checkout and round,
 * the CPU of the process's main thread (the event loop's: commit, inserts, the sync's
 * dispatch) and of the whole process per commit, and the bytes written per commit (WAL
 * frames of 4 KiB + 24 B each).
 *
 * @module
 */

import { v7 } from "uuid";

/** What to measure. */
interface Plan {
  commits: number;
  batch: number;
  senders: number;
  rounds: number;
  ids: "load" | "uuid";
  targets: string[];
}

function parse(args: string[]): Plan {
  const plan: Plan = { commits: 2000, batch: 8, senders: 4, rounds: 3, ids: "load", targets: [] };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    const next = () => args[++i];
    if (arg === "--commits") plan.commits = Number(next());
    else if (arg === "--batch") plan.batch = Number(next());
    else if (arg === "--senders") plan.senders = Number(next());
    else if (arg === "--rounds") plan.rounds = Number(next());
    else if (arg === "--ids") plan.ids = next() === "uuid" ? "uuid" : "load";
    else plan.targets.push(arg);
  }
  if (plan.targets.length === 0) plan.targets.push(".");
  return plan;
}

/** CPU ms of a thread of this process (`tid`), or of the whole process when absent. */
function cpuMs(tid?: number): number {
  const path = tid === undefined ? "/proc/self/stat" : `/proc/self/task/${tid}/stat`;
  const stat = Deno.readTextFileSync(path);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10; // clock ticks of 10 ms
}

/** Bytes this process wrote through write/pwrite so far (`wchar`). */
function writtenBytes(): number {
  const io = Deno.readTextFileSync("/proc/self/io");
  return Number(/wchar: (\d+)/.exec(io)![1]);
}

/** One checkout's figures for one round. */
async function measure(dir: string, plan: Plan): Promise<string> {
  const url = new URL(`${dir}/server/sqlite_store.ts`, `file://${Deno.cwd()}/`).href;
  const { SqliteStore } = await import(url);
  const data = await Deno.makeTempDir({ prefix: "chat-commit-cpu-" });
  const store = await SqliteStore.open(data);
  try {
    await store.createRoom({ key: "room", name: "room", topic: "", topicBy: "", createdAt: 0 });
    let seq = 0;
    const commit = () => {
      let last: Promise<unknown> = Promise.resolve();
      for (let i = 0; i < plan.batch; i++) {
        const s = seq % plan.senders;
        const now = Date.now();
        last = store.appendMessage({
          fromKey: `sender${s}`,
          from: `sender${s}`,
          room: "room",
          text: `b${s}|${now}.123`,
          ts: now,
          clientId: plan.ids === "uuid" ? v7() : `${++seq}_${now}.123`,
        });
        if (plan.ids === "uuid") seq++;
      }
      return last;
    };
    // Warm-up: the JIT, a history of some pages.
    for (let i = 0; i < 500; i++) await commit();
    const main0 = cpuMs(Deno.pid);
    const all0 = cpuMs();
    const bytes0 = writtenBytes();
    for (let i = 0; i < plan.commits; i++) await commit();
    const main = (cpuMs(Deno.pid) - main0) * 1000 / plan.commits;
    const all = (cpuMs() - all0) * 1000 / plan.commits;
    const bytes = (writtenBytes() - bytes0) / plan.commits;
    return `main thread ${main.toFixed(0)} µs, process ${all.toFixed(0)} µs, ` +
      `${(bytes / 1024).toFixed(1)} KiB written (${(bytes / 4120).toFixed(1)} frames) per commit`;
  } finally {
    await store.close();
    await Deno.remove(data, { recursive: true });
  }
}

if (import.meta.main) {
  const plan = parse(Deno.args);
  for (let round = 0; round < plan.rounds; round++) {
    for (const target of plan.targets) {
      console.log(`${target} round ${round}: ${await measure(target, plan)}`);
    }
  }
}
