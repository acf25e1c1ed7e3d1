/**
 * The child side of the soak's process protocol: one JSON line on stdout to say the
 * process is ready, then JSON-line commands on stdin, each answered by one JSON line.
 *
 * A request is `{"id": n, "cmd": "...", ...}`; its answer `{"id": n, "ok": true, ...}`
 * or `{"id": n, "error": "..."}`. When stdin ends (the coordinator is gone) the `exit`
 * handler runs and the process ends, so no child outlives a crashed soak.
 *
 * @module
 */

/** A command handler: gets the request, returns the answer's fields. */
export type CommandHandler = (request: Record<string, unknown>) => unknown;

const encoder = new TextEncoder();

/** Writes one JSON line to stdout, whole. */
export function emit(line: object): void {
  const bytes = encoder.encode(JSON.stringify(line) + "\n");
  let offset = 0;
  while (offset < bytes.length) offset += Deno.stdout.writeSync(bytes.subarray(offset));
}

/**
 * Serves commands on stdin until `exit` or the end of stdin, then runs `exit` and
 * resolves. Handlers may be async; answers go out as their work completes.
 *
 * @example
 * ```ts ignore
 * import { emit, serveCommands } from "./side_channel.ts";
 * emit({ ready: true });
 * await serveCommands({ stats: () => ({ n: 1 }), exit: () => {} });
 * ```
 */
export async function serveCommands(
  handlers: Record<string, CommandHandler> & { exit: () => unknown },
): Promise<void> {
  const pending = new Set<Promise<void>>();
  let buffered = "";
  let exited = false;
  const runExit = async (id: unknown): Promise<void> => {
    exited = true;
    await Promise.allSettled(pending);
    try {
      await handlers.exit();
      if (id !== undefined) emit({ id, ok: true });
    } catch (err) {
      if (id !== undefined) emit({ id, error: describe(err) });
    }
  };
  try {
    for await (const chunk of Deno.stdin.readable.pipeThrough(new TextDecoderStream())) {
      buffered += chunk;
      let newline: number;
      while ((newline = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, newline).trim();
        buffered = buffered.slice(newline + 1);
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
          await runExit(id);
          return;
        }
        const handler = Object.hasOwn(handlers, cmd) ? handlers[cmd] : undefined;
        if (handler === undefined) {
          emit({ id, error: `unknown command ${cmd}` });
          continue;
        }
        const work = (async () => {
          try {
            const result = await handler(request);
            emit({ id, ok: true, ...(result ?? {}) });
          } catch (err) {
            emit({ id, error: describe(err) });
          }
        })();
        pending.add(work);
        work.finally(() => pending.delete(work));
      }
    }
  } finally {
    if (!exited) await runExit(undefined);
  }
}

function describe(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}
