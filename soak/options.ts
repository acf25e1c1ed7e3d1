/**
 * The soak's settings: the full run, the `--quick` one, and the command line.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { ABUSE_KINDS, type AbuseKind } from "./abuse.ts";
import { ATTACK_KINDS, TLS_ATTACK_KINDS } from "./attacks.ts";

/** Everything a soak run can be told. */
export interface SoakOptions {
  /** Target length of the whole run, in seconds (traffic, then the checks). */
  durationSec: number;
  /** Well-behaved clients. */
  goodClients: number;
  /** Processes they are spread over. */
  goodProcesses: number;
  /** Rooms they chat in. */
  rooms: number;
  /** Rooms each joins. */
  roomsPerClient: number;
  /** Pause between two sends of one client, in ms: from, to. */
  sendIntervalMs: [number, number];
  /** Share of sends that are direct messages. */
  dmShare: number;
  /** Abusive connections to open in all. */
  abusiveConnections: number;
  /** Processes they come from. */
  abuserProcesses: number;
  /** Abusive connections open at once, at most, in all. */
  abuserConcurrency: number;
  /** Most frames a flooder sends (in batches, until it is disconnected). */
  floodFrames: number;
  /** How long a connection that never reads holds out, in ms. */
  neverReadHoldMs: number;
  /**
   * Where in the traffic window the server is killed (0..1); moved later when the
   * first slowloris wave needs the time to meet the login deadline (see soak.ts).
   */
  killAt: number;
  /**
   * Server settings changed from the defaults, for the scenario: everything comes
   * from 127.0.0.1, so the per-IP connection cap must fit every client at once.
   */
  serverOverrides: Record<string, number>;
  /** Seed of every random choice. */
  seed: number;
  /** Keep the data folder afterwards (it is always kept when the soak fails). */
  keepData: boolean;
  /** Well-behaved traffic before the quiet phase, not measured, in seconds. */
  warmupSec: number;
  /** The quiet phase (well-behaved clients alone), in seconds. */
  quietSec: number;
  /** Each attack's phase, in seconds. */
  phaseSec: number;
  /** Other lengths for some attacks' phases, in seconds. */
  phaseSecByKind: Partial<Record<AbuseKind, number>>;
  /** A pause after each attack phase, not measured, in seconds. */
  settleSec: number;
  /** The attacks that get a phase of their own, in order. */
  attacks: AbuseKind[];
  /** Attack connections open at once, where not the default (attacks.ts). */
  attackConcurrency: Partial<Record<AbuseKind, number>>;
  /** Below this p99 (ms) an attack phase is never over budget (see phases.ts). */
  p99FloorMs: number;
  /** Run the mixed phase, with its SIGKILL restart, after the attack phases. */
  mixed: boolean;
  /**
   * How long the server may leave a frame half sent before `partial_frame` calls it a
   * defect, in ms.
   */
  partialFrameDeadlineMs: number;
  /** Pause between two logins of the login probe, in ms. */
  probeIntervalMs: number;
  /**
   * Serve TLS (the test certificate of tests/fixtures/): only the attacks of
   * TLS_ATTACK_KINDS run, and no mixed phase (its abusers speak in the clear).
   */
  tls: boolean;
}

/** The full run: 2 minutes, 100 well-behaved clients, 3000 abusive connections. */
export const FULL_SOAK: Readonly<SoakOptions> = Object.freeze({
  durationSec: 120,
  goodClients: 100,
  goodProcesses: 2,
  rooms: 4,
  roomsPerClient: 2,
  sendIntervalMs: [1000, 3000] as [number, number],
  dmShare: 0.3,
  abusiveConnections: 3000,
  abuserProcesses: 3,
  abuserConcurrency: 300,
  floodFrames: 1000,
  neverReadHoldMs: 12_000,
  killAt: 0.5,
  serverOverrides: { maxConnectionsPerIp: 1000 },
  seed: 0,
  keepData: false,
  warmupSec: 2,
  quietSec: 15,
  phaseSec: 10,
  // Long enough for a half-sent frame, or a TLS handshake, to meet its deadline.
  phaseSecByKind: { partial_frame: 20, silent_tls: 18 },
  settleSec: 2,
  attacks: [...ATTACK_KINDS],
  attackConcurrency: {},
  p99FloorMs: 200,
  mixed: true,
  partialFrameDeadlineMs: 15_000,
  probeIntervalMs: 1000,
  tls: false,
});

/**
 * The quick run, about a minute: 2 s attack phases (so a higher p99 floor, and
 * `partial_frame` cannot reach its deadline), then a 12 s mixed phase with 500
 * abusive connections.
 */
export const QUICK_SOAK: Readonly<SoakOptions> = Object.freeze({
  ...FULL_SOAK,
  durationSec: 12,
  abusiveConnections: 500,
  abuserProcesses: 2,
  abuserConcurrency: 200,
  neverReadHoldMs: 4000,
  warmupSec: 0.5,
  quietSec: 3,
  phaseSec: 2,
  // One run of these needs a few seconds: 400 messages held, then the victim's login;
  // 100 offers of about 17 ms each.
  phaseSecByKind: { dm_backlog: 4, empty_offers: 4, silent_tls: 18 },
  settleSec: 0.5,
  p99FloorMs: 250,
});

/** Thrown for a bad command line. */
export class SoakUsageError extends Error {
  /** Stable code. */
  readonly code = "usage";
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "SoakUsageError";
  }
}

/** `text` broken at spaces into lines of at most `width`, each after `indent`. */
function wrap(text: string, width: number, indent: string): string {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(" ")) {
    if (line !== "" && indent.length + line.length + 1 + word.length > width) {
      lines.push(indent + line);
      line = word;
    } else line = line === "" ? word : `${line} ${word}`;
  }
  if (line !== "") lines.push(indent + line);
  return lines.join("\n");
}

/** The usage text of `deno task soak`. */
export const SOAK_USAGE = `usage: deno task soak [--quick] [options]

Well-behaved clients chat through every phase: a quiet one (the reference), one per
attack (by default the attacks of issue #13:
${wrap(ATTACK_KINDS.join(", "), 76, "  ")}),
then a mixed one where every older kind of abuse runs at once and the server is
killed with SIGKILL and started again. The report has a table per attack: the
well-behaved clients' p99 against the quiet phase's (within 2×, or under the floor),
what was lost, the login probe, and what got through.

  --quick              about a minute: 2 s attack phases and a 12 s mixed phase
                       (the full run: 10 s phases and a 2 min mixed phase, ~5 min)
  --duration SECONDS   length of the mixed phase with its checks
  --clients N          well-behaved clients (default 100)
  --abusive N          abusive connections of the mixed phase
  --attacks LIST       the attacks with a phase of their own, comma-separated, in
                       order; "all" adds the mixed phase's kinds, "none" skips them
  --phase SECONDS      length of each attack phase
  --quiet SECONDS      length of the quiet phase
  --floor MS           an attack phase's p99 is over budget only above 2 × this
                       (noise of short phases on a shared machine; default 200, quick 250)
  --no-mixed           skip the mixed phase and its restart
  --tls                serve TLS (tests/fixtures' certificate) and run the attack
                       that needs it: ${TLS_ATTACK_KINDS.join(", ")}; no mixed phase
  --password-cost N    the server's scrypt cost (default 1024: cheap; the server's
                       own default, 32768, makes register_flood realistic)
  --seed N             seed of the random choices (default: random, printed)
  --keep-data          keep the server's data folder afterwards
  -h, --help           this text`;

/**
 * Parses the command line of `deno task soak`; null when help was asked for.
 *
 * @throws {SoakUsageError} for unknown flags and bad numbers.
 * @example
 * ```ts
 * import { parseSoakArgs } from "./options.ts";
 * parseSoakArgs(["--quick", "--seed", "7"])?.durationSec; // 20
 * ```
 */
export function parseSoakArgs(args: string[]): SoakOptions | null {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
        quick: { type: "boolean" },
        duration: { type: "string" },
        clients: { type: "string" },
        abusive: { type: "string" },
        seed: { type: "string" },
        "keep-data": { type: "boolean" },
        attacks: { type: "string" },
        phase: { type: "string" },
        quiet: { type: "string" },
        floor: { type: "string" },
        "no-mixed": { type: "boolean" },
        tls: { type: "boolean" },
        "password-cost": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (err) {
    throw new SoakUsageError(err instanceof Error ? err.message : String(err));
  }
  const values = parsed.values;
  if (values.help) return null;
  const options: SoakOptions = {
    ...(values.quick ? QUICK_SOAK : FULL_SOAK),
    serverOverrides: { ...FULL_SOAK.serverOverrides },
    seed: Math.floor(Math.random() * 0xffff_ffff),
  };
  if (values.duration !== undefined) {
    options.durationSec = integer("--duration", values.duration, 5, 3600);
  }
  if (values.clients !== undefined) {
    options.goodClients = integer("--clients", values.clients, 2, 900);
  }
  if (values.abusive !== undefined) {
    options.abusiveConnections = integer("--abusive", values.abusive, 0, 1_000_000);
  }
  if (values.seed !== undefined) options.seed = integer("--seed", values.seed, 0, 0xffff_ffff);
  if (values["keep-data"]) options.keepData = true;
  if (values.tls) {
    options.tls = true;
    options.attacks = [...TLS_ATTACK_KINDS];
    options.mixed = false;
  }
  if (values.attacks !== undefined) options.attacks = attackList(values.attacks);
  const misplaced = options.attacks.filter((kind) =>
    TLS_ATTACK_KINDS.includes(kind as never) !== options.tls
  );
  if (misplaced.length > 0) {
    throw new SoakUsageError(
      `--attacks: ${misplaced.join(", ")} ${options.tls ? "cannot run with" : "needs"} --tls`,
    );
  }
  if (values.phase !== undefined) {
    options.phaseSec = integer("--phase", values.phase, 1, 3600);
    options.phaseSecByKind = {};
  }
  if (values.quiet !== undefined) options.quietSec = integer("--quiet", values.quiet, 1, 3600);
  if (values.floor !== undefined) options.p99FloorMs = integer("--floor", values.floor, 0, 60_000);
  if (values["no-mixed"]) options.mixed = false;
  if (values["password-cost"] !== undefined) {
    const cost = integer("--password-cost", values["password-cost"], 2, 1 << 20);
    if ((cost & (cost - 1)) !== 0) throw new SoakUsageError("--password-cost must be a power of 2");
    options.serverOverrides.passwordCost = cost;
  }
  return options;
}

/** The `--attacks` list: kinds, "all", or "none". */
function attackList(text: string): AbuseKind[] {
  if (text === "none") return [];
  if (text === "all") {
    // The plain attacks, then the mixed phase's kinds (slowloris comes in waves there).
    const more = ABUSE_KINDS.filter((k) =>
      !ATTACK_KINDS.includes(k as never) && !TLS_ATTACK_KINDS.includes(k as never) &&
      k !== "slowloris"
    );
    return [...ATTACK_KINDS, ...more];
  }
  const kinds = text.split(",").map((k) => k.trim()).filter((k) => k !== "");
  for (const kind of kinds) {
    if (!ABUSE_KINDS.includes(kind as AbuseKind)) {
      throw new SoakUsageError(
        `--attacks: unknown kind "${kind}" (known: ${ABUSE_KINDS.join(", ")})`,
      );
    }
  }
  return kinds as AbuseKind[];
}

function integer(flag: string, text: string, min: number, max: number): number {
  const value = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new SoakUsageError(`${flag} must be a whole number from ${min} to ${max}, got "${text}"`);
  }
  return value;
}
