/**
 * The benchmark report: goals checked against the figures (MET / MISSED, or ERROR when
 * the measurement failed), and the terminal table.
 *
 * @module
 */

/** A row of the results table. */
export interface Row {
  /** What was measured. */
  measure: string;
  /** The figure, formatted. */
  result: string;
  /** Its baseline, formatted (ceiling, memory store, run without the slow member …). */
  baseline: string;
  /** result ÷ baseline, formatted; empty when meaningless. */
  ratio: string;
  /** The goal, or empty. */
  goal: string;
  /** `MET`, `MISSED`, `ERROR`, or empty when there is no goal. */
  status: "" | "MET" | "MISSED" | "ERROR";
}

/** A goal's verdict as stored in the JSON results. */
export interface GoalVerdict {
  /** The goal in words. */
  goal: string;
  /** The measured figure (raw number), or null when it could not be measured. */
  figure: number | null;
  /** Its unit. */
  unit: string;
  /** The baseline figure, when there is one. */
  baseline: number | null;
  /** `MET`, `MISSED` or `ERROR`. */
  status: "MET" | "MISSED" | "ERROR";
  /** Why, when not simply the comparison (an error, a partial run). */
  note?: string;
}

/** Formats a count with thousands separators. */
export function fmtCount(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return "—";
  return Math.round(n).toLocaleString("en-US");
}

/** Formats milliseconds: 3 significant digits. */
export function fmtMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return "—";
  if (ms >= 100) return `${Math.round(ms)} ms`;
  return `${Number(ms.toPrecision(3))} ms`;
}

/** Formats bytes as B / KiB. */
export function fmtBytes(b: number | null | undefined): string {
  if (b === null || b === undefined || !Number.isFinite(b)) return "—";
  if (Math.abs(b) >= 10 * 1024) return `${(b / 1024).toFixed(1)} KiB`;
  return `${Math.round(b)} B`;
}

/** Formats a ratio. */
export function fmtRatio(a: number | null | undefined, b: number | null | undefined): string {
  if (a === null || a === undefined || b === null || b === undefined) return "";
  if (!Number.isFinite(a) || !Number.isFinite(b) || b === 0) return "";
  const r = a / b;
  return r >= 10 ? `${r.toFixed(0)}×` : `${r.toFixed(2)}×`;
}

/** Renders rows as a fixed-width table. */
export function renderTable(rows: Row[]): string {
  const headers: Row = {
    measure: "Measure",
    result: "Result",
    baseline: "Baseline",
    ratio: "Ratio",
    goal: "Goal",
    status: "" as Row["status"],
  };
  const cols: (keyof Row)[] = ["measure", "result", "baseline", "ratio", "goal", "status"];
  const all = [headers, ...rows];
  const widths = cols.map((c) =>
    Math.max(...all.map((r) => String(r[c]).length), c === "status" ? 6 : 0)
  );
  const line = (r: Row) =>
    cols.map((c, i) => String(c === "status" && r === headers ? "Status" : r[c]).padEnd(widths[i]))
      .join(" │ ");
  const rule = widths.map((w) => "─".repeat(w)).join("─┼─");
  return [line(headers), rule, ...rows.map(line)].join("\n");
}
