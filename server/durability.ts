/**
 * A durability barrier: commits are counted, and a caller waits until a sync that began
 * after its commit has completed. Syncs run one at a time; every commit made while one
 * runs is covered by the next, so a burst of commits costs one or two syncs, not one each.
 *
 * The SQLite store commits its WAL transactions without an fsync (`synchronous=NORMAL`:
 * consistent after a crash, but the last commits may be lost) and syncs the WAL file
 * through this barrier off the event loop (`FsFile.syncData()` runs on Deno's blocking
 * pool), resolving a write only after it: the durability of `synchronous=FULL` (the WAL
 * holds the commit on disk before anyone hears of it) without stopping every connection
 * for each fsync.
 *
 * @module
 */

/**
 * Counts commits and waits for syncs that cover them.
 *
 * @example
 * ```ts
 * import { DurabilityBarrier } from "./durability.ts";
 * const barrier = new DurabilityBarrier(() => Promise.resolve());
 * barrier.committed();
 * await barrier.durable(); // after one sync
 * ```
 */
export class DurabilityBarrier {
  readonly #sync: () => Promise<void>;
  #committed = 0;
  #synced = 0;
  #syncs = 0;
  #inFlight = false;
  #waiters: { upTo: number; resolve: () => void; reject: (error: unknown) => void }[] = [];

  /** `sync` makes every commit made before it was called durable. */
  constructor(sync: () => Promise<void>) {
    this.#sync = sync;
  }

  /** Syncs completed so far. */
  get syncs(): number {
    return this.#syncs;
  }

  /** Records a commit (call right after it). */
  committed(): void {
    this.#committed++;
  }

  /**
   * Resolves once every commit recorded so far is durable; rejects with the sync's error
   * when the sync meant to cover them fails (a later call syncs again).
   */
  durable(): Promise<void> {
    const upTo = this.#committed;
    if (this.#synced >= upTo) return Promise.resolve();
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    this.#waiters.push({ upTo, resolve, reject });
    this.#start();
    return promise;
  }

  #start(): void {
    if (this.#inFlight || this.#waiters.length === 0) return;
    this.#inFlight = true;
    const upTo = this.#committed;
    const settle = (error?: unknown) => {
      this.#inFlight = false;
      if (error === undefined) {
        this.#synced = upTo;
        this.#syncs++;
      }
      const covered = this.#waiters.filter((w) => w.upTo <= upTo);
      this.#waiters = this.#waiters.filter((w) => w.upTo > upTo);
      for (const waiter of covered) {
        if (error === undefined) waiter.resolve();
        else waiter.reject(error);
      }
      this.#start();
    };
    this.#sync().then(() => settle(), (error) => settle(error ?? new Error("sync failed")));
  }
}
