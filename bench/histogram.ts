/**
 * A small log-bucketed latency histogram: constant-time recording, mergeable across
 * processes through a sparse JSON form, percentiles within 2 %.
 *
 * @module
 */

const RATIO = 1.02;
const LOG_RATIO = Math.log(RATIO);
/** Buckets: 0 holds values under 1 µs; bucket i ≥ 1 holds [1.02^(i-1), 1.02^i) µs. */
const BUCKETS = 1200; // up to 1.02^1199 µs ≈ 20 000 s

/** The serialised form of a {@linkcode Histogram}. */
export interface HistogramJson {
  /** Sparse `[bucket, count]` pairs. */
  buckets: [number, number][];
  /** Number of recorded values. */
  count: number;
  /** Sum of the values, in ms. */
  sum: number;
  /** Largest value, in ms. */
  max: number;
}

/**
 * Latencies in milliseconds.
 *
 * @example
 * ```ts
 * import { Histogram } from "./histogram.ts";
 * const h = new Histogram();
 * h.record(1.5);
 * h.percentile(0.99); // ≈ 1.5
 * ```
 */
export class Histogram {
  #counts = new Float64Array(BUCKETS);
  /** Number of recorded values. */
  count = 0;
  /** Sum of the values, in ms. */
  sum = 0;
  /** Largest value, in ms. */
  max = 0;

  /** Records one latency in ms (negative values count as 0). */
  record(ms: number): void {
    const us = ms * 1000;
    let index = 0;
    if (us >= 1) index = Math.min(BUCKETS - 1, 1 + Math.floor(Math.log(us) / LOG_RATIO));
    this.#counts[index]++;
    this.count++;
    if (ms > 0) this.sum += ms;
    if (ms > this.max) this.max = ms;
  }

  /** Adds every value of `other`. */
  merge(other: Histogram | HistogramJson): void {
    const json = other instanceof Histogram ? other.toJSON() : other;
    for (const [index, count] of json.buckets) this.#counts[index] += count;
    this.count += json.count;
    this.sum += json.sum;
    this.max = Math.max(this.max, json.max);
  }

  /** The value at quantile `q` (0..1) in ms: its bucket's upper bound, at most the max. */
  percentile(q: number): number {
    if (this.count === 0) return NaN;
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.#counts[i];
      if (seen >= rank) return Math.min(this.max, i === 0 ? 0.001 : RATIO ** i / 1000);
    }
    return this.max;
  }

  /** Mean in ms. */
  mean(): number {
    return this.count === 0 ? NaN : this.sum / this.count;
  }

  /** Forgets every value. */
  reset(): void {
    this.#counts.fill(0);
    this.count = 0;
    this.sum = 0;
    this.max = 0;
  }

  /** The sparse serialised form. */
  toJSON(): HistogramJson {
    const buckets: [number, number][] = [];
    for (let i = 0; i < BUCKETS; i++) if (this.#counts[i] > 0) buckets.push([i, this.#counts[i]]);
    return { buckets, count: this.count, sum: this.sum, max: this.max };
  }

  /** Rebuilds a histogram from its serialised form. */
  static fromJSON(json: HistogramJson): Histogram {
    const h = new Histogram();
    h.merge(json);
    return h;
  }
}
