/**
 * A real cluster for tests: a scratch PostgreSQL (`postgres.ts`), a `nats-server`
 * (`nats.ts`) and N `chat serve` nodes, each a CHILD PROCESS started as a user starts it
 * (`deno run <the serve task's permissions> main.ts serve --postgres ... --nats ...`) on
 * a free port. Everything is stopped by {@linkcode TestCluster.close} (`await using`),
 * also when a test fails, and the children are killed if the test process exits first.
 * Tests skip when PostgreSQL or nats-server is not installed ({@linkcode CLUSTER_SKIP}).
 *
 * @example
 * ```ts ignore
 * import { CLUSTER_SKIP, startCluster } from "./cluster.ts";
 * Deno.test({ name: "two nodes", ignore: CLUSTER_SKIP !== null }, async () => {
 *   await using cluster = await startCluster({ nodes: 2 });
 *   const [a, b] = cluster.nodes;
 *   // ChatClient.connect({ port: a.port, ... }), a.kill("SIGKILL"), cluster.nats.restart()...
 * });
 * ```
 *
 * @module
 */

import denoJson from "../../deno.json" with { type: "json" };
import { permissionFlags } from "../../scripts/permissions.ts";
import { serveV8FlagArgs } from "../../scripts/v8_flags.ts";
import { NATS_SKIP, NatsServer } from "./nats.ts";
import { POSTGRES_SKIP, type ScratchPostgres, startPostgres } from "./postgres.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const ROOT = new URL("../../", import.meta.url).pathname;
const SERVE_PERMISSIONS = permissionFlags((denoJson.tasks as Record<string, string>).serve);

/** How long a node may take to print its listening line (a loaded 2-core machine). */
const START_MS = 60_000;

/** Why the cluster tests skip here, or null when PostgreSQL and nats-server are installed. */
export const CLUSTER_SKIP: string | null = POSTGRES_SKIP ?? NATS_SKIP ?? null;

/**
 * Flags every test node gets: loopback, a free port, no flood limits (tests log in and
 * send quickly from one address), quick drains, heartbeats and engine waits.
 */
export const TEST_NODE_FLAGS: readonly string[] = [
  "--host",
  "127.0.0.1",
  "--port",
  "0",
  "--rate-messages",
  "0",
  "--rate-requests",
  "0",
  "--rate-bytes",
  "0",
  "--max-connections-per-ip",
  "0",
  "--max-sessions",
  "0",
  "--login-failures",
  "0",
  "--hash-queue",
  "0",
  "--registrations-per-ip",
  "0",
  "--registrations",
  "0",
  "--drain-window",
  "0",
];

/** One `chat serve` child process. */
export class ClusterNode {
  /** Its place in {@linkcode TestCluster.nodes}, from 0. */
  readonly index: number;
  /** The port it listens on. */
  readonly port: number;
  /** The process. */
  readonly child: Deno.ChildProcess;
  /** What it printed on stdout and stderr (log lines), for failure messages. */
  readonly output: string[];
  #exited = false;

  constructor(index: number, port: number, child: Deno.ChildProcess, output: string[]) {
    this.index = index;
    this.port = port;
    this.child = child;
    this.output = output;
    child.status.then(() => this.#exited = true);
  }

  /** Whether the process is still running. */
  get running(): boolean {
    return !this.#exited;
  }

  /** Sends `signal` (SIGKILL: a crash; SIGTERM: a drain) and waits for the exit. */
  async kill(signal: Deno.Signal = "SIGTERM"): Promise<Deno.CommandStatus> {
    if (!this.#exited) {
      try {
        this.child.kill(signal);
      } catch { /* already gone */ }
    }
    return await this.child.status;
  }

  /** The last lines it wrote (for assertion messages). */
  tail(lines = 40): string {
    return this.output.slice(-lines).join("\n");
  }
}

/** Options of {@linkcode startCluster}. */
export interface ClusterOptions {
  /** Nodes started at once (default 2). */
  nodes?: number;
  /** More flags for every node (after {@linkcode TEST_NODE_FLAGS}). */
  args?: string[];
  /** The base flags of every node (default {@linkcode TEST_NODE_FLAGS}). */
  nodeFlags?: readonly string[];
  /** PostgreSQL's fsync (default false: a scratch database). */
  fsync?: boolean;
  /**
   * A PostgreSQL server of its own, stopped at close (default false: one scratch server
   * per test process, shared by its clusters, each with a fresh database; the tests of a
   * file run one after another, so one may stop and start it).
   */
  ownPostgres?: boolean;
}

let shared: Promise<ScratchPostgres | null> | undefined;

/** PostgreSQL, NATS and the nodes of one test. */
export class TestCluster implements AsyncDisposable {
  /** The scratch PostgreSQL server. */
  readonly postgres: ScratchPostgres;
  /** The nats-server. */
  readonly nats: NatsServer;
  /** The database of this cluster (a fresh one). */
  readonly databaseUrl: string;
  /** The nodes started so far (killed ones stay, not running). */
  readonly nodes: ClusterNode[] = [];
  readonly #args: readonly string[];
  readonly #nodeFlags: readonly string[];
  readonly #ownsPostgres: boolean;
  readonly #unload = () => this.#killSync();
  #closed = false;

  constructor(
    postgres: ScratchPostgres,
    nats: NatsServer,
    databaseUrl: string,
    args: readonly string[],
    nodeFlags: readonly string[] = TEST_NODE_FLAGS,
    ownsPostgres = true,
  ) {
    this.#ownsPostgres = ownsPostgres;
    this.postgres = postgres;
    this.nats = nats;
    this.databaseUrl = databaseUrl;
    this.#args = args;
    this.#nodeFlags = nodeFlags;
    globalThis.addEventListener("unload", this.#unload);
  }

  /** The flags that make a `chat serve` a node of this cluster. */
  get engineFlags(): string[] {
    return ["--postgres", this.databaseUrl, "--nats", this.nats.url, "--engine-wait", "60"];
  }

  /**
   * Starts one more node; resolves once it listens. `engines: false` leaves out the
   * engine flags (given through `env` instead); `main` runs that script in place of
   * `main.ts` (with the same permissions and arguments, e.g. `killable_serve.ts`).
   */
  async startNode(
    args: string[] = [],
    options: { env?: Record<string, string>; engines?: boolean; main?: string } = {},
  ): Promise<ClusterNode> {
    const node = await spawnNode(
      this.nodes.length,
      [
        ...this.#nodeFlags,
        ...(options.engines === false ? [] : this.engineFlags),
        ...this.#args,
        ...args,
      ],
      options.env,
      options.main,
    );
    this.nodes.push(node);
    return node;
  }

  /** `host:port` of every running node, comma-separated (a client's server list). */
  get hosts(): string {
    return this.nodes.filter((n) => n.running).map((n) => `127.0.0.1:${n.port}`).join(",");
  }

  /** Stops every node (SIGTERM, then SIGKILL after a while), NATS and PostgreSQL. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    globalThis.removeEventListener("unload", this.#unload);
    await Promise.all(this.nodes.map(async (node) => {
      if (!node.running) return;
      const timer = setTimeout(() => node.kill("SIGKILL"), 10_000);
      await node.kill("SIGTERM");
      clearTimeout(timer);
    }));
    await this.nats.close().catch(() => {});
    if (this.#ownsPostgres) await this.postgres.close().catch(() => {});
    else await this.postgres.start().catch(() => {}); // left running for the next test
  }

  /** `await using cluster = await startCluster()`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #killSync(): void {
    for (const node of this.nodes) {
      try {
        node.child.kill("SIGKILL");
      } catch { /* gone */ }
    }
    this.nats.close(); // SIGTERM without waiting; PostgreSQL closes itself at unload.
  }
}

/**
 * Starts PostgreSQL, NATS and `options.nodes` nodes; stops what started when a part
 * fails. Throws when the engines are not installed (check {@linkcode CLUSTER_SKIP}).
 */
export async function startCluster(options: ClusterOptions = {}): Promise<TestCluster> {
  if (CLUSTER_SKIP !== null) throw new Error(CLUSTER_SKIP);
  const own = options.ownPostgres === true;
  const postgres = own
    ? await startPostgres({ fsync: options.fsync ?? false })
    : await (shared ??= startPostgres({ fsync: options.fsync ?? false }));
  if (postgres === null) throw new Error(POSTGRES_SKIP ?? "no PostgreSQL");
  let nats: NatsServer | undefined;
  let cluster: TestCluster | undefined;
  try {
    nats = await NatsServer.start();
    cluster = new TestCluster(
      postgres,
      nats,
      await postgres.createDatabase(),
      options.args ?? [],
      options.nodeFlags,
      own,
    );
    // One node first: it creates the schema; the others start beside each other.
    const count = options.nodes ?? 2;
    if (count > 0) await cluster.startNode();
    const rest: Promise<ClusterNode>[] = [];
    for (let i = 1; i < count; i++) rest.push(cluster.startNode());
    await Promise.all(rest);
    return cluster;
  } catch (err) {
    if (cluster !== undefined) await cluster.close();
    else {
      await nats?.close();
      if (own) await postgres.close();
    }
    throw err;
  }
}

/**
 * Spawns `chat serve ARGS` (`main`, default `main.ts`) with the serve task's permissions
 * and V8 flags, and waits for its `listening on HOST:PORT` line; its stderr (the log) is kept in `output`.
 */
export async function spawnNode(
  index: number,
  args: string[],
  env: Record<string, string> = {},
  main: string = MAIN,
): Promise<ClusterNode> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...serveV8FlagArgs(), ...SERVE_PERMISSIONS, main, "serve", ...args],
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", ...env },
  }).spawn();
  const output: string[] = [];
  const port = Promise.withResolvers<number>();
  const keep = (line: string) => {
    output.push(line);
    if (output.length > 2000) output.splice(0, 1000);
    const match = /listening on [^ ]+:(\d+)/.exec(line);
    if (match) port.resolve(Number(match[1]));
  };
  const drain = async (stream: ReadableStream<Uint8Array>) => {
    let buffered = "";
    try {
      for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
        buffered += chunk;
        const lines = buffered.split("\n");
        buffered = lines.pop()!;
        for (const line of lines) keep(line);
      }
    } catch { /* closed */ }
    if (buffered !== "") keep(buffered);
  };
  drain(child.stdout);
  drain(child.stderr);
  child.status.then((status) =>
    port.reject(
      new Error(`node ${index} exited (${status.code}) before listening:\n${output.join("\n")}`),
    )
  );
  const timer = setTimeout(
    () => port.reject(new Error(`node ${index} did not listen in time`)),
    START_MS,
  );
  try {
    return new ClusterNode(index, await port.promise, child, output);
  } catch (err) {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
    await child.status;
    throw err;
  } finally {
    clearTimeout(timer);
  }
}
