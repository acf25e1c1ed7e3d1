/**
 * The benchmark chart as a standalone SVG (no dependencies): delivered throughput and
 * p99 latency against offered load, log-log, one line per room size and target.
 *
 * @module
 */

/** One line on the chart. */
export interface ChartSeries {
  /** Legend label. */
  label: string;
  /** Stroke colour. */
  color: string;
  /** Dashed (the ceiling) or solid (the server). */
  dashed: boolean;
  /** Points: offered deliveries/s, delivered deliveries/s, p99 ms. */
  points: { offered: number; delivered: number; p99: number }[];
}

/** What to draw. */
export interface ChartInput {
  /** Title line. */
  title: string;
  /** Subtitle line (machine, mode). */
  subtitle: string;
  /** The lines. */
  series: ChartSeries[];
  /** Horizontal goal line on the throughput panel, deliveries/s. */
  throughputGoal?: number;
  /** Horizontal goal line on the latency panel, ms. */
  latencyGoal?: number;
}

const WIDTH = 1100;
const HEIGHT = 540;
const PANEL_W = 440;
const PANEL_H = 340;
const TOP = 90;
const LEFT = [90, 630];

/** Renders the chart. */
export function renderChart(input: ChartInput): string {
  const points = input.series.flatMap((s) => s.points);
  const offered = points.map((p) => p.offered).filter((v) => v > 0);
  const delivered = points.map((p) => p.delivered).filter((v) => v > 0);
  const latencies = points.map((p) => p.p99).filter((v) => v > 0 && Number.isFinite(v));
  const xRange = logRange([...offered, ...(input.throughputGoal ? [input.throughputGoal] : [])]);
  const yThroughput = logRange([
    ...delivered,
    ...offered,
    ...(input.throughputGoal ? [input.throughputGoal] : []),
  ]);
  const yLatency = logRange([...latencies, ...(input.latencyGoal ? [input.latencyGoal] : [])]);
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="system-ui, sans-serif" font-size="12">`,
    `<rect width="${WIDTH}" height="${HEIGHT}" fill="#fff"/>`,
    `<text x="${WIDTH / 2}" y="28" text-anchor="middle" font-size="17" font-weight="bold">${
      esc(input.title)
    }</text>`,
    `<text x="${WIDTH / 2}" y="50" text-anchor="middle" fill="#555">${esc(input.subtitle)}</text>`,
  );
  parts.push(
    panel(
      0,
      "Delivered vs offered load",
      "deliveries/s delivered",
      xRange,
      yThroughput,
      input,
      (p) => p.delivered,
      input.throughputGoal,
      "goal 1M/s (100 members)",
    ),
    panel(
      1,
      "p99 latency vs offered load",
      "p99 latency (ms)",
      xRange,
      yLatency,
      input,
      (p) => p.p99,
      input.latencyGoal,
      "goal 10 ms at half of max",
    ),
  );
  // Legend: wraps onto as many rows as it needs.
  let lx = LEFT[0];
  let ly = TOP + PANEL_H + 58;
  for (const s of input.series) {
    const width = 44 + s.label.length * 6.6;
    if (lx + width > WIDTH - 20) {
      lx = LEFT[0];
      ly += 20;
    }
    parts.push(
      `<line x1="${lx}" y1="${ly}" x2="${
        lx + 26
      }" y2="${ly}" stroke="${s.color}" stroke-width="2.5"${
        s.dashed ? ' stroke-dasharray="6 4"' : ""
      }/>`,
      `<text x="${lx + 32}" y="${ly + 4}">${esc(s.label)}</text>`,
    );
    lx += width;
  }
  parts.push("</svg>");
  return parts.join("\n") + "\n";
}

function panel(
  index: number,
  title: string,
  yLabel: string,
  x: [number, number],
  y: [number, number],
  input: ChartInput,
  value: (p: ChartSeries["points"][number]) => number,
  goal: number | undefined,
  goalLabel: string,
): string {
  const left = LEFT[index];
  const sx = (v: number) => left + ((Math.log10(v) - x[0]) / (x[1] - x[0])) * PANEL_W;
  const sy = (v: number) => TOP + PANEL_H - ((Math.log10(v) - y[0]) / (y[1] - y[0])) * PANEL_H;
  const out: string[] = [
    `<text x="${left + PANEL_W / 2}" y="${
      TOP - 12
    }" text-anchor="middle" font-size="14" font-weight="bold">${esc(title)}</text>`,
    `<rect x="${left}" y="${TOP}" width="${PANEL_W}" height="${PANEL_H}" fill="none" stroke="#999"/>`,
  ];
  for (let e = Math.ceil(x[0]); e <= Math.floor(x[1]); e++) {
    const px = sx(10 ** e);
    out.push(
      `<line x1="${px}" y1="${TOP}" x2="${px}" y2="${TOP + PANEL_H}" stroke="#eee"/>`,
      `<text x="${px}" y="${TOP + PANEL_H + 16}" text-anchor="middle">${tick(10 ** e)}</text>`,
    );
  }
  for (let e = Math.ceil(y[0]); e <= Math.floor(y[1]); e++) {
    const py = sy(10 ** e);
    out.push(
      `<line x1="${left}" y1="${py}" x2="${left + PANEL_W}" y2="${py}" stroke="#eee"/>`,
      `<text x="${left - 6}" y="${py + 4}" text-anchor="end">${tick(10 ** e)}</text>`,
    );
  }
  out.push(
    `<text x="${left + PANEL_W / 2}" y="${
      TOP + PANEL_H + 36
    }" text-anchor="middle">offered load (deliveries/s)</text>`,
    `<text transform="translate(${left - 58} ${
      TOP + PANEL_H / 2
    }) rotate(-90)" text-anchor="middle">${esc(yLabel)}</text>`,
  );
  if (index === 0) {
    // delivered = offered
    const lo = Math.max(x[0], y[0]);
    const hi = Math.min(x[1], y[1]);
    if (hi > lo) {
      out.push(
        `<line x1="${sx(10 ** lo)}" y1="${sy(10 ** lo)}" x2="${sx(10 ** hi)}" y2="${
          sy(10 ** hi)
        }" stroke="#bbb" stroke-dasharray="2 3"/>`,
      );
    }
  }
  if (goal !== undefined && goal > 0) {
    const py = sy(goal);
    out.push(
      `<line x1="${left}" y1="${py}" x2="${
        left + PANEL_W
      }" y2="${py}" stroke="#f0a000" stroke-width="1.5" stroke-dasharray="8 4"/>`,
      `<text x="${left + PANEL_W - 4}" y="${py - 5}" text-anchor="end" fill="#b07000">${
        esc(goalLabel)
      }</text>`,
    );
  }
  for (const s of input.series) {
    const pts = s.points
      .filter((p) => p.offered > 0 && value(p) > 0 && Number.isFinite(value(p)))
      .sort((a, b) => a.offered - b.offered);
    if (pts.length === 0) continue;
    const path = pts.map((p, i) =>
      `${i === 0 ? "M" : "L"}${sx(p.offered).toFixed(1)},${sy(value(p)).toFixed(1)}`
    ).join(" ");
    out.push(
      `<path d="${path}" fill="none" stroke="${s.color}" stroke-width="2"${
        s.dashed ? ' stroke-dasharray="6 4"' : ""
      }/>`,
      ...pts.map((p) =>
        `<circle cx="${sx(p.offered).toFixed(1)}" cy="${sy(value(p)).toFixed(1)}" r="3" fill="${
          s.dashed ? "#fff" : s.color
        }" stroke="${s.color}"><title>${esc(s.label)}: offered ${
          Math.round(p.offered)
        }/s, delivered ${Math.round(p.delivered)}/s, p99 ${p.p99} ms</title></circle>`
      ),
    );
  }
  return out.join("\n");
}

function logRange(values: number[]): [number, number] {
  const valid = values.filter((v) => v > 0 && Number.isFinite(v));
  if (valid.length === 0) return [0, 1];
  const lo = Math.floor(Math.log10(Math.min(...valid)));
  const hi = Math.ceil(Math.log10(Math.max(...valid)));
  return [lo, hi === lo ? lo + 1 : hi];
}

function tick(v: number): string {
  if (v >= 1e6) return `${v / 1e6}M`;
  if (v >= 1e3) return `${v / 1e3}k`;
  return String(Number(v.toPrecision(3)));
}

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}
