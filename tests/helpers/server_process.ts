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
 * - `CHAT_TEST_KILL_AT=WHEN`: the process kills itself (SIGKILL) in the middle of an
 *   upload: `complete:before` or `complete:after` marking its bytes complete (every byte
 *   held and synced; in both cases before its record says "uploaded"), `chunk:N` once
 *   the upload's Nth chunk (from its start, or since the writer was opened) is written,
 *   before it is acknowledged.
 *
 * @module
 */

import { type CliLogLevel, setupLogging } from "../../cli/logging.ts";
import { NO_LIMITS, resolveServerConfig } from "../../server/config.ts";
import { DiskFileBytes } from "../../server/disk_file_bytes.ts";
import { PostgresFileBytes } from "../../server/postgres_file_bytes.ts";
import { openPostgresFiles } from "../../server/postgres_files.ts";
import { startServer } from "../../server/server.ts";

const [dataDir, port = "0"] = Deno.args;
const logLevel = Deno.env.get("CHAT_TEST_LOG");
if (logLevel !== undefined) await setupLogging({ level: logLevel as CliLogLevel });
const killAt = Deno.env.get("CHAT_TEST_KILL_AT");
if (killAt !== undefined) killWithin(killAt);
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

/** Makes the process kill itself at `when` (see the module documentation). */
function killWithin(when: string): void {
  const die = (): never => {
    Deno.kill(Deno.pid, "SIGKILL");
    throw new Error("killed");
  };
  const chunk = /^chunk:(\d+)$/.exec(when);
  for (const bytes of [DiskFileBytes.prototype, PostgresFileBytes.prototype]) {
    if (when === "complete:before" || when === "complete:after") {
      const complete = bytes.complete;
      bytes.complete = async function (this: typeof bytes, id: number): Promise<void> {
        if (when === "complete:before") die();
        await complete.call(this, id);
        die();
      };
    } else if (chunk !== null) {
      const openWriter = bytes.openWriter;
      bytes.openWriter = async function (this: typeof bytes, id: number, maxSize: number) {
        const writer = await openWriter.call(this, id, maxSize);
        const append = writer.append.bind(writer);
        let written = 0;
        writer.append = async (data: Uint8Array) => {
          await append(data);
          if (++written === Number(chunk[1])) die();
        };
        return writer;
      };
    } else {
      throw new Error(
        `CHAT_TEST_KILL_AT is complete:before, complete:after or chunk:N, not ${when}`,
      );
    }
  }
}
