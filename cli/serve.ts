/**
 * The `chat serve` mode: runs the chat server until SIGINT or SIGTERM (or SIGHUP, when its
 * terminal goes).
 *
 * @module
 */

import { formatHostPort, listInterfaces, loopbackFor, reachableHosts } from "./addresses.ts";

import { Command } from "commander";
import { getLogger } from "@logtape/logtape";
import { type AuthMode, DEFAULT_SERVER_CONFIG, resolveServerConfig } from "../server/config.ts";
import type { ServerConfig } from "../server/config.ts";
import { type ChatServer, startServer } from "../server/server.ts";
import { fitConnectionsToDescriptors } from "../server/descriptor_limit.ts";
import { parseCredentials } from "./credentials.ts";
import { oneLine, UsageError } from "./errors.ts";
import { reopenLogging } from "./logging.ts";
import {
  engineSettings,
  refuseSecretsInArguments,
  withEngineEnvironment,
} from "./serve_engines.ts";
import { addServeOptions, applySettings, parseConfigFile } from "./serve_settings.ts";

const log = getLogger(["chat", "cli", "serve"]);

/** The options of `chat serve` as commander parses them (one per setting, by attribute). */
export interface ServeOptions {
  /** `--host`. */
  host: string;
  /** `--port`. */
  port: number;
  /** `--data` (absent: the default folder). */
  data?: string;
  /** `--tls-cert`. */
  tlsCert?: string;
  /** `--tls-key`. */
  tlsKey?: string;
  /** `--auth`. */
  auth: AuthMode;
  /** `--credentials`. */
  credentials?: string;
  /** `--block-duration`. */
  blockDuration: number;
  /** `--idle-timeout`. */
  idleTimeout: number;
  /** `--max-frame`. */
  maxFrame: number;
  /** `--config`. */
  config?: string;
  /** False with `--no-web`. */
  web?: boolean;
  /** Every other setting of {@linkcode SERVE_SETTINGS}, by attribute. */
  [attribute: string]: unknown;
}

/**
 * Builds the `serve` subcommand with its options and action.
 *
 * @example
 * ```ts ignore
 * import { buildProgram } from "./program.ts";
 * import { serveCommand } from "./serve.ts";
 * buildProgram([serveCommand()]);
 * ```
 */
export function serveCommand(): Command {
  const command = new Command("serve")
    .description("run a chat server (drains and stops on Ctrl-C / SIGTERM / closing its terminal)")
    .option("--config <file>", "settings as JSON, keyed by flag name; flags win over the file")
    .option("--no-web", "do not serve the browser client");
  addServeOptions(command);
  return command.action(async (options: ServeOptions, cmd: Command) => {
    const fromCli = new Set(
      Object.keys(options).filter((key) => cmd.getOptionValueSource(key) === "cli"),
    );
    refuseSecretsInArguments(options, fromCli);
    const merged = withEngineEnvironment(await withConfigFile(options, fromCli), fromCli);
    await runServe(merged, fromCli);
  });
}

/**
 * Merges the `--config` file under the flags: a file value replaces a default, never a
 * flag given on the command line.
 */
export async function withConfigFile(
  options: ServeOptions,
  fromCli: ReadonlySet<string>,
): Promise<ServeOptions> {
  if (options.config === undefined) return options;
  const values = parseConfigFile(await readText(options.config, "config file"), options.config);
  const merged: ServeOptions = { ...options };
  for (const [key, value] of Object.entries(values)) {
    if (!fromCli.has(key)) merged[key] = value;
  }
  return merged;
}

/**
 * Turns parsed options into a server configuration: reads the TLS files and the
 * credentials file. Throws {@linkcode UsageError} for inconsistent flags and a plain
 * `Error` with a one-line message for unreadable or malformed files.
 */
export async function serveConfig(options: ServeOptions): Promise<ServerConfig> {
  if ((options.tlsCert === undefined) !== (options.tlsKey === undefined)) {
    throw new UsageError("--tls-cert and --tls-key must be given together");
  }
  const partial: Partial<ServerConfig> = {};
  applySettings(partial, options);
  Object.assign(partial, await engineSettings(options));
  // The browser client is on unless --no-web: on its own port, by default the next one.
  const port = partial.port ?? DEFAULT_SERVER_CONFIG.port;
  if (options.web === false) partial.webPort = null;
  else partial.webPort ??= port === 0 ? 0 : Math.min(port + 1, 65535);
  if (options.tlsCert !== undefined && options.tlsKey !== undefined) {
    const cert = await readText(options.tlsCert, "TLS certificate");
    const key = await readText(options.tlsKey, "TLS key");
    if (!/-----BEGIN CERTIFICATE-----/.test(cert)) {
      throw new Error(`TLS certificate ${options.tlsCert} contains no PEM CERTIFICATE block`);
    }
    if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(key)) {
      throw new Error(`TLS key ${options.tlsKey} contains no PEM PRIVATE KEY block`);
    }
    partial.tls = { cert, key };
  }
  if (options.credentials !== undefined) {
    const text = await readText(options.credentials, "credentials file");
    partial.credentials = parseCredentials(text, options.credentials);
  }
  return resolveServerConfig(partial);
}

/**
 * Runs the server with `options` until a signal stops it (see {@linkcode signalActions}).
 * SIGUSR1 (and SIGHUP without a terminal) reopens the log file and re-reads `--config`,
 * applying what a running server can change (`fromCli`: the settings given as flags,
 * which the file never overrides).
 */
export async function runServe(
  options: ServeOptions,
  fromCli: ReadonlySet<string> = new Set(),
): Promise<void> {
  const config = await serveConfig(options);
  // Raised where allowed, then measured: a cap the descriptor limit cannot hold is lowered.
  const descriptors = fitConnectionsToDescriptors(config.maxConnections);
  config.maxConnections = descriptors.maxConnections;
  let server: ChatServer;
  try {
    server = await startServer(config);
  } catch (err) {
    throw new Error(describeStartError(err, config.host, config.port), { cause: err });
  }
  // The signals are handled before the lines say the server is up: a Ctrl-C (or a
  // supervisor's SIGTERM) sent as soon as they appear drains and exits 0, not 130.
  const actions = signalActions(Deno.build.os, Deno.stdin.isTerminal());
  let stopping = false;
  const stop = (signal: Deno.Signal): void => {
    if (stopping) {
      // The terminal going may hang up more than once: only a second Ctrl-C or SIGTERM forces.
      if (signal === "SIGHUP") return;
      log.warn("second signal: exiting without waiting for the shutdown");
      Deno.exit(1);
    }
    stopping = true;
    log.info(
      signal === "SIGHUP" ? "terminal closed (SIGHUP): shutting down" : "shutting down",
    );
    server.shutdown("server shutting down").catch((err) => {
      log.error("shutdown failed: {error}", { error: err });
    });
  };
  const listeners = [...actions].map(([signal, action]) => {
    const listener = action === "stop" ? () => stop(signal) : () => {
      reload(options, fromCli, config, descriptors.capacity, signal).catch((err) =>
        log.error("reload failed: {error}; keeping the running settings", { error: err })
      );
    };
    Deno.addSignalListener(signal, listener);
    return [signal, listener] as const;
  });
  try {
    const fingerprint = config.tls ? await certificateFingerprint(config.tls.cert) : null;
    for (const line of listeningLines(server, fingerprint, listInterfaces(), launcher())) {
      console.log(line);
    }
    for (const line of webLines(server, listInterfaces())) console.log(line);
    for (const [addr, how] of [[server.ircAddr, "plain"], [server.ircTlsAddr, "TLS"]] as const) {
      if (addr !== null) {
        console.log(`  IRC clients: ${formatHostPort(addr.hostname, addr.port)} (${how})`);
      }
    }
    if (server.metricsAddr !== null) {
      console.log(
        `  metrics at: http://${
          formatHostPort(server.metricsAddr.hostname, server.metricsAddr.port)
        }/metrics`,
      );
    }
    if (config.postgres !== null && config.nats !== null) {
      log.info(
        "serving as a node of several: PostgreSQL at {postgres}, NATS at {nats}, auth {auth}",
        {
          postgres: config.postgres.url,
          nats: config.nats.servers.join(","),
          auth: config.auth,
        },
      );
    } else {
      log.info("serving with data folder {data}, auth {auth}", {
        data: config.dataDir,
        auth: config.auth,
      });
    }
    await server.finished;
  } finally {
    for (const [signal, listener] of listeners) Deno.removeSignalListener(signal, listener);
  }
  log.info("stopped");
}

/**
 * What each signal does to a running server: `stop` drains and exits 0, `reload` reopens
 * the log file and re-reads `--config`. SIGHUP means the terminal went away for a server
 * whose standard input is a terminal (it stops, instead of living on orphaned and holding
 * its port), and reload for one without (a service, `nohup`, a container); SIGUSR1
 * reloads either way.
 *
 * @example
 * ```ts
 * import { signalActions } from "./serve.ts";
 * signalActions("linux", true).get("SIGHUP"); // "stop"
 * signalActions("linux", false).get("SIGHUP"); // "reload"
 * ```
 */
export function signalActions(
  os: typeof Deno.build.os,
  stdinIsTerminal: boolean,
): Map<Deno.Signal, "stop" | "reload"> {
  if (os === "windows") return new Map([["SIGINT", "stop"], ["SIGBREAK", "stop"]]);
  return new Map([
    ["SIGINT", "stop"],
    ["SIGTERM", "stop"],
    ["SIGHUP", stdinIsTerminal ? "stop" : "reload"],
    ["SIGUSR1", "reload"],
  ]);
}

/** SIGUSR1 or SIGHUP: reopens the log file, then re-reads `--config` into the live config. */
async function reload(
  options: ServeOptions,
  fromCli: ReadonlySet<string>,
  live: ServerConfig,
  connectionCapacity: number | null,
  signal: Deno.Signal = "SIGHUP",
): Promise<void> {
  await reopenLogging();
  if (options.config === undefined) {
    log.info(`${signal}: log file reopened; no --config to re-read`);
    return;
  }
  const values = parseConfigFile(await readText(options.config, "config file"), options.config);
  for (const key of fromCli) delete values[key];
  const next: Partial<ServerConfig> = {};
  applySettings(next, values, (setting) => setting.reloadable === true);
  const wanted = next.maxConnections;
  if (
    wanted !== undefined && connectionCapacity !== null &&
    (wanted === 0 || wanted > connectionCapacity)
  ) {
    log.warn(`${signal}: max-connections {wanted} lowered to {capacity}: the descriptor limit`, {
      wanted,
      capacity: connectionCapacity,
    });
    next.maxConnections = connectionCapacity;
  }
  const changes: string[] = [];
  for (const [key, value] of Object.entries(next) as [keyof ServerConfig, unknown][]) {
    if (live[key] !== value) changes.push(`${key} ${String(live[key])} -> ${String(value)}`);
  }
  Object.assign(live, next);
  const fixed: Partial<ServerConfig> = {};
  applySettings(fixed, values, (setting) => setting.reloadable !== true);
  const needRestart = (Object.entries(fixed) as [keyof ServerConfig, unknown][])
    .filter(([key, value]) => live[key] !== value)
    .map(([key]) => key);
  if (needRestart.length > 0) {
    log.warn(`${signal}: {settings} changed in {path}; they take effect after a restart`, {
      settings: needRestart.join(", "),
      path: options.config,
    });
  }
  log.info(`${signal}: reloaded {path}: {changes}`, {
    path: options.config,
    changes: changes.length > 0 ? changes.join(", ") : "no changes",
  });
}

/**
 * The lines printed when the server is up: where it listens, how to connect to it
 * (`program` is what runs a mode: `chat`, or the task form from a clone, see
 * {@linkcode launcher}), and, when it listens on loopback only, that other machines
 * cannot connect and how to let them.
 *
 * @example
 * ```ts
 * import { listeningLines } from "./serve.ts";
 * listeningLines({ addr: { transport: "tcp", hostname: "127.0.0.1", port: 44444 }, tls: false });
 * // ["chat serve: listening on 127.0.0.1:44444 (TLS off)",
 * //  "  connect with: chat connect --host 127.0.0.1 --port 44444 --nick NAME",
 * //  "  other machines cannot connect: 127.0.0.1 is this machine only; to allow them, " +
 * //    "start with --host 0.0.0.0 (e.g. chat serve --host 0.0.0.0)"]
 * ```
 */
export function listeningLines(
  server: Pick<ChatServer, "addr" | "tls">,
  fingerprint: string | null = null,
  interfaces: Deno.NetworkInterfaceInfo[] = [],
  program = "chat",
): string[] {
  const { hostname, port } = server.addr;
  const tlsNote = server.tls
    ? `TLS on${fingerprint === null ? "" : `, certificate SHA-256 ${fingerprint}`}`
    : "TLS off";
  const lines = [`chat serve: listening on ${formatHostPort(hostname, port)} (${tlsNote})`];
  const tlsFlags = server.tls
    ? fingerprint === null ? " --tls" : ` --tls --trust-fingerprint ${fingerprint}`
    : "";
  for (const host of connectHosts(hostname, interfaces)) {
    lines.push(
      `  connect with: ${program} connect --host ${host} --port ${port}${tlsFlags} --nick NAME`,
    );
  }
  if (isLoopbackHost(hostname)) {
    const wildcard = hostname.includes(":") ? "::" : "0.0.0.0";
    lines.push(
      `  other machines cannot connect: ${hostname} is this machine only; to allow them, ` +
        `start with --host ${wildcard} (e.g. ${program} serve --host ${wildcard})`,
    );
  }
  return lines;
}

/**
 * The lines telling where the browser client is (none when it is off): the address to
 * open, for each address others can reach.
 *
 * @example
 * ```ts
 * import { webLines } from "./serve.ts";
 * webLines({
 *   tls: false,
 *   webAddr: { transport: "tcp", hostname: "127.0.0.1", port: 44445 },
 * });
 * // ["  open http://127.0.0.1:44445/ in a browser"]
 * ```
 */
export function webLines(
  server: Pick<ChatServer, "webAddr" | "tls">,
  interfaces: Deno.NetworkInterfaceInfo[] = [],
): string[] {
  if (server.webAddr === null) return [];
  const scheme = server.tls ? "https" : "http";
  return connectHosts(server.webAddr.hostname, interfaces).map((host) =>
    `  open ${scheme}://${formatHostPort(host, server.webAddr!.port)}/ in a browser`
  );
}

/** The path of the running executable; `chat` when it may not be read. */
function ownPath(): string {
  try {
    return Deno.execPath();
  } catch {
    return "chat";
  }
}

/** Whether a bound host name or address is reachable from this machine only. */
function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase();
  return h === "localhost" || h.endsWith(".localhost") || h === "::1" ||
    /^127\.\d+\.\d+\.\d+$/.test(h) || h === "::ffff:127.0.0.1";
}

/**
 * How the user runs a mode of `chat`, for the commands the server prints: the binary's
 * name when it is a compiled `chat`; from a clone (run by `deno`), the quick start's task
 * form `npx -y deno@MAJOR.MINOR task`.
 *
 * @example
 * ```ts
 * import { launcher } from "./serve.ts";
 * launcher("/home/ada/.local/bin/chat", "2.9.1"); // "chat"
 * launcher("/usr/bin/deno", "2.9.1"); // "npx -y deno@2.9 task"
 * ```
 */
export function launcher(execPath = ownPath(), denoVersion = Deno.version.deno): string {
  const name = execPath.split(/[\\/]/).pop()!.replace(/\.exe$/i, "");
  if (name !== "deno") return name;
  const [major, minor] = denoVersion.split(".");
  return `npx -y deno@${major}.${minor} task`;
}

/** Hosts others can use to reach a server bound to `boundHost`; loopback when none. */
export function connectHosts(boundHost: string, interfaces: Deno.NetworkInterfaceInfo[]): string[] {
  const hosts = reachableHosts(boundHost, interfaces);
  return hosts.length > 0 ? hosts : [loopbackFor(boundHost)];
}

/**
 * The SHA-256 fingerprint of the first certificate in a PEM text, as uppercase hex pairs
 * separated by colons (the form `openssl x509 -noout -fingerprint -sha256` prints).
 */
export async function certificateFingerprint(pem: string): Promise<string | null> {
  const match = /-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]+)-----END CERTIFICATE-----/.exec(
    pem,
  );
  if (match === null) return null;
  let der: Uint8Array<ArrayBuffer>;
  try {
    der = Uint8Array.from(atob(match[1]!.replace(/\s+/g, "")), (c) => c.charCodeAt(0));
  } catch {
    return null;
  }
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", der));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0").toUpperCase()).join(":");
}

async function readText(path: string, what: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (err) {
    throw new Error(`cannot read ${what} ${path}: ${reasonOf(err)}`, { cause: err });
  }
}

function reasonOf(err: unknown): string {
  if (err instanceof Deno.errors.NotFound) return "no such file";
  if (err instanceof Deno.errors.PermissionDenied) return "permission denied";
  if (err instanceof Deno.errors.IsADirectory) return "it is a folder";
  return oneLine(err);
}

function describeStartError(err: unknown, host: string, port: number): string {
  const where = formatHostPort(host, port);
  const cause = err instanceof Error && err.cause !== undefined ? err.cause : undefined;
  const is = (cls: new (...args: never[]) => Error): boolean =>
    err instanceof cls || cause instanceof cls;
  if (is(Deno.errors.AddrInUse)) {
    return `cannot listen on ${where}: address already in use (another server running? pick another --port)`;
  }
  if (is(Deno.errors.AddrNotAvailable)) {
    return `cannot listen on ${where}: this machine has no such address (check --host)`;
  }
  return oneLine(err);
}
