/**
 * Runs a server in its own process for tests that kill or restart it:
 * `deno run -A tests/helpers/server_process.ts DATA_DIR [PORT]` prints one JSON line
 * `{"port": N}` once listening, and shuts down on SIGTERM. With `CHAT_TEST_LOG=LEVEL` in
 * its environment it logs to stderr from that level up.
 *
 * Test-only settings, from the environment (nothing of them is in the server):
 * - `CHAT_TEST_WEB_PORT=N`: the browser client's listener too, on port N (0: a free
 *   one); the JSON line then has `webPort`.
 * - `CHAT_TEST_FILES_POSTGRES=URL`: held files' records and bytes in that PostgreSQL
 *   database, as a cluster node keeps them (the chat store stays in DATA_DIR).
 * - `CHAT_TEST_KILL_AT=WHEN`: the process kills itself (SIGKILL) at a point of an upload
 *   (`kill_switch.ts`).
 *
 * @module
 */

import { type CliLogLevel, setupLogging } from "../../cli/logging.ts";
import { NO_LIMITS, resolveServerConfig } from "../../server/config.ts";
import { openPostgresFiles } from "../../server/postgres_files.ts";
import { startServer } from "../../server/server.ts";
import { installKillSwitch } from "./kill_switch.ts";

const [dataDir, port = "0"] = Deno.args;
const logLevel = Deno.env.get("CHAT_TEST_LOG");
if (logLevel !== undefined) await setupLogging({ level: logLevel as CliLogLevel });
const killAt = Deno.env.get("CHAT_TEST_KILL_AT");
if (killAt !== undefined) installKillSwitch(killAt);
const webPort = Deno.env.get("CHAT_TEST_WEB_PORT");
const filesUrl = Deno.env.get("CHAT_TEST_FILES_POSTGRES");
const server = await startServer(
  resolveServerConfig({
    host: "127.0.0.1",
    port: Number(port),
    dataDir,
    passwordCost: 1024,
    shutdownGraceMs: 500,
    drainWindowMs: 0,
    ...NO_LIMITS,
    ...(webPort !== undefined ? { webPort: Number(webPort) } : {}),
  }),
  filesUrl !== undefined ? { files: await openPostgresFiles(filesUrl, { pollMs: 50 }) } : {},
);
console.log(JSON.stringify({
  port: server.addr.port,
  ...(server.webAddr !== null ? { webPort: server.webAddr.port } : {}),
}));
Deno.addSignalListener("SIGTERM", () => server.shutdown());
await server.finished;
