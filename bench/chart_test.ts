import assert from "node:assert/strict";
import { renderChart } from "./chart.ts";

Deno.test("the chart is one SVG with a path and points per series and the goal lines", () => {
  const svg = renderChart({
    title: "t <&>",
    subtitle: "s",
    series: [
      {
        label: "server, 100 members",
        color: "#d62728",
        dashed: false,
        points: [
          { offered: 50_000, delivered: 49_000, p99: 3 },
          { offered: 100_000, delivered: 98_000, p99: 5 },
        ],
      },
      {
        label: "ceiling, 100 members",
        color: "#d62728",
        dashed: true,
        points: [{ offered: 50_000, delivered: 50_000, p99: 1 }],
      },
    ],
    throughputGoal: 1_000_000,
    latencyGoal: 10,
  });
  assert.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  assert.match(svg, /<\/svg>\n$/);
  assert.match(svg, /t &lt;&amp;&gt;/);
  assert.equal((svg.match(/<path /g) ?? []).length, 4); // 2 series × 2 panels
  assert.equal((svg.match(/<circle /g) ?? []).length, 6);
  assert.match(svg, /goal 1M\/s/);
  assert.match(svg, /goal 10 ms/);
  assert.doesNotMatch(svg, /NaN|Infinity/);
});

Deno.test("the chart copes with no data", () => {
  const svg = renderChart({ title: "empty", subtitle: "", series: [] });
  assert.match(svg, /<\/svg>/);
  assert.doesNotMatch(svg, /NaN|Infinity/);
});
