/**
 * A real `nats-server` (NATS core, no JetStream) for tests: started on a free port of
 * 127.0.0.1, stopped and started again on the SAME port for failure tests (the port is
 * reserved against the other tests until {@linkcode NatsServer.close}: ports.ts). Tests skip
 * themselves when the binary cannot be found ({@linkcode NATS_SKIP}).
 *
 * @module
 */

import { onFreePort, type PortReservation } from "./ports.ts";
import { NatsLink } from "../../server/nats_connection.ts";

/** How long a start waits for the server to accept connections. */
const START_MS = 20_000;

function findNatsServer(): string | undefined {
  // Debian installs it in /usr/sbin, which a non-root PATH may lack.
  for (const candidate of ["nats-server", "/usr/sbin/nats-server", "/usr/local/bin/nats-server"]) {
    try {
      const out = new Deno.Command(candidate, {
        args: ["--version"],
        stdout: "null",
        stderr: "null",
      })
        .outputSync();
      if (out.success) return candidate;
    } catch { /* not there */ }
  }
  return undefined;
}

/** The `nats-server` binary, when there is one. */
export const NATS_SERVER_BIN: string | undefined = findNatsServer();

/** Why NATS tests are skipped (`ignore: NATS_SKIP !== undefined`), or undefined. */
export const NATS_SKIP: string | undefined = NATS_SERVER_BIN === undefined
  ? "nats-server is not installed, so the NATS tests are skipped " +
    "(install it, e.g. `apt-get install -y nats-server`, to run them)"
  : undefined;
if (NATS_SKIP !== undefined) console.warn(NATS_SKIP);

/** Thrown when nats-server exits or does not accept connections in time. */
export class NatsServerStartError extends Error {
  /** Stable code. */
  readonly code = "nats_server_start";
  constructor(message: string) {
    super(message);
    this.name = "NatsServerStartError";
  }
}

/** Whether something accepts on 127.0.0.1:`port` and greets as NATS (`INFO {...}`). */
async function greets(port: number): Promise<boolean> {
  let conn: Deno.TcpConn | undefined;
  try {
    conn = await Deno.connect({ hostname: "127.0.0.1", port });
    const buf = new Uint8Array(5);
    let got = 0;
    while (got < 5) {
      const n = await conn.read(buf.subarray(got));
      if (n === null) return false;
      got += n;
    }
    return new TextDecoder().decode(buf) === "INFO ";
  } catch {
    return false;
  } finally {
    try {
      conn?.close();
    } catch { /* closed */ }
  }
}

/**
 * One `nats-server` process on 127.0.0.1:{@linkcode port}.
 *
 * @example
 * ```ts ignore
 * import { NatsServer } from "./nats.ts";
 * const nats = await NatsServer.start();
 * // connect to nats.url ...
 * await nats.restart(); // same port
 * await nats.close();
 * ```
 */
export class NatsServer {
  /** The port it listens on (kept across restarts). */
  readonly port: number;
  /** Extra command-line arguments (e.g. `--user chat --pass secret`). */
  readonly args: readonly string[];
  #child: Deno.ChildProcess | undefined;
  #log = "";
  readonly #reservation: PortReservation;

  private constructor(reservation: PortReservation, args: readonly string[]) {
    this.port = reservation.port;
    this.args = args;
    this.#reservation = reservation;
  }

  /**
   * Starts a server on a free port, with `args` added to its command line; throws when
   * nats-server is not installed.
   */
  static start(args: readonly string[] = []): Promise<NatsServer> {
    if (NATS_SERVER_BIN === undefined) {
      throw new NatsServerStartError(NATS_SKIP ?? "no nats-server");
    }
    return onFreePort(async (_port, reservation) => {
      const server = new NatsServer(reservation, args);
      await server.start();
      return server;
    });
  }

  /** Its URL, `nats://127.0.0.1:PORT`. */
  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  /** Whether the process is running. */
  get running(): boolean {
    return this.#child !== undefined;
  }

  /** The last lines it wrote (for failure messages). */
  get log(): string {
    return this.#log;
  }

  /** Starts the process on {@linkcode port} (no-op when running); resolves once it accepts. */
  async start(): Promise<void> {
    if (this.#child !== undefined) return;
    const child = new Deno.Command(NATS_SERVER_BIN ?? "nats-server", {
      args: ["-a", "127.0.0.1", "-p", String(this.port), ...this.args],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    this.#child = child;
    let exited = false;
    child.status.then(() => exited = true);
    // Keep the tail of its log; draining also keeps it from blocking on a full pipe.
    (async () => {
      try {
        for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
          this.#log = (this.#log + chunk).slice(-4096);
        }
      } catch { /* closed */ }
    })();
    const deadline = Date.now() + START_MS;
    while (!exited && Date.now() < deadline) {
      if (await greets(this.port)) return;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    await this.stop();
    throw new NatsServerStartError(
      `nats-server on port ${this.port} ${
        exited ? "exited" : "did not accept in time"
      }: ${this.#log}`,
    );
  }

  /** Stops the process (`SIGKILL` for a crash) and waits for it to exit; no-op when stopped. */
  async stop(signal: Deno.Signal = "SIGTERM"): Promise<void> {
    const child = this.#child;
    if (child === undefined) return;
    this.#child = undefined;
    try {
      child.kill(signal);
    } catch { /* already gone */ }
    await child.status;
  }

  /** Stops then starts it again on the same port. */
  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  /** Stops it for good and gives its port back. */
  async close(): Promise<void> {
    try {
      await this.stop();
    } finally {
      this.#reservation.release();
    }
  }

  /** `await using nats = await NatsServer.start()`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** A NATS server and one engine adapter per node on it, each on its own link. */
export interface NatsNodes<T> {
  /** The server. */
  nats: NatsServer;
  /** Each node's link, in node order. */
  links: NatsLink[];
  /** Each node's adapter (a broker, a cluster bus...), in node order. */
  nodes: T[];
  /** Closes the adapters, then the links, then the server. */
  close(): Promise<void>;
}

/**
 * Starts a NATS server and `count` nodes on it: a link each (named `node-i`) and what
 * `make` builds on it.
 *
 * @example
 * ```ts ignore
 * const c = await natsNodes(2, (link) => new NatsBroker(link));
 * await c.close();
 * ```
 */
export async function natsNodes<T extends { close(): Promise<void> }>(
  count: number,
  make: (link: NatsLink) => T,
): Promise<NatsNodes<T>> {
  const nats = await NatsServer.start();
  const links: NatsLink[] = [];
  const nodes: T[] = [];
  for (let i = 0; i < count; i++) {
    const link = await NatsLink.open(nats.url, { name: `node-${i}` });
    links.push(link);
    nodes.push(make(link));
  }
  return {
    nats,
    links,
    nodes,
    async close() {
      for (const node of nodes) await node.close();
      for (const link of links) await link.close();
      await nats.close();
    },
  };
}
