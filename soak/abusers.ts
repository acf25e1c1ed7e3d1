/**
 * The soak's abusive clients, in their own process: `budget` connections opened at an
 * even pace over a window, at most `concurrency` at once, each one kind of abuse
 * (see abuse.ts) in turn.
 *
 * ```sh
 * deno run --allow-net=127.0.0.1 soak/abusers.ts '<AbusersArgs as JSON>'
 * ```
 *
 * Prints `{"ready": true}`, then answers on stdin (see side_channel.ts): `go` starts
 * the paced connections (every kind but slowloris, in turn), `wave` with a `count`
 * opens that many slowloris connections at once; `attack` with a `kind`, `ms` and
 * `concurrency` runs one attack alone for that long (a phase, see phases.ts) and
 * answers with its counts (they need the server's whole login
 * deadline, so the coordinator sends them when they can finish before the server is
 * killed or the window ends), `restarting` marks the connections open so far as
 * spanning a server restart (odd endings are then not the server's answer), `stats` reports the counts so far, `stop` stops opening
 * new ones, closes those still open and reports the final counts, `exit` ends the
 * process.
 *
 * @module
 */

import {
  type AbuseContext,
  type AbuseKind,
  type AbuseStats,
  emptyAbuseStats,
  MIXED_KINDS,
  runAbuse,
} from "./abuse.ts";
import { RawConn } from "./raw_conn.ts";
import { cpuSeconds } from "./loop_lag.ts";
import { Rng } from "./rng.ts";

/**
 * The kinds the mixed phase opens at a steady pace: all its kinds but slowloris, which
 * comes in waves.
 */
const PACED_KINDS = MIXED_KINDS.filter((kind) => kind !== "slowloris");
import { emit, serveSideChannel } from "../tools/side_channel.ts";

/** What the process is told on its command line. */
export interface AbusersArgs {
  /** The server's port on 127.0.0.1. */
  port: number;
  /** This process's number (nicks and seeds differ per process). */
  proc: number;
  /** Connections to open at a steady pace (slowloris waves come on top). */
  budget: number;
  /** Connections open at once, at most. */
  concurrency: number;
  /** Milliseconds over which the connections are spread. */
  windowMs: number;
  /** Seed of the random choices. */
  seed: number;
  /** The server's login deadline, in ms. */
  loginTimeoutMs: number;
  /** The server's frame deadline, in ms (0: none). */
  frameTimeoutMs: number;
  /** How long a connection that never reads waits before looking, in ms. */
  neverReadHoldMs: number;
  /** Most frames a flooder sends (in batches, until it is disconnected). */
  floodFrames: number;
  /** Rooms of the well-behaved clients. */
  goodRooms: number;
  /** Well-behaved clients. */
  goodClients: number;
  /** The nick of the well-behaved clients' login probe. */
  probeNick: string;
  /** Other loopback addresses some attacks come from (may be empty). */
  attackerAddresses: string[];
  /** How long a partial frame may stay unfinished before it counts as a defect, in ms. */
  partialFrameDeadlineMs: number;
  /** The server's `--rate-file-bytes` (file and relay bytes per session per second; 0: none). */
  fileBytesPerSec: number;
}

class Abusers {
  readonly stats: AbuseStats = emptyAbuseStats();
  readonly #args: AbusersArgs;
  readonly #open = new Set<RawConn>();
  readonly #abort = new AbortController();
  #workers: Promise<void>[] = [];
  readonly #rng: Rng;
  #next = 0;
  #nicks = 0;
  #waveRuns = 0;
  #epoch = 0;

  constructor(args: AbusersArgs) {
    this.#args = args;
    this.#rng = new Rng(args.seed);
  }

  go(): void {
    const args = this.#args;
    const started = performance.now();
    // Spread over 90% of the window, so the last ones finish inside it.
    const spacingMs = (args.windowMs * 0.9) / Math.max(1, args.budget);
    const worker = async (w: number): Promise<void> => {
      const ctx = this.#context(w);
      while (!this.#abort.signal.aborted) {
        const ticket = this.#next++;
        if (ticket >= args.budget) return;
        const wait = started + ticket * spacingMs - performance.now();
        if (wait > 0) await sleep(wait, this.#abort.signal);
        if (this.#abort.signal.aborted) return;
        const kind = PACED_KINDS[(ticket + args.proc) % PACED_KINDS.length]!;
        const before = this.stats.connectFailed;
        await runAbuse(kind, ctx, this.stats);
        // The server is down (restarting): do not spin.
        if (this.stats.connectFailed > before) await sleep(200, this.#abort.signal);
      }
    };
    for (let w = 0; w < args.concurrency; w++) this.#workers.push(worker(w));
  }

  /**
   * One attack's phase: `concurrency` connections of `kind` at a time, a new one as
   * soon as one ends, for `ms`; then `graceMs` for the runs under way to finish
   * before what is still open is closed. Answers with this phase's counts (kept
   * apart from the mixed phase's, which `stop` reports).
   */
  async attack(
    kind: AbuseKind,
    ms: number,
    concurrency: number,
    graceMs: number,
  ): Promise<AbuseStats> {
    const stats = emptyAbuseStats();
    const phase = new AbortController();
    const signal = AbortSignal.any([this.#abort.signal, phase.signal]);
    const open = new Set<RawConn>();
    const deadline = performance.now() + ms;
    const worker = async (w: number): Promise<void> => {
      const ctx: AbuseContext = {
        ...this.#context(w + 100_000),
        signal,
        track: (conn) => {
          this.#open.add(conn);
          open.add(conn);
          return () => {
            this.#open.delete(conn);
            open.delete(conn);
          };
        },
      };
      while (!signal.aborted && performance.now() < deadline) {
        const before = stats.connectFailed;
        await runAbuse(kind, ctx, stats);
        if (stats.connectFailed > before) await sleep(200, signal);
      }
    };
    const workers = Array.from({ length: concurrency }, (_, w) => worker(w));
    await sleep(ms, this.#abort.signal);
    phase.abort();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const settled = Promise.allSettled(workers);
    await Promise.race([settled, new Promise((resolve) => timer = setTimeout(resolve, graceMs))]);
    clearTimeout(timer);
    for (const conn of [...open]) conn.close();
    await Promise.race([settled, new Promise((resolve) => timer = setTimeout(resolve, 5000))]);
    clearTimeout(timer);
    return stats;
  }

  /** Opens `count` slowloris connections at once. */
  wave(count: number): void {
    for (let i = 0; i < count && !this.#abort.signal.aborted; i++) {
      const ctx = this.#context(this.#args.concurrency + this.#waveRuns++);
      this.#workers.push(runAbuse("slowloris", ctx, this.stats));
    }
  }

  #context(w: number): AbuseContext {
    const args = this.#args;
    return {
      port: args.port,
      rng: this.#rng.fork(w),
      nextNick: () => `ab${args.proc}x${this.#nicks++}`,
      loginTimeoutMs: args.loginTimeoutMs,
      frameTimeoutMs: args.frameTimeoutMs,
      neverReadHoldMs: args.neverReadHoldMs,
      floodFrames: args.floodFrames,
      goodRooms: args.goodRooms,
      goodClients: args.goodClients,
      track: (conn) => {
        this.#open.add(conn);
        return () => this.#open.delete(conn);
      },
      signal: this.#abort.signal,
      epoch: () => this.#epoch,
      probeNick: args.probeNick,
      attackerAddresses: args.attackerAddresses,
      partialFrameDeadlineMs: args.partialFrameDeadlineMs,
      fileBytesPerSec: args.fileBytesPerSec,
    };
  }

  /**
   * Keeps the attacker addresses this machine can connect from (Linux routes all of
   * 127.0.0.0/8 to loopback; others may not) and returns them.
   */
  async usableAddresses(): Promise<string[]> {
    const usable: string[] = [];
    for (const address of this.#args.attackerAddresses) {
      try {
        const conn = await RawConn.open(this.#args.port, address);
        conn.close();
        usable.push(address);
      } catch {
        // not on this machine
      }
    }
    this.#args.attackerAddresses = usable;
    return usable;
  }

  /** Notes that the server is about to be killed (and again once it is back). */
  restarting(): void {
    this.#epoch++;
  }

  async stop(): Promise<AbuseStats> {
    this.#abort.abort();
    for (const conn of [...this.#open]) conn.close();
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      Promise.allSettled(this.#workers),
      new Promise((resolve) => timer = setTimeout(resolve, 5000)),
    ]);
    clearTimeout(timer);
    return this.stats;
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done);
  });
}

if (import.meta.main) {
  let abusers: Abusers;
  try {
    abusers = new Abusers(JSON.parse(Deno.args[0] ?? "") as AbusersArgs);
  } catch (err) {
    emit({ error: err instanceof Error ? err.message : String(err) });
    Deno.exit(1);
  }
  const addresses = await abusers.usableAddresses();
  emit({ ready: true, pid: Deno.pid, addresses });
  await serveSideChannel({
    go: () => {
      abusers.go();
      return {};
    },
    wave: (request) => {
      abusers.wave(Math.max(0, Math.min(10_000, Number(request.count) || 0)));
      return {};
    },
    restarting: () => {
      abusers.restarting();
      return {};
    },
    attack: async (request) => ({
      stats: await abusers.attack(
        String(request.kind) as AbuseKind,
        Math.max(0, Math.min(3_600_000, Number(request.ms) || 0)),
        Math.max(1, Math.min(10_000, Number(request.concurrency) || 1)),
        Math.max(0, Math.min(120_000, Number(request.graceMs) || 1000)),
      ),
    }),
    stats: () => ({ stats: abusers.stats }),
    stop: async () => ({ stats: await abusers.stop(), cpuSeconds: cpuSeconds() }),
    exit: () => abusers.stop(),
  });
  Deno.exit(0);
}
