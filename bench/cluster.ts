/**
 * A benchmark cluster: the target (chat server or ceiling relay) in its own process
 * and one or more load-client processes, all on 127.0.0.1, always stopped at the end.
 *
 * @module
 */

import { type Child, cpuSecondsOf, spawnChild } from "./child.ts";
import { startInspircd } from "./inspircd.ts";
import { machineBusySeconds } from "./machine.ts";
import { SERVE_V8_FLAGS } from "../scripts/v8_flags.ts";

const HERE = new URL(".", import.meta.url).pathname;

/** What to start. */
export interface ClusterOptions {
  /**
   * `server`: bench/server_process.ts; `relay`: bench/ceiling_relay.ts; `inspircd`:
   * InspIRCd 3 (`inspircd.ts`), the load clients speaking IRC to it.
   */
  target: "server" | "relay" | "inspircd";
  /** Flags for the server process (see `server_process.ts`). */
  serverArgs?: string[];
  /** Flags for the relay process (see `ceiling_relay.ts`). */
  relayArgs?: string[];
  /** Number of load-client processes. */
  loads: number;
  /**
   * V8 flags for the target, e.g. `--expose-gc`; the server runs with those of
   * `deno task serve` (scripts/v8_flags.ts) before them.
   */
  v8Flags?: string[];
  /** Write a CPU profile of the target into this folder. */
  cpuProfDir?: string;
  /** A file for the target's lines that are not JSON (a V8 trace asked for in `v8Flags`). */
  targetLog?: string;
  /** CPUs for the target and for the load processes (`taskset -c`); unpinned when absent. */
  pin?: { target: string; loads: string };
  /**
   * Load clients connect over the browser client's WebSocket instead of TCP (the server
   * needs `--web` in `serverArgs`).
   */
  web?: boolean;
  /**
   * Load clients connect to the IRC listener and speak IRC (NICK/USER, JOIN, PRIVMSG)
   * instead of the chat protocol (the server needs `--irc` in `serverArgs`).
   */
  irc?: boolean;
  /** With `irc`: the password load clients give with PASS (a server with `--auth password`). */
  ircPassword?: string;
}

/**
 * What a cluster needs of its target process: a bench child (`spawnChild`) or InspIRCd,
 * whose `request` always fails (it has no side channel).
 */
export type ClusterTarget = Pick<Child, "pid" | "info" | "request" | "stop">;

/** A running cluster. */
export interface Cluster {
  /** The target process. */
  target: ClusterTarget;
  /** Its port. */
  port: number;
  /**
   * `chat` for the server, `relay` for the relay, `irc` for the server's IRC listener,
   * `inspircd` for InspIRCd (its load clients speak IRC).
   */
  mode: "chat" | "relay" | "irc" | "inspircd";
  /** The load processes (tags 0, 1, …). */
  loads: Child[];
}

/**
 * What {@linkcode cpuMeter} and a fan-out level need of a cluster: the load processes and
 * one process to call the target (a chat server, a relay, or one node of several).
 */
export interface Measured {
  /** The process whose CPU is reported as the target's. */
  target: { pid: number };
  /** The load processes. */
  loads: Child[];
}

/** CPU use of each process over an interval, in % of one core. */
export interface CpuUse {
  /** The target's share. */
  target: number;
  /** Each load process's share. */
  loads: number[];
  /** Everything else on the machine (other programs, the coordinator), % of one core. */
  other: number;
}

/** Starts a cluster, runs `fn`, and stops every process whatever happens. */
export async function withCluster<T>(
  options: ClusterOptions,
  fn: (cluster: Cluster) => Promise<T>,
): Promise<T> {
  const started: ClusterTarget[] = [];
  try {
    const inspircd = options.target === "inspircd";
    const script = options.target === "server" ? "server_process.ts" : "ceiling_relay.ts";
    const target: ClusterTarget = inspircd
      ? await startInspircd({ cpus: options.pin?.target })
      : await spawnChild(
        HERE + script,
        options.target === "server" ? options.serverArgs ?? [] : options.relayArgs ?? [],
        {
          name: options.target,
          v8Flags: options.target === "server"
            ? [...SERVE_V8_FLAGS, ...(options.v8Flags ?? [])]
            : options.v8Flags,
          cpuProfDir: options.cpuProfDir,
          cpus: options.pin?.target,
          ...(options.targetLog !== undefined ? { strayLog: options.targetLog } : {}),
        },
      );
    started.push(target);
    const loads = await Promise.all(
      Array.from(
        { length: options.loads },
        (_, i) =>
          spawnChild(HERE + "load_client.ts", ["--tag", String(i)], {
            name: `load ${i}`,
            cpus: options.pin?.loads,
          }),
      ),
    );
    started.push(...loads);
    const web = options.web === true;
    const irc = options.irc === true || inspircd;
    const port = Number(
      web ? target.info.webPort : irc ? target.info.ircPort : target.info.port,
    );
    const mode = options.target === "relay"
      ? "relay"
      : inspircd
      ? "inspircd"
      : irc
      ? "irc"
      : "chat";
    const password = options.ircPassword ?? null;
    // The load clients speak IRC to InspIRCd as to the server's IRC listener.
    const speaks = mode === "inspircd" ? "irc" : mode;
    await Promise.all(
      loads.map((l) =>
        l.request("target", { host: "127.0.0.1", port, mode: speaks, web, password })
      ),
    );
    return await fn({ target, port, mode, loads });
  } finally {
    // The target last, so that a CPU profile covers the whole run and exits cleanly.
    const [target, ...rest] = started;
    await Promise.allSettled(rest.map((c) => c.stop(5000)));
    if (target !== undefined) await target.stop(30_000);
  }
}

/** Starts measuring CPU time of the cluster's processes; call the result to read it. */
export function cpuMeter(cluster: Measured): () => CpuUse {
  const t0 = performance.now();
  const before = [cluster.target, ...cluster.loads].map((c) => cpuSecondsOf(c.pid) ?? 0);
  const machineBefore = machineBusySeconds();
  return () => {
    const seconds = Math.max((performance.now() - t0) / 1000, 0.001);
    const after = [cluster.target, ...cluster.loads].map((c) => cpuSecondsOf(c.pid) ?? 0);
    const used = after.map((a, i) => a - before[i]);
    const ours = used.reduce((a, b) => a + b, 0);
    const other = Math.max(0, machineBusySeconds() - machineBefore - ours);
    const pct = used.map((u) => round((100 * u) / seconds, 0));
    return { target: pct[0], loads: pct.slice(1), other: round((100 * other) / seconds, 0) };
  };
}

/** Rounds to `digits` decimals. */
export function round(value: number, digits = 1): number {
  if (!Number.isFinite(value)) return value;
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/** Waits `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
