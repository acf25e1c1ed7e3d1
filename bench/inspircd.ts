/**
 * InspIRCd 3 as a benchmark target: issue #16's own baseline (goal 6 compares chat's
 * fan-out with InspIRCd 3.15), measured in the same run by the same IRC load clients
 * (`load_client.ts` in `irc` mode: NICK/USER, JOIN, PRIVMSG).
 *
 * {@linkcode startInspircd} writes a configuration into a temp folder and starts
 * `inspircd --nofork` on a free port of 127.0.0.1: no flood control and no fakelag (a
 * flood would disconnect, not slow, a client: it shows as an error), connections per IP
 * and per class far above the rooms' sizes, send and receive queues as large as the chat
 * server's fan-out queue bound, no DNS or ident lookups, no TLS, no services, no
 * modules beyond the core ones; its pid and log files stay in the temp folder, which
 * {@linkcode InspircdProcess.stop} removes. Debian and Ubuntu: `apt-get install inspircd`
 * (and leave its system service stopped). When it is not installed,
 * {@linkcode INSPIRCD_SKIP} says why and the suite skips its rows.
 *
 * @example
 * ```ts ignore
 * import { startInspircd } from "./inspircd.ts";
 * const irc = await startInspircd({ cpus: "1" });
 * console.log(irc.port, irc.pid);
 * await irc.stop();
 * ```
 *
 * @module
 */

import { stopWithChildren, trackCpu } from "./child.ts";
import { onFreePort, type PortReservation } from "../tests/helpers/ports.ts";

/** How long a start waits for InspIRCd to accept connections. */
const START_MS = 20_000;
/** Send and receive queue bound per client: the chat server's fan-out `--queue-bytes`. */
const QUEUE_BYTES = 256 * 1024 * 1024;

/** The InspIRCd binary and its version, when it is installed. */
function findInspircd(): { bin: string; version: string } | undefined {
  // Debian installs it in /usr/sbin, which a non-root PATH may lack.
  for (const candidate of ["inspircd", "/usr/sbin/inspircd", "/usr/local/sbin/inspircd"]) {
    try {
      const out = new Deno.Command(candidate, {
        args: ["--version"],
        stdout: "piped",
        stderr: "null",
      }).outputSync();
      const version = new TextDecoder().decode(out.stdout).trim();
      if (out.success && version.startsWith("InspIRCd")) return { bin: candidate, version };
    } catch { /* not there */ }
  }
  return undefined;
}

const FOUND = findInspircd();

/** The InspIRCd version (`InspIRCd-3.15.0-debian`), or null when it is not installed. */
export const INSPIRCD_VERSION: string | null = FOUND?.version ?? null;

/** Why InspIRCd's rows are skipped, or null when it is installed. */
export const INSPIRCD_SKIP: string | null = FOUND === undefined
  ? "inspircd not installed: apt-get install inspircd"
  : null;

/** Thrown when InspIRCd is missing, exits, or does not accept connections in time. */
export class InspircdStartError extends Error {
  /** Stable code. */
  readonly code = "inspircd_start";
  constructor(message: string) {
    super(message);
    this.name = "InspircdStartError";
  }
}

/** Options of {@linkcode startInspircd}. */
export interface InspircdOptions {
  /** Pin the process to these CPUs (`taskset -c`), e.g. `"1"`. */
  cpus?: string;
}

/**
 * The configuration file's text: one client listener on 127.0.0.1:`port`, one connect
 * class for everyone without limits that a benchmark would hit, files in `dir`.
 */
export function inspircdConfig(port: number, dir: string): string {
  return `# Written by chat's bench/inspircd.ts for one benchmark run.
<server name="bench.local" description="chat bench baseline" network="bench">
<admin name="bench" nick="bench" email="bench@localhost">
<bind address="127.0.0.1" port="${port}" type="clients">
# Flood control off: a command adds 1000 to a client's penalty, its threshold is
# threshold × 1000 and commandrate is taken off it every second; fakelag off, so that
# a client over it would be disconnected (an error in the figures), not slowed.
<connect name="bench" allow="*" timeout="60" pingfreq="600" maxchans="100"
         localmax="1000000" globalmax="1000000" limit="1000000" maxconnwarn="no"
         hardsendq="${QUEUE_BYTES}" softsendq="${QUEUE_BYTES}" recvq="${QUEUE_BYTES}"
         threshold="4000000" commandrate="4000000000" fakelag="no"
         resolvehostnames="no" useident="no">
<dns server="127.0.0.1" timeout="1">
<files motd="${dir}/motd.txt">
<pid file="${dir}/inspircd.pid">
<performance netbuffersize="65536" somaxconn="1024" clonesonconnect="no">
<log method="file" type="* -USERINPUT -USEROUTPUT" level="default" target="${dir}/inspircd.log">
`;
}

/** Whether something accepts a connection on 127.0.0.1:`port`. */
async function accepts(port: number): Promise<boolean> {
  try {
    (await Deno.connect({ hostname: "127.0.0.1", port })).close();
    return true;
  } catch {
    return false;
  }
}

/** One InspIRCd process, listening for clients on 127.0.0.1:{@linkcode port}. */
export class InspircdProcess {
  /** Its client port. */
  readonly port: number;
  /** Its temp folder (configuration, MOTD, pid and log files). */
  readonly dir: string;
  /** What the suite's cluster reads of a target's first line. */
  readonly info: Record<string, unknown>;
  #child: Deno.ChildProcess;
  #output = "";
  #exited = false;
  readonly #reservation: PortReservation;

  private constructor(child: Deno.ChildProcess, reservation: PortReservation, dir: string) {
    this.#child = child;
    this.#reservation = reservation;
    const port = reservation.port;
    this.port = port;
    this.dir = dir;
    this.info = { port, ircPort: port, pid: child.pid, dir, version: INSPIRCD_VERSION };
    child.status.then(() => this.#exited = true);
    // Keep the tail of what it prints; draining also keeps it from blocking on a full pipe.
    for (const stream of [child.stdout, child.stderr]) {
      (async () => {
        try {
          for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
            this.#output = (this.#output + chunk).slice(-4096);
          }
        } catch { /* closed */ }
      })();
    }
    trackCpu(child.pid, child.status);
    const forget = stopWithChildren(() => this.stop(1000));
    child.status.finally(forget);
  }

  /** Starts InspIRCd on a free port; resolves once it accepts connections. */
  static start(options: InspircdOptions = {}): Promise<InspircdProcess> {
    if (FOUND === undefined) {
      return Promise.reject(new InspircdStartError(INSPIRCD_SKIP ?? "no inspircd"));
    }
    const { bin } = FOUND;
    // The port is reserved (and was free a moment ago) until stop(): ports.ts.
    return onFreePort(async (port, reservation) => {
      const dir = await Deno.makeTempDir({ prefix: "chat-bench-inspircd-" });
      const config = `${dir}/inspircd.conf`;
      await Deno.writeTextFile(`${dir}/motd.txt`, "chat benchmark baseline\n");
      await Deno.writeTextFile(config, inspircdConfig(port, dir));
      const args = ["--config", config, "--nofork"];
      // It refuses to run as root unless told to (the bench machine's shell is root).
      if (Deno.uid() === 0) args.push("--runasroot");
      // taskset execs inspircd in place, so the pid stays inspircd's.
      const child = new Deno.Command(options.cpus ? "taskset" : bin, {
        args: options.cpus ? ["-c", options.cpus, bin, ...args] : args,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const server = new InspircdProcess(child, reservation, dir);
      const deadline = Date.now() + START_MS;
      while (!server.#exited && Date.now() < deadline) {
        if (await accepts(port)) return server;
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      const exited = server.#exited;
      const output = server.#output.trim().slice(-800);
      await server.stop();
      throw new InspircdStartError(
        `inspircd on port ${port} ${exited ? "exited" : "did not accept in time"}: ${output}`,
      );
    });
  }

  /** The process id (inspircd's own: `--nofork`, and taskset execs in place). */
  get pid(): number {
    return this.#child.pid;
  }

  /** InspIRCd has no side channel: every request fails. */
  request(cmd: string): Promise<Record<string, unknown>> {
    return Promise.reject(new Error(`inspircd has no side channel (asked "${cmd}")`));
  }

  /** SIGTERM, SIGKILL after `graceMs`; resolves once it has ended and its folder is gone. */
  async stop(graceMs = 5000): Promise<void> {
    if (!this.#exited) {
      try {
        this.#child.kill("SIGTERM");
      } catch { /* already gone */ }
      let timer: ReturnType<typeof setTimeout> | undefined;
      const ended = await Promise.race([
        this.#child.status.then(() => true),
        new Promise<boolean>((resolve) => timer = setTimeout(() => resolve(false), graceMs)),
      ]);
      clearTimeout(timer);
      if (!ended) {
        try {
          this.#child.kill("SIGKILL");
        } catch { /* already gone */ }
      }
    }
    await this.#child.status;
    this.#reservation.release();
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }
}

/** Starts InspIRCd (see {@linkcode InspircdProcess.start}). */
export function startInspircd(options: InspircdOptions = {}): Promise<InspircdProcess> {
  return InspircdProcess.start(options);
}
