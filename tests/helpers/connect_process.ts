/**
 * `chat connect` as a child process for tests: stdin is a script written at once and
 * closed, stdout and stderr are collected, `--json` lines can be awaited.
 *
 * Each process gets its own config folder (`XDG_CONFIG_HOME`, a fresh temporary folder
 * unless one is given) so that the user's own `config.json` and `known_servers` never
 * leak into a test.
 *
 * @module
 */

import denoJson from "../../deno.json" with { type: "json" };
import { permissionFlags } from "../../scripts/permissions.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const ROOT = new URL("../../", import.meta.url);
/** Longest wait for an expected line or for the exit. */
export const WAIT_MS = 20_000;
/** The password the tests' accounts use. */
export const PASSWORD = "password123";

/** A JSON line printed with `--json`. */
export type Json = Record<string, unknown>;

/** Options of {@linkcode ConnectProcess}. */
export interface ConnectProcessOptions {
  /** `CHAT_PASSWORD`. Default {@linkcode PASSWORD}. */
  password?: string;
  /** The config home (`XDG_CONFIG_HOME`); the config folder is its `chat/`. */
  configHome?: string;
  /** More environment variables. */
  env?: Record<string, string>;
  /** Run with only the permissions of the `connect` task in deno.json (default `-A`). */
  taskPermissions?: boolean;
}

/** A running `chat connect` with its stdin script written and closed. */
export class ConnectProcess {
  readonly child: Deno.ChildProcess;
  /** Everything printed on stdout so far. */
  stdout = "";
  /** Everything printed on stderr so far. */
  stderr = "";
  readonly #reading: Promise<void>;
  readonly #ownConfigHome: string | null;

  /**
   * Starts `chat connect --port PORT ...args` (without `--port` when `port` is null) with
   * `script` as its stdin.
   */
  constructor(
    port: number | null,
    args: string[],
    script: string,
    options: ConnectProcessOptions = {},
  ) {
    this.#ownConfigHome = options.configHome === undefined ? Deno.makeTempDirSync() : null;
    const perms = options.taskPermissions
      ? permissionFlags((denoJson.tasks as Record<string, string>).connect!)
      : ["-A"];
    this.child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        ...perms,
        MAIN,
        "connect",
        ...(port === null ? [] : ["--port", String(port)]),
        ...args,
      ],
      cwd: ROOT,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
      env: {
        NO_COLOR: "1",
        CHAT_PASSWORD: options.password ?? PASSWORD,
        XDG_CONFIG_HOME: options.configHome ?? this.#ownConfigHome!,
        ...options.env,
      },
    }).spawn();
    const writer = this.child.stdin.getWriter();
    writer.write(new TextEncoder().encode(script)).then(() => writer.close()).catch(() => {});
    const collect = async (stream: ReadableStream<Uint8Array>, add: (s: string) => void) => {
      for await (const chunk of stream.pipeThrough(new TextDecoderStream())) add(chunk);
    };
    this.#reading = Promise.all([
      collect(this.child.stdout, (s) => this.stdout += s),
      collect(this.child.stderr, (s) => this.stderr += s),
    ]).then(() => {});
  }

  /** The complete JSON lines printed so far. */
  get json(): Json[] {
    return this.stdout.split("\n").filter((line) => line.trim() !== "").map((line) => {
      try {
        return JSON.parse(line) as Json;
      } catch {
        throw new Error(`stdout line is not JSON: ${line}`);
      }
    });
  }

  /** Waits until a complete JSON line matches `predicate`. */
  async waitFor(predicate: (line: Json) => boolean, what: string): Promise<Json> {
    const deadline = Date.now() + WAIT_MS;
    while (Date.now() < deadline) {
      const complete = this.stdout.slice(0, this.stdout.lastIndexOf("\n") + 1);
      const found = complete.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l) as Json)
        .find(predicate);
      if (found !== undefined) return found;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    throw new Error(
      `timed out waiting for ${what}; stdout: ${this.stdout}; stderr: ${this.stderr}`,
    );
  }

  /** Waits until stdout (human output) has a complete line matching `pattern`; returns it. */
  async waitForLine(pattern: RegExp, what: string): Promise<string> {
    const deadline = Date.now() + WAIT_MS;
    while (Date.now() < deadline) {
      const complete = this.stdout.slice(0, this.stdout.lastIndexOf("\n") + 1);
      const found = complete.split("\n").find((l) => pattern.test(l));
      if (found !== undefined) return found;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    throw new Error(
      `timed out waiting for ${what}; stdout: ${this.stdout}; stderr: ${this.stderr}`,
    );
  }

  /** Waits for the exit (killing the process after {@linkcode WAIT_MS}); returns the code. */
  async finish(): Promise<number> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const status = await Promise.race([
        this.child.status,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => {
            this.child.kill("SIGKILL");
            reject(
              new Error(`process did not exit; stdout: ${this.stdout}; stderr: ${this.stderr}`),
            );
          }, WAIT_MS);
        }),
      ]).finally(() => clearTimeout(timer));
      await this.#reading;
      return status.code;
    } finally {
      if (this.#ownConfigHome !== null) {
        await Deno.remove(this.#ownConfigHome, { recursive: true }).catch(() => {});
      }
    }
  }
}
