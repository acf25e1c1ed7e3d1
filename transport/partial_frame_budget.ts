/**
 * A bound, shared by every connection of a server, on the bytes held for frames that
 * have started to arrive and are not complete yet. A frame's payload is allocated whole
 * once its length is known, so a client that announces a 1 MiB frame and sends a few
 * bytes of it holds 1 MiB; many such clients together are stopped here.
 *
 * @module
 */

/**
 * Bytes reserved for partial frames, against a limit read at each reservation (so a
 * reloaded configuration applies at once); a limit of 0 means none.
 *
 * @example
 * ```ts
 * import { PartialFrameBudget } from "./partial_frame_budget.ts";
 * const budget = new PartialFrameBudget(() => 1024);
 * budget.tryReserve(1000); // true
 * budget.tryReserve(100); // false: 1,100 bytes would pass the 1,024
 * budget.release(1000);
 * budget.held; // 0
 * ```
 */
export class PartialFrameBudget {
  readonly #limit: () => number;
  #held = 0;

  /** A budget whose limit in bytes `limit` returns (0: unlimited). */
  constructor(limit: () => number) {
    this.#limit = limit;
  }

  /** Bytes reserved now. */
  get held(): number {
    return this.#held;
  }

  /** The limit now, in bytes (0: none). */
  get limit(): number {
    return this.#limit();
  }

  /** Reserves `bytes` when they fit under the limit; returns whether they did. */
  tryReserve(bytes: number): boolean {
    const limit = this.#limit();
    if (limit > 0 && this.#held + bytes > limit) return false;
    this.#held += bytes;
    return true;
  }

  /** Gives back `bytes` reserved earlier. */
  release(bytes: number): void {
    this.#held = Math.max(0, this.#held - bytes);
  }
}
