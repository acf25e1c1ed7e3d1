/**
 * Every setting of `chat serve` in one table: its flag, its parser, where it lands in
 * the server configuration, and whether a running server can take a new value on
 * SIGHUP. The command-line options, the `--config` file and reloads all come from it.
 *
 * The config file is a JSON object keyed by flag names without the dashes, e.g.
 * `{"port": 44444, "idle-timeout": 300, "metrics-port": 9464}`. Flags win over the
 * file, the file over the defaults.
 *
 * @module
 */

import { type Command, InvalidArgumentError, Option } from "commander";
import { DEFAULT_MAX_FRAME_SIZE, MAX_FRAME_SIZE_LIMIT } from "../protocol/frame.ts";
import { DEFAULT_SERVER_CONFIG, type ServerConfig } from "../server/config.ts";
import { integerIn, parsePort } from "./options.ts";

/** Longest durations in seconds: one year. */
const MAX_SECONDS = 365 * 24 * 60 * 60;
/** Smallest `--max-frame`: enough for any control message. */
const MIN_MAX_FRAME = 1024;
const BIG = 1_000_000_000;

/** One setting of `chat serve`. */
export interface Setting {
  /** The flag without its dashes, also the config file's key. */
  readonly flag: string;
  /** The argument's name in the help. */
  readonly arg: string;
  /** What it does, for the help. */
  readonly description: string;
  /** Parses the flag's text (commander parser); absent for plain strings. */
  readonly parse?: (text: string) => unknown;
  /** Allowed values, when it is a choice. */
  readonly choices?: readonly string[];
  /** The default value, as the flag's value (before {@linkcode Setting.apply}). */
  readonly default?: unknown;
  /** Sets the value onto a configuration (file paths are handled by the caller). */
  readonly apply?: (config: Partial<ServerConfig>, value: never) => void;
  /** Whether a running server takes a new value on SIGHUP. */
  readonly reloadable?: boolean;
}

const seconds = integerIn(0, MAX_SECONDS);
const count = integerIn(0, BIG);

function number<K extends keyof ServerConfig>(key: K, scale = 1) {
  return (config: Partial<ServerConfig>, value: number): void => {
    (config as Record<string, unknown>)[key] = value * scale;
  };
}

/** The settings of `chat serve`, in the order of the help. */
export const SERVE_SETTINGS: readonly Setting[] = [
  {
    flag: "host",
    arg: "<host>",
    description: "address to listen on",
    default: DEFAULT_SERVER_CONFIG.host,
    apply: (c, v: string) => c.host = v,
  },
  {
    flag: "port",
    arg: "<port>",
    description: "TCP port to listen on; 0 picks a free one",
    parse: parsePort,
    default: DEFAULT_SERVER_CONFIG.port,
    apply: number("port"),
  },
  {
    // No commander default: serve_engines.ts refuses --data beside --postgres when given.
    flag: "data",
    arg: "<dir>",
    description: `folder of the SQLite database (default: "${DEFAULT_SERVER_CONFIG.dataDir}")`,
    apply: (c, v: string) => c.dataDir = v,
  },
  { flag: "tls-cert", arg: "<file>", description: "TLS certificate chain (PEM); needs --tls-key" },
  { flag: "tls-key", arg: "<file>", description: "TLS private key (PEM); needs --tls-cert" },
  {
    flag: "auth",
    arg: "<mode>",
    description: "password: register on first login; none: nick only",
    choices: ["password", "none"],
    default: DEFAULT_SERVER_CONFIG.auth,
    apply: (c, v: "password" | "none") => c.auth = v,
  },
  {
    flag: "credentials",
    arg: "<file>",
    description: 'accounts to import, one "username password" per line',
  },
  {
    flag: "block-duration",
    arg: "<seconds>",
    description: "seconds a nick stays locked after 3 wrong passwords",
    parse: seconds,
    default: DEFAULT_SERVER_CONFIG.blockDurationSec,
    apply: number("blockDurationSec"),
  },
  {
    flag: "idle-timeout",
    arg: "<seconds>",
    description: "log out sessions idle this long; 0 never",
    parse: seconds,
    default: DEFAULT_SERVER_CONFIG.idleTimeoutSec,
    apply: number("idleTimeoutSec"),
    reloadable: true,
  },
  {
    flag: "max-frame",
    arg: "<bytes>",
    description: "largest frame accepted from a client",
    parse: integerIn(MIN_MAX_FRAME, MAX_FRAME_SIZE_LIMIT),
    default: DEFAULT_MAX_FRAME_SIZE,
    apply: number("maxFrameSize"),
  },
  {
    flag: "rate-messages",
    arg: "<n>",
    description: "messages a session may send per second; 0 unlimited",
    parse: count,
    default: DEFAULT_SERVER_CONFIG.rateMessagesPerSec,
    apply: number("rateMessagesPerSec"),
    reloadable: true,
  },
  {
    flag: "rate-burst",
    arg: "<n>",
    description: "messages a session may send at once before the rate applies",
    parse: integerIn(1, BIG),
    default: DEFAULT_SERVER_CONFIG.rateMessagesBurst,
    apply: number("rateMessagesBurst"),
    reloadable: true,
  },
  {
    flag: "rate-requests",
    arg: "<n>",
    description: "requests of any kind a session may send per second; 0 unlimited",
    parse: count,
    default: DEFAULT_SERVER_CONFIG.rateRequestsPerSec,
    apply: number("rateRequestsPerSec"),
    reloadable: true,
  },
  {
    flag: "rate-bytes",
    arg: "<bytes>",
    description: "bytes a session may send per second; 0 unlimited",
    parse: count,
    default: DEFAULT_SERVER_CONFIG.rateBytesPerSec,
    apply: number("rateBytesPerSec"),
    reloadable: true,
  },
  {
    flag: "flood-strikes",
    arg: "<n>",
    description: "rate-limited requests within 10 s that disconnect a session; 0 never",
    parse: count,
    default: DEFAULT_SERVER_CONFIG.floodStrikes,
    apply: number("floodStrikes"),
    reloadable: true,
  },
  {
    flag: "max-connections",
    arg: "<n>",
    description: "connections open at once; 0 unlimited",
    parse: count,
    default: DEFAULT_SERVER_CONFIG.maxConnections,
    apply: number("maxConnections"),
    reloadable: true,
  },
  {
    flag: "max-connections-per-ip",
    arg: "<n>",
    description: "connections open at once from one address; 0 unlimited",
    parse: count,
    default: DEFAULT_SERVER_CONFIG.maxConnectionsPerIp,
    apply: number("maxConnectionsPerIp"),
    reloadable: true,
  },
  {
    flag: "max-sessions",
    arg: "<n>",
    description: "sessions one account may have at once; 0 unlimited",
    parse: count,
    default: DEFAULT_SERVER_CONFIG.maxSessionsPerAccount,
    apply: number("maxSessionsPerAccount"),
    reloadable: true,
  },
  {
    flag: "login-failures",
    arg: "<n>",
    description: "failed logins allowed per address per minute; 0 unlimited",
    parse: count,
    default: DEFAULT_SERVER_CONFIG.loginFailuresPerMinutePerIp,
    apply: number("loginFailuresPerMinutePerIp"),
  },
  {
    flag: "login-timeout",
    arg: "<seconds>",
    description: "seconds a new connection has to log in",
    parse: integerIn(1, MAX_SECONDS),
    default: DEFAULT_SERVER_CONFIG.loginTimeoutMs / 1000,
    apply: number("loginTimeoutMs", 1000),
    reloadable: true,
  },
  {
    flag: "max-queue",
    arg: "<bytes>",
    description: "bytes queued for a slow reader before it is cut off",
    parse: integerIn(64 * 1024, BIG),
    default: DEFAULT_SERVER_CONFIG.maxQueueBytes,
    apply: number("maxQueueBytes"),
    reloadable: true,
  },
  {
    flag: "write-timeout",
    arg: "<seconds>",
    description: "seconds a write may stall before the reader is cut off",
    parse: integerIn(1, MAX_SECONDS),
    default: DEFAULT_SERVER_CONFIG.writeTimeoutMs / 1000,
    apply: number("writeTimeoutMs", 1000),
    reloadable: true,
  },
  {
    flag: "drain-window",
    arg: "<seconds>",
    description: "seconds over which a shutdown closes sessions, a few at a time",
    parse: integerIn(0, 3600),
    default: DEFAULT_SERVER_CONFIG.drainWindowMs / 1000,
    apply: number("drainWindowMs", 1000),
    reloadable: true,
  },
  {
    flag: "metrics-port",
    arg: "<port>",
    description: "serve /metrics (Prometheus) and /healthz on this port; off when absent",
    parse: parsePort,
    apply: number("metricsPort"),
  },
  {
    flag: "metrics-host",
    arg: "<host>",
    description: "address of the metrics endpoint",
    default: DEFAULT_SERVER_CONFIG.metricsHost,
    apply: (c, v: string) => c.metricsHost = v,
  },
  {
    flag: "max-file-size",
    arg: "<bytes>",
    description: "largest file sent through the server (suffixes K, M, G: 64M)",
    parse: parseByteSize,
    default: DEFAULT_SERVER_CONFIG.maxFileSize,
    apply: number("maxFileSize"),
    reloadable: true,
  },
  {
    flag: "file-quota",
    arg: "<bytes>",
    description: "bytes of files the server holds for one sender's recipients at once",
    parse: parseByteSize,
    default: DEFAULT_SERVER_CONFIG.fileQuotaBytes,
    apply: number("fileQuotaBytes"),
    reloadable: true,
  },
  {
    flag: "file-ttl",
    arg: "<seconds>",
    description: "seconds a file is held for its recipient before it is deleted",
    parse: integerIn(1, MAX_SECONDS),
    default: DEFAULT_SERVER_CONFIG.fileTtlSec,
    apply: number("fileTtlSec"),
  },
  {
    flag: "frame-timeout",
    arg: "<seconds>",
    description: "seconds a frame may take to arrive once it has started; 0 never",
    parse: seconds,
    default: DEFAULT_SERVER_CONFIG.frameTimeoutMs / 1000,
    apply: number("frameTimeoutMs", 1000),
    reloadable: true,
  },
  {
    flag: "max-partial-frames",
    arg: "<bytes>",
    description: "bytes held for unfinished frames over all connections (64M); 0 unlimited",
    parse: parseByteSize,
    default: DEFAULT_SERVER_CONFIG.maxPartialFrameBytes,
    apply: number("maxPartialFrameBytes"),
    reloadable: true,
  },
  {
    flag: "tls-handshake-timeout",
    arg: "<seconds>",
    description: "seconds a TLS client has to finish its handshake before it is closed",
    parse: integerIn(1, MAX_SECONDS),
    default: DEFAULT_SERVER_CONFIG.tlsHandshakeTimeoutMs / 1000,
    apply: number("tlsHandshakeTimeoutMs", 1000),
    reloadable: true,
  },
  {
    flag: "lockout",
    arg: "<scope>",
    description: "3 wrong passwords lock the nick: address: for that address (and for " +
      "addresses that never logged in to it); account: from every address",
    choices: ["address", "account"],
    default: DEFAULT_SERVER_CONFIG.lockoutScope,
    apply: (c, v: "address" | "account") => c.lockoutScope = v,
  },
  {
    flag: "hash-concurrency",
    arg: "<n>",
    description: "password hashes (scrypt, 32 MiB each) computed at once",
    parse: integerIn(1, 1024),
    default: DEFAULT_SERVER_CONFIG.passwordHashConcurrency,
    apply: number("passwordHashConcurrency"),
  },
  {
    flag: "hash-queue",
    arg: "<n>",
    description: "logins waiting for a password hash before more are refused; 0 unbounded",
    parse: count,
    default: DEFAULT_SERVER_CONFIG.passwordHashQueue,
    apply: number("passwordHashQueue"),
  },
  {
    flag: "registrations-per-ip",
    arg: "<n>",
    description: "accounts one address may register per minute; 0 unlimited",
    parse: count,
    default: DEFAULT_SERVER_CONFIG.registrationsPerMinutePerIp,
    apply: number("registrationsPerMinutePerIp"),
  },
  {
    flag: "registrations",
    arg: "<n>",
    description: "accounts that may be registered per minute in all; 0 unlimited",
    parse: count,
    default: DEFAULT_SERVER_CONFIG.registrationsPerMinute,
    apply: number("registrationsPerMinute"),
  },
  {
    flag: "rate-file-bytes",
    arg: "<bytes>",
    description: "file and relay bytes a session may move per second (paced); 0 unlimited",
    parse: parseByteSize,
    default: DEFAULT_SERVER_CONFIG.rateFileBytesPerSec,
    apply: number("rateFileBytesPerSec"),
    reloadable: true,
  },
  {
    flag: "files-budget",
    arg: "<bytes>",
    description: "bytes of files the server holds at once, from all senders; 0 unlimited",
    parse: parseByteSize,
    default: DEFAULT_SERVER_CONFIG.filesBudgetBytes,
    apply: number("filesBudgetBytes"),
    reloadable: true,
  },
  {
    flag: "min-free-space",
    arg: "<bytes>",
    description: "free disk space uploads never eat into, kept for the database",
    parse: parseByteSize,
    default: DEFAULT_SERVER_CONFIG.minFreeBytes,
    apply: number("minFreeBytes"),
    reloadable: true,
  },
  {
    flag: "max-held-files",
    arg: "<n>",
    description: "files one sender may have held by the server at once; 0 unlimited",
    parse: count,
    default: DEFAULT_SERVER_CONFIG.maxHeldFilesPerSender,
    apply: number("maxHeldFilesPerSender"),
    reloadable: true,
  },
  {
    flag: "files-dir",
    arg: "<dir>",
    description: "folder of the files held for recipients (default files/ in --data); " +
      "on another disk, uploads cannot fill the database's",
    apply: (c, v: string) => c.fileDir = v,
  },
  {
    flag: "cluster-heartbeat",
    arg: "<seconds>",
    description: "seconds between a node's heartbeats in a cluster; a node silent for 3 " +
      "is taken for dead and its sessions go offline",
    parse: integerIn(1, 3600),
    default: DEFAULT_SERVER_CONFIG.clusterHeartbeatMs / 1000,
    apply: number("clusterHeartbeatMs", 1000),
  },
  // The engines of several nodes (serve_engines.ts reads them, the password files and the
  // environment: CHAT_POSTGRES_URL, CHAT_NATS_URL, PGPASSWORD, CHAT_NATS_PASSWORD).
  {
    flag: "postgres",
    arg: "<url>",
    description: "PostgreSQL keeping everything, shared by several nodes (with --nats), e.g. " +
      "postgres://chat@db/chat; no password here (--postgres-password-file, PGPASSWORD)",
  },
  {
    flag: "postgres-password-file",
    arg: "<file>",
    description: "file holding the password of --postgres's user",
  },
  {
    flag: "nats",
    arg: "<urls>",
    description: "NATS servers carrying messages between nodes (with --postgres), " +
      "comma-separated: nats://nats-1:4222,nats://nats-2:4222",
  },
  {
    flag: "nats-password-file",
    arg: "<file>",
    description: "file holding the password of --nats's user (nats://USER@host), " +
      "or the token when the URLs name no user",
  },
  {
    flag: "engine-wait",
    arg: "<seconds>",
    description: "seconds a starting node waits for PostgreSQL and NATS before giving up",
    parse: integerIn(1, 3600),
    default: DEFAULT_SERVER_CONFIG.engineWaitSec,
    apply: number("engineWaitSec"),
  },
  {
    flag: "presence-all-max",
    arg: "<n>",
    description: "accounts online up to which every login and logout is told to everyone; " +
      "above it only to those sharing a room (of at most n members) or having it as a contact",
    parse: count,
    default: DEFAULT_SERVER_CONFIG.presenceAllMax,
    apply: number("presenceAllMax"),
    reloadable: true,
  },
  {
    flag: "web-port",
    arg: "<port>",
    description: "port of the browser client (the page and its WebSocket); " +
      "default the chat port + 1 (a free one with --port 0); --no-web turns it off",
    parse: parsePort,
    apply: number("webPort"),
  },
  {
    flag: "irc-port",
    arg: "<port>",
    description: "also serve IRC clients (plain TCP) on this port, same accounts and rooms; " +
      "off when absent",
    parse: parsePort,
    apply: number("ircPort"),
  },
  {
    flag: "irc-tls-port",
    arg: "<port>",
    description: "also serve IRC clients over TLS on this port, with --tls-cert and --tls-key; " +
      "off when absent",
    parse: parsePort,
    apply: number("ircTlsPort"),
  },
  {
    flag: "token-ttl",
    arg: "<seconds>",
    description: 'seconds a session token ("remember me" in the browser) works after it is issued',
    parse: integerIn(60, 10 * 365 * 24 * 3600),
    default: DEFAULT_SERVER_CONFIG.tokenTtlSec,
    apply: number("tokenTtlSec"),
  },
  {
    flag: "commit-gap",
    arg: "<microseconds>",
    description: "with SQLite, least time from one group commit of messages to the next: " +
      "fewer commits and writes to each receiver under load, each message delivered later " +
      "by up to this (0: commit every turn's messages at once)",
    parse: integerIn(0, 1_000_000),
    default: DEFAULT_SERVER_CONFIG.commitGapMs * 1000,
    apply: number("commitGapMs", 0.001),
  },
];

const SIZE_UNITS: Record<string, number> = {
  "": 1,
  k: 1024,
  m: 1024 ** 2,
  g: 1024 ** 3,
  t: 1024 ** 4,
};

/**
 * Parses a byte count: digits, optionally followed by a binary unit `K`, `M`, `G` or `T`
 * (also written `KB`, `KiB`...): `65536`, `64K`, `256M`, `1GiB`.
 *
 * @throws {InvalidArgumentError} for anything else, or a size past 2^53 bytes.
 * @example
 * ```ts
 * import { parseByteSize } from "./serve_settings.ts";
 * parseByteSize("64M"); // 67108864
 * ```
 */
export function parseByteSize(text: string): number {
  const match = /^\s*(\d+)\s*(?:([kmgt])(?:i?b)?|b)?\s*$/i.exec(text);
  if (match === null) {
    throw new InvalidArgumentError(
      `Expected a byte count such as 1048576, 64K, 256M or 1G, not "${text}".`,
    );
  }
  const value = Number(match[1]) * SIZE_UNITS[(match[2] ?? "").toLowerCase()];
  if (!Number.isSafeInteger(value)) throw new InvalidArgumentError(`"${text}" is too large.`);
  return value;
}

/** The attribute commander gives a flag's value (`rate-messages` → `rateMessages`). */
export function attributeOf(flag: string): string {
  return flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** Adds every setting to `command` as an option. */
export function addServeOptions(command: Command): Command {
  for (const setting of SERVE_SETTINGS) {
    const option = new Option(`--${setting.flag} ${setting.arg}`, setting.description);
    if (setting.choices) option.choices(setting.choices);
    if (setting.parse) option.argParser(setting.parse as (value: string) => unknown);
    if (setting.default !== undefined) option.default(setting.default);
    command.addOption(option);
  }
  return command;
}

/**
 * Parses a config file's text into values keyed by commander attribute.
 *
 * @throws {Error} naming the file and the setting when the JSON is bad, a key is
 * unknown, or a value does not parse.
 */
export function parseConfigFile(text: string, path: string): Record<string, unknown> {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new Error(`config ${path}: not valid JSON: ${(err as Error).message}`);
  }
  if (data === null || typeof data !== "object" || Array.isArray(data)) {
    throw new Error(`config ${path}: expected a JSON object of settings`);
  }
  const out: Record<string, unknown> = {};
  for (const [key, raw] of Object.entries(data)) {
    const setting = SERVE_SETTINGS.find((s) => s.flag === key);
    if (setting === undefined) {
      throw new Error(
        `config ${path}: unknown setting "${key}" (settings are the flags of chat serve)`,
      );
    }
    if (typeof raw !== "string" && typeof raw !== "number") {
      throw new Error(`config ${path}: "${key}" must be a string or a number`);
    }
    const text = String(raw);
    if (setting.choices && !setting.choices.includes(text)) {
      throw new Error(`config ${path}: "${key}" must be one of ${setting.choices.join(", ")}`);
    }
    try {
      out[attributeOf(key)] = setting.parse ? setting.parse(text) : text;
    } catch (err) {
      const why = err instanceof InvalidArgumentError ? err.message : String(err);
      throw new Error(`config ${path}: "${key}": ${why}`);
    }
  }
  return out;
}

/** Sets every setting present in `values` (by attribute) onto a configuration. */
export function applySettings(
  config: Partial<ServerConfig>,
  values: Record<string, unknown>,
  only?: (setting: Setting) => boolean,
): void {
  for (const setting of SERVE_SETTINGS) {
    const value = values[attributeOf(setting.flag)];
    if (value === undefined || setting.apply === undefined) continue;
    if (only !== undefined && !only(setting)) continue;
    (setting.apply as (c: Partial<ServerConfig>, v: unknown) => void)(config, value);
  }
}
