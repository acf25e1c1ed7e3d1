/**
 * The stdin/stdout JSON-line side channel of the child processes of `deno task bench`
 * and `deno task soak`.
 *
 * Every request is one JSON line `{"id": n, "cmd": "...", ...}` on stdin; every
 * answer is one JSON line `{"id": n, "ok": true, ...}` or `{"id": n, "error": "..."}`
 * on stdout. `mem`, `gc`, `heap` (`{"cmd": "heap", "path": "x.heapsnapshot"}`: a full GC,
 * then a V8 heap snapshot written to `path`), `heapSpaces` (V8's heap statistics, by space)
 * and `exit` are built in; a process adds its
 * own commands.
 * When stdin ends (the coordinator is gone) the `exit` handler runs and the process
 * ends, so no child outlives a crashed benchmark or soak.
 *
 * @module
 */

import { textLines } from "./lines.ts";

/** A command handler: gets the request, returns the answer's fields. */
export type CommandHandler = (request: Record<string, unknown>) => unknown;

/** VmRSS of a process in KiB, from /proc; null when unavailable. */
export function rssKiB(pid: number | "self" = "self"): number | null {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    return match === null ? null : Number(match[1]);
  } catch {
    return null;
  }
}

/**
 * Runs a full garbage collection when the process was started with `--expose-gc`: V8's
 * last-resort collection, which also compacts the heap and gives back the pages a burst
 * left sparse. What an idle process does by itself some 20-30 s after a burst (V8's memory
 * reducer); a plain `gc()` leaves them, and a reading then depends on whether the reducer
 * has run yet (an idle server read 7.7 KiB or 13.4 KiB per connection, run to run).
 */
export function collectGarbage(): boolean {
  const gc = (globalThis as { gc?: (options?: object) => void }).gc;
  if (typeof gc !== "function") return false;
  gc({ type: "major", execution: "sync", flavor: "last-resort" });
  return true;
}

/** Writes one JSON line to stdout. */
export function emit(line: object): void {
  const bytes = new TextEncoder().encode(JSON.stringify(line) + "\n");
  let offset = 0;
  while (offset < bytes.length) offset += Deno.stdout.writeSync(bytes.subarray(offset));
}

/**
 * Serves commands on stdin until `exit` or the end of stdin. Handlers may be async;
 * requests are answered in the order their work completes.
 */
export async function serveSideChannel(
  handlers: Record<string, CommandHandler> & { exit?: () => unknown },
): Promise<void> {
  const builtIn: Record<string, CommandHandler> = {
    mem: () => ({ memory: Deno.memoryUsage(), rssKiB: rssKiB() }),
    gc: () => ({ collected: collectGarbage() }),
    heap: async (request) => {
      const path = String(request.path);
      collectGarbage();
      const v8 = await import("node:v8");
      return { path: v8.writeHeapSnapshot(path) };
    },
    heapSpaces: async () => {
      const v8 = await import("node:v8");
      return { spaces: v8.getHeapSpaceStatistics(), heap: v8.getHeapStatistics() };
    },
  };
  let exiting = false;
  const pending = new Set<Promise<void>>();
  try {
    for await (const raw of textLines(Deno.stdin.readable)) {
      const line = raw.trim();
      if (line.length === 0) continue;
      let request: Record<string, unknown>;
      try {
        request = JSON.parse(line);
      } catch {
        emit({ id: null, error: `not JSON: ${line.slice(0, 80)}` });
        continue;
      }
      const id = request.id ?? null;
      const cmd = String(request.cmd);
      if (cmd === "exit") {
        exiting = true;
        await Promise.allSettled(pending);
        try {
          await handlers.exit?.();
          emit({ id, ok: true });
        } catch (err) {
          emit({ id, error: String(err) });
        }
        return;
      }
      const handler = Object.hasOwn(handlers, cmd) ? handlers[cmd] : builtIn[cmd];
      if (handler === undefined) {
        emit({ id, error: `unknown command ${cmd}` });
        continue;
      }
      const work = (async () => {
        try {
          const result = await handler(request);
          emit({ id, ok: true, ...(result as object ?? {}) });
        } catch (err) {
          emit({ id, error: err instanceof Error ? `${err.name}: ${err.message}` : String(err) });
        }
      })();
      pending.add(work);
      work.finally(() => pending.delete(work));
    }
  } finally {
    if (!exiting) await handlers.exit?.();
  }
}
