/**
 * Failed-login lockout.
 *
 * Two scopes ({@linkcode LockoutScope}):
 *
 * - `account` (the course app's rule): three consecutive wrong passwords lock the nick
 *   from every address. Anyone who knows a nick can keep its owner out.
 * - `address` (the default): three consecutive wrong passwords lock the nick *for that
 *   address*. Failures from all addresses also add up per account: three of them lock the
 *   nick for every address that has not logged in to it successfully since the server
 *   started, but an address the owner has logged in from before is never held off by
 *   another address's failures. A stranger can then only lock themselves out (and any
 *   new address), while a guesser spread over many addresses still gets three guesses per
 *   block duration, as before.
 *
 * @module
 */

/** Consecutive failures that lock a nick. */
export const MAX_LOGIN_FAILURES = 3;
/** Addresses remembered per account as having logged in to it. */
export const KNOWN_ADDRESSES_PER_ACCOUNT = 16;
/** Entries kept before expired ones are pruned. */
const PRUNE_AT = 100_000;

/** Whom wrong passwords lock out: see the module documentation. */
export type LockoutScope = "address" | "account";

interface Entry {
  failures: number;
  lockedUntil: number;
}

/**
 * Counts consecutive wrong passwords per account (and per account and address). The
 * third locks for the block duration; a success resets the counts.
 *
 * @example
 * ```ts
 * import { Lockout } from "./lockout.ts";
 * const lockout = new Lockout(60_000, "account");
 * lockout.fail("alice", "10.0.0.9", 0); lockout.fail("alice", "10.0.0.9", 0);
 * lockout.fail("alice", "10.0.0.9", 0); // true: now locked
 * lockout.remainingMs("alice", "10.0.0.1", 1000); // 59000: from every address
 * ```
 */
export class Lockout {
  readonly #durationMs: number;
  readonly #scope: LockoutScope;
  /** By account key, and by account key and address (`key ip`). */
  readonly #entries = new Map<string, Entry>();
  /** Addresses that logged in successfully, by account key (most recent last). */
  readonly #known = new Map<string, string[]>();

  /** Creates a tracker that locks for `durationMs`, by `scope`. */
  constructor(durationMs: number, scope: LockoutScope = "address") {
    this.#durationMs = durationMs;
    this.#scope = scope;
  }

  /** Milliseconds `key` stays locked for a login from `ip`; 0 when not locked. */
  remainingMs(key: string, ip: string, now: number): number {
    const account = this.#remaining(key, now);
    if (this.#scope === "account") return account;
    const pair = this.#remaining(pairKey(key, ip), now);
    return this.#isKnown(key, ip) ? pair : Math.max(pair, account);
  }

  /** Records a wrong password from `ip`; returns true when it locks `key` for `ip`. */
  fail(key: string, ip: string, now: number): boolean {
    if (this.#entries.size > PRUNE_AT) this.#prune(now);
    const account = this.#fail(key, now);
    if (this.#scope === "account") return account;
    const pair = this.#fail(pairKey(key, ip), now);
    return pair || (account && !this.#isKnown(key, ip));
  }

  /** Records a successful login from `ip`: the counts start over, `ip` is known. */
  succeed(key: string, ip: string): void {
    this.#entries.delete(key);
    this.#entries.delete(pairKey(key, ip));
    const before = this.#known.get(key);
    if (before !== undefined && before[before.length - 1] === ip) return;
    // Made by concat and slice, of just their number (push makes room for 17): one per
    // account that ever logged in.
    const known = (before ?? []).filter((k) => k !== ip).concat(ip);
    this.#known.set(
      key,
      known.length > KNOWN_ADDRESSES_PER_ACCOUNT ? known.slice(1) : known,
    );
  }

  #isKnown(key: string, ip: string): boolean {
    return this.#known.get(key)?.includes(ip) ?? false;
  }

  #remaining(entryKey: string, now: number): number {
    const entry = this.#entries.get(entryKey);
    if (entry === undefined || entry.lockedUntil <= now) return 0;
    return entry.lockedUntil - now;
  }

  #fail(entryKey: string, now: number): boolean {
    let entry = this.#entries.get(entryKey);
    if (entry === undefined || (entry.lockedUntil !== 0 && entry.lockedUntil <= now)) {
      entry = { failures: 0, lockedUntil: 0 };
      this.#entries.set(entryKey, entry);
    }
    entry.failures++;
    if (entry.failures >= MAX_LOGIN_FAILURES) {
      entry.failures = 0;
      entry.lockedUntil = now + this.#durationMs;
      return true;
    }
    return false;
  }

  /** Forgets entries that are not locked: at worst a guesser's count starts over. */
  #prune(now: number): void {
    for (const [k, entry] of this.#entries) {
      if (entry.lockedUntil <= now) this.#entries.delete(k);
    }
  }
}

function pairKey(key: string, ip: string): string {
  return `${key} ${ip}`;
}
