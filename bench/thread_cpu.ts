/**
 * A process's CPU by thread (Linux): each thread's user and system time from
 * `/proc/<pid>/task/<tid>/stat`, read before and after a measurement and grouped by the
 * thread's name (`comm`: `tokio-runtime-w` for Deno's blocking pool, `V8 DefaultWorke`
 * for V8's background worker, `worker-1` for a Web Worker), the process's own thread as
 * `main`. A server pinned to one core shares it with all its threads: this says which.
 *
 * @example
 * ```ts
 * import { formatThreadCpu, readThreadTicks, threadCpuShares } from "./thread_cpu.ts";
 * const before = readThreadTicks(Deno.pid);
 * const started = performance.now();
 * // ... the measured work ...
 * const after = readThreadTicks(Deno.pid);
 * const shares = threadCpuShares(Deno.pid, before, after, (performance.now() - started) / 1000);
 * console.log(formatThreadCpu(shares)); // "main 97.1% (sys 40.2), tokio-runtime-w 2.3% (sys 2.1)"
 * ```
 *
 * @module
 */

/** Clock ticks per second of `/proc`'s times (`getconf CLK_TCK`: 100 on Linux). */
const CLOCK_TICKS_PER_SECOND = 100;

/** One thread's CPU time so far. */
export interface ThreadTicks {
  /** Its thread id. */
  tid: number;
  /** Its name (`comm`, at most 15 bytes). */
  name: string;
  /** User time, seconds. */
  user: number;
  /** System time, seconds. */
  system: number;
}

/** A `/proc/.../stat` line that could not be read. */
export class TaskStatError extends Error {
  /** Stable code. */
  readonly code = "bad_task_stat";
  constructor(readonly line: string) {
    super(`not a /proc stat line: ${JSON.stringify(line.slice(0, 80))}`);
    this.name = "TaskStatError";
  }
}

/**
 * Parses a `/proc/<pid>/task/<tid>/stat` line: the thread id, its name (in parentheses,
 * which the name itself may hold) and its user and system time (fields 14 and 15).
 *
 * @throws {TaskStatError} when the line is not one.
 */
export function parseTaskStat(line: string): ThreadTicks {
  const open = line.indexOf("(");
  const close = line.lastIndexOf(")");
  const tid = Number(line.slice(0, open).trim());
  const rest = line.slice(close + 2).split(" ");
  const user = Number(rest[11]);
  const system = Number(rest[12]);
  if (
    open < 1 || close < open || !Number.isSafeInteger(tid) || !Number.isFinite(user) ||
    !Number.isFinite(system) || rest.length < 13
  ) {
    throw new TaskStatError(line);
  }
  return {
    tid,
    name: line.slice(open + 1, close),
    user: user / CLOCK_TICKS_PER_SECOND,
    system: system / CLOCK_TICKS_PER_SECOND,
  };
}

/**
 * Each live thread of process `pid` with its CPU time so far; empty when the process is
 * gone or `/proc` cannot be read (not Linux). A thread that ends while this reads is
 * left out.
 */
export function readThreadTicks(pid: number): ThreadTicks[] {
  const threads: ThreadTicks[] = [];
  let tids: Deno.DirEntry[];
  try {
    tids = [...Deno.readDirSync(`/proc/${pid}/task`)];
  } catch {
    return threads;
  }
  for (const entry of tids) {
    try {
      threads.push(parseTaskStat(Deno.readTextFileSync(`/proc/${pid}/task/${entry.name}/stat`)));
    } catch (error) {
      if (error instanceof TaskStatError) throw error;
      // The thread ended between the listing and the read.
    }
  }
  return threads;
}

/** The CPU of the threads of one name over an interval. */
export interface ThreadShare {
  /** The threads' name (`main` for the process's own thread). */
  name: string;
  /** How many threads of that name ran in the interval. */
  threads: number;
  /** Their CPU, % of one core. */
  percent: number;
  /** Of it, in the kernel. */
  systemPercent: number;
}

/**
 * The CPU of each name of thread between two readings of process `pid`, `seconds` apart,
 * busiest first. A thread found only in `after` counts from zero (started in between); one
 * found only in `before` ended in between and is not counted (its time is unknown).
 *
 * @throws {RangeError} when `seconds` is not positive.
 */
export function threadCpuShares(
  pid: number,
  before: readonly ThreadTicks[],
  after: readonly ThreadTicks[],
  seconds: number,
): ThreadShare[] {
  if (!(seconds > 0)) throw new RangeError(`the interval must be positive, not ${seconds}`);
  const earlier = new Map(before.map((t) => [t.tid, t]));
  const byName = new Map<string, ThreadShare>();
  for (const t of after) {
    const from = earlier.get(t.tid);
    const user = t.user - (from?.user ?? 0);
    const system = t.system - (from?.system ?? 0);
    if (user + system <= 0) continue;
    const name = t.tid === pid ? "main" : t.name;
    const share = byName.get(name) ?? { name, threads: 0, percent: 0, systemPercent: 0 };
    share.threads++;
    share.percent += (user + system) / seconds * 100;
    share.systemPercent += system / seconds * 100;
    byName.set(name, share);
  }
  return [...byName.values()].sort((a, b) => b.percent - a.percent);
}

/** One line: each name's CPU and its kernel part, busiest first. */
export function formatThreadCpu(shares: readonly ThreadShare[]): string {
  if (shares.length === 0) return "no thread ran";
  return shares.map((s) =>
    `${s.name}${s.threads > 1 ? ` (${s.threads})` : ""} ${s.percent.toFixed(1)}%` +
    ` (sys ${s.systemPercent.toFixed(1)})`
  ).join(", ");
}
