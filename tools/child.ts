/**
 * Child processes as a coordinator sees them (`deno task bench`, `deno task soak`): a
 * spawned process, its first JSON line, JSON-line requests with timeouts, signals, and
 * a stop that always ends the process.
 *
 * @module
 */

import { textLines } from "./lines.ts";

/** Error of a child: its answer's error, a timeout, or its exit. */
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

/** How to start a child. */
export interface ChildSpec {
  /** A name for messages. */
  name: string;
  /** The program; default the running Deno (`taskset` can pin a child to CPUs). */
  command?: string;
  /** Its arguments, e.g. `["run", "--allow-net=127.0.0.1", "child.ts"]`. */
  args: string[];
  /** Working folder. */
  cwd?: string;
  /** Milliseconds to wait for the first line. Default 30 s. */
  startTimeoutMs?: number;
  /**
   * A file that gets the lines the child prints on stdout that are not JSON (a V8 trace:
   * `--trace-gc`). The child's C stdio is then line-buffered (coreutils' `stdbuf` library,
   * where installed), so that a trace does not end inside a reply's line.
   */
  strayLog?: string;
}

/** coreutils' library that `stdbuf` preloads, where Debian and others install it. */
const STDBUF_LIBRARIES = [
  "/usr/libexec/coreutils/libstdbuf.so",
  "/usr/lib/coreutils/libstdbuf.so",
];

/**
 * One child process speaking JSON lines (see `side_channel.ts` for the child's side).
 *
 * @example
 * ```ts ignore
 * import { JsonLineChild } from "./child.ts";
 * const child = await JsonLineChild.spawn({
 *   name: "clients",
 *   args: ["run", "--allow-net=127.0.0.1", "soak/good_clients.ts", "{}"],
 * });
 * await child.request("stop");
 * await child.stop();
 * ```
 */
export class JsonLineChild {
  /** The process. */
  readonly process: Deno.ChildProcess;
  /** Its name in messages. */
  readonly name: string;
  /** The first line it printed, parsed. */
  info: Record<string, unknown> = {};
  /** Resolves with the exit status once the process has ended. */
  readonly status: Promise<Deno.CommandStatus>;
  #nextId = 1;
  #waiters = new Map<
    number,
    { resolve: (v: Record<string, unknown>) => void; reject: (e: Error) => void }
  >();
  #stderrTail = "";
  #exited = false;
  #firstLine: Promise<Record<string, unknown>>;
  #resolveFirst!: (v: Record<string, unknown>) => void;
  #rejectFirst!: (e: Error) => void;
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  /** Where stray stdout lines go ({@linkcode ChildSpec.strayLog}), null: nowhere. */
  readonly #strayLog: Deno.FsFile | null;

  private constructor(process: Deno.ChildProcess, name: string, strayLog: Deno.FsFile | null) {
    this.process = process;
    this.name = name;
    this.#strayLog = strayLog;
    this.#firstLine = new Promise((resolve, reject) => {
      this.#resolveFirst = resolve;
      this.#rejectFirst = reject;
    });
    this.#firstLine.catch(() => {});
    this.#writer = process.stdin.getWriter();
    const stdout = this.#readStdout();
    const stderr = this.#readStderr();
    this.status = process.status.then(async (status) => {
      // Let the pipes drain, so the error below can quote the last words.
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        Promise.allSettled([stdout, stderr]),
        new Promise((resolve) => timer = setTimeout(resolve, 500)),
      ]);
      clearTimeout(timer);
      this.#exited = true;
      const error = new ChildError(
        "exited",
        `${name} exited (${describeStatus(status)})${
          this.#stderrTail ? `: ${this.#stderrTail.trim().slice(-800)}` : ""
        }`,
      );
      this.#rejectFirst(error);
      for (const waiter of this.#waiters.values()) waiter.reject(error);
      this.#waiters.clear();
      return status;
    });
  }

  /**
   * Spawns the child and waits for its first JSON line; a first line with an `error`
   * field is a failed start.
   *
   * @throws {ChildError} when it does not start in time, exits, or reports an error.
   */
  static async spawn(spec: ChildSpec): Promise<JsonLineChild> {
    const process = new Deno.Command(spec.command ?? Deno.execPath(), {
      args: spec.args,
      ...(spec.cwd !== undefined ? { cwd: spec.cwd } : {}),
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1", ...(spec.strayLog !== undefined ? lineBuffered() : {}) },
    }).spawn();
    const strayLog = spec.strayLog === undefined
      ? null
      : await Deno.open(spec.strayLog, { write: true, create: true, append: true });
    const child = new JsonLineChild(process, spec.name, strayLog);
    const timeoutMs = spec.startTimeoutMs ?? 30_000;
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      child.info = await Promise.race([
        child.#firstLine,
        new Promise<never>((_, reject) =>
          timer = setTimeout(
            () =>
              reject(new ChildError("timeout", `${spec.name} did not start in ${timeoutMs} ms`)),
            timeoutMs,
          )
        ),
      ]);
      if (typeof child.info.error === "string") {
        throw new ChildError("failed", `${spec.name} failed to start: ${child.info.error}`);
      }
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

  /** The last few kilobytes it wrote to stderr. */
  get stderrTail(): string {
    return this.#stderrTail;
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
      const line = new TextEncoder().encode(JSON.stringify({ ...params, id, cmd }) + "\n");
      this.#writer.write(line).catch((err) => {
        this.#waiters.get(id)?.reject(new ChildError("exited", `${this.name}: ${err}`));
        this.#waiters.delete(id);
      });
    });
  }

  /** Sends a signal; false when the process has already ended. */
  kill(signal: Deno.Signal): boolean {
    if (this.#exited) return false;
    try {
      this.process.kill(signal);
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Asks the child to exit, waits up to `graceMs`, then kills it with SIGKILL. Never
   * throws; resolves once the process has ended.
   */
  async stop(graceMs = 3000): Promise<void> {
    if (!this.#exited) {
      this.request("exit", {}, graceMs).catch(() => {});
      let timer: ReturnType<typeof setTimeout> | undefined;
      const ended = await Promise.race([
        this.status.then(() => true, () => true),
        new Promise<boolean>((resolve) => timer = setTimeout(() => resolve(false), graceMs)),
      ]);
      clearTimeout(timer);
      if (!ended) this.kill("SIGKILL");
    }
    await this.status.catch(() => {});
    try {
      await this.#writer.close();
    } catch {
      // the pipe is already closed
    }
  }

  async #readStdout(): Promise<void> {
    let first = true;
    try {
      for await (const line of textLines(this.process.stdout)) {
        let message: Record<string, unknown>;
        try {
          message = JSON.parse(line);
        } catch {
          const reply = this.#stray(line);
          if (reply === null) continue; // a stray print; not ours
          message = reply;
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
    } catch {
      // the process ended
    } finally {
      this.#strayLog?.close();
    }
  }

  /**
   * Keeps a stray line in the stray log, if any, and gives back a reply glued to its end
   * (a trace written apart from the child's own writes may lack its last newline).
   */
  #stray(line: string): Record<string, unknown> | null {
    const log = this.#strayLog;
    if (log === null) return null;
    const at = Math.max(line.lastIndexOf('{"id":'), line.lastIndexOf('{"port":'));
    let reply: Record<string, unknown> | null = null;
    try {
      if (at > 0) reply = JSON.parse(line.slice(at));
    } catch {
      // not a reply
    }
    log.writeSync(new TextEncoder().encode((reply === null ? line : line.slice(0, at)) + "\n"));
    return reply;
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

/** Describes an exit status in words: `code 1`, `SIGKILL`. */
export function describeStatus(status: Deno.CommandStatus): string {
  return status.signal !== null ? `signal ${status.signal}` : `code ${status.code}`;
}

/** The environment that makes a child's C stdio line-buffered, where `stdbuf`'s library is. */
function lineBuffered(): Record<string, string> {
  for (const library of STDBUF_LIBRARIES) {
    try {
      Deno.statSync(library);
      return { LD_PRELOAD: library, _STDBUF_O: "L" };
    } catch {
      // not here
    }
  }
  return {};
}
