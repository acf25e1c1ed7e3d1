/**
 * Running a real IRC library (Python's `irc`, Debian's python3-irc) in tests: finding a
 * Python that has it, and running a client script while the test drives the chat side.
 *
 * @module
 */

import assert from "node:assert/strict";

/**
 * A Python that has the `irc` library (python3-irc), or null (with a warning naming
 * `testFile`, whose test is then skipped).
 */
export function pythonIrc(testFile: string): string | null {
  for (const python of ["/usr/bin/python3", "python3"]) {
    try {
      const { success } = new Deno.Command(python, {
        args: ["-c", "import irc.client"],
        stdout: "null",
        stderr: "null",
      }).outputSync();
      if (success) return python;
    } catch {
      // not there
    }
  }
  console.warn(
    `${testFile}: python3-irc not found (apt-get install python3-irc): its test is skipped`,
  );
  return null;
}

/** What a script printed: one JSON object a line, each with an `event`. */
export interface ScriptEvents {
  /** The script's standard output. */
  out: string;
  /** The parsed lines. */
  seen: Record<string, unknown>[];
  /** Whether the script saw `event` (with `text`, when given). */
  has(event: string, text?: string): boolean;
}

/**
 * Runs `script` (a file beside this helper) with `python` and `args`; runs `during`
 * meanwhile (on its failure, kills the script and throws with its output); then asserts
 * the script exited with 0 and returns what it printed.
 *
 * @example
 * ```ts ignore
 * const { has, out } = await runIrcScript(python, "irc_client.py", args, async () => {
 *   await nextEvent(events, (e) => e.type === "msg");
 * });
 * assert.ok(has("welcome"), out);
 * ```
 */
export async function runIrcScript(
  python: string,
  script: string,
  args: string[],
  during: () => Promise<void>,
): Promise<ScriptEvents> {
  const child = new Deno.Command(python, {
    args: [new URL(`./${script}`, import.meta.url).pathname, ...args],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stdout = new Response(child.stdout).text();
  const stderr = new Response(child.stderr).text();
  try {
    await during();
  } catch (err) {
    try {
      child.kill();
    } catch {
      // already ended
    }
    throw new Error(`${err}\nscript output:\n${await stdout}\n${await stderr}`);
  }
  const status = await child.status;
  const out = await stdout;
  assert.equal(status.code, 0, `the script failed:\n${out}\n${await stderr}`);
  const seen: Record<string, unknown>[] = out.trim().split("\n").map((line) => JSON.parse(line));
  const has = (event: string, text?: string) =>
    seen.some((e) => e.event === event && (text === undefined || e.text === text));
  return { out, seen, has };
}
