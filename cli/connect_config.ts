/**
 * The defaults of `chat connect` from a config file in the user's config folder
 * (`config.json` in {@linkcode userConfigDir}, e.g. `~/.config/chat/config.json`).
 *
 * The file is a JSON object keyed by flag names without the dashes:
 *
 * ```json
 * { "host": "chat.example.org", "port": 44444, "nick": "ada", "room": "rust",
 *   "tls": true, "ca": "ca.pem", "no-color": true }
 * ```
 *
 * Keys: `host` (one address or a list, `"a:44444,b:44444"`), `port`, `nick`, `room`,
 * `tls`, `ca`, `password-file`, `no-color`, `retries`, `no-randomize`. Relative file paths (`ca`, `password-file`) are relative to the config
 * file's folder. Precedence: flags, then the environment (`CHAT_HOST`, `CHAT_PORT`,
 * `CHAT_NICK`), then the file, then the built-in defaults. A missing file is no
 * error; an unreadable or malformed one is, naming the file and the key.
 *
 * @module
 */

import * as path from "node:path";
import { type Command, InvalidArgumentError } from "commander";
import { integerIn } from "./options.ts";

/** The name of the config file inside the config folder. */
export const CONFIG_FILE_NAME = "config.json";

/** Defaults for `chat connect`, as commander's option attributes. */
export interface ConnectConfig {
  /** `host`. */
  host?: string;
  /** `port`. */
  port?: number;
  /** `nick`. */
  nick?: string;
  /** `room`. */
  room?: string;
  /** `tls`. */
  tls?: boolean;
  /** `ca`, resolved against the config file's folder. */
  ca?: string;
  /** `password-file`, resolved against the config file's folder. */
  passwordFile?: string;
  /** `no-color: true` makes this false. */
  color?: boolean;
  /** `retries`. */
  retries?: number;
  /** `no-randomize: true` makes this false. */
  randomize?: boolean;
}

/** A config file that cannot be used. */
export class ConnectConfigError extends Error {
  /** Stable error code. */
  readonly code = "bad_config";

  /** Creates the error; `path` names the file. */
  constructor(path: string, reason: string, options?: ErrorOptions) {
    super(`config ${path}: ${reason}`, options);
    this.name = "ConnectConfigError";
  }
}

type Kind = "string" | "boolean" | "port" | "count" | "path";

/** Each key of the file: its kind and the option attribute it sets. */
const KEYS: Readonly<Record<string, { kind: Kind; attribute: keyof ConnectConfig }>> = {
  host: { kind: "string", attribute: "host" },
  port: { kind: "port", attribute: "port" },
  nick: { kind: "string", attribute: "nick" },
  room: { kind: "string", attribute: "room" },
  tls: { kind: "boolean", attribute: "tls" },
  ca: { kind: "path", attribute: "ca" },
  "password-file": { kind: "path", attribute: "passwordFile" },
  "no-color": { kind: "boolean", attribute: "color" },
  retries: { kind: "count", attribute: "retries" },
  "no-randomize": { kind: "boolean", attribute: "randomize" },
};

/** The keys a config file may have, in the order of the help. */
export const CONNECT_CONFIG_KEYS: readonly string[] = Object.keys(KEYS);

const parsePort = integerIn(1, 65535);
const parseCount = integerIn(0, 1_000_000);

/**
 * Parses the text of a config file; `file` names it in errors and anchors relative paths.
 *
 * @throws {ConnectConfigError} naming the file and the offending key.
 * @example
 * ```ts
 * import { parseConnectConfig } from "./connect_config.ts";
 * parseConnectConfig('{"host": "example.org", "no-color": true, "ca": "ca.pem"}', "/home/ada/.config/chat/config.json");
 * // { host: "example.org", color: false, ca: "/home/ada/.config/chat/ca.pem" }
 * ```
 */
export function parseConnectConfig(text: string, file: string): ConnectConfig {
  let data: unknown;
  try {
    data = JSON.parse(text.replace(/^\uFEFF/, ""));
  } catch (err) {
    throw new ConnectConfigError(file, `not valid JSON: ${(err as Error).message}`);
  }
  if (data === null || typeof data !== "object" || Array.isArray(data)) {
    throw new ConnectConfigError(file, "expected a JSON object of settings");
  }
  const config: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(data)) {
    const spec = KEYS[key];
    if (spec === undefined) {
      throw new ConnectConfigError(
        file,
        `unknown setting "${key}" (settings: ${CONNECT_CONFIG_KEYS.join(", ")})`,
      );
    }
    config[spec.attribute] = parseValue(file, key, spec.kind, value);
  }
  return config as ConnectConfig;
}

function parseValue(file: string, key: string, kind: Kind, value: unknown): unknown {
  switch (kind) {
    case "boolean":
      if (typeof value !== "boolean") {
        throw new ConnectConfigError(file, `"${key}" must be true or false`);
      }
      return key.startsWith("no-") ? !value : value;
    case "port":
    case "count": {
      if (typeof value !== "number" && typeof value !== "string") {
        throw new ConnectConfigError(file, `"${key}" must be a number`);
      }
      try {
        return (kind === "port" ? parsePort : parseCount)(String(value));
      } catch (err) {
        const why = err instanceof InvalidArgumentError ? err.message : String(err);
        throw new ConnectConfigError(file, `"${key}": ${why}`);
      }
    }
    case "string":
    case "path":
      if (typeof value !== "string" || value.trim() === "") {
        throw new ConnectConfigError(file, `"${key}" must be a non-empty string`);
      }
      return kind === "path" ? path.resolve(path.dirname(file), value) : value;
  }
}

/**
 * Reads and parses a config file; a file that does not exist gives no settings.
 *
 * @throws {ConnectConfigError} when the file cannot be read or is malformed.
 */
export async function loadConnectConfig(file: string): Promise<ConnectConfig> {
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return {};
    const reason = err instanceof Deno.errors.PermissionDenied
      ? "permission denied"
      : err instanceof Error
      ? err.message
      : String(err);
    throw new ConnectConfigError(file, `cannot read it: ${reason}`, { cause: err });
  }
  return parseConnectConfig(text, file);
}

/**
 * Sets the values of `config` on the parsed options of `command` wherever neither a
 * flag nor an environment variable gave one, so that flags win over the environment,
 * the environment over the file, and the file over the defaults.
 *
 * @example
 * ```ts ignore
 * import { applyConnectConfig, loadConnectConfig } from "./connect_config.ts";
 * applyConnectConfig(command, await loadConnectConfig("/home/ada/.config/chat/config.json"));
 * const options = command.opts();
 * ```
 */
export function applyConnectConfig(command: Command, config: ConnectConfig): void {
  for (const [attribute, value] of Object.entries(config)) {
    if (value === undefined) continue;
    const source = command.getOptionValueSource(attribute);
    if (source === undefined || source === "default") {
      command.setOptionValueWithSource(attribute, value, "config");
    }
  }
}
