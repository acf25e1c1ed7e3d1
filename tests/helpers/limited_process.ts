/**
 * A Deno child process under a low file descriptor limit (`prlimit` from util-linux), its
 * stdout and stderr read line by line so that a test can wait for a line to appear.
 *
 * @module
 */

import { textLines } from "../../tools/lines.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

/** Whether `prlimit` can run here (Linux with util-linux). */
export const HAS_PRLIMIT: boolean = (() => {
  if (Deno.build.os !== "linux") return false;
  try {
    return new Deno.Command("prlimit", { args: ["--version"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
})();

/** A child started by {@linkcode spawnLimited}. */
export class LimitedProcess implements AsyncDisposable {
  readonly child: Deno.ChildProcess;
  /** Every line read so far, per stream. */
  readonly lines: { stdout: string[]; stderr: string[] } = { stdout: [], stderr: [] };
  #waiters: { stream: "stdout" | "stderr"; pattern: RegExp; resolve: (line: string) => void }[] =
    [];
  #exited = false;

  constructor(child: Deno.ChildProcess) {
    this.child = child;
    this.#pump("stdout", child.stdout);
    this.#pump("stderr", child.stderr);
    child.status.then(() => this.#exited = true);
  }

  /** Whether the process has exited. */
  get exited(): boolean {
    return this.#exited;
  }

  /** Resolves with the first line of `stream` matching `pattern` (seen already or to come). */
  waitFor(stream: "stdout" | "stderr", pattern: RegExp, ms = 10_000): Promise<string> {
    const seen = this.lines[stream].find((line) => pattern.test(line));
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(
          new Error(
            `no ${stream} line matched ${pattern} within ${ms} ms; stderr:\n${
              this.lines.stderr.slice(-20).join("\n")
            }`,
          ),
        );
      }, ms);
      this.#waiters.push({
        stream,
        pattern,
        resolve: (line) => {
          clearTimeout(timer);
          resolve(line);
        },
      });
    });
  }

  /** Sends SIGTERM and returns the exit status. */
  async stop(): Promise<Deno.CommandStatus> {
    if (!this.#exited) this.child.kill("SIGTERM");
    return await this.child.status;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (!this.#exited) this.child.kill("SIGKILL");
    await this.child.status;
  }

  async #pump(stream: "stdout" | "stderr", bytes: ReadableStream<Uint8Array>): Promise<void> {
    for await (const line of textLines(bytes)) {
      this.lines[stream].push(line);
      for (const waiter of this.#waiters.filter((w) => w.stream === stream)) {
        if (!waiter.pattern.test(line)) continue;
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        waiter.resolve(line);
      }
    }
  }
}

/**
 * Starts `deno run -A SCRIPT ...args` from the repository root with at most `nofile` file
 * descriptors (soft and hard), colours off.
 */
export function spawnLimited(
  nofile: number,
  script: string,
  args: string[],
  env: Record<string, string> = {},
): LimitedProcess {
  const child = new Deno.Command("prlimit", {
    args: [`--nofile=${nofile}:${nofile}`, Deno.execPath(), "run", "-A", script, ...args],
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", ...env },
  }).spawn();
  return new LimitedProcess(child);
}
