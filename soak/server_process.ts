/**
 * The chat server in its own process, for the soak: the default configuration (every
 * flood and connection limit at its default) except for the settings passed in, on
 * 127.0.0.1 with the SQLite store in a given folder and cheap password hashing.
 *
 * ```sh
 * deno run --allow-net=127.0.0.1 --allow-read=DIR --allow-write=DIR --allow-sys=statfs \
 *   soak/server_process.ts \
 *   '{"dataDir":"DIR","port":0,"overrides":{"maxConnectionsPerIp":1000}}'
 * ```
 *
 * Prints `{"port": N, "pid": P}` once it listens (or `{"error": "..."}`), then answers
 * `stats` (sessions, CPU seconds, and the event loop's longest lag since the last
 * `stats`) and
 * `exit` on stdin (see side_channel.ts); it shuts down gracefully on
 * `exit` or when stdin ends.
 *
 * @module
 */

import { resolveServerConfig, type ServerConfig } from "../server/config.ts";
import { type ChatServer, startServer } from "../server/server.ts";
import { cpuSeconds, LoopLag } from "./loop_lag.ts";
import { emit, serveSideChannel } from "../tools/side_channel.ts";

/** What the launcher is told on its command line. */
export interface SoakServerArgs {
  /** Folder of the SQLite database. */
  dataDir: string;
  /** Port; 0 picks one. */
  port: number;
  /** Settings that differ from the defaults (limits the scenario needs changed). */
  overrides: Partial<ServerConfig>;
  /** Certificate chain and key (PEM) to serve TLS with; absent for plain TCP. */
  tls?: { cert: string; key: string };
}

/** scrypt cost of the soak's accounts: cheap, since the soak measures no hashing. */
export const SOAK_PASSWORD_COST = 1024;

/** The server configuration of the soak: defaults, then the launcher's fixed settings, then the overrides. */
export function soakServerConfig(args: SoakServerArgs): ServerConfig {
  return resolveServerConfig({
    host: "127.0.0.1",
    port: args.port,
    dataDir: args.dataDir,
    passwordCost: SOAK_PASSWORD_COST,
    ...(args.tls !== undefined ? { tls: args.tls } : {}),
    ...args.overrides,
  });
}

if (import.meta.main) {
  let server: ChatServer;
  try {
    const args = JSON.parse(Deno.args[0] ?? "") as SoakServerArgs;
    server = await startServer(soakServerConfig(args));
  } catch (err) {
    emit({ error: err instanceof Error ? err.message : String(err) });
    Deno.exit(1);
  }
  const lag = new LoopLag();
  emit({ port: server.addr.port, pid: Deno.pid });
  await serveSideChannel({
    stats: () => ({
      sessions: server.hub.sessionCount,
      lag: lag.take(),
      cpuSeconds: cpuSeconds(),
      acceptErrors: server.hub.metrics.counters.acceptErrors,
      connectionsAccepted: server.hub.metrics.counters.connectionsAccepted,
    }),
    exit: () => {
      lag.stop();
      return server.shutdown("soak over");
    },
  });
  Deno.exit(0);
}
