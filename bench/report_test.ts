import assert from "node:assert/strict";
import { fmtBytes, fmtCount, fmtMs, fmtRatio, renderTable } from "./report.ts";

Deno.test("formatting of counts, times, sizes and ratios", () => {
  assert.equal(fmtCount(1234567.4), "1,234,567");
  assert.equal(fmtCount(NaN), "—");
  assert.equal(fmtMs(0.12345), "0.123 ms");
  assert.equal(fmtMs(1234.5), "1235 ms");
  assert.equal(fmtBytes(2048), "2048 B");
  assert.equal(fmtBytes(30 * 1024), "30.0 KiB");
  assert.equal(fmtRatio(1, 4), "0.25×");
  assert.equal(fmtRatio(50, 2), "25×");
  assert.equal(fmtRatio(1, 0), "");
  assert.equal(fmtRatio(null, 3), "");
});

Deno.test("the table has a header, a rule and one aligned line per row", () => {
  const table = renderTable([
    { measure: "a", result: "1", baseline: "2", ratio: "0.50×", goal: "≥ 3", status: "MISSED" },
    { measure: "longer measure", result: "10", baseline: "", ratio: "", goal: "", status: "" },
  ]);
  const lines = table.split("\n");
  assert.equal(lines.length, 4);
  assert.match(lines[0], /^Measure\s+│ Result/);
  assert.match(lines[1], /^─+┼─/);
  assert.match(lines[2], /MISSED$/);
  assert.equal(lines[2].indexOf("│"), lines[3].indexOf("│"));
});
