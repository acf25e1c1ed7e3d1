import assert from "node:assert/strict";
import { summariseProfile } from "./profile_summary.ts";

Deno.test("self time is summed per function and per file, idle excluded", () => {
  const frame = (functionName: string, url = "", lineNumber = 0) => ({
    functionName,
    url,
    lineNumber,
  });
  const profile = {
    nodes: [
      { id: 1, callFrame: frame("(root)") },
      { id: 2, callFrame: frame("(idle)") },
      { id: 3, callFrame: frame("op_write") },
      { id: 4, callFrame: frame("encodeFrame", "file:///work/main/protocol/frame.ts", 52) },
    ],
    samples: [3, 3, 4, 2, 3],
    timeDeltas: [0, 1000, 1000, 1000, 5000, 1000],
    startTime: 0,
    endTime: 9000,
  };
  const summary = summariseProfile(profile, 10);
  assert.equal(summary.totalMs, 9);
  assert.equal(summary.busyMs, 4);
  assert.deepEqual(summary.top.map((e) => [e.name, e.where, e.selfMs, e.pct]), [
    ["op_write", "", 3, 75],
    ["encodeFrame", "protocol/frame.ts:53", 1, 25],
  ]);
  assert.equal(summary.byFile[0].file, "ops (native: I/O, encoding, SQLite)");
  assert.equal(summary.byFile[1].file, "protocol/frame.ts");
});
