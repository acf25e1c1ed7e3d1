/**
 * Ports for tests that restart a server on the same port. A port picked by the system
 * (port 0) comes from the ephemeral range, from which outgoing connections also take
 * their local ports: another test's connection may hold it by the time the server is
 * restarted. These ports lie below every common ephemeral range (Linux 32768–60999,
 * macOS and Windows 49152–65535), so once a server has one, it can have it again.
 *
 * Test files run in parallel processes, each picking ports at random: while a server is
 * stopped between two starts, another file could pick and bind its port. So a port is
 * reserved for as long as its user holds it, across processes: the reservation is an
 * exclusive lock (`flock`) on the file `chat-test-ports/PORT` of the temp folder, which
 * holds the owner's PID (for people reading the folder). The kernel drops the lock when
 * its process ends, however it ends: a claim left by a dead process is stale and taken
 * over by the next one to lock it.
 *
 * @module
 */

import { join } from "node:path";

/** Lowest port handed out. */
export const LOW_PORT = 20_000;
/** One past the highest port handed out. */
export const HIGH_PORT = 32_000;

/** The folder of the claims, shared by every test process of the machine (of the user). */
export const PORTS_DIR: string = join(Deno.env.get("TMPDIR") ?? "/tmp", "chat-test-ports");

/** Thrown when no free range of ports could be reserved. */
export class PortsUnavailableError extends Error {
  /** Stable code. */
  readonly code = "ports_unavailable";
  constructor(message: string) {
    super(message);
    this.name = "PortsUnavailableError";
  }
}

/**
 * Consecutive ports reserved for this process until {@linkcode PortReservation.release}
 * (or `using`, or the process's end).
 */
export class PortReservation implements Disposable {
  /** The first port. */
  readonly port: number;
  /** How many consecutive ports, from {@linkcode port}. */
  readonly count: number;
  #locks: { path: string; file: Deno.FsFile }[];

  /** @internal Built by {@linkcode tryReservePorts}. */
  constructor(port: number, locks: { path: string; file: Deno.FsFile }[]) {
    this.port = port;
    this.count = locks.length;
    this.#locks = locks;
    held.add(this);
  }

  /** The ports, `[port, port + 1, ...]`. */
  get ports(): number[] {
    return Array.from({ length: this.count }, (_, i) => this.port + i);
  }

  /** Whether it is still held. */
  get held(): boolean {
    return this.#locks.length > 0;
  }

  /** Gives the ports back (their claim files removed); no-op when released already. */
  release(): void {
    held.delete(this);
    for (const lock of this.#locks.splice(0)) unlock(lock);
  }

  /** `using ports = reservePorts()`. */
  [Symbol.dispose](): void {
    this.release();
  }
}

/** Every reservation of this process not released yet (released at exit). */
const held = new Set<PortReservation>();
globalThis.addEventListener("unload", () => {
  for (const reservation of [...held]) reservation.release();
});

/**
 * Removes the claim file while still holding its lock, then unlocks it. Removed first: a
 * process that opened the file meanwhile and locks it once we let go sees that the file
 * is no longer the one at its path ({@linkcode lockClaim}), so at most one process holds
 * the lock of the file at a path.
 */
function unlock(lock: { path: string; file: Deno.FsFile }): void {
  try {
    Deno.removeSync(lock.path);
  } catch { /* removed already, or Windows (an open file): the lock still goes */ }
  try {
    lock.file.close();
  } catch { /* closed */ }
}

/** Locks the claim file of `port`, or returns null when another holder has it. */
function lockClaim(port: number): { path: string; file: Deno.FsFile } | null {
  const path = join(PORTS_DIR, String(port));
  for (;;) {
    let file: Deno.FsFile;
    try {
      file = Deno.openSync(path, { create: true, write: true });
    } catch {
      return null; // e.g. a claim of another user's, which we may not open
    }
    let kept = false;
    try {
      if (!file.tryLockSync(true)) return null;
      // The holder before us may have removed the file between our open and our lock:
      // ours is then a file no longer at the path, which others would not see. Again.
      if (inode(path) !== file.statSync().ino) continue;
      file.truncateSync();
      file.writeSync(new TextEncoder().encode(`${Deno.pid}\n`));
      kept = true;
      return { path, file };
    } finally {
      if (!kept) file.close();
    }
  }
}

/** The inode of the file at `path` (null on Windows), or undefined when there is none. */
function inode(path: string): number | null | undefined {
  try {
    return Deno.statSync(path).ino;
  } catch {
    return undefined;
  }
}

/** Whether 127.0.0.1:`port` can be listened on now. */
function bindable(port: number): boolean {
  try {
    Deno.listen({ hostname: "127.0.0.1", port }).close();
    return true;
  } catch {
    return false;
  }
}

/**
 * Reserves `count` consecutive ports from `port`, or returns null when another process
 * (or another reservation of this one) holds one of them or one cannot be listened on.
 */
export function tryReservePorts(port: number, count = 1): PortReservation | null {
  Deno.mkdirSync(PORTS_DIR, { recursive: true });
  const locks: { path: string; file: Deno.FsFile }[] = [];
  for (let i = 0; i < count; i++) {
    const lock = lockClaim(port + i);
    if (lock === null || !bindable(port + i)) {
      if (lock !== null) locks.push(lock);
      for (const taken of locks) unlock(taken);
      return null;
    }
    locks.push(lock);
  }
  return new PortReservation(port, locks);
}

/**
 * Reserves `count` consecutive free ports (each can be listened on now) picked at random
 * from 20000 to 31999, held until released: `using` it in a test, so that the ports go
 * back when the test ends.
 *
 * @example
 * ```ts ignore
 * import { reservePorts } from "./ports.ts";
 * using ports = reservePorts(2);
 * let server = await testServer({ port: ports.port, webPort: ports.port + 1 });
 * await server.shutdown();
 * server = await testServer({ port: ports.port, webPort: ports.port + 1 }); // same ports
 * ```
 */
export function reservePorts(count = 1, attempts = 1000): PortReservation {
  for (let attempt = 0; attempt < attempts; attempt++) {
    const port = LOW_PORT + Math.floor(Math.random() * (HIGH_PORT - LOW_PORT - count + 1));
    const reservation = tryReservePorts(port, count);
    if (reservation !== null) return reservation;
  }
  throw new PortsUnavailableError(
    `no ${count} free consecutive port(s) from ${LOW_PORT} to ${HIGH_PORT - 1} ` +
      `in ${attempts} attempts (claims in ${PORTS_DIR})`,
  );
}

/**
 * Calls `start` with a reserved port (and its reservation) until it works (it throws when
 * the port cannot be used), at most `attempts` times. A failed attempt's port is released;
 * the port of the attempt that works stays reserved: `start` keeps the reservation and
 * releases it when done with the port (at the latest it goes at the process's end).
 *
 * @example
 * ```ts ignore
 * import { onFreePort } from "./ports.ts";
 * const engine = await onFreePort(async (port, reservation) => {
 *   const engine = await startEngine(port); // releases `reservation` when it is closed
 *   engine.onClose(() => reservation.release());
 *   return engine;
 * });
 * ```
 */
export async function onFreePort<T>(
  start: (port: number, reservation: PortReservation) => Promise<T>,
  attempts = 20,
): Promise<T> {
  for (let attempt = 1;; attempt++) {
    const reservation = reservePorts();
    try {
      return await start(reservation.port, reservation);
    } catch (err) {
      reservation.release();
      if (attempt >= attempts) throw err;
    }
  }
}
