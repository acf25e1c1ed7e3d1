/**
 * The `chat serve` mode: runs the chat server until SIGINT or SIGTERM.
 *
 * @module
 */

import { formatHostPort, listInterfaces, loopbackFor, reachableHosts } from "./addresses.ts";

import { Command, Option } from "commander";
import { getLogger } from "@logtape/logtape";
import { DEFAULT_MAX_FRAME_SIZE, MAX_FRAME_SIZE_LIMIT } from "../protocol/frame.ts";
import { type AuthMode, DEFAULT_SERVER_CONFIG, resolveServerConfig } from "../server/config.ts";
import type { ServerConfig } from "../server/config.ts";
import { type ChatServer, startServer } from "../server/server.ts";
import { parseCredentials } from "./credentials.ts";
import { oneLine, UsageError } from "./errors.ts";
import { integerIn, parsePort } from "./options.ts";

const log = getLogger(["chat", "cli", "serve"]);

/** Longest `--block-duration` and `--idle-timeout`: one year, in seconds. */
const MAX_SECONDS = 365 * 24 * 60 * 60;
/** Smallest `--max-frame`: enough for any control message. */
const MIN_MAX_FRAME = 1024;

/** The options of `chat serve` as commander parses them. */
export interface ServeOptions {
  /** `--host`. */
  host: string;
  /** `--port`. */
  port: number;
  /** `--data`. */
  data: string;
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
  return new Command("serve")
    .description("run a chat server (stops cleanly on Ctrl-C / SIGTERM)")
    .option("--host <host>", "address to listen on", DEFAULT_SERVER_CONFIG.host)
    .option("--port <port>", "TCP port to listen on; 0 picks a free one", parsePort, 44444)
    .option("--data <dir>", "folder of the SQLite database", "./chat-data")
    .option("--tls-cert <file>", "TLS certificate chain (PEM); needs --tls-key")
    .option("--tls-key <file>", "TLS private key (PEM); needs --tls-cert")
    .addOption(
      new Option("--auth <mode>", "password: register on first login; none: nick only")
        .choices(["password", "none"])
        .default(DEFAULT_SERVER_CONFIG.auth),
    )
    .option("--credentials <file>", 'accounts to import, one "username password" per line')
    .option(
      "--block-duration <seconds>",
      "seconds a nick stays locked after 3 wrong passwords",
      integerIn(0, MAX_SECONDS),
      DEFAULT_SERVER_CONFIG.blockDurationSec,
    )
    .option(
      "--idle-timeout <seconds>",
      "log out sessions idle this long; 0 never",
      integerIn(0, MAX_SECONDS),
      DEFAULT_SERVER_CONFIG.idleTimeoutSec,
    )
    .option(
      "--max-frame <bytes>",
      "largest frame accepted from a client",
      integerIn(MIN_MAX_FRAME, MAX_FRAME_SIZE_LIMIT),
      DEFAULT_MAX_FRAME_SIZE,
    )
    .action(async (options: ServeOptions) => {
      await runServe(options);
    });
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
  const partial: Partial<ServerConfig> = {
    host: options.host,
    port: options.port,
    dataDir: options.data,
    auth: options.auth,
    blockDurationSec: options.blockDuration,
    idleTimeoutSec: options.idleTimeout,
    maxFrameSize: options.maxFrame,
  };
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

/** Runs the server with `options` until a signal stops it. */
export async function runServe(options: ServeOptions): Promise<void> {
  const config = await serveConfig(options);
  let server: ChatServer;
  try {
    server = await startServer(config);
  } catch (err) {
    throw new Error(describeStartError(err, config.host, config.port), { cause: err });
  }
  const fingerprint = config.tls ? await certificateFingerprint(config.tls.cert) : null;
  for (const line of listeningLines(server, fingerprint, listInterfaces())) {
    console.log(line);
  }
  log.info("serving with data folder {data}, auth {auth}", {
    data: config.dataDir,
    auth: config.auth,
  });

  const signals: Deno.Signal[] = Deno.build.os === "windows"
    ? ["SIGINT", "SIGBREAK"]
    : ["SIGINT", "SIGTERM"];
  let stopping = false;
  const onSignal = (): void => {
    if (stopping) {
      log.warn("second signal: exiting without waiting for the shutdown");
      Deno.exit(1);
    }
    stopping = true;
    log.info("shutting down");
    server.shutdown("server shutting down").catch((err) => {
      log.error("shutdown failed: {error}", { error: err });
    });
  };
  for (const signal of signals) Deno.addSignalListener(signal, onSignal);
  try {
    await server.finished;
  } finally {
    for (const signal of signals) Deno.removeSignalListener(signal, onSignal);
  }
  log.info("stopped");
}

/**
 * The lines printed when the server is up: where it listens and how to connect to it.
 *
 * @example
 * ```ts
 * import { listeningLines } from "./serve.ts";
 * listeningLines({ addr: { transport: "tcp", hostname: "127.0.0.1", port: 44444 }, tls: false });
 * // ["chat serve: listening on 127.0.0.1:44444 (TLS off)",
 * //  "  connect with: chat connect --host 127.0.0.1 --port 44444 --nick NAME"]
 * ```
 */
export function listeningLines(
  server: Pick<ChatServer, "addr" | "tls">,
  fingerprint: string | null = null,
  interfaces: Deno.NetworkInterfaceInfo[] = [],
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
    lines.push(`  connect with: chat connect --host ${host} --port ${port}${tlsFlags} --nick NAME`);
  }
  return lines;
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
