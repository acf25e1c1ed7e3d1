/**
 * What each idle logged-in connection holds on the server's heap: the bench server with
 * N/2 idle clients, then N, a heap snapshot of each (after a full GC), and the growth
 * by kind per connection ({@linkcode diffCensus}). For finding what to stop holding;
 * `deno task bench --only idle` is what measures it.
 *
 * ```sh
 * deno run -A bench/heap_idle.ts [--connections 4000] [--top 40] [--relay] [--keep DIR] [--retainers 2]
 * ```
 *
 * `--relay` takes the ceiling relay instead (the runtime's own cost per socket);
 * `--keep DIR` keeps the two snapshots there (for Chrome DevTools' comparison view);
 * `--retainers N` names each kind with the path of its first N retainers.
 *
 * @module
 */

import { withCluster } from "./cluster.ts";
import { censusOf, diffCensus, type HeapSnapshot } from "./heap_census.ts";
import { MIN_READ_BUFFER } from "../transport/framed_connection.ts";

function flag(name: string): string | undefined {
  const at = Deno.args.indexOf(name);
  return at < 0 ? undefined : Deno.args[at + 1];
}

const total = Number(flag("--connections") ?? 4000);
const top = Number(flag("--top") ?? 40);
const relay = Deno.args.includes("--relay");
const keep = flag("--keep");
const retainers = Number(flag("--retainers") ?? 0);
const dir = keep ?? await Deno.makeTempDir({ prefix: "heap_idle_" });
const half = Math.floor(total / 2);

await withCluster({
  target: relay ? "relay" : "server",
  loads: 2,
  v8Flags: ["--expose-gc"],
  serverArgs: ["--memory", "--login-timeout-ms", "120000", "--write-timeout-ms", "120000"],
  relayArgs: ["--read-buffer", String(MIN_READ_BUFFER)],
}, async (cluster) => {
  const open = async (round: number, count: number) => {
    const per = Math.ceil(count / cluster.loads.length);
    await Promise.all(cluster.loads.map((load, i) =>
      load.request("open", {
        group: `idle${round}`,
        prefix: `r${round}l${i}_`,
        count: Math.min(per, count - i * per),
        rooms: [],
        concurrency: 32,
        discard: true,
        bufferSize: 16 * 1024,
        timeoutMs: 60_000,
      }, 180_000)
    ));
    await Promise.all(
      cluster.loads.map((l) => l.request("quiet", { quietMs: 1000, timeoutMs: 60_000 }, 70_000)),
    );
  };
  const snapshot = async (name: string) => {
    const path = `${dir}/${name}.heapsnapshot`;
    await cluster.target.request("gc");
    await cluster.target.request("heap", { path }, 300_000);
    const mem = await cluster.target.request("mem");
    console.log(`${name}: rss ${mem.rssKiB} KiB, ${JSON.stringify(mem.memory)}`);
    const census = censusOf(JSON.parse(await Deno.readTextFile(path)) as HeapSnapshot, {
      retainers,
    });
    if (keep === undefined) await Deno.remove(path);
    return census;
  };
  await open(0, half);
  const a = await snapshot(`${half}`);
  await open(1, total - half);
  const b = await snapshot(`${total}`);
  const rows = diffCensus(a, b, total - half);
  const sum = rows.reduce((n, r) => n + r.bytes, 0);
  console.log(`heap growth per connection: ${sum.toFixed(0)} bytes (self sizes)`);
  console.log("bytes/conn  objects/conn  kind");
  for (const row of rows.slice(0, top)) {
    console.log(
      `${row.bytes.toFixed(1).padStart(10)}  ${row.count.toFixed(2).padStart(12)}  ${row.kind}`,
    );
  }
});
if (keep === undefined) await Deno.remove(dir, { recursive: true });
