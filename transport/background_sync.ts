/**
 * Syncs of a file being written, started in the background as it grows, so that the
 * sync that makes it durable at the end has only the last bytes left to write to the
 * disk.
 *
 * A file written in one go and synced at its end leaves all of it to that last sync:
 * for 128 MiB here 150-200 ms, during which whoever waits for it (the recipient's
 * `file_saved`, the sender's last acknowledgement) waits, and another file's sync on the
 * same disk waits too (one journal on ext4). Once {@linkcode BACKGROUND_SYNC_BYTES} are
 * written, a `syncData` starts instead, through a second handle of the file (one
 * handle's operations run one after another in Deno: a sync through the writing handle
 * would hold up the next write), while the writes go on; when it ends, the next starts
 * at once if as many were written meanwhile. So the disk writes the file back from its
 * first mebibytes on, without a pause between syncs, and a file that arrives as fast as
 * the disk writes has a sync's worth left at its end. At most one runs at a time; each
 * is best effort (a failure is left to the final sync, which the owner makes itself).
 *
 * @module
 */

import { isSyncUnsupported, syncIfSupported } from "./sync_file.ts";

/** Bytes written since the last sync started that start the next, by default. */
export const BACKGROUND_SYNC_BYTES: number = 4 * 1024 * 1024;

/**
 * Background syncs of one file being written (see the module documentation).
 *
 * @example
 * ```ts ignore
 * import { BackgroundSync } from "./background_sync.ts";
 * const file = await Deno.open("big.part", { write: true, create: true });
 * const syncs = new BackgroundSync("big.part");
 * for (const piece of pieces) {
 *   file.writeSync(piece);
 *   syncs.wrote(piece.length); // starts a sync once 4 MiB are written, and so on
 * }
 * await syncs.syncFinally(file); // the last bytes, beside the one under way
 * ```
 */
export class BackgroundSync {
  /** The file's path (the second handle is opened on it at the first sync). */
  readonly path: string;
  readonly #every: number;
  /** Bytes written since the last sync started. */
  #unsynced = 0;
  /** While {@linkcode settle} waits: a sync that ends starts no next one. */
  #settling = false;
  /** The sync under way (it never fails), or null. */
  #syncing: Promise<void> | null = null;
  /** The second handle, once opened. */
  #handle: Deno.FsFile | null = null;
  #started = 0;
  #closed = false;
  /** The first failure of a sync in the background, until settle reports it. */
  #failure: unknown = null;

  /** Syncs `path` every `every` bytes written ({@linkcode BACKGROUND_SYNC_BYTES}). */
  constructor(path: string, every: number = BACKGROUND_SYNC_BYTES) {
    this.path = path;
    this.#every = every;
  }

  /** Syncs started so far. */
  get started(): number {
    return this.#started;
  }

  /** Whether a sync runs in the background now. */
  get running(): boolean {
    return this.#syncing !== null;
  }

  /**
   * Counts `n` bytes written to the file; starts a sync when `every` are written since
   * the last one started and none runs (else the one running starts it as it ends).
   */
  wrote(n: number): void {
    this.#unsynced += n;
    this.#startIfDue();
  }

  #startIfDue(): void {
    if (
      this.#unsynced < this.#every || this.#syncing !== null || this.#closed || this.#settling
    ) return;
    this.#unsynced = 0;
    this.#started++;
    this.#syncing = this.#sync().finally(() => {
      this.#syncing = null;
      this.#startIfDue();
    });
  }

  async #sync(): Promise<void> {
    try {
      // Opened synchronously (once per file): an asynchronous open's answer waits for a
      // turn of a busy event loop, tens of milliseconds here while a file streams in.
      this.#handle ??= Deno.openSync(this.path, { write: true });
    } catch {
      // The file is gone (dropped meanwhile): nothing to sync; its owner finds out.
      return;
    }
    try {
      await this.#handle.syncData();
    } catch (err) {
      if (!isSyncUnsupported(err)) this.#failure ??= err;
    }
  }

  /**
   * Waits for the sync under way, then closes the second handle; later counts start
   * syncs again (on a new handle). Call it before the final sync, and when the file is
   * let go.
   */
  async settle(): Promise<void> {
    this.#settling = true;
    try {
      await this.#syncing;
    } finally {
      this.#settling = false;
    }
    this.#unsynced = 0;
    this.#closeHandle();
    const failure = this.#failure;
    this.#failure = null;
    if (failure !== null) throw failure;
  }

  /**
   * Makes the file durable: the final sync through `file` (the writing handle; a file
   * system that does not sync is not an error, {@linkcode syncIfSupported}) starts at
   * once, beside the background sync under way rather than after it, so the disk gets
   * the last bytes while it finishes the earlier ones (a sync returns once every byte
   * written before it is stored, whoever started their writeback); then as
   * {@linkcode settle}. Rejects with the final sync's failure, else a background one's.
   */
  async syncFinally(file: Deno.FsFile): Promise<void> {
    const [settled, synced] = await Promise.allSettled([
      this.settle(),
      syncIfSupported(() => file.sync()),
    ]);
    if (synced.status === "rejected") throw synced.reason;
    if (settled.status === "rejected") throw settled.reason;
  }

  /**
   * Stops for good: no sync starts any more, and the handle is closed once the sync
   * under way ends (at once when none runs); resolves then. Callers that cannot wait
   * (a writer's synchronous `close`) let its owner wait for it.
   */
  close(): Promise<void> {
    this.#closed = true;
    if (this.#syncing === null) {
      this.#closeHandle();
      return Promise.resolve();
    }
    return this.#syncing.then(() => this.#closeHandle());
  }

  #closeHandle(): void {
    try {
      this.#handle?.close();
    } catch {
      // already closed
    }
    this.#handle = null;
  }
}
