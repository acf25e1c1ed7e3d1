/**
 * The chat server in its own process, for the benchmarks.
 *
 * ```sh
 * deno run -A bench/server_process.ts --auth none --data-dir /tmp/x --queue-bytes 67108864
 * deno run -A bench/server_process.ts --memory            # in-memory store
 * deno run -A bench/server_process.ts --memory --room-history 10000
 * ```
 *
 * `--web` also serves the browser client's WebSocket (`webPort` in the first line).
 * `--irc` also serves IRC clients (`ircPort` in the first line).
 *
 * Prints one JSON line `{"port": N, "webPort": W|null, "ircPort": I|null, "pid": P, "store": …}` once it
 * listens, then answers JSON-line commands on stdin (the side channel), one JSON
 * line on stdout each:
 *
 * - `{"id":1,"cmd":"mem"}` → `Deno.memoryUsage()` and VmRSS in KiB
 * - `{"id":2,"cmd":"gc"}` → a full garbage collection (needs `--v8-flags=--expose-gc`)
 * - `{"id":3,"cmd":"stats"}` → live sessions, bytes queued to clients, held files' bytes sent
 *   from memory and from disk and, for SQLite, the group-commit counters
 * - `{"id":4,"cmd":"exit"}` → graceful shutdown, then the process ends (a CPU
 *   profile asked for with `--cpu-prof` is written then)
 *
 * Flood and connection limits are off (`NO_LIMITS`); logging is left unconfigured, so
 * the server's LogTape calls print nothing.
 *
 * @module
 */

import { roundStages } from "../transport/round_stages.ts";
import { NO_LIMITS, resolveServerConfig, type ServerConfig } from "../server/config.ts";
import { MemoryStore } from "../server/memory_store.ts";
import { startServer } from "../server/server.ts";
import { DiskFileBytes } from "../server/disk_file_bytes.ts";
import { fileServiceOf } from "../server/files.ts";
import { SqliteStore } from "../server/sqlite_store.ts";
import { serveSideChannel } from "../tools/side_channel.ts";

/** What the bench server's flags ask for. */
export interface BenchServerSetup {
  /** The server configuration. */
  config: Partial<ServerConfig>;
  /** With the memory store: room messages kept per room (`--room-history`); default all. */
  roomHistory?: number;
}

/** Parses the bench server's flags. */
export function benchServerSetup(args: readonly string[]): BenchServerSetup {
  let roomHistory: number | undefined;
  const config: Partial<ServerConfig> = {
    // Flood and connection limits off: every load client comes from 127.0.0.1.
    ...NO_LIMITS,
    host: "127.0.0.1",
    port: 0,
    dataDir: null,
    auth: "none",
    passwordCost: 1024,
    shutdownGraceMs: 500,
    historyOnJoin: 0,
  };
  for (let i = 0; i < args.length; i++) {
    const flag = args[i];
    const value = (): string => {
      const v = args[++i];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      return v;
    };
    const number = (): number => {
      const v = Number(value());
      if (!Number.isFinite(v) || v < 0) throw new Error(`${flag} needs a non-negative number`);
      return v;
    };
    switch (flag) {
      case "--auth": {
        const auth = value();
        if (auth !== "none" && auth !== "password") {
          throw new Error(`--auth must be "none" or "password", not "${auth}"`);
        }
        config.auth = auth;
        break;
      }
      case "--data-dir":
        config.dataDir = value();
        break;
      case "--memory":
        config.dataDir = null;
        break;
      case "--room-history":
        roomHistory = number();
        break;
      case "--port":
        config.port = number();
        break;
      case "--queue-bytes":
        config.maxQueueBytes = number();
        break;
      case "--write-timeout-ms":
        config.writeTimeoutMs = number();
        break;
      case "--login-timeout-ms":
        config.loginTimeoutMs = number();
        break;
      case "--history-on-join":
        config.historyOnJoin = number();
        break;
      case "--presence-all-max":
        config.presenceAllMax = number();
        break;
      case "--commit-gap-us":
        // Least time between two group commits of SQLite (the server's --commit-gap).
        config.commitGapMs = number() / 1000;
        break;
      case "--web":
        // The browser client's WebSocket on a free port (its number is in the first line).
        config.webPort = 0;
        break;
      case "--irc":
        // The IRC listener on a free port (its number is in the first line).
        config.ircPort = 0;
        break;
      default:
        throw new Error(`unknown flag ${flag}`);
    }
  }
  return roomHistory === undefined ? { config } : { config, roomHistory };
}

if (import.meta.main) {
  const setup = benchServerSetup(Deno.args);
  const config = resolveServerConfig(setup.config);
  const server = await startServer(
    config,
    config.dataDir === null && setup.roomHistory !== undefined
      ? { store: new MemoryStore({ roomHistory: setup.roomHistory }) }
      : {},
  );
  const store = server.hub.store;
  // `bench/fixed_rate.ts --stages` sets it for the servers it starts.
  if (Deno.env.get("CHAT_ROUND_STAGES") !== undefined) roundStages.enable();
  console.log(JSON.stringify({
    port: server.addr.port,
    webPort: server.webAddr?.port ?? null,
    ircPort: server.ircAddr?.port ?? null,
    pid: Deno.pid,
    store: store instanceof SqliteStore ? "sqlite" : "memory",
  }));
  await serveSideChannel({
    stats: (request: Record<string, unknown>) => ({
      // With CHAT_ROUND_STAGES set: the stages of the rounds since the last `resetStages`.
      ...(roundStages.on ? { stages: roundStages.summary() } : {}),
      ...(roundStages.on && request.resetStages ? (roundStages.reset(), {}) : {}),
      sessions: server.hub.sessionCount,
      queuedBytes: server.queuedBytes,
      // Held files' bytes sent to readers so far: from the upload's memory, or read back.
      fileBytesSentFromMemory: server.hub.metrics.counters.fileBytesSentFromMemory,
      fileBytesSentFromDisk: server.hub.metrics.counters.fileBytesSentFromDisk,
      // Of those read back, the bytes read synchronously (just written: in the page cache).
      fileBytesReadSync: syncReadBytes(server.hub),
      ...(store instanceof SqliteStore ? { store: store.stats } : {}),
    }),
    exit: () => server.shutdown("benchmark over"),
  });
  Deno.exit(0);
}

/** Bytes the server's held files' readers read synchronously so far (0 without a file folder). */
function syncReadBytes(hub: Parameters<typeof fileServiceOf>[0]): number {
  try {
    const bytes = fileServiceOf(hub).bytes;
    return bytes instanceof DiskFileBytes ? bytes.syncReadBytes : 0;
  } catch {
    return 0; // no file service
  }
}
