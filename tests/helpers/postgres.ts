/**
 * A scratch PostgreSQL server for tests: `initdb` in a temp folder owned by the `postgres`
 * user, `pg_ctl start` on 127.0.0.1 and a free port, a fresh database per
 * {@linkcode ScratchPostgres.createDatabase} call (so tests are isolated and may share one
 * server), `stop()` / `start()` / `restart()` for failure tests (its port is reserved against
 * the other tests until it is closed: ports.ts), and `close()` that stops it, removes every
 * file and gives the port back. One server per test file: test files run in parallel processes,
 * each starts its own on its own port.
 *
 * PostgreSQL refuses to run as root, so when the test runs as root `initdb` and `pg_ctl` run
 * as the `postgres` user (`runuser -u postgres --`). Tests skip themselves when PostgreSQL is
 * not installed: {@linkcode startPostgres} then returns null and {@linkcode POSTGRES_SKIP}
 * says why.
 *
 * @example
 * ```ts ignore
 * import { POSTGRES_SKIP, startPostgres } from "./postgres.ts";
 * const pg = await startPostgres(); // null when PostgreSQL is not installed
 * Deno.test({ name: "uses PostgreSQL", ignore: pg === null }, async () => {
 *   const url = await pg!.createDatabase(); // postgres://postgres@127.0.0.1:PORT/t_1
 *   // ... connect to url ...
 * });
 * // The server is stopped and its folder removed when the test file's process ends
 * // (an `unload` handler); `await pg.close()` does it earlier.
 * ```
 *
 * @module
 */

import postgres from "postgres";
import { join } from "node:path";
import { onFreePort, type PortReservation } from "./ports.ts";

/** Options of {@linkcode startPostgres}. */
export interface ScratchPostgresOptions {
  /**
   * PostgreSQL's `fsync` (default true: commits reach the disk as in production). False
   * makes writes faster where durability across a machine crash does not matter.
   */
  fsync?: boolean;
  /**
   * More server settings, `name=value` each (passed as `-c name=value`), e.g.
   * `wal_writer_delay=10s` to keep commits made with `synchronous_commit` off in memory
   * long enough for a crash (`stop("immediate")`) to lose them.
   */
  settings?: string[];
}

const BIN_DIRS = ["/usr/lib/postgresql"];

function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/** The folder holding `initdb` and `pg_ctl`: from PATH, else the newest /usr/lib/postgresql/N/bin. */
export function findPostgresBin(): string | null {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    if (dir && isFile(join(dir, "initdb")) && isFile(join(dir, "pg_ctl"))) {
      // /usr/local/bin/initdb may be a link: pg_ctl finds `postgres` beside its real path.
      try {
        return join(Deno.realPathSync(join(dir, "pg_ctl")), "..");
      } catch {
        return dir;
      }
    }
  }
  for (const base of BIN_DIRS) {
    let versions: string[] = [];
    try {
      versions = [...Deno.readDirSync(base)].map((e) => e.name).filter((n) => /^\d+$/.test(n));
    } catch {
      continue;
    }
    versions.sort((a, b) => Number(b) - Number(a));
    for (const version of versions) {
      const bin = join(base, version, "bin");
      if (isFile(join(bin, "initdb")) && isFile(join(bin, "pg_ctl"))) return bin;
    }
  }
  return null;
}

const BIN = Deno.build.os === "windows" ? null : findPostgresBin();

/** Why PostgreSQL tests skip here, or null when PostgreSQL is installed. */
export const POSTGRES_SKIP: string | null = BIN === null
  ? "PostgreSQL is not installed (no initdb/pg_ctl on PATH or in /usr/lib/postgresql/*/bin), " +
    "so the PostgreSQL tests are skipped (install it, e.g. `apt-get install -y postgresql`)"
  : null;

const IS_ROOT = Deno.build.os !== "windows" && Deno.uid() === 0;

/** Runs a PostgreSQL program, as the `postgres` user when we are root; throws on failure. */
async function run(program: string, args: string[]): Promise<void> {
  const path = join(BIN!, program);
  const command = IS_ROOT
    ? new Deno.Command("runuser", { args: ["-u", "postgres", "--", path, ...args] })
    : new Deno.Command(path, { args });
  const out = await command.output();
  if (!out.success) {
    const text = new TextDecoder().decode(out.stderr) + new TextDecoder().decode(out.stdout);
    throw new Error(`${program} ${args.join(" ")} failed (${out.code}): ${text.trim()}`);
  }
}

function runSync(program: string, args: string[]): void {
  const path = join(BIN!, program);
  const command = IS_ROOT
    ? new Deno.Command("runuser", {
      args: ["-u", "postgres", "--", path, ...args],
      stdout: "null",
      stderr: "null",
    })
    : new Deno.Command(path, { args, stdout: "null", stderr: "null" });
  try {
    command.outputSync();
  } catch {
    // best effort, at exit
  }
}

let databases = 0;

/** A scratch PostgreSQL server of a test file; see the module doc. */
export class ScratchPostgres {
  /** Host it listens on. */
  readonly host = "127.0.0.1";
  /** Superuser name (trust authentication: no password). */
  readonly user = "postgres";
  #running = false;
  #closed = false;
  readonly #unload = () => this.closeSync();

  /** TCP port on 127.0.0.1. */
  readonly port: number;
  readonly #reservation: PortReservation;

  private constructor(
    /** Temp folder holding `data/`, `sock/` and `log`. */
    readonly dir: string,
    reservation: PortReservation,
    readonly options: ScratchPostgresOptions,
  ) {
    this.port = reservation.port;
    this.#reservation = reservation;
  }

  /** Data folder. */
  get dataDir(): string {
    return join(this.dir, "data");
  }

  /** Server log (read it when a test fails oddly). */
  get logFile(): string {
    return join(this.dir, "log");
  }

  /** Whether the server is running (between start and stop). */
  get running(): boolean {
    return this.#running;
  }

  /** Connection URL of `database` (default `postgres`). */
  url(database = "postgres"): string {
    return `postgres://${this.user}@${this.host}:${this.port}/${database}`;
  }

  /** @internal Initializes a folder and starts a server on a free port. */
  static async create(options: ScratchPostgresOptions): Promise<ScratchPostgres> {
    const dir = await Deno.makeTempDir({ prefix: "chat-pg-" });
    try {
      await Deno.mkdir(join(dir, "data"), { mode: 0o700 });
      await Deno.mkdir(join(dir, "sock"), { mode: 0o700 });
      await Deno.writeTextFile(join(dir, "log"), "");
      if (IS_ROOT) {
        const { uid, gid } = postgresIds();
        for (const path of [dir, join(dir, "data"), join(dir, "sock"), join(dir, "log")]) {
          await Deno.chown(path, uid, gid);
        }
      }
      await run("initdb", [
        "-D",
        join(dir, "data"),
        "-A",
        "trust",
        "-U",
        "postgres",
        "-E",
        "UTF8",
        "--no-locale",
        "--no-sync", // a scratch folder: nothing to keep across a machine crash
      ]);
      const server = await onFreePort(async (_port, reservation) => {
        const server = new ScratchPostgres(dir, reservation, options);
        await server.start();
        return server;
      });
      globalThis.addEventListener("unload", server.#unload);
      return server;
    } catch (err) {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      throw err;
    }
  }

  /** Starts the server (again) on its port; resolves once it accepts connections. */
  async start(): Promise<void> {
    if (this.#closed) throw new Error("the scratch PostgreSQL is closed");
    if (this.#running) return;
    const settings = [
      `-p ${this.port}`,
      `-k ${join(this.dir, "sock")}`,
      "-c listen_addresses=127.0.0.1",
      `-c fsync=${this.options.fsync === false ? "off" : "on"}`,
      "-c max_connections=200",
      "-c shared_buffers=16MB",
      ...(this.options.settings ?? []).map((setting) => `-c ${setting}`),
    ];
    // PostgreSQL starts even when its TCP port is taken (it logs a warning and serves its
    // Unix socket only), and `pg_ctl -w` then reports it ready. The port is reserved against
    // the other tests (ports.ts), not against other programs: started again until it
    // listens on its port (within 60 s).
    const deadline = Date.now() + 60_000;
    while (true) {
      await run("pg_ctl", [
        "-D",
        this.dataDir,
        "-l",
        this.logFile,
        "-w",
        "-t",
        "60",
        "-o",
        settings.join(" "),
        "start",
      ]);
      this.#running = true;
      if (await listening(this.port)) return;
      await this.stop();
      if (Date.now() > deadline) {
        throw new Error(`the scratch PostgreSQL could not listen on its port ${this.port}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  /**
   * Stops the server: `fast` (default) disconnects clients and shuts down cleanly,
   * `immediate` kills it without a checkpoint (a crash; the next start recovers).
   */
  async stop(mode: "fast" | "immediate" = "fast"): Promise<void> {
    if (!this.#running) return;
    await run("pg_ctl", ["-D", this.dataDir, "-w", "-t", "60", "-m", mode, "stop"]);
    this.#running = false;
  }

  /** Stops and starts the server on the same port. */
  async restart(mode: "fast" | "immediate" = "fast"): Promise<void> {
    await this.stop(mode);
    await this.start();
  }

  /**
   * Creates a fresh, empty database and returns its connection URL. Each call gives a new
   * one, so tests sharing the server do not see each other's rows.
   */
  async createDatabase(): Promise<string> {
    const name = `t_${Deno.pid}_${++databases}`;
    const sql = postgres(this.url(), { max: 1, onnotice: () => {}, connect_timeout: 30 });
    try {
      await sql.unsafe(`create database ${name}`);
    } finally {
      await sql.end({ timeout: 5 });
    }
    return this.url(name);
  }

  /** Stops the server (immediately) and removes its folder. */
  async close(): Promise<void> {
    if (this.#closed) return;
    try {
      await this.stop("immediate");
    } finally {
      this.#closed = true;
      globalThis.removeEventListener("unload", this.#unload);
      this.#reservation.release();
      await Deno.remove(this.dir, { recursive: true }).catch(() => {});
    }
  }

  /** {@linkcode ScratchPostgres.close}, synchronously (run at process exit). */
  closeSync(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#running) {
      runSync("pg_ctl", ["-D", this.dataDir, "-w", "-t", "30", "-m", "immediate", "stop"]);
    }
    this.#running = false;
    this.#reservation.release();
    try {
      Deno.removeSync(this.dir, { recursive: true });
    } catch {
      // best effort
    }
  }
}

function postgresIds(): { uid: number; gid: number } {
  const out = new Deno.Command("id", { args: ["postgres"] }).outputSync();
  const text = new TextDecoder().decode(out.stdout);
  const uid = /uid=(\d+)/.exec(text)?.[1];
  const gid = /gid=(\d+)/.exec(text)?.[1];
  if (!out.success || uid === undefined || gid === undefined) {
    throw new Error("running as root, but there is no `postgres` user to run PostgreSQL as");
  }
  return { uid: Number(uid), gid: Number(gid) };
}

let warned = false;

/**
 * Starts a scratch PostgreSQL server (see the module doc), or returns null, printing
 * {@linkcode POSTGRES_SKIP} once, when PostgreSQL is not installed. The server is closed
 * when the process ends, also after a failed test; `close()` closes it earlier.
 */
export async function startPostgres(
  options: ScratchPostgresOptions = {},
): Promise<ScratchPostgres | null> {
  if (POSTGRES_SKIP !== null) {
    if (!warned) console.warn(POSTGRES_SKIP);
    warned = true;
    return null;
  }
  return await ScratchPostgres.create(options);
}

/** Whether something accepts connections on 127.0.0.1:`port`. */
async function listening(port: number): Promise<boolean> {
  try {
    (await Deno.connect({ hostname: "127.0.0.1", port })).close();
    return true;
  } catch {
    return false;
  }
}
