/**
 * Free space on the disk holding a folder, through `node:fs`'s `statfs` (Deno has no
 * API of its own; `node:fs` has it since Deno 1.42, behind `--allow-sys=statfs`).
 *
 * The server keeps a reserve of free space (`--min-free-space`) so that the database can
 * always be written: uploads are refused, and cut off, before they would eat into it.
 * Where free space cannot be measured (no permission, an unusual file system), the
 * reserve cannot be kept: {@linkcode freeSpace} answers null and says so once in the log.
 *
 * @module
 */

import { statfs } from "node:fs/promises";
import { getLogger } from "@logtape/logtape";

const log = getLogger(["chat", "server", "files"]);

let warned = false;

/**
 * Bytes available to this process on the disk holding `path` (blocks available to
 * unprivileged users times the block size), or null when it cannot be measured.
 *
 * @example
 * ```ts ignore
 * import { freeSpace } from "./disk_space.ts";
 * const free = await freeSpace("./chat-data"); // e.g. 85_000_000_000
 * ```
 */
export async function freeSpace(path: string): Promise<number | null> {
  try {
    // Asked first: without the permission, statfs would prompt in a terminal and block.
    const allowed = Deno.permissions.querySync({ name: "sys", kind: "statfs" }).state;
    if (allowed !== "granted") throw new Error("no --allow-sys=statfs permission");
    const stats = await statfs(path);
    return Number(stats.bavail) * Number(stats.bsize);
  } catch (err) {
    if (!warned) {
      warned = true;
      log.warn(
        "cannot measure the free space of {path} ({err}): the free-space reserve is not " +
          "kept (run with --allow-sys=statfs)",
        { path, err: err instanceof Error ? err.message : String(err) },
      );
    }
    return null;
  }
}

/**
 * Bytes written after which {@linkcode FreeSpace} measures again. Large: the estimate
 * in between already counts them (it errs low), and a refusal measures afresh (see
 * {@linkcode FreeSpace.bytes}); each measure is a `statfs` on the server's one thread
 * (about 1 ms here), every 4 MiB it cost an upload 16 of them per 64 MiB.
 */
export const REMEASURE_BYTES: number = 64 * 1024 * 1024;
/** Milliseconds after which {@linkcode FreeSpace} measures again. */
const REMEASURE_MS = 1000;

/**
 * The free space of one folder's disk as uploads go: measured again after every 64 MiB
 * written through it or every second, and in between estimated as the last measure less
 * what was written since (deletions show at the next measure: the estimate errs low, so
 * a caller about to refuse for want of space asks for a fresh measure first).
 *
 * @example
 * ```ts ignore
 * import { FreeSpace } from "./disk_space.ts";
 * const free = new FreeSpace("./chat-data/files");
 * let left = await free.bytes();
 * if (left !== null && left - chunk.length < reserve) left = await free.bytes(true);
 * if (left !== null && left - chunk.length < reserve) throw new Error("full");
 * free.wrote(chunk.length);
 * ```
 */
export class FreeSpace {
  /** The folder whose disk is measured. */
  readonly path: string;
  #measured: number | null = null;
  #measuredAt = -Infinity;
  #since = 0;

  readonly #everyMs: number;
  readonly #measure: (path: string) => Promise<number | null>;

  /**
   * Measures the disk of `path` (at the first call of {@linkcode FreeSpace.bytes}), again
   * every `everyMs` at least, with `measure` ({@linkcode freeSpace}; another in tests).
   */
  constructor(
    path: string,
    everyMs = REMEASURE_MS,
    measure: (path: string) => Promise<number | null> = freeSpace,
  ) {
    this.path = path;
    this.#everyMs = everyMs;
    this.#measure = measure;
  }

  /**
   * Bytes free now, as well as known; null when the disk cannot be measured. `fresh`
   * measures now whatever the last measure's age (before refusing a write for want of
   * space: the estimate errs low).
   */
  async bytes(fresh = false): Promise<number | null> {
    const now = performance.now();
    if (fresh || now - this.#measuredAt >= this.#everyMs || this.#since >= REMEASURE_BYTES) {
      this.#measured = await this.#measure(this.path);
      this.#measuredAt = now;
      this.#since = 0;
    }
    return this.#measured === null ? null : Math.max(0, this.#measured - this.#since);
  }

  /** The last answer of {@linkcode FreeSpace.bytes} (null before the first, or unmeasurable). */
  get last(): number | null {
    return this.#measured === null ? null : Math.max(0, this.#measured - this.#since);
  }

  /** Counts `n` bytes written to the disk since the last measure. */
  wrote(n: number): void {
    this.#since += n;
  }
}

/**
 * Whether `err` says the disk is full: `ENOSPC` from a file write, `SQLITE_FULL`
 * ("database or disk is full") from SQLite.
 *
 * @example
 * ```ts
 * import { isDiskFull } from "./disk_space.ts";
 * isDiskFull(new Error("No space left on device (os error 28)")); // true
 * ```
 */
export function isDiskFull(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 4; depth++) {
    const code = (e as { code?: unknown }).code;
    const errcode = (e as { errcode?: unknown }).errcode;
    if (code === "ENOSPC" || (typeof errcode === "number" && (errcode & 0xff) === 13)) {
      return true;
    }
    if (/no space left on device|os error 28|database or disk is full/i.test(e.message)) {
      return true;
    }
    e = e.cause;
  }
  return false;
}
