/**
 * A list of server addresses for a client to fail over between, as NATS clients take a
 * server list: `chat connect --host a.example.org:44444,b.example.org:44444`.
 *
 * Entries are separated by commas; each is `HOST:PORT`, `HOST` (the default port),
 * `[IPV6]:PORT`, `[IPV6]` or a bare IPv6 address (the default port). Empty entries,
 * ports outside 1..65535, URLs and repeated addresses are refused with a
 * {@linkcode ServerListError} naming the entry.
 *
 * @module
 */

/** Where a server listens. */
export interface ServerAddress {
  /** Host name or address (IPv6 without brackets). */
  host: string;
  /** TCP port. */
  port: number;
}

/** A server list that cannot be used. */
export class ServerListError extends Error {
  /** Stable error code. */
  readonly code = "bad_server_list";

  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "ServerListError";
  }
}

const PORT = /^[0-9]{1,5}$/;

/**
 * Parses a comma-separated server list; entries without a port get `defaultPort`.
 *
 * @throws {ServerListError} for an empty list or entry, a bad port, a URL, or an
 * address given twice.
 * @example
 * ```ts
 * import { parseServerList } from "./server_list.ts";
 * parseServerList("a.example.org:1,b.example.org,[::1]:3", 44444);
 * // [{ host: "a.example.org", port: 1 }, { host: "b.example.org", port: 44444 },
 * //  { host: "::1", port: 3 }]
 * ```
 */
export function parseServerList(text: string, defaultPort: number): ServerAddress[] {
  if (text.trim() === "") throw new ServerListError("no server address given");
  const entries = text.split(",");
  const list: ServerAddress[] = [];
  const seen = new Map<string, number>();
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i]!.trim();
    const where = entries.length === 1 ? `"${entry}"` : `entry ${i + 1} ("${entry}")`;
    if (entry === "") {
      throw new ServerListError(
        `entry ${i + 1} of "${text}" is empty (separate addresses with single commas)`,
      );
    }
    const address = parseEntry(entry, defaultPort, where);
    const key = formatServerAddress(address).toLowerCase();
    const before = seen.get(key);
    if (before !== undefined) {
      throw new ServerListError(`${where} repeats entry ${before} (${key})`);
    }
    seen.set(key, i + 1);
    list.push(address);
  }
  return list;
}

function parseEntry(entry: string, defaultPort: number, where: string): ServerAddress {
  if (entry.includes("://")) {
    throw new ServerListError(`${where}: give HOST:PORT, not a URL`);
  }
  if (/\s/.test(entry)) throw new ServerListError(`${where}: an address has no spaces`);
  let host: string;
  let port: string | undefined;
  if (entry.startsWith("[")) {
    const match = /^\[([^\[\]]+)\](?::(.*))?$/.exec(entry);
    if (match === null) {
      throw new ServerListError(`${where}: expected [IPV6]:PORT, e.g. [::1]:44444`);
    }
    host = match[1]!;
    port = match[2];
  } else if (entry.indexOf(":") !== entry.lastIndexOf(":")) {
    host = entry; // a bare IPv6 address: no port can be told apart
  } else {
    const at = entry.indexOf(":");
    host = at < 0 ? entry : entry.slice(0, at);
    port = at < 0 ? undefined : entry.slice(at + 1);
  }
  if (host === "" || /[\[\]\/]/.test(host)) {
    throw new ServerListError(`${where}: no host name or address`);
  }
  if (port === undefined) return { host, port: defaultPort };
  const n = PORT.test(port) ? Number(port) : NaN;
  if (!(n >= 1 && n <= 65535)) {
    throw new ServerListError(`${where}: the port must be a number from 1 to 65535`);
  }
  return { host, port: n };
}

/**
 * `host:port`, with IPv6 addresses in brackets: how messages name a server.
 *
 * @example
 * ```ts
 * import { formatServerAddress } from "./server_list.ts";
 * formatServerAddress({ host: "::1", port: 44444 }); // "[::1]:44444"
 * ```
 */
export function formatServerAddress(address: ServerAddress): string {
  return address.host.includes(":")
    ? `[${address.host}]:${address.port}`
    : `${address.host}:${address.port}`;
}

/**
 * A shuffled copy of a list (Fisher–Yates), so that clients given the same list spread
 * over the servers, as NATS clients do unless told not to.
 */
export function shuffleServers<T>(list: readonly T[], random: () => number = Math.random): T[] {
  const copy = [...list];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [copy[i], copy[j]] = [copy[j]!, copy[i]!];
  }
  return copy;
}
