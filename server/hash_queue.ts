/**
 * A bounded, fair queue for password hashing: at most `concurrency` scrypt hashes run
 * at once (each takes tens of milliseconds of a core and 32 MiB), the rest wait, served
 * round-robin by client address so that one address's login flood does not push every
 * other address to the back. When the queue is full, the address with the most waiting
 * gives up its newest place; a new address always gets a turn.
 *
 * @module
 */

/** Thrown (to the waiting caller) when the queue has no room for a job. */
export class HashQueueFullError extends Error {
  /** The stable, machine-readable reason. */
  readonly code = "queue_full";

  /** Creates the error. */
  constructor() {
    super("too many logins are waiting for a password check");
    this.name = "HashQueueFullError";
  }
}

interface Waiter {
  start: () => void;
  refuse: (err: Error) => void;
}

/**
 * Runs jobs with bounded concurrency through a bounded queue, round-robin by key.
 *
 * @example
 * ```ts
 * import { HashQueue } from "./hash_queue.ts";
 * const queue = new HashQueue(2, 64);
 * await queue.run("10.0.0.1", () => Promise.resolve("hashed")); // "hashed"
 * queue.peakRunning; // 1
 * ```
 */
export class HashQueue {
  readonly #concurrency: number;
  readonly #bound: number;
  /** Waiters by key, in round-robin order (a served key moves to the end). */
  readonly #waiting = new Map<string, Waiter[]>();
  #running = 0;
  #queued = 0;
  #peak = 0;
  #refused = 0;

  /** Runs at most `concurrency` jobs at once; `bound` jobs may wait (0: unbounded). */
  constructor(concurrency: number, bound: number) {
    this.#concurrency = Math.max(1, concurrency);
    this.#bound = bound;
  }

  /** Jobs running now. */
  get running(): number {
    return this.#running;
  }

  /** Jobs waiting now. */
  get queued(): number {
    return this.#queued;
  }

  /** The most jobs that ever ran at once. */
  get peakRunning(): number {
    return this.#peak;
  }

  /** Jobs refused because the queue was full. */
  get refused(): number {
    return this.#refused;
  }

  /**
   * Runs `job` when its turn comes.
   *
   * @throws {HashQueueFullError} when the queue is full, now or later (the newest
   * waiter of the key with the most waiting gives up its place to another key).
   */
  async run<T>(key: string, job: () => Promise<T>): Promise<T> {
    if (this.#running >= this.#concurrency) await this.#wait(key);
    else this.#started();
    try {
      return await job();
    } finally {
      this.#running--;
      this.#next();
    }
  }

  #wait(key: string): Promise<void> {
    if (this.#bound > 0 && this.#queued >= this.#bound) this.#makeRoom(key);
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        start: resolve,
        refuse: reject,
      };
      const list = this.#waiting.get(key);
      if (list === undefined) this.#waiting.set(key, [waiter]);
      else list.push(waiter);
      this.#queued++;
    });
  }

  /** Refuses the newest waiter of the longest line, unless `key`'s would be as long. */
  #makeRoom(key: string): void {
    const own = this.#waiting.get(key)?.length ?? 0;
    let longest: string | null = null;
    let length = 0;
    for (const [k, list] of this.#waiting) {
      if (list.length > length) [longest, length] = [k, list.length];
    }
    this.#refused++;
    if (longest === null || longest === key || length <= own + 1) {
      throw new HashQueueFullError();
    }
    const list = this.#waiting.get(longest)!;
    const evicted = list.pop()!;
    if (list.length === 0) this.#waiting.delete(longest);
    this.#queued--;
    evicted.refuse(new HashQueueFullError());
  }

  #next(): void {
    if (this.#running >= this.#concurrency) return;
    const first = this.#waiting.entries().next();
    if (first.done) return;
    const [key, list] = first.value;
    const waiter = list.shift()!;
    this.#waiting.delete(key);
    if (list.length > 0) this.#waiting.set(key, list); // to the back of the round
    this.#queued--;
    this.#started();
    waiter.start();
  }

  #started(): void {
    this.#running++;
    if (this.#running > this.#peak) this.#peak = this.#running;
  }
}
