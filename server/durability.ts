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
 * A writer that batches its commits can wait for the sync in flight before committing
 * ({@linkcode DurabilityBarrierOptions.onSyncEnd}): whatever it commits then is covered
 * by the very next sync, so committing earlier would not make anything durable sooner
 * (the classic group commit: those arriving during a sync form the next group).
 *
 * @module
 */

/** Options of a {@linkcode DurabilityBarrier}. */
export interface DurabilityBarrierOptions {
  /**
   * Called each time a sync ends (succeeded or failed), before the barrier decides
   * whether to start the next one: commits recorded during the call are covered by
   * that next sync. Must not throw.
   */
  onSyncEnd?: () => void;
  /**
   * When a sync that {@linkcode DurabilityBarrier.durable} asks for starts: `start` is
   * called by this (at most one scheduled at a time). Default: at once. The SQLite store
   * starts it after the commit's deliveries were handed to the sockets (starting a sync
   * costs the event loop 35-60 µs, which then no longer delays every delivery). A sync
   * that follows another (commits made while one ran) starts as the first ends.
   */
  schedule?: (start: () => void) => void;
}

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
  readonly #onSyncEnd: (() => void) | undefined;
  readonly #schedule: ((start: () => void) => void) | undefined;
  #scheduled = false;
  #committed = 0;
  #synced = 0;
  #syncs = 0;
  #inFlight = false;
  #waiters: { upTo: number; resolve: () => void; reject: (error: unknown) => void }[] = [];

  /** `sync` makes every commit made before it was called durable. */
  constructor(sync: () => Promise<void>, options: DurabilityBarrierOptions = {}) {
    this.#sync = sync;
    this.#onSyncEnd = options.onSyncEnd;
    this.#schedule = options.schedule;
  }

  /** Whether a sync is running now. */
  get syncing(): boolean {
    return this.#inFlight;
  }

  /** Syncs completed so far. */
  get syncs(): number {
    return this.#syncs;
  }

  /** Records a commit (call right after it); returns its number (the commits so far). */
  committed(): number {
    return ++this.#committed;
  }

  /**
   * Resolves once every commit recorded so far (or, with `upTo`, the first `upTo` of
   * them: a read that depends on some commits only) is durable; rejects with the sync's
   * error when the sync meant to cover them fails (a later call syncs again).
   */
  durable(upTo: number = this.#committed): Promise<void> {
    if (this.#synced >= upTo) return Promise.resolve();
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    this.#waiters.push({ upTo, resolve, reject });
    if (this.#schedule === undefined) this.#start();
    else if (!this.#inFlight && !this.#scheduled) {
      this.#scheduled = true;
      this.#schedule(this.#startScheduled);
    }
    return promise;
  }

  /** A scheduled start ({@linkcode DurabilityBarrierOptions.schedule}) has come. */
  readonly #startScheduled = (): void => {
    this.#scheduled = false;
    this.#start();
  };

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
      try {
        this.#onSyncEnd?.();
      } finally {
        this.#start();
      }
    };
    this.#sync().then(() => settle(), (error) => settle(error ?? new Error("sync failed")));
  }
}
