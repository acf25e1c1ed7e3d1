/**
 * The known-servers file: the SHA-256 fingerprints of server certificates trusted on
 * first use, like SSH's `known_hosts`. Once a server's certificate is in it, the
 * client accepts that certificate and no other for that `host:port`.
 *
 * One server per line, `HOST:PORT FINGERPRINT` (IPv6 hosts in brackets), with blank
 * lines and `#` comments allowed:
 *
 * ```text
 * # chat: certificates trusted on first use
 * chat.example.org:44444 3F:1A:...:9C
 * [fd00::5]:44444 77:0B:...:E1
 * ```
 *
 * @module
 */

import * as path from "node:path";
import { normalizeFingerprint } from "./pinned_tls.ts";

/** The name of the known-servers file inside the config folder. */
export const KNOWN_SERVERS_FILE_NAME = "known_servers";

const HEADER = "# chat: server certificates trusted on first use (HOST:PORT SHA-256)";

/** A known-servers file that cannot be read, parsed or written. */
export class KnownServersError extends Error {
  /** Stable error code. */
  readonly code = "bad_known_servers";

  /** Creates the error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "KnownServersError";
  }
}

/** One trusted certificate. */
export interface KnownServer {
  /** `host:port`, as {@linkcode serverKey} spells it. */
  server: string;
  /** The certificate's SHA-256 fingerprint, uppercase hex pairs joined by colons. */
  fingerprint: string;
  /** The 1-based line of the file it is on. */
  line: number;
}

/**
 * The key of a server in the file: the host in lowercase (IPv6 in brackets), a colon
 * and the port.
 *
 * @example
 * ```ts
 * import { serverKey } from "./known_servers.ts";
 * serverKey("Chat.Example.org", 44444); // "chat.example.org:44444"
 * serverKey("::1", 44444); // "[::1]:44444"
 * ```
 */
export function serverKey(host: string, port: number): string {
  const name = host.toLowerCase().replace(/^\[(.*)\]$/, "$1");
  return name.includes(":") ? `[${name}]:${port}` : `${name}:${port}`;
}

/**
 * Parses the text of a known-servers file; `source` names it in errors.
 *
 * @throws {KnownServersError} naming the first malformed or repeated line.
 */
export function parseKnownServers(text: string, source: string): KnownServer[] {
  const entries: KnownServer[] = [];
  const seen = new Map<string, number>();
  const lines = text.replace(/^\uFEFF/, "").split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === "" || line.startsWith("#")) continue;
    const fields = line.split(/\s+/);
    const where = `${source} line ${i + 1}`;
    const match = fields.length === 2 ? /^(\[[^\]]+\]|[^:\s]+):(\d{1,5})$/.exec(fields[0]!) : null;
    const port = match === null ? NaN : Number(match[2]);
    if (match === null || port < 1 || port > 65535) {
      throw new KnownServersError(`${where}: expected "HOST:PORT SHA256-FINGERPRINT"`);
    }
    let fingerprint: string;
    try {
      fingerprint = normalizeFingerprint(fields[1]!);
    } catch (err) {
      throw new KnownServersError(`${where}: ${(err as Error).message}`);
    }
    const server = serverKey(match[1]!, port);
    const earlier = seen.get(server);
    if (earlier !== undefined) {
      throw new KnownServersError(`${where}: ${server} is already on line ${earlier}`);
    }
    seen.set(server, i + 1);
    entries.push({ server, fingerprint, line: i + 1 });
  }
  return entries;
}

/** What {@linkcode KnownServers.remember} changed. */
export interface RememberResult {
  /** Whether the file changed (false when the fingerprint was already there). */
  changed: boolean;
  /** The fingerprint it replaced, when the server had another one. */
  replaced?: string;
}

/**
 * The known-servers file at a path.
 *
 * @example
 * ```ts ignore
 * import { KnownServers } from "./known_servers.ts";
 * const known = new KnownServers("/home/ada/.config/chat/known_servers");
 * const entry = await known.lookup("chat.example.org", 44444);
 * if (entry === undefined) await known.remember("chat.example.org", 44444, fingerprint);
 * ```
 */
export class KnownServers {
  /** The file's path. */
  readonly path: string;

  /** Uses the file at `path` (created on the first {@linkcode KnownServers.remember}). */
  constructor(path: string) {
    this.path = path;
  }

  /** Every entry of the file; none when it does not exist. */
  async entries(): Promise<KnownServer[]> {
    return parseKnownServers(await this.#read(), this.path);
  }

  /** The trusted certificate of `host:port`, if any. */
  async lookup(host: string, port: number): Promise<KnownServer | undefined> {
    const key = serverKey(host, port);
    return (await this.entries()).find((entry) => entry.server === key);
  }

  /**
   * Trusts `fingerprint` for `host:port` from now on, replacing the server's line
   * if it has one (other lines and comments are kept). Creates the folder and the
   * file when needed; writes a new file and renames it over the old one, so that a
   * crash never leaves half a file.
   */
  async remember(host: string, port: number, fingerprint: string): Promise<RememberResult> {
    const normalized = normalizeFingerprint(fingerprint);
    const text = await this.#read();
    const entries = parseKnownServers(text, this.path);
    const key = serverKey(host, port);
    const existing = entries.find((entry) => entry.server === key);
    if (existing?.fingerprint === normalized) return { changed: false };
    const line = `${key} ${normalized}`;
    let lines = text === "" ? [HEADER] : text.replace(/\r?\n$/, "").split(/\r?\n/);
    if (existing !== undefined) lines[existing.line - 1] = line;
    else lines = [...lines, line];
    const temp = `${this.path}.${crypto.randomUUID().slice(0, 8)}.tmp`;
    try {
      await Deno.mkdir(path.dirname(this.path), { recursive: true });
      await Deno.writeTextFile(temp, lines.join("\n") + "\n", { mode: 0o644 });
      await Deno.rename(temp, this.path);
    } catch (err) {
      await Deno.remove(temp).catch(() => {});
      throw new KnownServersError(`cannot write ${this.path}: ${describe(err)}`, { cause: err });
    }
    return existing === undefined
      ? { changed: true }
      : { changed: true, replaced: existing.fingerprint };
  }

  async #read(): Promise<string> {
    try {
      return await Deno.readTextFile(this.path);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return "";
      throw new KnownServersError(`cannot read ${this.path}: ${describe(err)}`, { cause: err });
    }
  }
}

function describe(err: unknown): string {
  if (err instanceof Deno.errors.PermissionDenied) return "permission denied";
  return err instanceof Error ? err.message : String(err);
}
