/**
 * Counts a connection's pipelined requests in flight, so that reading can pause while
 * too many are pending and a logout can wait for all of them, without holding a set of
 * their promises (an idle connection holds a counter, not a hash table).
 *
 * @module
 */

/**
 * Requests in flight, counted.
 *
 * @example
 * ```ts
 * import { InFlight } from "./in_flight.ts";
 * const inFlight = new InFlight();
 * inFlight.track(new Promise((resolve) => setTimeout(resolve, 10)));
 * await inFlight.atMost(0); // after 10 ms
 * ```
 */
export class InFlight {
  #count = 0;
  #waiters: { limit: number; wake: () => void }[] = [];
  readonly #settled = (): void => this.settled();

  /** How many are in flight. */
  get size(): number {
    return this.#count;
  }

  /**
   * Counts one request until its {@linkcode settled} (a caller that settles it itself:
   * no promise reaction per request).
   */
  begin(): void {
    this.#count++;
  }

  /** One request counted by {@linkcode begin} settled (either way). */
  settled(): void {
    this.#count--;
    if (this.#waiters.length === 0) return;
    const waiting = this.#waiters;
    this.#waiters = [];
    for (const waiter of waiting) {
      if (this.#count <= waiter.limit) waiter.wake();
      else this.#waiters.push(waiter);
    }
  }

  /** Counts `request` until it settles (either way). */
  track(request: Promise<unknown>): void {
    this.#count++;
    request.then(this.#settled, this.#settled);
  }

  /** Resolves once at most `limit` are in flight. */
  atMost(limit: number): Promise<void> {
    if (this.#count <= limit) return Promise.resolve();
    return new Promise((wake) => this.#waiters.push({ limit, wake }));
  }
}
