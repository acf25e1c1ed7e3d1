import assert from "node:assert/strict";
import { formatGcSummary, summariseGcTrace } from "./gc_trace.ts";

const gc = (at: number, fields: Record<string, unknown>) =>
  `[7:0x55d0:0]   ${at} ms: GC: ${JSON.stringify(fields)}`;

Deno.test("summariseGcTrace: pauses by kind, bytes allocated and promoted; other lines skipped", () => {
  const text = [
    "[7:0x55d0:0]       5 ms: Memory pool: Removed pages: 0",
    gc(10, { pause: 1.5, gc: "s", allocated: 4_000_000, promoted: 100_000, end_object_size: 5e6 }),
    gc(60, { pause: 3.25, gc: "s", allocated: 8_000_000, promoted: 300_000, end_object_size: 6e6 }),
    gc(90, { pause: 12, gc: "mc", allocated: 1_000_000, promoted: 0, end_object_size: 2e6 }),
    gc(95, { pause: 0.5, gc: "s", allocated: 2_000_000, promoted: 0, end_object_size: 2.5e6 }),
    `[7:0x55d0:0]   99 ms: GC: {"pause":9,"gc":"s","allo`, // cut short
    "",
  ].join("\n");
  const s = summariseGcTrace(text);
  assert.deepEqual(s.minor, { count: 3, totalMs: 5.3, maxMs: 3.3, p50Ms: 1.5 });
  assert.deepEqual(s.major, { count: 1, totalMs: 12, maxMs: 12, p50Ms: 12 });
  assert.equal(s.allocatedBytes, 15_000_000);
  assert.equal(s.promotedBytes, 400_000);
  assert.deepEqual(s.spanMs, [10, 95]);
  // 10 → 60 ms: +1 MB; 90 → 95 ms: +0.5 MB; the mark-compact's interval left out.
  assert.equal(s.retainedGrowthBytes, 1_500_000);
  assert.equal(s.retainedGrowthMs, 55);
  // From 60 ms on: the interval 10 → 60 ms is left out.
  const late = summariseGcTrace(text, 60);
  assert.deepEqual([late.retainedGrowthBytes, late.retainedGrowthMs, late.windowMajor], [
    500_000,
    5,
    1,
  ]);
  assert.equal(summariseGcTrace(text, 91).windowMajor, 0);
  assert.equal(
    formatGcSummary(s),
    "scavenges 3 (5.3 ms, p50 1.5, max 3.3), mark-compacts 1 (12 ms, p50 12, max 12); " +
      "allocated 15 MB, promoted 0.4 MB; from 0 ms: mark-compacts 1, retained heap grew " +
      "27.27 MB/s between them; pretenured sites 0",
  );
});

Deno.test("summariseGcTrace: allocation sites switched to tenure, each switch counted once", () => {
  const site = (address: string, from: string, to: string) =>
    `[7:0x55d0] pretenuring: AllocationSite(${address}): (created, found, ratio) ` +
    `(194, 180, 0.927835) ${from} => ${to}`;
  const text = [
    gc(82, { pause: 1, gc: "s", end_object_size: 1e6 }),
    gc(323, { pause: 1, gc: "s", end_object_size: 2e6 }),
    site("0x19a220bd3ae9", "undecided", "tenure"),
    "[7:0x55d0] pretenuring: threshold=0.80 deopt_maybe_tenured=0 visited_sites=1",
    site("0x19a220bd0d59", "undecided", "don't tenure"),
    gc(696, { pause: 1, gc: "s", end_object_size: 3e6 }),
    site("0x19a220bd3ae9", "tenure", "tenure"),
    site("0x19a220bd8651", "maybe tenure", "tenure"),
  ].join("\n");
  const s = summariseGcTrace(text);
  assert.deepEqual([s.tenuredSites, s.firstTenureMs, s.minor.count], [2, 323, 3]);
  assert.match(formatGcSummary(s), /; pretenured sites 2 \(first at 323 ms\)$/);
  assert.equal(summariseGcTrace(gc(5, { pause: 1, gc: "s" })).firstTenureMs, -1);
});

Deno.test("summariseGcTrace: a log without collections", () => {
  const s = summariseGcTrace("nothing here\n");
  assert.equal(s.minor.count + s.major.count, 0);
  assert.deepEqual(s.spanMs, [0, 0]);
});
