/**
 * How many connections the process's file descriptor limit can hold.
 *
 * Every connection is a descriptor; so are the database and its journal, the log file,
 * held files being read or written and the runtime's own. Past the limit `accept` fails
 * with EMFILE. At start the server raises its soft limit toward the hard one where it
 * may (with the `ffi` permission: Deno has no `setrlimit` of its own), then measures how
 * many descriptors it can still open, and keeps {@linkcode descriptorHeadroom} of them
 * for everything but connections.
 *
 * Without an unrestricted `--allow-ffi` (the `serve` task does not get it, and the binary
 * only for libcrypto's paths, the peer records' cipher: it lifts the sandbox) the limit
 * cannot be raised, and `/proc/self/limits` cannot be read either
 * (Deno asks for every permission to read `/proc/self`), so the count is then measured
 * by opening `/dev/null` until it fails or enough are open, and closing them all.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";

const log = getLogger(["chat", "server", "descriptors"]);

/** Most descriptors measured; past this the limit is taken as ample. */
export const MAX_PROBED_DESCRIPTORS = 65_536;

/** Raised when the descriptor limit leaves no room for connections. */
export class DescriptorLimitError extends Error {
  /** Stable error code. */
  readonly code = "descriptor_limit";

  /** Creates the error with a one-line message. */
  constructor(message: string) {
    super(message);
    this.name = "DescriptorLimitError";
  }
}

/** What {@linkcode raiseDescriptorLimit} found and did. */
export interface DescriptorLimit {
  /** The soft limit before. */
  before: number;
  /** The soft limit now. */
  soft: number;
  /** The hard limit (`Infinity` when unlimited). */
  hard: number;
}

/**
 * Descriptors kept for everything but connections, out of `available`: 64, or a tenth
 * when that is more (held files being transferred grow with the connections).
 *
 * @example
 * ```ts
 * import { descriptorHeadroom } from "./descriptor_limit.ts";
 * descriptorHeadroom(1000); // 100
 * descriptorHeadroom(200); // 64
 * ```
 */
export function descriptorHeadroom(available: number): number {
  return Math.max(64, Math.ceil(available / 10));
}

/**
 * Raises the soft `RLIMIT_NOFILE` to the hard limit (at most 2^20), on Linux and macOS,
 * when the `ffi` permission is granted. Returns null when it cannot (no permission,
 * another platform, no C library found); never prompts.
 */
export function raiseDescriptorLimit(): DescriptorLimit | null {
  const os = Deno.build.os;
  if (os !== "linux" && os !== "darwin") return null;
  if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") return null;
  const resource = os === "linux" ? 7 : 8; // RLIMIT_NOFILE
  let lib;
  try {
    lib = Deno.dlopen(
      os === "linux" ? "libc.so.6" : "libSystem.B.dylib",
      {
        getrlimit: { parameters: ["i32", "buffer"], result: "i32" },
        setrlimit: { parameters: ["i32", "buffer"], result: "i32" },
      } as const,
    );
  } catch (err) {
    log.debug("cannot load the C library to raise the descriptor limit: {err}", { err });
    return null;
  }
  try {
    const limits = new BigUint64Array(2);
    const bytes = new Uint8Array(limits.buffer);
    if (lib.symbols.getrlimit(resource, bytes) !== 0) return null;
    const before = toNumber(limits[0]);
    const hard = toNumber(limits[1]);
    for (const target of [Math.min(hard, 1 << 20), Math.min(hard, 10_240)]) {
      if (target <= before) break;
      limits[0] = BigInt(target);
      if (lib.symbols.setrlimit(resource, bytes) === 0) return { before, soft: target, hard };
    }
    return { before, soft: before, hard };
  } finally {
    lib.close();
  }
}

function toNumber(value: bigint): number {
  return value >= BigInt(Number.MAX_SAFE_INTEGER) ? Infinity : Number(value);
}

/**
 * The descriptors this process can still open, from `/proc/self/limits` and
 * `/proc/self/fd` (Linux); null where they cannot be read (Deno asks for every
 * permission to read `/proc/self`).
 */
export function readFreeDescriptors(): number | null {
  if (Deno.build.os !== "linux") return null;
  try {
    const limits = Deno.readTextFileSync("/proc/self/limits");
    const match = /^Max open files\s+(\d+|unlimited)\s/m.exec(limits);
    if (match === null) return null;
    const soft = match[1] === "unlimited" ? Infinity : Number(match[1]);
    let used = 0;
    for (const _ of Deno.readDirSync("/proc/self/fd")) used++;
    return soft - used;
  } catch {
    return null;
  }
}

/**
 * Counts the descriptors this process can still open, up to `wanted`: opens `/dev/null`
 * until the system refuses (EMFILE, ENFILE) or `wanted` are open, then closes them.
 * Returns null where that cannot be measured (Windows, no `/dev/null`, no read
 * permission for it).
 */
export function probeDescriptors(wanted: number): number | null {
  if (Deno.build.os === "windows") return null;
  const open: Deno.FsFile[] = [];
  try {
    while (open.length < wanted) open.push(Deno.openSync("/dev/null"));
    return open.length;
  } catch (err) {
    if (isOutOfDescriptors(err)) return open.length;
    log.debug("cannot measure the descriptor limit: {err}", { err });
    return null;
  } finally {
    for (const file of open) file.close();
  }
}

/** Whether `err` says the process or the system has no descriptor left. */
export function isOutOfDescriptors(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  return code === "EMFILE" || code === "ENFILE" || /os error (24|23)\b/.test(err.message);
}

/** The outcome of {@linkcode fitConnectionsToDescriptors}. */
export interface DescriptorFit {
  /** The connection cap to use: `maxConnections`, or lower when the limit cannot hold it. */
  maxConnections: number;
  /** Connections the descriptors can hold (null: not measured). */
  capacity: number | null;
}

/**
 * Raises the soft descriptor limit where allowed, measures what can be opened and
 * returns the connection cap it can hold beside {@linkcode descriptorHeadroom}: the
 * configured `maxConnections` (0: unlimited) when it fits, else the capacity, with a
 * warning saying how to raise the limit.
 *
 * @throws {DescriptorLimitError} when the limit leaves room for fewer than 8 connections.
 */
export function fitConnectionsToDescriptors(maxConnections: number): DescriptorFit {
  const raised = raiseDescriptorLimit();
  if (raised !== null && raised.soft > raised.before) {
    log.info("raised the file descriptor limit from {before} to {soft}", { ...raised });
  }
  const wantedConnections = maxConnections > 0 ? maxConnections : MAX_PROBED_DESCRIPTORS;
  const wanted = Math.min(
    MAX_PROBED_DESCRIPTORS,
    wantedConnections + descriptorHeadroom(wantedConnections),
  );
  const free = readFreeDescriptors();
  const available = free !== null ? Math.min(free, wanted) : probeDescriptors(wanted);
  if (available === null) return { maxConnections, capacity: null };
  if (available >= wanted) {
    return { maxConnections, capacity: available - descriptorHeadroom(available) };
  }
  const capacity = available - descriptorHeadroom(available);
  const how = "raise it (ulimit -n, LimitNOFILE= in a systemd unit" +
    (raised === null ? ", or run with --allow-ffi to let the server raise it itself)" : ")");
  if (capacity < 8) {
    throw new DescriptorLimitError(
      `only ${available} file descriptors are free: too few to serve connections; ${how}`,
    );
  }
  log.warn(
    "only {available} file descriptors are free: --max-connections {requested} lowered to {capacity} (the rest is kept for the database, logs and files); {how}",
    {
      available,
      requested: maxConnections === 0 ? "0 (unlimited)" : maxConnections,
      capacity,
      how,
    },
  );
  return { maxConnections: capacity, capacity };
}
