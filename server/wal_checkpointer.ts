/**
 * WAL checkpoints off the event loop.
 *
 * SQLite checkpoints its WAL (copies its pages into the database file, so the WAL can
 * start over) by itself inside the commit that crosses 1,000 pages: that commit, and with
 * it the whole server (`DatabaseSync` runs on the event loop), waits for the copy and two
 * fsyncs. The SQLite store turns that off (`PRAGMA wal_autocheckpoint = 0`) and asks this
 * class instead: a worker with its own connection runs `wal_checkpoint(PASSIVE)`, which
 * never blocks the writer; the writer starts the WAL over at its first commit after a
 * checkpoint that copied everything.
 *
 * Durability is SQLite's own: the worker's connection is `synchronous=FULL`, so the WAL
 * is synced before its pages are copied and the database file after, before the WAL may
 * be started over.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";

const log = getLogger(["chat", "store"]);

/** What one checkpoint found and did, in WAL frames (pages). */
export interface CheckpointResult {
  /** Another connection held the checkpoint lock: nothing was done. */
  busy: boolean;
  /** Frames in the WAL when it ran. */
  walFrames: number;
  /** Frames copied into the database file so far (all of them: the WAL can start over). */
  checkpointed: number;
}

/** Error of a checkpoint the worker could not run. */
export class CheckpointError extends Error {
  /** Stable code. */
  readonly code = "checkpoint_failed";
  override readonly name = "CheckpointError";
}

/**
 * Runs PASSIVE checkpoints of one database in a worker, one at a time.
 *
 * @example
 * ```ts
 * import { WalCheckpointer } from "./wal_checkpointer.ts";
 * const checkpointer = new WalCheckpointer("/tmp/chat/chat.db");
 * const { walFrames, checkpointed } = await checkpointer.checkpoint();
 * await checkpointer.close();
 * ```
 */
export class WalCheckpointer {
  readonly #path: string;
  #worker: Worker | null = null;
  #opened: Promise<void> | null = null;
  #reply: PromiseWithResolvers<unknown> | null = null;
  #running: Promise<CheckpointResult> | null = null;
  #closed = false;
  #checkpoints = 0;

  /** Checkpoints the database file at `path` (started on the first checkpoint). */
  constructor(path: string) {
    this.#path = path;
  }

  /** Whether a checkpoint is running now. */
  get running(): boolean {
    return this.#running !== null;
  }

  /** Checkpoints completed so far. */
  get checkpoints(): number {
    return this.#checkpoints;
  }

  /** Runs a checkpoint (or joins the one running). */
  checkpoint(): Promise<CheckpointResult> {
    if (this.#closed) return Promise.reject(new CheckpointError("the checkpointer is closed"));
    this.#running ??= this.#run().finally(() => this.#running = null);
    return this.#running;
  }

  /** Waits for a running checkpoint, then ends the worker. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#running?.catch(() => {});
    this.#worker?.terminate();
    this.#worker = null;
  }

  async #run(): Promise<CheckpointResult> {
    this.#opened ??= this.#ask({ path: this.#path }).then(() => {});
    await this.#opened;
    const reply = await this.#ask({}) as { busy: number; log: number; checkpointed: number };
    this.#checkpoints++;
    return { busy: reply.busy !== 0, walFrames: reply.log, checkpointed: reply.checkpointed };
  }

  /** Sends one request to the worker (started on first use) and awaits its reply. */
  #ask(request: object): Promise<unknown> {
    if (this.#worker === null) {
      const worker = new Worker(new URL("./wal_checkpoint_worker.ts", import.meta.url), {
        type: "module",
      });
      worker.onmessage = (event: MessageEvent) => {
        const reply = this.#reply;
        this.#reply = null;
        const data = event.data as { ok: boolean; error?: string };
        if (data.ok) reply?.resolve(data);
        else reply?.reject(new CheckpointError(`checkpoint of ${this.#path}: ${data.error}`));
      };
      worker.onerror = (event: ErrorEvent) => {
        event.preventDefault();
        log.error("the WAL checkpoint worker failed: {error}", { error: event.message });
        const reply = this.#reply;
        this.#reply = null;
        reply?.reject(new CheckpointError(`the checkpoint worker failed: ${event.message}`));
        this.#worker?.terminate();
        this.#worker = null;
        this.#opened = null;
      };
      this.#worker = worker;
    }
    this.#reply = Promise.withResolvers<unknown>();
    this.#worker.postMessage(request);
    return this.#reply.promise;
  }
}
