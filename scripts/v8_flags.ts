/**
 * The V8 flags `chat` runs with: written once, in the deno.json tasks of the modes (as
 * `--v8-flags=A,B`, beside their permissions), and taken from there by the binary's build
 * (scripts/compile.ts bakes them in), the benchmarks and the tests that start `chat serve`
 * in its own process, so that each runs the server as `deno task serve` does.
 *
 * The server's one flag, `--managed-zone-memory`: V8 compiles in "zones", freed as a whole
 * once a compilation ends. By default a zone's memory comes from `malloc()`, and the
 * optimizing compiler (TurboFan) runs on a background thread, so glibc serves it from that
 * thread's own arena, which keeps most of what was freed resident: after a login storm
 * of 10,000 clients, 6–11 MB the server never uses again. With the flag V8 takes zone
 * memory from its own page allocator and gives it back to the system.
 *
 * @example
 * ```ts
 * import { v8Flags } from "./v8_flags.ts";
 * v8Flags("deno run --v8-flags=--managed-zone-memory,--expose-gc --allow-net main.ts serve");
 * // ["--managed-zone-memory", "--expose-gc"]
 * ```
 *
 * @module
 */

import denoJson from "../deno.json" with { type: "json" };
import { MODE_TASKS, taskCommand } from "./permissions.ts";

/** The V8 flags of a `deno run ...` task command (its `--v8-flags=` words), in order. */
export function v8Flags(command: string): string[] {
  return command.split(/\s+/)
    .filter((word) => word.startsWith("--v8-flags="))
    .flatMap((word) => word.slice("--v8-flags=".length).split(","))
    .filter((flag) => flag !== "");
}

/**
 * The V8 flags to bake into the binary: those of every mode task (one binary runs them
 * all), each once, in the order first met.
 *
 * @throws {PermissionFlagError} when a mode task is missing.
 */
export function binaryV8Flags(tasks: Record<string, unknown>): string[] {
  return [...new Set(MODE_TASKS.flatMap((name) => v8Flags(taskCommand(tasks, name))))];
}

/** The V8 flags of `deno task serve`: what a process running `chat serve` starts with. */
export const SERVE_V8_FLAGS: readonly string[] = v8Flags(
  taskCommand(denoJson.tasks, "serve"),
);

/**
 * `SERVE_V8_FLAGS` as `deno run` arguments, with `extra` flags after them: no argument
 * when there is no flag.
 *
 * @example
 * ```ts
 * import { serveV8FlagArgs } from "./v8_flags.ts";
 * serveV8FlagArgs(["--expose-gc"]); // ["--v8-flags=--managed-zone-memory,--expose-gc"]
 * ```
 */
export function serveV8FlagArgs(extra: readonly string[] = []): string[] {
  const flags = [...SERVE_V8_FLAGS, ...extra];
  return flags.length === 0 ? [] : [`--v8-flags=${flags.join(",")}`];
}
