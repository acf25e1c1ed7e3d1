/**
 * Benchmark child processes: `deno run -A` on a bench script through the shared
 * JSON-line coordinator (`tools/child.ts`), optionally pinned to CPUs or profiled, with
 * the CPU time every child used, stopped ones included.
 *
 * @module
 */

import { JsonLineChild } from "../tools/child.ts";

export { ChildError } from "../tools/child.ts";

/** A running bench child. */
export type Child = JsonLineChild;

/** Options of {@linkcode spawnChild}. */
export interface SpawnOptions {
  /** A name for error messages. */
  name: string;
  /** V8 flags, e.g. `["--expose-gc"]`. */
  v8Flags?: string[];
  /** Write a V8 CPU profile into this folder when the process exits. */
  cpuProfDir?: string;
  /** Milliseconds to wait for the first line. Default 20 s. */
  startTimeoutMs?: number;
  /** Pin the process to these CPUs (`taskset -c`), e.g. `"1"`. */
  cpus?: string;
  /** A file for what it prints that is not JSON (V8's `--trace-gc` lines). */
  strayLog?: string;
}

const CLOCK_TICKS_PER_SECOND = 100;
/** How often a live child's CPU time is read, so its last reading survives its exit. */
const CPU_SAMPLE_MS = 50;
const live = new Map<Child, number>();
let stoppedCpuSeconds = 0;

/**
 * Spawns `deno run -A script ...args` and waits for its first JSON line.
 *
 * @example
 * ```ts ignore
 * import { spawnChild } from "./child.ts";
 * const server = await spawnChild("bench/server_process.ts", ["--memory"], { name: "server" });
 * console.log(server.info.port, await server.request("mem"));
 * await server.stop();
 * ```
 */
export async function spawnChild(
  script: string,
  args: string[],
  options: SpawnOptions,
): Promise<Child> {
  const flags = ["run", "-A", "--no-prompt"];
  if (options.v8Flags?.length) flags.push(`--v8-flags=${options.v8Flags.join(",")}`);
  if (options.cpuProfDir) flags.push("--cpu-prof", `--cpu-prof-dir=${options.cpuProfDir}`);
  // taskset execs deno in place, so the pid stays the deno process's.
  const child = await JsonLineChild.spawn({
    name: options.name,
    ...(options.cpus ? { command: "taskset" } : {}),
    args: [
      ...(options.cpus ? ["-c", options.cpus, Deno.execPath()] : []),
      ...flags,
      script,
      ...args,
    ],
    startTimeoutMs: options.startTimeoutMs ?? 20_000,
    ...(options.strayLog !== undefined ? { strayLog: options.strayLog } : {}),
  });
  live.set(child, 0);
  const sampler = setInterval(() => {
    const seconds = cpuSecondsOf(child.pid);
    if (seconds !== null) live.set(child, seconds);
  }, CPU_SAMPLE_MS);
  child.status.finally(() => {
    clearInterval(sampler);
    stoppedCpuSeconds += live.get(child) ?? 0;
    live.delete(child);
  });
  return child;
}

/** CPU seconds used by every child so far, the stopped ones included. */
export function childrenCpuSeconds(): number {
  let total = stoppedCpuSeconds;
  for (const [child, last] of live) total += cpuSecondsOf(child.pid) ?? last;
  for (const [pid, last] of tracked) total += cpuSecondsOf(pid) ?? last;
  return total;
}

/** Processes spawned otherwise whose CPU time counts too: pid → last reading. */
const tracked = new Map<number, number>();

/**
 * Counts the CPU time of a process the suite spawned without {@linkcode spawnChild}
 * (the file-transfer ends) in {@linkcode childrenCpuSeconds}, until `status` settles:
 * it is the suite's, not other programs'.
 */
export function trackCpu(pid: number, status: Promise<unknown>): void {
  tracked.set(pid, 0);
  const sampler = setInterval(() => {
    const seconds = cpuSecondsOf(pid);
    if (seconds !== null) tracked.set(pid, seconds);
  }, CPU_SAMPLE_MS);
  status.finally(() => {
    clearInterval(sampler);
    stoppedCpuSeconds += tracked.get(pid) ?? 0;
    tracked.delete(pid);
  });
}

/**
 * Counts CPU seconds the suite caused in processes it did not spawn itself (PostgreSQL's
 * backends, nats-server) in {@linkcode childrenCpuSeconds}: the suite's, not other programs'.
 */
export function countCpuSeconds(seconds: number): void {
  if (Number.isFinite(seconds) && seconds > 0) stoppedCpuSeconds += seconds;
}

/** Other processes' stops (InspIRCd), run by {@linkcode stopAllChildren} too. */
const otherStops = new Set<() => Promise<void>>();

/**
 * Has {@linkcode stopAllChildren} call `stop` too (a process not started by
 * {@linkcode spawnChild}, e.g. InspIRCd), until the returned function is called.
 */
export function stopWithChildren(stop: () => Promise<void>): () => void {
  otherStops.add(stop);
  return () => otherStops.delete(stop);
}

/** Stops every child still running (for the coordinator's `finally` and signals). */
export async function stopAllChildren(): Promise<void> {
  await Promise.allSettled([
    ...[...live.keys()].map((child) => child.stop(1000)),
    ...[...otherStops].map((stop) => stop()),
  ]);
}

/** CPU seconds (user + system) of a process from /proc/<pid>/stat; null when gone. */
export function cpuSecondsOf(pid: number): number | null {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(rest[11]) + Number(rest[12])) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return null;
  }
}
