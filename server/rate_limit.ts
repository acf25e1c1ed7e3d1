/**
 * Token buckets for flood control and login throttling.
 *
 * @module
 */

/**
 * A token bucket: holds at most `burst` tokens and gains `perSecond` tokens a second.
 * A rate of 0 means unlimited.
 *
 * @example
 * ```ts
 * import { TokenBucket } from "./rate_limit.ts";
 * const bucket = new TokenBucket(5, 10, 0); // burst 10, then 5 a second
 * bucket.take(1, 0); // true, ten times in a row; then false until time passes
 * ```
 */
export class TokenBucket {
  readonly #perSecond: number;
  readonly #burst: number;
  #tokens: number;
  #at: number;

  /** Creates a full bucket at time `now` (ms). */
  constructor(perSecond: number, burst: number, now: number) {
    this.#perSecond = perSecond;
    this.#burst = Math.max(burst, 1);
    this.#tokens = this.#burst;
    this.#at = now;
  }

  /** Whether the bucket limits anything. */
  get unlimited(): boolean {
    return this.#perSecond <= 0;
  }

  /** Takes `n` tokens if there are that many (a request larger than the burst needs a full bucket). */
  take(n: number, now: number): boolean {
    if (this.#perSecond <= 0) return true;
    this.#refill(now);
    const need = Math.min(n, this.#burst);
    if (this.#tokens < need) return false;
    this.#tokens -= need;
    return true;
  }

  /**
   * Takes `n` tokens whether or not they are there, going into debt (at most one burst
   * deep); returns the seconds until the debt is paid (0 when there was no debt).
   */
  reserve(n: number, now: number): number {
    if (this.#perSecond <= 0) return 0;
    this.#refill(now);
    this.#tokens = Math.max(-this.#burst, this.#tokens - Math.min(n, this.#burst));
    return this.#tokens >= 0 ? 0 : -this.#tokens / this.#perSecond;
  }

  /** Seconds until `n` tokens are available (0 when they are now). */
  waitSeconds(n: number, now: number): number {
    if (this.#perSecond <= 0) return 0;
    this.#refill(now);
    const need = Math.min(n, this.#burst);
    return this.#tokens >= need ? 0 : (need - this.#tokens) / this.#perSecond;
  }

  #refill(now: number): void {
    const elapsed = Math.max(0, now - this.#at) / 1000;
    this.#tokens = Math.min(this.#burst, this.#tokens + elapsed * this.#perSecond);
    this.#at = now;
  }
}

/**
 * Token buckets by key (IP address), created on demand and forgotten once full again,
 * so the map holds only keys that were active lately.
 */
export class KeyedBuckets {
  readonly #perSecond: number;
  readonly #burst: number;
  readonly #buckets = new Map<string, TokenBucket>();

  /** Creates the set; a rate of 0 means unlimited. */
  constructor(perSecond: number, burst: number) {
    this.#perSecond = perSecond;
    this.#burst = burst;
  }

  /** Takes one token for `key`. */
  take(key: string, now: number): boolean {
    if (this.#perSecond <= 0) return true;
    let bucket = this.#buckets.get(key);
    if (bucket === undefined) {
      if (this.#buckets.size > 100_000) this.prune(now);
      bucket = new TokenBucket(this.#perSecond, this.#burst, now);
      this.#buckets.set(key, bucket);
    }
    return bucket.take(1, now);
  }

  /** Seconds until `key` has a token again. */
  waitSeconds(key: string, now: number): number {
    return this.#buckets.get(key)?.waitSeconds(1, now) ?? 0;
  }

  /** Forgets buckets that have refilled completely. */
  prune(now: number): void {
    for (const [key, bucket] of this.#buckets) {
      if (bucket.waitSeconds(this.#burst, now) === 0) this.#buckets.delete(key);
    }
  }
}
