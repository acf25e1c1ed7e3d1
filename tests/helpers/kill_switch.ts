/**
 * Test-only crash points for server processes started by tests: the process kills itself
 * (SIGKILL) at a chosen point of an upload, by wrapping the file storage's methods (no
 * hook in the server). Used by `server_process.ts` (`CHAT_TEST_KILL_AT=WHEN`) and
 * `killable_serve.ts` (`chat serve` with `--test-kill-at=WHEN`).
 *
 * - `offer:created`: once a new file's record is created, before its offer is answered
 *   or told to its recipient;
 * - `complete:before` / `complete:after`: marking an upload's bytes complete (every byte
 *   held and synced), before or after; in both cases before its record says "uploaded";
 * - `chunk:N`: once the Nth chunk written through one open file of an upload is written,
 *   before it is acknowledged;
 * - `uploaded`: once an upload's record says "uploaded", before the last chunk is
 *   acknowledged.
 *
 * @example
 * ```ts ignore
 * import { installKillSwitch } from "./kill_switch.ts";
 * installKillSwitch("complete:before"); // before the server starts
 * ```
 *
 * @module
 */

import { DiskFileBytes } from "../../server/disk_file_bytes.ts";
import { PostgresFileBytes } from "../../server/postgres_file_bytes.ts";
import { PostgresFileStore } from "../../server/postgres_file_store.ts";
import { SqliteFileStore } from "../../server/sqlite_file_store.ts";

/** The crash points, in the form `installKillSwitch` takes. */
export type KillPoint =
  | "offer:created"
  | "complete:before"
  | "complete:after"
  | `chunk:${number}`
  | "uploaded";

function die(): never {
  Deno.kill(Deno.pid, "SIGKILL");
  throw new Error("killed");
}

/**
 * Makes this process kill itself at `when` (see the module documentation).
 *
 * @throws {Error} for an unknown point.
 */
export function installKillSwitch(when: string): void {
  if (when === "offer:created") {
    for (const store of [SqliteFileStore.prototype, PostgresFileStore.prototype]) {
      const create = store.create;
      store.create = async function (this: typeof store, ...args: Parameters<typeof create>) {
        await create.apply(this, args);
        return die();
      };
    }
    return;
  }
  if (when === "uploaded") {
    for (const store of [SqliteFileStore.prototype, PostgresFileStore.prototype]) {
      const update = store.update;
      store.update = async function (this: typeof store, ...args: Parameters<typeof update>) {
        const updated = await update.apply(this, args);
        if (args[1].uploaded === true) die();
        return updated;
      };
    }
    return;
  }
  const chunk = /^chunk:(\d+)$/.exec(when);
  if (when !== "complete:before" && when !== "complete:after" && chunk === null) {
    throw new Error(
      `a kill point is ${"offer:created, complete:before, complete:after, chunk:N or uploaded"}, not ${when}`,
    );
  }
  for (const bytes of [DiskFileBytes.prototype, PostgresFileBytes.prototype]) {
    if (chunk === null) {
      const complete = bytes.complete;
      bytes.complete = async function (this: typeof bytes, id: number, size: number) {
        if (when === "complete:before") die();
        await complete.call(this, id, size);
        die();
      };
      continue;
    }
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
  }
}
