import assert from "node:assert/strict";
import { formatGcSummary, summariseGcTrace } from "./gc_trace.ts";

const gc = (at: number, fields: Record<string, unknown>) =>
  `[7:0x55d0:0]   ${at} ms: GC: ${JSON.stringify(fields)}`;

Deno.test("summariseGcTrace: pauses by kind, bytes allocated and promoted; other lines skipped", () => {
  const text = [
    "[7:0x55d0:0]       5 ms: Memory pool: Removed pages: 0",
    gc(10, { pause: 1.5, gc: "s", allocated: 4_000_000, promoted: 100_000 }),
    gc(60, { pause: 3.25, gc: "s", allocated: 8_000_000, promoted: 300_000 }),
    gc(90, { pause: 12, gc: "mc", allocated: 1_000_000, promoted: 0 }),
    gc(95, { pause: 0.5, gc: "s", allocated: 2_000_000, promoted: 0 }),
    `[7:0x55d0:0]   99 ms: GC: {"pause":9,"gc":"s","allo`, // cut short
    "",
  ].join("\n");
  const s = summariseGcTrace(text);
  assert.deepEqual(s.minor, { count: 3, totalMs: 5.3, maxMs: 3.3, p50Ms: 1.5 });
  assert.deepEqual(s.major, { count: 1, totalMs: 12, maxMs: 12, p50Ms: 12 });
  assert.equal(s.allocatedBytes, 15_000_000);
  assert.equal(s.promotedBytes, 400_000);
  assert.deepEqual(s.spanMs, [10, 95]);
  assert.equal(
    formatGcSummary(s),
    "scavenges 3 (5.3 ms, p50 1.5, max 3.3), mark-compacts 1 (12 ms, p50 12, max 12); " +
      "allocated 15 MB, promoted 0.4 MB",
  );
});

Deno.test("summariseGcTrace: a log without collections", () => {
  const s = summariseGcTrace("nothing here\n");
  assert.equal(s.minor.count + s.major.count, 0);
  assert.deepEqual(s.spanMs, [0, 0]);
});
