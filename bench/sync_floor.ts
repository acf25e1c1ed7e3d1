/**
 * The storage floor of a durable message: a bare SQLite insert, its commit and the sync
 * of the WAL file, one at a time in this process, with the journal settings of
 * `server/sqlite_store.ts` (WAL, `synchronous=NORMAL`, the WAL synced with
 * `FsFile.syncData()`). No server, no socket, no protocol: what the disk and SQLite alone
 * cost each acknowledgement of a lone writer.
 *
 * @module
 */

import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { round } from "./cluster.ts";
import { Histogram } from "./histogram.ts";

/**
 * Inserts of the warm-up at least: one page each, so the WAL reaches SQLite's automatic
 * checkpoint (1,000 pages) and starts over from its beginning, as on a server that has run
 * a while. Until then every sync also extends the file, which costs the file system a
 * metadata commit: 1.5–8 times slower here.
 */
const WARMUP_INSERTS = 1100;

/** Sizes of a floor run. */
export interface SyncFloorPlan {
  /** Milliseconds of writing first, not counted; at least {@linkcode WARMUP_INSERTS} inserts. */
  warmupMs: number;
  /** Milliseconds of writing counted. */
  durationMs: number;
}

/** Result of a floor run. */
export interface SyncFloorResult {
  /** Durable inserts per second. */
  perSec: number;
  /** Latency of insert + commit + sync, ms. */
  p50: number;
  /** 99th percentile, ms. */
  p99: number;
  /** Of which the insert and commit alone, p50 in ms. */
  commitP50: number;
}

/**
 * Inserts one row at a time into a fresh database in `dir`, each committed and synced
 * before the next.
 */
export async function measureSyncFloor(
  dir: string,
  plan: SyncFloorPlan,
): Promise<SyncFloorResult> {
  const path = join(dir, "floor.db");
  const db = new DatabaseSync(path);
  let wal: Deno.FsFile | undefined;
  try {
    db.exec("PRAGMA journal_mode = WAL");
    db.exec("PRAGMA synchronous = NORMAL");
    db.exec(
      "CREATE TABLE messages (id INTEGER PRIMARY KEY, ts INTEGER NOT NULL, " +
        "room_key TEXT NOT NULL, text TEXT NOT NULL, client_id TEXT NOT NULL)",
    );
    wal = await Deno.open(`${path}-wal`, { read: true, write: true });
    const begin = db.prepare("BEGIN IMMEDIATE");
    const insert = db.prepare(
      "INSERT INTO messages (ts, room_key, text, client_id) VALUES (?, ?, ?, ?)",
    );
    const commit = db.prepare("COMMIT");
    const text = "x".repeat(100);
    const all = new Histogram();
    const commits = new Histogram();
    let n = 0;
    const run = async (ms: number, record: boolean, atLeast = 0) => {
      const until = performance.now() + ms;
      const first = n;
      while (performance.now() < until || n - first < atLeast) {
        const t0 = performance.now();
        begin.run();
        insert.run(Date.now(), "floor", text, String(++n));
        commit.run();
        const t1 = performance.now();
        await wal!.syncData();
        if (record) {
          commits.record(t1 - t0);
          all.record(performance.now() - t0);
        }
      }
    };
    await run(plan.warmupMs, false, WARMUP_INSERTS);
    const t0 = performance.now();
    await run(plan.durationMs, true);
    const seconds = (performance.now() - t0) / 1000;
    return {
      perSec: round(all.count / seconds, 0),
      p50: round(all.percentile(0.5), 3),
      p99: round(all.percentile(0.99), 3),
      commitP50: round(commits.percentile(0.5), 3),
    };
  } finally {
    wal?.close();
    db.close();
  }
}
