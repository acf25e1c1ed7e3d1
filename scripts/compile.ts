/**
 * Builds the single `chat` binary for every release target (or only this machine's with
 * `--host-only`) into `dist/chat-<target>`, with the union of the modes' permissions baked
 * in (see scripts/permissions.ts), and their V8 flags (scripts/v8_flags.ts).
 *
 * Usage: `deno task compile [--host-only] [--target TARGET]... [--out-dir DIR]`
 *
 * @module
 */

import denoJson from "../deno.json" with { type: "json" };
import { binaryPermissionFlags } from "./permissions.ts";
import { binaryV8Flags } from "./v8_flags.ts";

/** The targets of a release. */
export const RELEASE_TARGETS: readonly string[] = [
  "x86_64-unknown-linux-gnu",
  "aarch64-unknown-linux-gnu",
  "x86_64-apple-darwin",
  "aarch64-apple-darwin",
  "x86_64-pc-windows-msvc",
];

/** The repository root (where deno.json and main.ts are). */
const ROOT = new URL("../", import.meta.url);

/** File name of the binary for `target`: `chat-<target>`, plus `.exe` on Windows. */
export function binaryName(target: string): string {
  return `chat-${target}${target.includes("windows") ? ".exe" : ""}`;
}

/**
 * The `deno` arguments that compile main.ts for `target` into `outDir`, with these
 * permissions and V8 flags baked in.
 *
 * @example
 * ```ts
 * import { compileArgs } from "./compile.ts";
 * compileArgs("x86_64-unknown-linux-gnu", ["--allow-net"], "dist", ["--managed-zone-memory"]);
 * // ["compile", "--target", "x86_64-unknown-linux-gnu", "--output",
 * //  "dist/chat-x86_64-unknown-linux-gnu", "--allow-net",
 * //  "--v8-flags=--managed-zone-memory", "--include", ..., "main.ts"]
 * ```
 */
export function compileArgs(
  target: string,
  permissions: string[],
  outDir: string,
  v8Flags: readonly string[] = [],
): string[] {
  return [
    "compile",
    "--target",
    target,
    "--output",
    `${outDir.replace(/\/+$/, "")}/${binaryName(target)}`,
    ...permissions,
    ...(v8Flags.length > 0 ? [`--v8-flags=${v8Flags.join(",")}`] : []),
    // Started with `new Worker(...)`, which `deno compile` does not follow by itself.
    "--include",
    "server/wal_checkpoint_worker.ts",
    "main.ts",
  ];
}

interface CompileOptions {
  targets: string[];
  outDir: string;
}

function parseArgs(args: string[]): CompileOptions {
  const targets: string[] = [];
  let hostOnly = false;
  let outDir = "dist";
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--host-only") hostOnly = true;
    else if (arg === "--target" && i + 1 < args.length) targets.push(args[++i]!);
    else if (arg === "--out-dir" && i + 1 < args.length) outDir = args[++i]!;
    else {
      throw new Error(
        `unknown argument ${arg}; usage: compile.ts [--host-only] [--target T]... [--out-dir DIR]`,
      );
    }
  }
  if (hostOnly) targets.push(Deno.build.target);
  return { targets: targets.length > 0 ? [...new Set(targets)] : [...RELEASE_TARGETS], outDir };
}

async function main(args: string[]): Promise<number> {
  let options: CompileOptions;
  try {
    options = parseArgs(args);
  } catch (err) {
    console.error(`compile: ${(err as Error).message}`);
    return 2;
  }
  const permissions = binaryPermissionFlags(denoJson.tasks);
  const v8Flags = binaryV8Flags(denoJson.tasks);
  console.error(`compile: permissions ${permissions.join(" ")}; V8 flags ${v8Flags.join(" ")}`);
  const failed: string[] = [];
  for (const target of options.targets) {
    const args = compileArgs(target, permissions, options.outDir, v8Flags);
    console.error(`compile: deno ${args.join(" ")}`);
    const { code } = await new Deno.Command(Deno.execPath(), {
      args,
      cwd: ROOT,
      stdin: "null",
      stdout: "inherit",
      stderr: "inherit",
    }).output();
    if (code !== 0) failed.push(target);
  }
  if (failed.length > 0) {
    console.error(`compile: failed for ${failed.join(", ")}`);
    return 1;
  }
  console.error(
    `compile: built ${options.targets.map(binaryName).join(", ")} in ${options.outDir}`,
  );
  return 0;
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
