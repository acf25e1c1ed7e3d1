/**
 * Summary of a V8 `--trace-gc-nvp` log (one `GC: {json}` line per collection): how many
 * scavenges and mark-compacts, their pauses, and the bytes allocated and promoted. Used by
 * `fixed_rate.ts --gc-log DIR` to compare the garbage collector's work between code versions
 * at the same offered load.
 *
 * @example
 * ```ts
 * import { formatGcSummary, summariseGcTrace } from "./gc_trace.ts";
 * const line = '[1:0x1]   77 ms: GC: {"pause":1.5,"gc":"s","allocated":4000000,"promoted":1000}';
 * console.log(formatGcSummary(summariseGcTrace(line)));
 * ```
 *
 * @module
 */

/** The collections of one kind. */
export interface GcPauses {
  /** How many. */
  count: number;
  /** Their pauses together, ms. */
  totalMs: number;
  /** The longest pause, ms. */
  maxMs: number;
  /** The median pause, ms. */
  p50Ms: number;
}

/** What a trace says. */
export interface GcSummary {
  /** Scavenges (`"gc":"s"`, and the minor mark-sweeps `"ms"`). */
  minor: GcPauses;
  /** Mark-compacts (`"gc":"mc"`): full collections. */
  major: GcPauses;
  /** Bytes allocated between collections, all together. */
  allocatedBytes: number;
  /** Bytes promoted to the old generation, all together. */
  promotedBytes: number;
  /** When the first and the last collection came, ms since the process started. */
  spanMs: [number, number];
}

const LINE = /(\d+) ms: GC: (\{.*\})\s*$/;

/** Summarises the `GC: {…}` lines of a `--trace-gc-nvp` log; other lines are skipped. */
export function summariseGcTrace(text: string): GcSummary {
  const minor: number[] = [];
  const major: number[] = [];
  let allocatedBytes = 0;
  let promotedBytes = 0;
  let first = Infinity;
  let last = -Infinity;
  for (const line of text.split("\n")) {
    const match = LINE.exec(line);
    if (match === null) continue;
    let entry: Record<string, unknown>;
    try {
      entry = JSON.parse(match[2]);
    } catch {
      continue; // cut short
    }
    const pause = Number(entry.pause);
    if (!Number.isFinite(pause)) continue;
    (entry.gc === "mc" ? major : minor).push(pause);
    allocatedBytes += Number(entry.allocated) || 0;
    promotedBytes += Number(entry.promoted) || 0;
    const at = Number(match[1]);
    first = Math.min(first, at);
    last = Math.max(last, at);
  }
  return {
    minor: pausesOf(minor),
    major: pausesOf(major),
    allocatedBytes,
    promotedBytes,
    spanMs: first <= last ? [first, last] : [0, 0],
  };
}

function pausesOf(pauses: number[]): GcPauses {
  const sorted = [...pauses].sort((a, b) => a - b);
  const total = sorted.reduce((sum, p) => sum + p, 0);
  return {
    count: sorted.length,
    totalMs: round(total),
    maxMs: round(sorted.at(-1) ?? 0),
    p50Ms: round(sorted[Math.floor(sorted.length / 2)] ?? 0),
  };
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}

/** One line: each kind's count, total, median and longest pause; MB allocated and promoted. */
export function formatGcSummary(s: GcSummary): string {
  const kind = (name: string, p: GcPauses) =>
    `${name} ${p.count} (${p.totalMs} ms, p50 ${p.p50Ms}, max ${p.maxMs})`;
  return `${kind("scavenges", s.minor)}, ${kind("mark-compacts", s.major)}; ` +
    `allocated ${(s.allocatedBytes / 1e6).toFixed(0)} MB, ` +
    `promoted ${(s.promotedBytes / 1e6).toFixed(1)} MB`;
}
