/**
 * The soak coordinator: starts the server and the client processes, lets the
 * well-behaved clients chat while the abusers misbehave, kills the server with SIGKILL
 * midway and starts it again on the same data folder and port, then checks that every
 * acknowledged message is in history and was delivered exactly once to each of its
 * recipients. Every child process is ended on the way out, whatever happens.
 *
 * @example
 * ```ts ignore
 * import { runSoak } from "./soak.ts";
 * import { QUICK_SOAK } from "./options.ts";
 * import { formatReport, soakFailures } from "./report.ts";
 * const report = await runSoak({ ...QUICK_SOAK, seed: 1 }, console.error);
 * console.log(formatReport(report).join("\n"));
 * Deno.exit(soakFailures(report).length === 0 ? 0 : 1);
 * ```
 *
 * @module
 */

import { ChatClient } from "../client/chat_client.ts";
import { DEFAULT_SERVER_CONFIG } from "../server/config.ts";
import { type AbuseStats, emptyAbuseStats, mergeAbuseStats, MIXED_KINDS } from "./abuse.ts";
import {
  ATTACK_CONCURRENCY,
  ATTACK_CONNECTIONS_PER_RUN,
  ATTACK_GRACE_MS,
  type AttackKind,
  FD_ROOM,
} from "./attacks.ts";
import type { AbusersArgs } from "./abusers.ts";
import type { JsonLineChild } from "../tools/child.ts";
import { type ChildSpec, describeStatus, spawnSoakChild } from "./child.ts";
import type { GoodClientsArgs, ProbeStats, StopAnswer, VerifyAnswer } from "./good_clients.ts";
import type { SoakOptions } from "./options.ts";
import { GOOD_PASSWORD, planProblem, type SoakPlan } from "./plan.ts";
import { emptyProbe, percentile, type PhaseResult, type PhaseSpec } from "./phases.ts";
import { soakFailures, type SoakReport } from "./report.ts";
import { ackCollisions, type AckedMessage } from "./verify.ts";

/** Receives progress lines while the soak runs. */
export type SoakLog = (line: string) => void;

/** Connections kept free on the per-IP cap besides clients and abusers. */
const CAP_MARGIN = 100;

/** The nick of the login probe (wrong_password aims at it). */
export const PROBE_NICK = "soakprobe";
/** The nick of the last check that the server still serves. */
const CHECK_NICK = "soakcheck";
/**
 * The loopback addresses some attacks come from (see attacks.ts), so that the server
 * sees other addresses than the well-behaved clients' 127.0.0.1; those the machine
 * cannot use are left out.
 */
export const ATTACKER_ADDRESSES = ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"];

/**
 * The phases of a run before the mixed one: the quiet phase, then one per attack,
 * then the quiet phase again (see phases.ts). Warm-up and settling pauses are not phases: nothing is measured.
 */
export function planPhases(options: SoakOptions): PhaseSpec[] {
  const phases: PhaseSpec[] = [
    { name: "quiet", kind: null, ms: Math.round(options.quietSec * 1000), concurrency: 0 },
  ];
  for (const kind of options.attacks) {
    const sec = options.phaseSecByKind[kind] ?? options.phaseSec;
    const concurrency = options.attackConcurrency[kind] ??
      ATTACK_CONCURRENCY[kind as AttackKind] ?? 8;
    phases.push({ name: kind, kind, ms: Math.round(sec * 1000), concurrency });
  }
  if (options.attacks.length > 0) {
    // The quiet phase again: shows how much the machine (or the server) drifted.
    phases.push({ name: "quiet_end", kind: null, ms: phases[0]!.ms, concurrency: 0 });
  }
  return phases;
}

/** Milliseconds the phases before the mixed one take, pauses included. */
export function phasesMs(options: SoakOptions): number {
  const phases = planPhases(options);
  return Math.round(
    options.warmupSec * 1000 + phases.reduce((ms, p) => ms + p.ms, 0) +
      (phases.length - 1) * options.settleSec * 1000,
  );
}

/**
 * The traffic window of a run of `durationSec`: the rest of the time is for starting,
 * checking and stopping.
 */
export function trafficWindowMs(durationSec: number): number {
  const reserveSec = Math.min(20, Math.max(4, durationSec * 0.25));
  return Math.max(2000, Math.round((durationSec - reserveSec) * 1000));
}

/**
 * When the server is killed, in ms from the start of the traffic window: at
 * `killAt` of the window, but late enough that the first slowloris wave (opened at
 * the start) meets the server's login deadline first, and early enough to leave
 * 3 s of traffic after the restart.
 */
export function killTimeMs(windowMs: number, killAt: number, loginTimeoutMs: number): number {
  const wanted = Math.max(windowMs * killAt, loginTimeoutMs + 1500);
  return Math.round(Math.max(1000, Math.min(wanted, windowMs - 3000)));
}

/** Slowloris connections of a run: one abusive connection in ten. */
export function slowlorisCount(abusiveConnections: number): number {
  return Math.round(abusiveConnections / MIXED_KINDS.length);
}

/** The soak server's `--frame-timeout`, unless the options set one. */
export const SOAK_FRAME_TIMEOUT_MS = 3000;

/**
 * The server settings of a run: the options' overrides, with the per-IP connection
 * cap raised to fit every client and abuser at once when needed (all come from
 * 127.0.0.1), the registration limits off (all register from there too) and a short
 * frame deadline. Everything else stays at its default.
 */
export function soakOverrides(options: SoakOptions): Record<string, number> {
  const overrides = { ...options.serverOverrides };
  const attackConns = Math.max(
    0,
    ...planPhases(options).map((p) =>
      p.concurrency * (ATTACK_CONNECTIONS_PER_RUN[p.kind as AttackKind] ?? 1)
    ),
  );
  const needed = options.goodClients +
    Math.max(
      options.abuserConcurrency + slowlorisCount(options.abusiveConnections),
      attackConns,
    ) + CAP_MARGIN;
  const cap = overrides.maxConnectionsPerIp ?? DEFAULT_SERVER_CONFIG.maxConnectionsPerIp;
  if (cap !== 0 && cap < needed) overrides.maxConnectionsPerIp = needed;
  // Partial-frame abusers wait for the frame deadline: short enough to finish in the window.
  overrides.frameTimeoutMs ??= SOAK_FRAME_TIMEOUT_MS;
  // Every client registers from 127.0.0.1: the registration limits would refuse them.
  overrides.registrationsPerMinutePerIp ??= 0;
  overrides.registrationsPerMinute ??= 0;
  return overrides;
}

/**
 * Runs one soak and returns its figures; see `soakFailures` in report.ts for the
 * verdict. Never leaves a child process behind.
 */
export async function runSoak(options: SoakOptions, log: SoakLog = () => {}): Promise<SoakReport> {
  const plan: SoakPlan = {
    clients: options.goodClients,
    rooms: options.rooms,
    roomsPerClient: options.roomsPerClient,
  };
  const problem = planProblem(plan);
  if (problem !== null) throw new RangeError(problem);
  const started = performance.now();
  const windowMs = trafficWindowMs(options.durationSec);
  const overrides = soakOverrides(options);
  const loginTimeoutMs = overrides.loginTimeoutMs ?? DEFAULT_SERVER_CONFIG.loginTimeoutMs;
  const dataDir = await Deno.makeTempDir({ prefix: "chat-soak-" });
  const run = new SoakRun(
    options,
    plan,
    dataDir,
    overrides,
    log,
    options.tls ? await soakTls() : null,
  );
  const report = run.report;
  report.windowMs = windowMs;
  const hardLimitMs = options.durationSec * 1000 + phasesMs(options) + 90_000;
  let watchdog: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([
      run.execute(windowMs, loginTimeoutMs),
      new Promise<never>((_, reject) =>
        watchdog = setTimeout(
          () => reject(new Error(`the soak overran its ${hardLimitMs / 1000} s limit`)),
          hardLimitMs,
        )
      ),
    ]);
  } catch (err) {
    report.errors.push(describe(err));
  } finally {
    clearTimeout(watchdog);
    await run.stopAll();
    report.durationMs = Math.round(performance.now() - started);
  }
  if (soakFailures(report).length === 0 && !options.keepData) {
    await Deno.remove(dataDir, { recursive: true }).catch(() => {});
  }
  return report;
}

/** The soak's TLS material with `--tls`: the test CA and its server certificate. */
export interface SoakTls {
  /** Server certificate chain (PEM), for 127.0.0.1. */
  cert: string;
  /** Its private key (PEM). */
  key: string;
  /** The CA (PEM) the clients trust. */
  ca: string;
}

async function soakTls(): Promise<SoakTls> {
  const read = (name: string) =>
    Deno.readTextFile(new URL(`../tests/fixtures/${name}`, import.meta.url));
  return {
    cert: await read("server.pem"),
    key: await read("server-key.pem"),
    ca: await read("ca.pem"),
  };
}

class SoakRun {
  readonly report: SoakReport;
  readonly #options: SoakOptions;
  readonly #plan: SoakPlan;
  readonly #dataDir: string;
  readonly #overrides: Record<string, number>;
  readonly #log: SoakLog;
  readonly #tls: SoakTls | null;
  readonly #t0 = performance.now();
  #server: JsonLineChild | null = null;
  #serverExpectedToExit = false;
  #good: JsonLineChild[] = [];
  #abusers: JsonLineChild[] = [];
  #port = 0;
  /** Per phase: the attack's counts (abuser processes merged). */
  readonly #attackStats = new Map<string, AbuseStats>();
  /** CPU seconds each process reported last, by pid. */
  readonly #cpu = new Map<number, { role: "server" | "good" | "abusers"; seconds: number }>();
  #monitoring = true;
  #stopped = false;

  constructor(
    options: SoakOptions,
    plan: SoakPlan,
    dataDir: string,
    overrides: Record<string, number>,
    log: SoakLog,
    tls: SoakTls | null,
  ) {
    this.#options = options;
    this.#tls = tls;
    this.#plan = plan;
    this.#dataDir = dataDir;
    this.#overrides = overrides;
    this.#log = log;
    this.report = {
      seed: options.seed,
      durationMs: 0,
      windowMs: 0,
      serverOverrides: overrides,
      dataDir,
      server: {
        port: 0,
        restarts: 0,
        downMs: null,
        recoveredMs: null,
        unexpectedExits: [],
        servingAtEnd: false,
        servingProblem: "not checked",
      },
      good: {
        clients: options.goodClients,
        acked: 0,
        ackedRoom: 0,
        ackedDm: 0,
        failures: {},
        unanswered: 0,
        resentDuplicates: 0,
        ackMismatches: 0,
        ackCollisions: 0,
        disconnects: 0,
        reconnects: 0,
        closed: [],
        notices: {},
        noticeTexts: [],
        serverErrors: {},
        otherReceived: 0,
      },
      delivery: {
        expected: 0,
        delivered: 0,
        missing: 0,
        duplicates: 0,
        echoes: 0,
        mismatched: 0,
        waitedMs: 0,
      },
      history: { expected: 0, missing: 0, mismatched: 0, duplicates: 0 },
      lost: 0,
      duplicates: 0,
      lostSample: [],
      phases: [],
      mixed: options.mixed,
      p99FloorMs: options.p99FloorMs,
      attackerAddresses: [],
      abuse: emptyAbuseStats(),
      load: {
        cores: navigator.hardwareConcurrency,
        serverLagMaxMs: 0,
        serverStallsOver1s: 0,
        serverStatsSlowestMs: 0,
        goodLagMaxMs: 0,
        goodStallsOver1s: 0,
        cpuSeconds: { server: 0, good: 0, abusers: 0 },
      },
      errors: [],
    };
  }

  async execute(windowMs: number, loginTimeoutMs: number): Promise<void> {
    const options = this.#options;
    await this.#startServer(0);
    this.#say(
      `server on 127.0.0.1:${this.#port}${
        this.#tls !== null ? " (TLS)" : ""
      }, data ${this.#dataDir}, default limits except ${JSON.stringify(this.#overrides)}`,
    );

    const perGood = Math.ceil(options.goodClients / options.goodProcesses);
    const goodArgs: GoodClientsArgs[] = [];
    for (let first = 0, p = 0; first < options.goodClients; first += perGood, p++) {
      goodArgs.push({
        port: this.#port,
        first,
        count: Math.min(perGood, options.goodClients - first),
        plan: this.#plan,
        intervalMs: options.sendIntervalMs,
        dmShare: options.dmShare,
        maxOutstanding: 5,
        seed: (options.seed + 7919 * (p + 1)) >>> 0,
        ...(p === 0 ? { probe: { nick: PROBE_NICK, intervalMs: options.probeIntervalMs } } : {}),
        ...(this.#tls !== null ? { tlsCa: this.#tls.ca } : {}),
      });
    }
    this.#good = await this.#spawnAll(goodArgs.map((args, p) => ({
      name: `good clients ${p + 1}`,
      script: new URL("./good_clients.ts", import.meta.url),
      args: [JSON.stringify(args)],
      permissions: ["--allow-net=127.0.0.1"],
      startTimeoutMs: 60_000,
    })));
    this.#say(`${options.goodClients} well-behaved clients logged in and in their rooms`);

    const processes = options.abusiveConnections > 0 ? options.abuserProcesses : 0;
    const slowloris = slowlorisCount(options.abusiveConnections);
    const paced = options.abusiveConnections - slowloris;
    const abuserArgs: AbusersArgs[] = [];
    for (let p = 0; p < processes; p++) {
      const budget = share(paced, processes, p);
      abuserArgs.push({
        port: this.#port,
        proc: p,
        budget,
        concurrency: Math.max(1, Math.floor(options.abuserConcurrency / processes)),
        windowMs,
        seed: (options.seed ^ Math.imul(p + 1, 0x9e3779b1)) >>> 0,
        loginTimeoutMs,
        frameTimeoutMs: this.#overrides.frameTimeoutMs ?? DEFAULT_SERVER_CONFIG.frameTimeoutMs,
        neverReadHoldMs: options.neverReadHoldMs,
        floodFrames: options.floodFrames,
        goodRooms: options.rooms,
        goodClients: options.goodClients,
        probeNick: PROBE_NICK,
        attackerAddresses: ATTACKER_ADDRESSES,
        partialFrameDeadlineMs: options.partialFrameDeadlineMs,
        fileBytesPerSec: this.#overrides.rateFileBytesPerSec ??
          DEFAULT_SERVER_CONFIG.rateFileBytesPerSec,
      });
    }
    this.#abusers = await this.#spawnAll(abuserArgs.map((args, p) => ({
      name: `abusers ${p + 1}`,
      script: new URL("./abusers.ts", import.meta.url),
      args: [JSON.stringify(args)],
      permissions: [`--allow-net=${["127.0.0.1", ...ATTACKER_ADDRESSES].join(",")}`],
    })));
    const usable = this.#abusers[0]?.info.addresses;
    this.report.attackerAddresses = Array.isArray(usable) ? usable.map(String) : [];

    await Promise.all(this.#good.map((c) => c.request("go")));
    const monitor = this.#monitor();
    await this.#runPhases();
    if (options.mixed) await this.#runMixed(windowMs, loginTimeoutMs, processes, slowloris);
    this.#monitoring = false;
    await monitor;
    await this.#finish();
  }

  /** The warm-up, the quiet phase and one phase per attack (see phases.ts). */
  async #runPhases(): Promise<void> {
    const options = this.#options;
    await this.#setPhase("warmup");
    await sleep(options.warmupSec * 1000);
    const phases = planPhases(options);
    for (const [i, phase] of phases.entries()) {
      if (i > 0 && options.settleSec > 0) {
        await this.#setPhase("settle");
        await sleep(options.settleSec * 1000);
      }
      await this.#setPhase(phase.name);
      if (phase.kind === null) {
        this.#say(`phase ${phase.name}: ${(phase.ms / 1000).toFixed(1)} s of chat alone`);
        await sleep(phase.ms);
        continue;
      }
      this.#say(
        `phase ${phase.name}: ${(phase.ms / 1000).toFixed(1)} s, ${phase.concurrency} ` +
          `attack connections at a time`,
      );
      const restore = phase.kind === "fd_exhaust" ? await this.#lowerDescriptorLimit() : null;
      const processes = this.#abusers.length;
      const answers = await Promise.all(
        this.#abusers.map((c, p) => {
          const concurrency = share(phase.concurrency, processes, p);
          if (concurrency === 0) return Promise.resolve(null);
          return c.request(
            "attack",
            {
              kind: phase.kind,
              ms: phase.ms,
              concurrency,
              graceMs: ATTACK_GRACE_MS[phase.kind as AttackKind] ?? 1000,
            },
            phase.ms + 120_000,
          ).then((a) => a.stats as AbuseStats);
        }),
      );
      await restore?.();
      const stats = emptyAbuseStats();
      for (const a of answers) if (a !== null) mergeAbuseStats(stats, a);
      this.#attackStats.set(phase.name, stats);
      const k = stats.kinds[phase.kind]!;
      this.#say(
        `  ${k.runs} runs: ${k.expected} as expected, ${k.unexpected} unexpected` +
          (stats.unexpected.length > 0 ? ` (${stats.unexpected[0]})` : ""),
      );
    }
  }

  /**
   * For `fd_exhaust`: lowers the server's soft descriptor limit to the descriptors it has
   * open and FD_ROOM more (with `prlimit --pid`, Linux); returns what puts it back. Where
   * that cannot be done, says so and leaves the limit alone.
   */
  async #lowerDescriptorLimit(): Promise<() => Promise<void>> {
    const pid = this.#server!.pid;
    const run = async (command: string, args: string[]): Promise<string> => {
      const out = await new Deno.Command(command, { args, stdout: "piped", stderr: "piped" })
        .output();
      if (!out.success) throw new Error(new TextDecoder().decode(out.stderr).trim());
      return new TextDecoder().decode(out.stdout).trim();
    };
    const nofile = (...args: string[]) => run("prlimit", ["--pid", String(pid), ...args]);
    try {
      const before = await nofile("--nofile", "--raw", "--noheadings", "--output=SOFT");
      // (Deno would need every permission to read /proc itself.)
      const open = (await run("ls", ["-1", `/proc/${pid}/fd`])).split("\n").length;
      const limit = open + FD_ROOM;
      await nofile(`--nofile=${limit}:`);
      this.#say(`  server's descriptor limit lowered from ${before} to ${limit} (${open} open)`);
      const counters = async () => {
        const stats = await this.#server!.request("stats", {}, 15_000).catch(() => null);
        return {
          errors: Number(stats?.acceptErrors),
          accepted: Number(stats?.connectionsAccepted),
        };
      };
      const at = await counters();
      return async () => {
        const end = await counters();
        this.#say(
          `  the server accepted ${end.accepted - at.accepted} connections meanwhile; ` +
            `${end.errors - at.errors} accepts failed (out of descriptors) and were retried`,
        );
        await nofile(`--nofile=${before}:`).catch((err) =>
          this.#say(`  the server's descriptor limit could not be restored: ${describe(err)}`)
        );
      };
    } catch (err) {
      this.#say(`  the server's descriptor limit was left alone: ${describe(err)}`);
      return () => Promise.resolve();
    }
  }

  async #setPhase(name: string): Promise<void> {
    await Promise.all(this.#good.map((c) => c.request("phase", { name })));
  }

  /** The mixed phase: every older kind at once, and the SIGKILL restart. */
  async #runMixed(
    windowMs: number,
    loginTimeoutMs: number,
    processes: number,
    slowloris: number,
  ): Promise<void> {
    const options = this.#options;
    await this.#setPhase("mixed");

    // Slowloris connections come in waves that can meet the login deadline before the
    // server is killed or the window ends: one at the start, one after the restart
    // when there is time for it.
    const killMs = killTimeMs(windowMs, options.killAt, loginTimeoutMs);
    const secondWave = windowMs - killMs - 2000 >= loginTimeoutMs + 2000;
    const firstWave = secondWave ? Math.ceil(slowloris / 2) : slowloris;
    const windowStart = performance.now();
    await Promise.all(
      this.#abusers.map((c, p) =>
        c.request("go").then(() => c.request("wave", { count: share(firstWave, processes, p) }))
      ),
    );
    this.#say(
      `traffic for ${(windowMs / 1000).toFixed(1)} s: ${options.abusiveConnections} abusive ` +
        `connections from ${plural(processes, "process", "processes")} (${slowloris} slowloris, ` +
        `in ${plural(secondWave ? 2 : 1, "wave", "waves")}); server kill at ${
          (killMs / 1000).toFixed(1)
        } s`,
    );

    const restart = this.#killAndRestart(
      windowStart + killMs,
      secondWave ? slowloris - firstWave : 0,
    );
    restart.catch(() => {}); // awaited below; this only keeps an early failure handled
    await sleep(windowStart + windowMs - performance.now());
    await restart;
  }

  /** Stops the traffic, then checks every acknowledged message. */
  async #finish(): Promise<void> {
    this.#say("traffic window over: stopping the abusers and the well-behaved senders");
    const abuse = await Promise.all(
      this.#abusers.map((c) =>
        c.request("stop", {}, 20_000).then((a) => {
          this.#cpu.set(c.pid, { role: "abusers", seconds: Number(a.cpuSeconds) });
          return a.stats as AbuseStats;
        })
      ),
    );
    for (const stats of abuse) mergeAbuseStats(this.report.abuse, stats);
    const stops = await Promise.all(
      this.#good.map((c) =>
        c.request("stop", { timeoutMs: 20_000 }, 40_000) as Promise<unknown> as Promise<StopAnswer>
      ),
    );
    stops.forEach((stop, p) =>
      this.#cpu.set(this.#good[p]!.pid, { role: "good", seconds: stop.cpuSeconds })
    );
    const acked = this.#collectStops(stops);
    this.#say(`${acked.length} messages acknowledged; checking deliveries and histories`);

    const verifies = await Promise.all(
      this.#good.map((c) =>
        c.request("verify", { acked, timeoutMs: 15_000 }, 120_000) as Promise<unknown> as Promise<
          VerifyAnswer
        >
      ),
    );
    const lostIds = this.#collectVerifies(verifies);
    this.#collectPhases(stops, acked, lostIds);
    await this.#checkServing();
  }

  #collectPhases(stops: StopAnswer[], acked: AckedMessage[], lostIds: Set<number>): void {
    const phaseOf = new Map(acked.map((m) => [m.id, m.phase ?? "?"]));
    const lostBy = new Map<string, number>();
    for (const id of lostIds) {
      const phase = phaseOf.get(id) ?? "?";
      lostBy.set(phase, (lostBy.get(phase) ?? 0) + 1);
    }
    const specs: PhaseSpec[] = [...planPhases(this.#options)];
    if (this.#options.mixed) {
      specs.push({ name: "mixed", kind: null, ms: this.report.windowMs, concurrency: 0 });
    }
    const results: PhaseResult[] = specs.map((spec) => {
      const latencies = stops.flatMap((s) => s.latencies[spec.name] ?? []);
      const failures: Record<string, number> = {};
      for (const s of stops) {
        for (const [code, n] of Object.entries(s.phaseFailures[spec.name] ?? {})) {
          failures[code] = (failures[code] ?? 0) + n;
        }
      }
      const probe: ProbeStats = emptyProbe();
      for (const s of stops) {
        const p = s.probe[spec.name];
        if (p === undefined) continue;
        probe.tries += p.tries;
        probe.failures += p.failures;
        probe.maxMs = Math.max(probe.maxMs, p.maxMs);
        probe.errors.push(...p.errors);
      }
      const stats = this.#attackStats.get(spec.name);
      const attack = spec.kind !== null && stats !== undefined ? stats.kinds[spec.kind]! : null;
      return {
        name: spec.name,
        kind: spec.kind,
        ms: spec.ms,
        samples: latencies.length,
        p50: percentile(latencies, 50),
        p99: percentile(latencies, 99),
        ratio: null,
        failures,
        lost: (lostBy.get(spec.name) ?? 0) + (attack?.lost ?? 0),
        probe,
        attack,
        unexpected: stats?.unexpected.slice(0, 3) ?? [],
        judged: spec.name !== "mixed" && spec.name !== "quiet_end",
      };
    });
    const quiet = results.find((r) => r.name === "quiet");
    for (const r of results) {
      if (quiet !== undefined && r.p99 !== null && quiet.p99 !== null && quiet.p99 > 0) {
        r.ratio = Math.round((r.p99 / quiet.p99) * 100) / 100;
      }
    }
    this.report.phases = results;
  }

  /** Ends every child: clients first, then the server (gracefully, then killed). */
  async stopAll(): Promise<void> {
    this.#stopped = true;
    this.#monitoring = false;
    this.#sumCpu();
    this.#serverExpectedToExit = true;
    await Promise.allSettled([...this.#abusers, ...this.#good].map((c) => c?.stop(5000)));
    await this.#server?.stop(10_000);
  }

  async #startServer(port: number): Promise<void> {
    const server = await spawnSoakChild({
      name: "server",
      script: new URL("./server_process.ts", import.meta.url),
      args: [JSON.stringify({
        dataDir: this.#dataDir,
        port,
        overrides: this.#overrides,
        ...(this.#tls !== null ? { tls: { cert: this.#tls.cert, key: this.#tls.key } } : {}),
      })],
      permissions: [
        "--allow-net=127.0.0.1",
        `--allow-read=${this.#dataDir}`,
        `--allow-write=${this.#dataDir}`,
        // The free-space reserve, as `chat serve` keeps it.
        "--allow-sys=statfs",
      ],
    });
    if (this.#stopped) {
      // The run was given up meanwhile (watchdog): leave nothing behind.
      await server.stop(2000);
      throw new Error("the soak was stopped");
    }
    this.#server = server;
    this.#serverExpectedToExit = false;
    this.#port = Number(server.info.port);
    this.report.server.port = this.#port;
    server.status.then((status) => {
      if (this.#server === server && !this.#serverExpectedToExit) {
        const line = `${describeStatus(status)}${
          server.stderrTail ? `: ${server.stderrTail.trim().slice(-400)}` : ""
        }`;
        this.report.server.unexpectedExits.push(line);
        this.#say(`the server exited unasked (${line})`);
      }
    });
  }

  async #killAndRestart(at: number, wave: number): Promise<void> {
    await sleep(at - performance.now());
    const server = this.#server!;
    this.#serverExpectedToExit = true;
    await Promise.allSettled(this.#abusers.map((c) => c.request("restarting", {}, 2000)));
    this.#say(`SIGKILL to the server (pid ${server.pid})`);
    const killedAt = performance.now();
    server.kill("SIGKILL");
    await server.status;
    let lastError: unknown = new Error("the soak was stopped");
    for (let attempt = 0; attempt < 40 && !this.#stopped; attempt++) {
      try {
        await this.#startServer(this.#port);
        lastError = undefined;
        break;
      } catch (err) {
        lastError = err;
        await sleep(250);
      }
    }
    if (lastError !== undefined) {
      throw new Error(
        `the server could not be started again on port ${this.#port}: ${describe(lastError)}`,
      );
    }
    this.report.server.restarts++;
    await Promise.allSettled(this.#abusers.map((c) => c.request("restarting", {}, 2000)));
    this.report.server.downMs = Math.round(performance.now() - killedAt);
    this.#say(`server back on port ${this.#port} after ${this.report.server.downMs} ms`);
    if (wave > 0) {
      await sleep(2000 - (performance.now() - killedAt));
      await Promise.all(
        this.#abusers.map((c, p) =>
          c.request("wave", { count: share(wave, this.#abusers.length, p) })
        ),
      );
    }
    const deadline = performance.now() + 30_000;
    while (performance.now() < deadline) {
      const statuses = await Promise.all(this.#good.map((c) => c.request("status", {}, 5000)));
      const ready = statuses.reduce(
        (n, s) => n + Number((s.states as Record<string, number>).ready ?? 0),
        0,
      );
      if (ready === this.#options.goodClients) {
        this.report.server.recoveredMs = Math.round(performance.now() - killedAt);
        this.#say(`all ${ready} well-behaved clients ready again`);
        return;
      }
      await sleep(100);
    }
    this.#say("not every well-behaved client was back within 30 s of the restart");
  }

  #collectStops(stops: StopAnswer[]): AckedMessage[] {
    const g = this.report.good;
    const acked: AckedMessage[] = [];
    for (const stop of stops) {
      acked.push(...stop.acked);
      for (const [code, n] of Object.entries(stop.failures)) {
        g.failures[code] = (g.failures[code] ?? 0) + n;
      }
      for (const [code, n] of Object.entries(stop.notices)) {
        g.notices[code] = (g.notices[code] ?? 0) + n;
      }
      for (const [code, n] of Object.entries(stop.serverErrors)) {
        g.serverErrors[code] = (g.serverErrors[code] ?? 0) + n;
      }
      g.unanswered += stop.unanswered;
      g.resentDuplicates += stop.resentDuplicates;
      g.ackMismatches += stop.ackMismatches;
      g.disconnects += stop.disconnects;
      g.reconnects += stop.reconnects;
      g.closed.push(...stop.closed);
      g.otherReceived += stop.otherReceived;
      for (const text of stop.noticeTexts) if (g.noticeTexts.length < 5) g.noticeTexts.push(text);
      this.report.load.goodLagMaxMs = Math.max(this.report.load.goodLagMaxMs, stop.lag.maxMs);
      this.report.load.goodStallsOver1s += stop.lag.stallsOver1s;
    }
    g.acked = acked.length;
    g.ackedRoom = acked.filter((m) => m.room !== undefined).length;
    g.ackedDm = g.acked - g.ackedRoom;
    g.ackCollisions = ackCollisions(acked).length;
    return acked;
  }

  #collectVerifies(verifies: VerifyAnswer[]): Set<number> {
    const d = this.report.delivery;
    const h = this.report.history;
    const lost = new Set<number>();
    let duplicates = 0;
    for (const v of verifies) {
      d.expected += v.expected;
      d.delivered += v.delivered;
      d.missing += v.missingCount;
      d.duplicates += v.duplicateCount;
      d.echoes += v.echoes;
      d.mismatched += v.mismatched;
      d.waitedMs = Math.max(d.waitedMs, v.waitedMs);
      h.expected += v.history.expected;
      h.missing += v.history.missingCount;
      h.mismatched += v.history.mismatched;
      h.duplicates += v.history.duplicates;
      for (const id of [...v.missing, ...v.history.missing]) lost.add(id);
      duplicates += v.duplicateCount + v.echoes + v.history.duplicates;
    }
    this.report.lost = lost.size;
    this.report.lostSample = [...lost].sort((a, b) => a - b).slice(0, 20);
    this.report.duplicates = duplicates;
    return lost;
  }

  async #checkServing(): Promise<void> {
    const s = this.report.server;
    if (this.#server === null || this.#server.exited) {
      s.servingProblem = "the server process is gone";
      return;
    }
    try {
      const stats = await this.#server.request("stats", {}, 5000);
      this.#cpu.set(this.#server.pid, { role: "server", seconds: Number(stats.cpuSeconds) });
      const client = await ChatClient.connect({
        port: this.#port,
        nick: CHECK_NICK,
        password: GOOD_PASSWORD,
        reconnect: false,
        connectTimeoutMs: 5000,
        ...(this.#tls !== null ? { tls: { caCerts: [this.#tls.ca] } } : {}),
      });
      try {
        await client.ping();
      } finally {
        await client.close();
      }
      s.servingAtEnd = true;
      delete s.servingProblem;
      this.#say(
        `server still serving: ${stats.sessions} sessions, a fresh login and ping answered`,
      );
    } catch (err) {
      s.servingProblem = describe(err);
    }
  }

  /** Every second of the window: the server's answer time and event-loop lag, and CPU. */
  async #monitor(): Promise<void> {
    const load = this.report.load;
    while (this.#monitoring) {
      const server = this.#server;
      if (server !== null && !server.exited) {
        const asked = performance.now();
        try {
          const stats = await server.request("stats", {}, 15_000);
          const lag = stats.lag as { maxMs: number; stallsOver1s: number };
          load.serverStatsSlowestMs = Math.max(
            load.serverStatsSlowestMs,
            Math.round(performance.now() - asked),
          );
          load.serverLagMaxMs = Math.max(load.serverLagMaxMs, lag.maxMs);
          load.serverStallsOver1s += lag.stallsOver1s;
          this.#cpu.set(server.pid, { role: "server", seconds: Number(stats.cpuSeconds) });
        } catch {
          // killed meanwhile, or too slow: the lag figures tell
        }
      }
      await sleep(1000);
    }
  }

  #sumCpu(): void {
    const cpu = { server: 0, good: 0, abusers: 0 };
    for (const { role, seconds } of this.#cpu.values()) cpu[role] += seconds;
    this.report.load.cpuSeconds = {
      server: Math.round(cpu.server * 10) / 10,
      good: Math.round(cpu.good * 10) / 10,
      abusers: Math.round(cpu.abusers * 10) / 10,
    };
  }

  /**
   * Spawns every child; when one fails, or the run was given up meanwhile, stops
   * the others and throws.
   */
  async #spawnAll(specs: ChildSpec[]): Promise<JsonLineChild[]> {
    const results = await Promise.allSettled(specs.map((spec) => spawnSoakChild(spec)));
    const failed = results.find((r) => r.status === "rejected");
    const children = results.flatMap((r) => r.status === "fulfilled" ? [r.value] : []);
    if (failed !== undefined || this.#stopped) {
      await Promise.allSettled(children.map((c) => c.stop(2000)));
      throw failed?.reason ?? new Error("the soak was stopped");
    }
    return children;
  }

  #say(line: string): void {
    this.#log(`[${((performance.now() - this.#t0) / 1000).toFixed(1).padStart(5)} s] ${line}`);
  }
}

/** Part `p` of `total` split over `parts` as evenly as whole numbers allow. */
function share(total: number, parts: number, p: number): number {
  return Math.floor(total / parts) + (p < total % parts ? 1 : 0);
}

function plural(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}

function sleep(ms: number): Promise<void> {
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
