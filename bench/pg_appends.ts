/**
 * PostgresStore append throughput (a measurement, not a test): closed-loop writers append
 * room messages for a while, from one store (one node) and from three stores (three nodes)
 * on the same database; prints committed appends per second, batches and latency.
 *
 * Starts a scratch PostgreSQL (fsync on, as in production) unless `--url` names one.
 *
 * ```sh
 * deno run -A bench/pg_appends.ts [--seconds 5] [--writers 64] [--url postgres://…]
 * ```
 *
 * @module
 */

import { PostgresStore } from "../server/postgres_store.ts";
import { startPostgres } from "../tests/helpers/postgres.ts";

function flag(name: string, fallback: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < Deno.args.length ? Deno.args[i + 1] : fallback;
}

const seconds = Number(flag("seconds", "5"));
const writers = Number(flag("writers", "64"));
const fsync = flag("fsync", "on") !== "off";
const given = flag("url", "");

const pg = given ? null : await startPostgres({ fsync });
if (!given && pg === null) Deno.exit(1);

async function run(nodes: number): Promise<void> {
  const url = given || await pg!.createDatabase();
  const stores = await Promise.all(
    Array.from({ length: nodes }, (_, n) => PostgresStore.open({ url, nodeId: `bench${n}` })),
  );
  const tag = crypto.randomUUID().slice(0, 8);
  await stores[0].createRoom({ key: tag, name: tag, topic: "", topicBy: "", createdAt: 0 });
  const latencies: number[] = [];
  let errors = 0;
  const end = performance.now() + seconds * 1000;
  const started = performance.now();
  await Promise.all(stores.flatMap((store, n) =>
    Array.from({ length: writers }, async (_, w) => {
      for (let i = 0; performance.now() < end; i++) {
        const t = performance.now();
        try {
          await store.appendMessage({
            fromKey: `${tag}-${n}-${w}`,
            from: "bench",
            room: tag,
            text: "x".repeat(100),
            ts: Date.now(),
            clientId: String(i),
          });
          latencies.push(performance.now() - t);
        } catch {
          errors++;
        }
      }
    })
  ));
  const elapsed = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const pct = (p: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))];
  const commits = stores.reduce((sum, s) => sum + s.stats.commits, 0);
  const largest = Math.max(...stores.map((s) => s.stats.largestBatch));
  console.log(
    `${nodes} store(s) x ${writers} writers, ${seconds}s, fsync ${fsync ? "on" : "off"}: ` +
      `${Math.round(latencies.length / elapsed)} appends/s, ${commits} batches ` +
      `(mean ${(latencies.length / commits).toFixed(1)}, largest ${largest}), ` +
      `p50 ${pct(0.5).toFixed(1)} ms, p99 ${pct(0.99).toFixed(1)} ms, errors ${errors}`,
  );
  await Promise.all(stores.map((s) => s.close()));
}

try {
  await run(1);
  await run(3);
} finally {
  await pg?.close();
}
