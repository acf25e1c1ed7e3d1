/**
 * A WAL sync for {@linkcode SqliteStore} (its `syncWal` option) that a test can hold open,
 * to see what the store commits while a sync runs. The real `syncData()` still runs.
 *
 * @module
 */

/**
 * Records each sync's start (with the store's commit count then) and, while held, keeps
 * syncs from completing until released.
 *
 * @example
 * ```ts
 * import { HeldSync } from "./held_sync.ts";
 * import { SqliteStore } from "../../server/sqlite_store.ts";
 * const held = new HeldSync();
 * const store = await SqliteStore.open(await Deno.makeTempDir(), { syncWal: held.syncWal });
 * held.commits = () => store.stats.commits;
 * held.hold();
 * // ... appends: their syncs wait
 * held.release();
 * await store.close();
 * ```
 */
export class HeldSync {
  /** The store's commit count when each sync began, in order. */
  readonly started: number[] = [];
  /** Reads the store's commit count (set once the store is open). */
  commits: () => number = () => 0;
  #gate: PromiseWithResolvers<void> | null = null;
  #waiters: { n: number; resolve: () => void }[] = [];

  /** The `syncWal` option. */
  readonly syncWal = async (wal: Deno.FsFile): Promise<void> => {
    this.started.push(this.commits());
    const ready = this.#waiters.filter((w) => this.started.length >= w.n);
    this.#waiters = this.#waiters.filter((w) => this.started.length < w.n);
    for (const w of ready) w.resolve();
    const gate = this.#gate;
    if (gate !== null) await gate.promise;
    await wal.syncData();
  };

  /** Syncs beginning from now on wait for {@linkcode HeldSync.release}. */
  hold(): void {
    this.#gate ??= Promise.withResolvers<void>();
  }

  /** Lets the held syncs (and later ones) complete. */
  release(): void {
    const gate = this.#gate;
    this.#gate = null;
    gate?.resolve();
  }

  /** Resolves once `n` syncs have begun in all. */
  begun(n: number): Promise<void> {
    if (this.started.length >= n) return Promise.resolve();
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#waiters.push({ n, resolve });
    return promise;
  }
}
