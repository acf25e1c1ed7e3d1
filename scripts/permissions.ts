/**
 * The permission flags of the compiled binary: the union of the flags of the `serve`,
 * `connect` and `peer` tasks in deno.json, so the tasks stay the one place where each
 * mode's permissions are written down.
 *
 * @module
 */

/** The deno.json tasks whose permissions the single binary needs. */
export const MODE_TASKS: readonly string[] = ["serve", "connect", "peer"];

/**
 * Flags the binary takes only with a list: `--allow-ffi` without one would let every mode
 * of the one binary load any native code, the server's too, lifting Deno's sandbox; the
 * `peer` task's lists libcrypto's paths only (the records' cipher), and so does the binary.
 */
export const LIST_ONLY_IN_BINARY: readonly string[] = ["--allow-ffi"];

/** Raised when a task's permission flags cannot be read. */
export class PermissionFlagError extends Error {
  /** Stable error code. */
  readonly code = "bad_permission_flag";

  /** Creates the error with a one-line message. */
  constructor(message: string) {
    super(message);
    this.name = "PermissionFlagError";
  }
}

/**
 * Extracts the `--allow-*` flags of a `deno run ...` task command.
 *
 * @example
 * ```ts
 * import { permissionFlags } from "./permissions.ts";
 * permissionFlags("deno run --allow-net --allow-env=HOME main.ts connect");
 * // ["--allow-net", "--allow-env=HOME"]
 * ```
 */
export function permissionFlags(command: string): string[] {
  return command.split(/\s+/).filter((word) => /^--allow-[a-z-]+(=.*)?$/.test(word));
}

/**
 * Merges permission flags: a flag without a list wins over the same flag with a list,
 * lists of the same flag are united (sorted, without duplicates).
 *
 * @example
 * ```ts
 * import { mergePermissionFlags } from "./permissions.ts";
 * mergePermissionFlags(["--allow-env=B,A", "--allow-net=x:1"], ["--allow-env=A,C", "--allow-net"]);
 * // ["--allow-env=A,B,C", "--allow-net"]
 * ```
 */
export function mergePermissionFlags(...lists: string[][]): string[] {
  const merged = new Map<string, Set<string> | "all">();
  for (const flag of lists.flat()) {
    const match = /^(--allow-[a-z-]+)(?:=(.*))?$/.exec(flag);
    if (match === null) throw new PermissionFlagError(`not a permission flag: ${flag}`);
    const name = match[1]!;
    const value = match[2];
    if (value === undefined) {
      merged.set(name, "all");
      continue;
    }
    const items = value.split(",").filter((item) => item !== "");
    if (items.length === 0) throw new PermissionFlagError(`empty list in ${flag}`);
    const current = merged.get(name);
    if (current === "all") continue;
    const set = current ?? new Set<string>();
    for (const item of items) set.add(item);
    merged.set(name, set);
  }
  return [...merged.keys()].sort().map((name) => {
    const value = merged.get(name)!;
    return value === "all" ? name : `${name}=${[...value].sort().join(",")}`;
  });
}

/**
 * The permission flags to bake into the binary, from the tasks of a parsed deno.json.
 *
 * @throws {PermissionFlagError} when a mode task is missing, or a mode task has a flag of
 * {@linkcode LIST_ONLY_IN_BINARY} without a list.
 */
export function binaryPermissionFlags(tasks: Record<string, unknown>): string[] {
  const flags = mergePermissionFlags(
    ...MODE_TASKS.map((name) => permissionFlags(taskCommand(tasks, name))),
  );
  const unlisted = flags.find((flag) => LIST_ONLY_IN_BINARY.includes(flag));
  if (unlisted !== undefined) {
    throw new PermissionFlagError(
      `${unlisted} without a list would let every mode of the binary load any native code`,
    );
  }
  return flags;
}

/**
 * The command of the deno.json task `name` (written as a string or as `{ command }`).
 *
 * @throws {PermissionFlagError} when there is no such task.
 */
export function taskCommand(tasks: Record<string, unknown>, name: string): string {
  const task = tasks[name];
  const command = typeof task === "string"
    ? task
    : typeof task === "object" && task !== null && "command" in task
    ? String((task as { command: unknown }).command)
    : undefined;
  if (command === undefined) throw new PermissionFlagError(`deno.json has no "${name}" task`);
  return command;
}
