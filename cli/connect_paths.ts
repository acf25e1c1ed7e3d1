/**
 * Where relative paths given to `chat connect` lead. Under `deno task` (and `npm run`)
 * the program runs in the project's folder, not the one the user typed the command in;
 * the task runner leaves that one in `INIT_CWD` (set with the full path to the folder
 * the task was run in, as `npm run` does). Relative paths (`--password-file`,
 * `--download-dir`, `--accept-files`, `--ca`, `/send NICK PATH`) resolve against it,
 * so that they mean what they mean in the user's shell.
 *
 * @module
 */

import * as path from "node:path";
import { type EnvReader, processEnv } from "./config_dir.ts";

/** The variable a task runner sets to the folder the user ran the task in. */
export const INIT_CWD = "INIT_CWD";

/**
 * The folder relative paths resolve against: `INIT_CWD` when it is an absolute path,
 * else null (the working directory, as for any program).
 *
 * @example
 * ```ts
 * import { userFolder } from "./connect_paths.ts";
 * userFolder((name) => ({ INIT_CWD: "/home/ada/notes" })[name]); // "/home/ada/notes"
 * userFolder(() => undefined); // null
 * ```
 */
export function userFolder(env: EnvReader = processEnv): string | null {
  const dir = env(INIT_CWD);
  return dir !== undefined && dir !== "" && path.isAbsolute(dir) ? dir : null;
}

/**
 * `file` resolved against `base` when it is relative and there is a base; otherwise as given.
 *
 * @example
 * ```ts
 * import { userPath } from "./connect_paths.ts";
 * userPath("notes.txt", "/home/ada"); // "/home/ada/notes.txt"
 * userPath("/etc/hosts", "/home/ada"); // "/etc/hosts"
 * userPath("notes.txt", null); // "notes.txt"
 * ```
 */
export function userPath(file: string, base: string | null = userFolder()): string {
  return base === null || path.isAbsolute(file) ? file : path.resolve(base, file);
}
