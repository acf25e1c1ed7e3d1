/**
 * Benchmark child processes as seen from the coordinator: spawning `deno run` on a
 * bench script, its first JSON line, JSON-line requests with timeouts, CPU time and
 * RSS from /proc, and a stop that always ends the process.
 *
 * @module
 */

/** Options of {@linkcode Child.spawn}. */
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
}

/** Error of a request to a child: its answer's error, a timeout, or its exit. */
export class ChildError extends Error {
  /** Stable code: `failed`, `timeout` or `exited`. */
  readonly code: "failed" | "timeout" | "exited";
  /** Creates the error. */
  constructor(code: "failed" | "timeout" | "exited", message: string) {
    super(message);
    this.name = "ChildError";
    this.code = code;
  }
}

const CLOCK_TICKS_PER_SECOND = 100;
const live = new Set<Child>();
let stoppedCpuSeconds = 0;

/** CPU seconds used by every child so far, the stopped ones included. */
export function childrenCpuSeconds(): number {
  let total = stoppedCpuSeconds;
  for (const child of live) total += cpuSecondsOf(child.pid) ?? 0;
  return total;
}

/** Stops every child still running (for the coordinator's `finally` and signals). */
export async function stopAllChildren(): Promise<void> {
  await Promise.allSettled([...live].map((child) => child.stop(1000)));
}

/**
 * One child process speaking JSON lines.
 *
 * @example
 * ```ts ignore
 * import { Child } from "./child.ts";
 * const server = await Child.spawn("bench/server_process.ts", ["--memory"], { name: "server" });
 * console.log(server.info.port, await server.request("mem"));
 * await server.stop();
 * ```
 */
export class Child {
  /** The process. */
  readonly process: Deno.ChildProcess;
  /** Its name in messages. */
  readonly name: string;
  /** The first line it printed, parsed. */
  info: Record<string, unknown> = {};
  #nextId = 1;
  #waiters = new Map<
    number,
    { resolve: (v: Record<string, unknown>) => void; reject: (e: Error) => void }
  >();
  #stderrTail = "";
  #exited = false;
  #exitStatus: Promise<Deno.CommandStatus>;
  #firstLine: Promise<Record<string, unknown>>;
  #resolveFirst!: (v: Record<string, unknown>) => void;
  #rejectFirst!: (e: Error) => void;
  #writer: WritableStreamDefaultWriter<Uint8Array>;

  private constructor(process: Deno.ChildProcess, name: string) {
    this.process = process;
    this.name = name;
    this.#firstLine = new Promise((resolve, reject) => {
      this.#resolveFirst = resolve;
      this.#rejectFirst = reject;
    });
    this.#firstLine.catch(() => {});
    this.#writer = process.stdin.getWriter();
    this.#exitStatus = process.status.then((status) => {
      this.#exited = true;
      live.delete(this);
      const error = new ChildError(
        "exited",
        `${name} exited (code ${status.code}${status.signal ? `, ${status.signal}` : ""})${
          this.#stderrTail ? `: ${this.#stderrTail.trim().slice(-600)}` : ""
        }`,
      );
      this.#rejectFirst(error);
      for (const waiter of this.#waiters.values()) waiter.reject(error);
      this.#waiters.clear();
      return status;
    });
    this.#readStdout();
    this.#readStderr();
  }

  /** Spawns `deno run -A script ...args` and waits for its first JSON line. */
  static async spawn(script: string, args: string[], options: SpawnOptions): Promise<Child> {
    const flags = ["run", "-A", "--no-prompt"];
    if (options.v8Flags?.length) flags.push(`--v8-flags=${options.v8Flags.join(",")}`);
    if (options.cpuProfDir) flags.push("--cpu-prof", `--cpu-prof-dir=${options.cpuProfDir}`);
    // taskset execs deno in place, so the pid stays the deno process's.
    const command = options.cpus ? "taskset" : Deno.execPath();
    const prefix = options.cpus ? ["-c", options.cpus, Deno.execPath()] : [];
    const process = new Deno.Command(command, {
      args: [...prefix, ...flags, script, ...args],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).spawn();
    const child = new Child(process, options.name);
    live.add(child);
    const timeoutMs = options.startTimeoutMs ?? 20_000;
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      child.info = await Promise.race([
        child.#firstLine,
        new Promise<never>((_, reject) =>
          timer = setTimeout(
            () =>
              reject(new ChildError("timeout", `${options.name} did not start in ${timeoutMs} ms`)),
            timeoutMs,
          )
        ),
      ]);
    } catch (err) {
      await child.stop(200);
      throw err;
    } finally {
      clearTimeout(timer);
    }
    return child;
  }

  /** The process id. */
  get pid(): number {
    return this.process.pid;
  }

  /** Whether the process has ended. */
  get exited(): boolean {
    return this.#exited;
  }

  /** Sends a command and awaits its answer, failing after `timeoutMs`. */
  request(
    cmd: string,
    params: Record<string, unknown> = {},
    timeoutMs = 30_000,
  ): Promise<Record<string, unknown>> {
    if (this.#exited) return Promise.reject(new ChildError("exited", `${this.name} has exited`));
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(id);
        reject(
          new ChildError("timeout", `${this.name}: "${cmd}" got no answer in ${timeoutMs} ms`),
        );
      }, timeoutMs);
      this.#waiters.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      const line = new TextEncoder().encode(JSON.stringify({ id, cmd, ...params }) + "\n");
      this.#writer.write(line).catch((err) => {
        this.#waiters.get(id)?.reject(new ChildError("exited", `${this.name}: ${err}`));
        this.#waiters.delete(id);
      });
    });
  }

  /** CPU seconds (user + system) used so far; null once it has exited. */
  cpuSeconds(): number | null {
    return cpuSecondsOf(this.pid);
  }

  /** VmRSS in KiB; null once it has exited. */
  rssKiB(): number | null {
    try {
      const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(Deno.readTextFileSync(`/proc/${this.pid}/status`));
      return match === null ? null : Number(match[1]);
    } catch {
      return null;
    }
  }

  /**
   * Asks the child to exit, waits up to `graceMs`, then kills it. Never throws.
   * Resolves once the process has ended.
   */
  async stop(graceMs = 3000): Promise<void> {
    if (!this.#exited) {
      // Last reading before the process goes (its /proc entry goes with it).
      let lastCpu = cpuSecondsOf(this.pid) ?? 0;
      const sampler = setInterval(() => lastCpu = cpuSecondsOf(this.pid) ?? lastCpu, 50);
      this.#exitStatus.finally(() => {
        clearInterval(sampler);
        stoppedCpuSeconds += lastCpu;
      });
      this.request("exit", {}, graceMs).catch(() => {});
      let timer: ReturnType<typeof setTimeout> | undefined;
      const ended = await Promise.race([
        this.#exitStatus.then(() => true),
        new Promise<boolean>((resolve) => timer = setTimeout(() => resolve(false), graceMs)),
      ]);
      clearTimeout(timer);
      if (!ended) {
        try {
          this.process.kill("SIGKILL");
        } catch {
          // already gone
        }
      }
    }
    await this.#exitStatus.catch(() => {});
    try {
      await this.#writer.close();
    } catch {
      // the pipe is already closed
    }
  }

  async #readStdout(): Promise<void> {
    const decoder = new TextDecoder();
    let buffered = "";
    let first = true;
    try {
      for await (const chunk of this.process.stdout) {
        buffered += decoder.decode(chunk, { stream: true });
        let newline: number;
        while ((newline = buffered.indexOf("\n")) >= 0) {
          const line = buffered.slice(0, newline);
          buffered = buffered.slice(newline + 1);
          let message: Record<string, unknown>;
          try {
            message = JSON.parse(line);
          } catch {
            continue; // a stray print; not ours
          }
          if (first) {
            first = false;
            this.#resolveFirst(message);
            continue;
          }
          const waiter = this.#waiters.get(message.id as number);
          if (waiter === undefined) continue;
          this.#waiters.delete(message.id as number);
          if (typeof message.error === "string") {
            waiter.reject(new ChildError("failed", `${this.name}: ${message.error}`));
          } else {
            waiter.resolve(message);
          }
        }
      }
    } catch {
      // the process ended
    }
  }

  async #readStderr(): Promise<void> {
    const decoder = new TextDecoder();
    try {
      for await (const chunk of this.process.stderr) {
        this.#stderrTail = (this.#stderrTail + decoder.decode(chunk, { stream: true })).slice(
          -4000,
        );
      }
    } catch {
      // the process ended
    }
  }
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
