/**
 * The user's configuration folder for `chat`: where `chat connect` reads its
 * `config.json` and keeps the `known_servers` file of certificates trusted on first use.
 *
 * - `$XDG_CONFIG_HOME/chat` when `XDG_CONFIG_HOME` is set to an absolute path (on every
 *   platform: setting it is an explicit choice);
 * - otherwise on Linux and the other Unixes `~/.config/chat`, on macOS
 *   `~/Library/Application Support/chat`, on Windows `%APPDATA%\chat`.
 *
 * @module
 */

import * as path from "node:path";

/** The operating systems {@linkcode userConfigDir} tells apart (`Deno.build.os`). */
export type OperatingSystem = typeof Deno.build.os;

/** Reads an environment variable; undefined when unset or not permitted. */
export type EnvReader = (name: string) => string | undefined;

/** The environment variables {@linkcode userConfigDir} may read. */
export const CONFIG_DIR_ENV_VARS: readonly string[] = ["XDG_CONFIG_HOME", "HOME", "APPDATA"];

/** The process environment; a variable Deno may not read counts as unset. */
export function processEnv(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined; // no --allow-env for it
  }
}

/**
 * The folder of `chat`'s per-user files, or null when it cannot be told (no home
 * folder in the environment, or no permission to read it).
 *
 * @example
 * ```ts
 * import { userConfigDir } from "./config_dir.ts";
 * userConfigDir((name) => ({ HOME: "/home/ada" })[name], "linux"); // "/home/ada/.config/chat"
 * userConfigDir((name) => ({ HOME: "/Users/ada" })[name], "darwin");
 * // "/Users/ada/Library/Application Support/chat"
 * userConfigDir((name) => ({ APPDATA: "C:\\Users\\ada\\AppData\\Roaming" })[name], "windows");
 * // "C:\\Users\\ada\\AppData\\Roaming\\chat"
 * ```
 */
export function userConfigDir(
  env: EnvReader = processEnv,
  os: OperatingSystem = Deno.build.os,
): string | null {
  const paths = os === "windows" ? path.win32 : path.posix;
  const xdg = env("XDG_CONFIG_HOME");
  // The XDG spec: a relative value is invalid and is ignored.
  if (xdg !== undefined && xdg !== "" && paths.isAbsolute(xdg)) return paths.join(xdg, "chat");
  if (os === "windows") {
    const appData = env("APPDATA");
    return appData !== undefined && appData !== "" ? paths.join(appData, "chat") : null;
  }
  const home = env("HOME");
  if (home === undefined || home === "" || !paths.isAbsolute(home)) return null;
  if (os === "darwin") return paths.join(home, "Library", "Application Support", "chat");
  return paths.join(home, ".config", "chat");
}
