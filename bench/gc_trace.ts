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
  /**
   * How much the heap left by each scavenge grew from the one left by the collection
   * before it, all together: the old generation's growth (promoted objects and those
   * allocated there directly) that the next mark-compact has to deal with. Intervals that
   * end in a mark-compact are not counted, nor those before `fromMs`.
   */
  retainedGrowthBytes: number;
  /** The time those intervals covered, ms. */
  retainedGrowthMs: number;
  /** From when (ms since the process started) growth and `windowMajor` are counted. */
  fromMs: number;
  /** Mark-compacts from `fromMs` on. */
  windowMajor: number;
  /**
   * Allocation sites V8 switched to "tenure" (`--trace-pretenuring` with
   * `--trace-pretenuring-statistics`): every later object of such a site is allocated
   * straight in the old generation, for the rest of the process.
   */
  tenuredSites: number;
  /** When the first switch came (the collection before it, ms since start); -1 if none. */
  firstTenureMs: number;
}

const LINE = /(\d+) ms: GC: (\{.*\})\s*$/;
/** A site's decision: `pretenuring: AllocationSite(0x…): (created, found, ratio) (…) A => B`. */
const TENURE =
  /pretenuring: AllocationSite\(\w+\): \(created, found, ratio\) \([^)]*\) (.+) => tenure\s*$/;

/**
 * Summarises the `GC: {…}` lines of a `--trace-gc-nvp` log; other lines are skipped.
 * The retained heap's growth and `windowMajor` count from `fromMs` (ms since the process
 * started: the measured part of a run, after its start-up and warm-up).
 */
export function summariseGcTrace(text: string, fromMs = 0): GcSummary {
  const minor: number[] = [];
  const major: number[] = [];
  let allocatedBytes = 0;
  let promotedBytes = 0;
  let first = Infinity;
  let last = -Infinity;
  let retainedGrowthBytes = 0;
  let retainedGrowthMs = 0;
  let previous: { at: number; size: number } | null = null;
  let windowMajor = 0;
  let tenuredSites = 0;
  let firstTenureMs = -1;
  for (const line of text.split("\n")) {
    const tenure = TENURE.exec(line);
    if (tenure !== null && tenure[1] !== "tenure") {
      tenuredSites++;
      if (firstTenureMs < 0) firstTenureMs = Math.max(last, 0);
      continue;
    }
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
    const size = Number(entry.end_object_size);
    if (at >= fromMs && entry.gc === "mc") windowMajor++;
    if (previous !== null && previous.at >= fromMs && entry.gc !== "mc" && Number.isFinite(size)) {
      retainedGrowthBytes += size - previous.size;
      retainedGrowthMs += at - previous.at;
    }
    previous = Number.isFinite(size) ? { at, size } : null;
  }
  return {
    minor: pausesOf(minor),
    major: pausesOf(major),
    allocatedBytes,
    promotedBytes,
    spanMs: first <= last ? [first, last] : [0, 0],
    retainedGrowthBytes,
    retainedGrowthMs,
    fromMs,
    windowMajor,
    tenuredSites,
    firstTenureMs,
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

/**
 * One line: each kind's count, total, median and longest pause; MB allocated and promoted;
 * from `fromMs`, the mark-compacts and how fast the heap left by scavenges grew between them.
 */
export function formatGcSummary(s: GcSummary): string {
  const kind = (name: string, p: GcPauses) =>
    `${name} ${p.count} (${p.totalMs} ms, p50 ${p.p50Ms}, max ${p.maxMs})`;
  return `${kind("scavenges", s.minor)}, ${kind("mark-compacts", s.major)}; ` +
    `allocated ${(s.allocatedBytes / 1e6).toFixed(0)} MB, ` +
    `promoted ${(s.promotedBytes / 1e6).toFixed(1)} MB; from ${s.fromMs} ms: ` +
    `mark-compacts ${s.windowMajor}, retained heap grew ` +
    `${(s.retainedGrowthBytes / 1e3 / Math.max(s.retainedGrowthMs, 1)).toFixed(2)} MB/s ` +
    `between them; pretenured sites ${s.tenuredSites}` +
    (s.firstTenureMs >= 0 ? ` (first at ${s.firstTenureMs} ms)` : "");
}
