/**
 * The engines of `chat serve` for several nodes: `--postgres` and `--nats`, their
 * passwords, and the environment variables that may give them. Secrets come from a file
 * (`--postgres-password-file`, `--nats-password-file`, the `--config` file) or the
 * environment (`CHAT_POSTGRES_URL`, `CHAT_NATS_URL`, `PGPASSWORD`, `CHAT_NATS_PASSWORD`),
 * never from the command line, which every user of the machine can read (`ps`).
 *
 * Precedence: flags, then the environment, then the config file, then the defaults.
 * `--postgres` and `--nats` go together (PostgreSQL keeps the chat, NATS carries it
 * between the nodes: one without the other would be nodes that do not hear each other),
 * and `--data` (the SQLite folder) is refused beside them.
 *
 * @module
 */

import type { NatsSettings, PostgresSettings, ServerConfig } from "../server/config.ts";
import { UsageError } from "./errors.ts";

/** The environment variable of each engine setting, by commander attribute. */
export const ENGINE_ENVIRONMENT: Readonly<Record<string, string>> = Object.freeze({
  postgres: "CHAT_POSTGRES_URL",
  nats: "CHAT_NATS_URL",
});

/** The password of `--postgres`'s user when no `--postgres-password-file` is given. */
export const POSTGRES_PASSWORD_ENV = "PGPASSWORD";
/** The password (or token) of `--nats` when no `--nats-password-file` is given. */
export const NATS_PASSWORD_ENV = "CHAT_NATS_PASSWORD";

/** Every environment variable `chat serve` reads (the serve task allows these). */
export const SERVE_ENVIRONMENT: readonly string[] = [
  ...Object.values(ENGINE_ENVIRONMENT),
  POSTGRES_PASSWORD_ENV,
  NATS_PASSWORD_ENV,
];

/** Reads an environment variable; undefined when absent. */
export type ReadEnv = (name: string) => string | undefined;

/**
 * Reads an environment variable only when the program may (without asking: a server
 * started without `--allow-env` must not stop at a permission prompt).
 */
export function readGrantedEnv(name: string): string | undefined {
  try {
    if (Deno.permissions.querySync({ name: "env", variable: name }).state !== "granted") {
      return undefined;
    }
    const value = Deno.env.get(name);
    return value === "" ? undefined : value;
  } catch {
    return undefined;
  }
}

/**
 * Options with the engine settings of the environment filled in: they replace values of
 * the config file, never flags given on the command line (`fromCli`).
 *
 * @example
 * ```ts
 * import { withEngineEnvironment } from "./serve_engines.ts";
 * const env: Record<string, string> = { CHAT_NATS_URL: "nats://n1:4222" };
 * withEngineEnvironment({ nats: "nats://file:4222" }, new Set(), (n) => env[n]);
 * // { nats: "nats://n1:4222" }
 * ```
 */
export function withEngineEnvironment<T extends Record<string, unknown>>(
  options: T,
  fromCli: ReadonlySet<string>,
  read: ReadEnv = readGrantedEnv,
): T {
  const merged: Record<string, unknown> = { ...options };
  for (const [attribute, variable] of Object.entries(ENGINE_ENVIRONMENT)) {
    if (fromCli.has(attribute)) continue;
    const value = read(variable);
    if (value !== undefined) merged[attribute] = value;
  }
  return merged as T;
}

/**
 * Refuses a password or token given on the command line (`fromCli`: the attributes
 * given as flags), saying where to put it instead.
 *
 * @throws {UsageError} when `--postgres` or `--nats` holds a secret.
 */
export function refuseSecretsInArguments(
  options: Record<string, unknown>,
  fromCli: ReadonlySet<string>,
): void {
  const seen = "a command line is visible to every user of the machine (ps)";
  if (fromCli.has("postgres") && typeof options.postgres === "string") {
    const url = parseUrl(options.postgres, "--postgres");
    if (url.password !== "" || url.searchParams.has("password")) {
      throw new UsageError(
        `--postgres: the URL holds a password, and ${seen}; give the URL without it and the ` +
          `password in a file (--postgres-password-file FILE) or in ${POSTGRES_PASSWORD_ENV}, ` +
          `or the whole URL in ${ENGINE_ENVIRONMENT.postgres} or the --config file`,
      );
    }
  }
  if (fromCli.has("nats") && typeof options.nats === "string") {
    for (const url of natsUrls(options.nats)) {
      const tokenOnly = url.username !== "" && url.password === "" &&
        options.natsPasswordFile === undefined;
      if (url.password !== "" || tokenOnly) {
        throw new UsageError(
          `--nats: ${url.host} is given with a ${tokenOnly ? "token" : "password"}, and ${seen}; ` +
            `give the URLs without it and the ${
              tokenOnly ? "token" : "password"
            } in a file (--nats-password-file FILE) or in ${NATS_PASSWORD_ENV}, ` +
            `or the URLs in ${ENGINE_ENVIRONMENT.nats} or the --config file`,
        );
      }
    }
  }
}

/** Reads a secret file: its text without the line end(s) at its end. */
export type ReadSecret = (path: string, what: string) => Promise<string>;

async function readSecretFile(path: string, what: string): Promise<string> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    const why = err instanceof Deno.errors.NotFound
      ? "no such file"
      : err instanceof Error
      ? err.message
      : String(err);
    throw new Error(`cannot read ${what} ${path}: ${why}`, { cause: err });
  }
  const secret = text.replace(/[\r\n]+$/, "");
  if (secret === "") throw new Error(`${what} ${path} is empty`);
  return secret;
}

/**
 * The engine part of the configuration: `{}` for a single server (SQLite, in process);
 * with `--postgres` and `--nats`, both engines with their secrets, and no data folder.
 *
 * @throws {UsageError} when only one of the two is given, `--data` is given beside
 * them, a password file is given without its engine, or a URL does not parse.
 * @example
 * ```ts
 * import { engineSettings } from "./serve_engines.ts";
 * await engineSettings({}); // {}
 * await engineSettings(
 *   { postgres: "postgres://chat@db/chat", nats: "n1:4222,n2:4222" },
 *   () => undefined,
 * );
 * // { postgres: { url: "postgres://chat@db/chat" },
 * //   nats: { servers: ["nats://n1:4222", "nats://n2:4222"] }, dataDir: null }
 * ```
 */
export async function engineSettings(
  options: Record<string, unknown>,
  read: ReadEnv = readGrantedEnv,
  readSecret: ReadSecret = readSecretFile,
): Promise<Pick<Partial<ServerConfig>, "postgres" | "nats" | "dataDir">> {
  const postgres = options.postgres as string | undefined;
  const nats = options.nats as string | undefined;
  const pgPasswordFile = options.postgresPasswordFile as string | undefined;
  const natsPasswordFile = options.natsPasswordFile as string | undefined;
  if (postgres === undefined && nats === undefined) {
    if (pgPasswordFile !== undefined) {
      throw new UsageError("--postgres-password-file is the password of --postgres: give both");
    }
    if (natsPasswordFile !== undefined) {
      throw new UsageError("--nats-password-file is the password of --nats: give both");
    }
    return {};
  }
  if (postgres === undefined || nats === undefined) {
    throw new UsageError(
      `${postgres === undefined ? "--nats" : "--postgres"} needs ${
        postgres === undefined ? "--postgres" : "--nats"
      } too: PostgreSQL keeps the chat and NATS carries it between the nodes; give both ` +
        `for several nodes, neither for a single server (SQLite in --data)`,
    );
  }
  if (options.data !== undefined) {
    throw new UsageError(
      "--data is the folder of the single server's SQLite database; with --postgres " +
        "everything is kept in PostgreSQL: leave --data out",
    );
  }
  const pgPassword = pgPasswordFile !== undefined
    ? await readSecret(pgPasswordFile, "PostgreSQL password file")
    : read(POSTGRES_PASSWORD_ENV);
  const natsPassword = natsPasswordFile !== undefined
    ? await readSecret(natsPasswordFile, "NATS password file")
    : read(NATS_PASSWORD_ENV);
  return {
    postgres: postgresSettings(postgres, pgPassword),
    nats: natsSettings(nats, natsPassword),
    dataDir: null,
  };
}

/**
 * A PostgreSQL URL split into the URL without its password and the password (`password`
 * wins over one in the URL).
 *
 * @throws {UsageError} when it is not a `postgres://` or `postgresql://` URL.
 */
export function postgresSettings(text: string, password?: string): PostgresSettings {
  const url = parseUrl(text, "--postgres");
  if (url.protocol !== "postgres:" && url.protocol !== "postgresql:") {
    throw new UsageError(
      `--postgres: expected a URL such as postgres://chat@db:5432/chat, not "${redact(text)}"`,
    );
  }
  const inUrl = url.password === "" ? undefined : decodeURIComponent(url.password);
  url.password = "";
  const secret = password ?? inUrl;
  return secret === undefined ? { url: url.href } : { url: url.href, password: secret };
}

/**
 * NATS server URLs (comma-separated; `host:port` means `nats://host:port`) split into
 * URLs without credentials and the credentials: a user and password, or a token (a
 * user name alone, or `password` when no URL names a user).
 *
 * @throws {UsageError} when a URL does not parse or is not `nats://`.
 */
export function natsSettings(text: string, password?: string): NatsSettings {
  const urls = natsUrls(text);
  const servers: string[] = [];
  let user: string | undefined;
  let pass: string | undefined;
  for (const url of urls) {
    if (url.protocol !== "nats:") {
      throw new UsageError(`--nats: expected nats://host:port URLs, not "${redact(url.href)}"`);
    }
    if (user === undefined && url.username !== "") {
      user = decodeURIComponent(url.username);
      if (url.password !== "") pass = decodeURIComponent(url.password);
    }
    url.username = "";
    url.password = "";
    servers.push(url.href.replace(/\/$/, ""));
  }
  const settings: NatsSettings = { servers };
  const secret = password ?? pass;
  if (user === undefined) {
    if (secret !== undefined) settings.token = secret;
  } else if (secret === undefined) {
    settings.token = user;
  } else {
    settings.user = user;
    settings.pass = secret;
  }
  return settings;
}

function natsUrls(text: string): URL[] {
  const parts = text.split(",").map((part) => part.trim()).filter((part) => part !== "");
  if (parts.length === 0) throw new UsageError("--nats: expected one or more nats://host:port");
  return parts.map((part) => parseUrl(part.includes("://") ? part : `nats://${part}`, "--nats"));
}

function parseUrl(text: string, flag: string): URL {
  try {
    return new URL(text);
  } catch {
    throw new UsageError(`${flag}: not a URL: "${redact(text)}"`);
  }
}

/**
 * A URL as it may be logged or shown: its password (or token) replaced by `***`.
 *
 * @example
 * ```ts
 * import { redact } from "./serve_engines.ts";
 * redact("postgres://chat:secret@db/chat"); // "postgres://chat:***@db/chat"
 * ```
 */
export function redact(text: string): string {
  return text.replace(/(\/\/[^/@:]*):[^/@]*@/g, "$1:***@");
}
