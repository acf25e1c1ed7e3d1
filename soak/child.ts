/**
 * The soak's child processes: `deno run` on a soak script with only the permissions
 * that child needs, through the shared JSON-line coordinator (`tools/child.ts`).
 *
 * @module
 */

import { JsonLineChild } from "../tools/child.ts";

export { describeStatus } from "../tools/child.ts";

/** How to start a soak child. */
export interface ChildSpec {
  /** A name for messages. */
  name: string;
  /** The script, as a URL (usually `new URL("./x.ts", import.meta.url)`). */
  script: URL;
  /** Arguments after the script. */
  args: string[];
  /** Deno permission flags, e.g. `["--allow-net=127.0.0.1"]`. */
  permissions: string[];
  /** Milliseconds to wait for the first line. Default 30 s. */
  startTimeoutMs?: number;
}

const REPO_ROOT = new URL("../", import.meta.url);
const CONFIG = new URL("../deno.json", import.meta.url);

/** A file URL as a local path (the soak runs on one machine, with `file:` modules). */
export function pathOf(url: URL): string {
  return decodeURIComponent(url.pathname);
}

/**
 * Spawns a soak child with exactly its permissions and waits for its first line.
 *
 * @example
 * ```ts ignore
 * import { spawnSoakChild } from "./child.ts";
 * const child = await spawnSoakChild({
 *   name: "clients",
 *   script: new URL("./good_clients.ts", import.meta.url),
 *   args: ["{}"],
 *   permissions: ["--allow-net=127.0.0.1"],
 * });
 * ```
 */
export function spawnSoakChild(spec: ChildSpec): Promise<JsonLineChild> {
  return JsonLineChild.spawn({
    name: spec.name,
    args: [
      "run",
      "--no-prompt",
      `--config=${pathOf(CONFIG)}`,
      ...spec.permissions,
      spec.script.href,
      ...spec.args,
    ],
    cwd: pathOf(REPO_ROOT),
    ...(spec.startTimeoutMs !== undefined ? { startTimeoutMs: spec.startTimeoutMs } : {}),
  });
}
