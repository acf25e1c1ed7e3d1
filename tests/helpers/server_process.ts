/**
 * Runs a server in its own process for tests that kill or restart it:
 * `deno run -A tests/helpers/server_process.ts DATA_DIR [PORT]` prints one JSON line
 * `{"port": N}` once listening, and shuts down on SIGTERM. With `CHAT_TEST_LOG=LEVEL` in
 * its environment it logs to stderr from that level up.
 *
 * @module
 */

import { type CliLogLevel, setupLogging } from "../../cli/logging.ts";
import { NO_LIMITS, resolveServerConfig } from "../../server/config.ts";
import { startServer } from "../../server/server.ts";

const [dataDir, port = "0"] = Deno.args;
const logLevel = Deno.env.get("CHAT_TEST_LOG");
if (logLevel !== undefined) await setupLogging({ level: logLevel as CliLogLevel });
const server = await startServer(resolveServerConfig({
  host: "127.0.0.1",
  port: Number(port),
  dataDir,
  passwordCost: 1024,
  shutdownGraceMs: 500,
  drainWindowMs: 0,
  ...NO_LIMITS,
}));
console.log(JSON.stringify({ port: server.addr.port }));
Deno.addSignalListener("SIGTERM", () => server.shutdown());
await server.finished;
