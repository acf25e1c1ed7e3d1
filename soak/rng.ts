/**
 * A small seeded pseudo-random generator (mulberry32), so that a soak run can be
 * repeated with the same choices from its printed seed.
 *
 * @module
 */

/**
 * Seeded pseudo-random numbers. Not for cryptography.
 *
 * @example
 * ```ts
 * import { Rng } from "./rng.ts";
 * const rng = new Rng(42);
 * rng.int(1, 6); // the same throw for seed 42, every run
 * ```
 */
export class Rng {
  #state: number;

  /** Starts the sequence of `seed` (any integer). */
  constructor(seed: number) {
    this.#state = seed >>> 0;
  }

  /** A number in [0, 1). */
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer from `min` to `max`, both included. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  /** One element of a non-empty array. */
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError("cannot pick from an empty list");
    return items[Math.floor(this.next() * items.length)]!;
  }

  /** `n` random bytes. */
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = Math.floor(this.next() * 256);
    return out;
  }

  /** A new generator whose sequence depends on this one's next value and `salt`. */
  fork(salt: number): Rng {
    return new Rng((Math.floor(this.next() * 0xffff_ffff) ^ Math.imul(salt + 1, 0x9e3779b1)) >>> 0);
  }
}
