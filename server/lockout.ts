/**
 * Failed-login lockout: consecutive wrong passwords lock a nick from every address.
 *
 * @module
 */

/** Consecutive failures that lock a nick. */
export const MAX_LOGIN_FAILURES = 3;

interface Entry {
  failures: number;
  lockedUntil: number;
}

/**
 * Counts consecutive wrong passwords per account key. The third locks the key for
 * the block duration; a success resets the count.
 *
 * @example
 * ```ts
 * import { Lockout } from "./lockout.ts";
 * const lockout = new Lockout(60_000);
 * lockout.fail("alice", 0); lockout.fail("alice", 0);
 * lockout.fail("alice", 0); // true: now locked
 * lockout.remainingMs("alice", 1000); // 59000
 * ```
 */
export class Lockout {
  readonly #durationMs: number;
  readonly #entries = new Map<string, Entry>();

  /** Creates a tracker that locks for `durationMs`. */
  constructor(durationMs: number) {
    this.#durationMs = durationMs;
  }

  /** Milliseconds the key stays locked from `now`; 0 when not locked. */
  remainingMs(key: string, now: number): number {
    const entry = this.#entries.get(key);
    if (entry === undefined || entry.lockedUntil <= now) return 0;
    return entry.lockedUntil - now;
  }

  /** Records a wrong password; returns true when this failure locks the key. */
  fail(key: string, now: number): boolean {
    let entry = this.#entries.get(key);
    if (entry === undefined || (entry.lockedUntil !== 0 && entry.lockedUntil <= now)) {
      entry = { failures: 0, lockedUntil: 0 };
      this.#entries.set(key, entry);
    }
    entry.failures++;
    if (entry.failures >= MAX_LOGIN_FAILURES) {
      entry.failures = 0;
      entry.lockedUntil = now + this.#durationMs;
      return true;
    }
    return false;
  }

  /** Records a successful login: the count starts over. */
  succeed(key: string): void {
    this.#entries.delete(key);
  }
}
