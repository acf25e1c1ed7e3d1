/**
 * Spawning helper processes in tests and reading their first JSON line.
 *
 * @module
 */

/** A child process that printed a JSON line on start. */
export interface Spawned<T> {
  /** The process. */
  child: Deno.ChildProcess;
  /** The first line it printed, parsed. */
  info: T;
}

/**
 * Spawns `deno run -A script ...args` (`env` added to its environment) and waits for its
 * first stdout line (JSON).
 */
export async function spawnScript<T>(
  script: string | URL,
  args: string[],
  env: Record<string, string> = {},
): Promise<Spawned<T>> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", script instanceof URL ? script.pathname : script, ...args],
    stdout: "piped",
    stderr: "inherit",
    stdin: "null",
    env,
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`${script} exited before printing its first line: ${text}`);
    text += value;
  }
  // Keep draining stdout so the child never blocks on a full pipe.
  (async () => {
    try {
      while (!(await reader.read()).done) { /* drain */ }
    } catch { /* closed */ }
  })();
  return { child, info: JSON.parse(text.slice(0, text.indexOf("\n"))) as T };
}

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const ROOT = new URL("../../", import.meta.url).pathname;

/**
 * Starts `chat ARGS` (`deno run -A main.ts`) from the repository root, its stdin,
 * stdout and stderr piped, colours off; `env` adds variables.
 */
export function spawnChat(args: string[], env: Record<string, string> = {}): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, ...args],
    cwd: ROOT,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", ...env },
  }).spawn();
}
