/**
 * The worker of {@linkcode WalCheckpointer}: its own connection to the chat database, on
 * which it runs `PRAGMA wal_checkpoint(PASSIVE)` each time it is asked. The checkpoint's
 * page copies and its two fsyncs (the WAL's, then the database file's) happen on this
 * thread, not on the server's event loop.
 *
 * Messages in: `{ path }` (open, once), then `{}` (checkpoint). Out: one reply each,
 * `{ ok: true, busy, log, checkpointed }` or `{ ok: false, error }`.
 *
 * @module
 */

import { DatabaseSync } from "node:sqlite";

/** The worker's scope (the DOM lib's `self` is a window here). */
const scope = globalThis as unknown as {
  onmessage: ((event: MessageEvent) => void) | null;
  postMessage(message: unknown): void;
};

let db: DatabaseSync | null = null;

scope.onmessage = (event: MessageEvent) => {
  const request = event.data as { path?: string };
  try {
    if (request.path !== undefined) {
      db = new DatabaseSync(request.path);
      db.exec("PRAGMA busy_timeout = 5000");
      // FULL: the WAL is synced before its pages are copied, the database file after.
      db.exec("PRAGMA synchronous = FULL");
      scope.postMessage({ ok: true, busy: 0, log: 0, checkpointed: 0 });
      return;
    }
    if (db === null) throw new Error("the checkpoint worker has no database open");
    const row = db.prepare("PRAGMA wal_checkpoint(PASSIVE)").get() as {
      busy: number;
      log: number;
      checkpointed: number;
    };
    scope.postMessage({ ok: true, ...row });
  } catch (error) {
    scope.postMessage({ ok: false, error: error instanceof Error ? error.message : String(error) });
  }
};
