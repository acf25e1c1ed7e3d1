/**
 * The addresses by which other machines can reach a listener, for the lines that
 * `chat serve` and `chat peer --listen` print.
 *
 * @module
 */

/**
 * The non-loopback, non-link-local addresses of this machine's interfaces that a
 * listener bound to `boundHost` accepts: IPv4 ones for `0.0.0.0`, IPv6 ones too (first)
 * for `::`, and just `boundHost` when it is a specific address.
 *
 * @example
 * ```ts
 * import { reachableHosts } from "./addresses.ts";
 * reachableHosts("0.0.0.0", [
 *   { family: "IPv4", name: "lo", address: "127.0.0.1", netmask: "", scopeid: null, cidr: "", mac: "" },
 *   { family: "IPv4", name: "eth0", address: "192.168.1.5", netmask: "", scopeid: null, cidr: "", mac: "" },
 * ]); // ["192.168.1.5"]
 * ```
 */
export function reachableHosts(
  boundHost: string,
  interfaces: Deno.NetworkInterfaceInfo[],
): string[] {
  const wantV4 = boundHost === "0.0.0.0" || boundHost === "::";
  const wantV6 = boundHost === "::";
  if (!wantV4) return [boundHost];
  const v4: string[] = [];
  const v6: string[] = [];
  for (const { family, address } of interfaces) {
    if (family === "IPv4") {
      if (address.startsWith("127.") || address.startsWith("169.254.")) continue;
      if (!v4.includes(address)) v4.push(address);
    } else {
      const lower = address.toLowerCase();
      if (lower === "::1" || /^fe[89ab]/.test(lower) || lower.includes("%")) continue;
      if (!v6.includes(address)) v6.push(address);
    }
  }
  return [...(wantV6 ? v6 : []), ...v4];
}

/** The loopback address matching a bound host's family. */
export function loopbackFor(boundHost: string): string {
  return boundHost === "::" ? "::1" : "127.0.0.1";
}

/** `host:port`, with IPv6 addresses in brackets. */
export function formatHostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/** The machine's network interfaces, or none without `--allow-sys=networkInterfaces`. */
export function listInterfaces(): Deno.NetworkInterfaceInfo[] {
  try {
    const status = Deno.permissions.querySync({ name: "sys", kind: "networkInterfaces" });
    if (status.state !== "granted") return [];
    return Deno.networkInterfaces();
  } catch {
    return [];
  }
}
