/**
 * A server on a disk that its test fills for real:
 * `deno run -A tests/helpers/full_disk_server.ts DIR`, with DIR on a small file system of
 * its own (a tmpfs mounted in a private mount namespace by `unshare`, see
 * `tests/disk_full_test.ts`). The data folder is `DIR/data`, with no free-space reserve,
 * so the disk itself runs out. Prints `{"port": N}` once listening, then answers each
 * command line on stdin with one JSON line:
 *
 * - `fill`: writes `DIR/filler` until the disk is full: `{"full": bytes}`;
 * - `free`: deletes it: `{"freed": true}`;
 * - `restart`: shuts the server down and starts it again on the same folder:
 *   `{"port": N}`, or `{"error": message}` when it cannot start.
 *
 * @module
 */

import { join } from "node:path";
import { NO_LIMITS, resolveServerConfig } from "../../server/config.ts";
import { type ChatServer, startServer } from "../../server/server.ts";
import { lineReader } from "../../tools/lines.ts";

const [dir] = Deno.args;
const filler = join(dir, "filler");

function start(): Promise<ChatServer> {
  return startServer(resolveServerConfig({
    host: "127.0.0.1",
    port: 0,
    dataDir: join(dir, "data"),
    passwordCost: 1024,
    shutdownGraceMs: 500,
    drainWindowMs: 0,
    minFreeBytes: 0,
    ...NO_LIMITS,
  }));
}

/** Writes `filler` until the disk refuses more; returns the bytes written. */
async function fill(): Promise<number> {
  const file = await Deno.open(filler, { write: true, create: true, append: true });
  let written = 0;
  try {
    for (const size of [1 << 16, 1 << 12, 1 << 9]) {
      const block = new Uint8Array(size).fill(0x5a);
      for (;;) {
        try {
          written += await file.write(block);
        } catch {
          break;
        }
      }
    }
  } finally {
    file.close();
  }
  return written;
}

function say(value: unknown): void {
  console.log(JSON.stringify(value));
}

let server: ChatServer | null = await start();
say({ port: server.addr.port });
const next = lineReader(Deno.stdin.readable);
for (let line = await next(); line !== null; line = await next()) {
  if (line === "fill") {
    say({ full: await fill() });
  } else if (line === "free") {
    await Deno.remove(filler);
    say({ freed: true });
  } else if (line === "restart") {
    await server?.shutdown();
    server = null;
    try {
      server = await start();
      say({ port: server.addr.port });
    } catch (err) {
      say({ error: err instanceof Error ? err.message : String(err) });
    }
  }
}
await server?.shutdown();
