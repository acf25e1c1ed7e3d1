/**
 * The soak's settings: the full run, the `--quick` one, and the command line.
 *
 * @module
 */

import { parseArgs } from "node:util";

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
});

/** The quick run: 20 seconds, 100 well-behaved clients, 500 abusive connections. */
export const QUICK_SOAK: Readonly<SoakOptions> = Object.freeze({
  ...FULL_SOAK,
  durationSec: 20,
  abusiveConnections: 500,
  abuserProcesses: 2,
  abuserConcurrency: 200,
  neverReadHoldMs: 4000,
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

/** The usage text of `deno task soak`. */
export const SOAK_USAGE = `usage: deno task soak [--quick] [options]

  --quick              20 s and 500 abusive connections instead of 2 min and 3000
  --duration SECONDS   target length of the whole run
  --clients N          well-behaved clients (default 100)
  --abusive N          abusive connections in all
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
  return options;
}

function integer(flag: string, text: string, min: number, max: number): number {
  const value = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new SoakUsageError(`${flag} must be a whole number from ${min} to ${max}, got "${text}"`);
  }
  return value;
}
