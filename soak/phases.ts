/**
 * The soak's phases and their verdicts. The well-behaved clients chat through every
 * phase; each send's acknowledgement time is counted in the phase it was sent in.
 *
 * - `quiet`: the well-behaved clients alone; its p99 is the reference.
 * - one phase per attack (see attacks.ts, and any kind of abuse.ts): that attack alone,
 *   kept up for the whole phase, beside the well-behaved clients.
 * - `quiet_end`: the quiet phase again, shown, not judged: how far the machine's load
 *   (other tenants) or the server drifted over the attack phases.
 * - `mixed`: every kind of the mixed phase at once, with a SIGKILL restart of the
 *   server midway (its latencies are shown, not judged: the restart dominates them).
 *
 * An attack phase passes when the well-behaved clients' p99 stayed within 2× of the
 * quiet phase's, nothing acknowledged in it was lost, the login probe logged in every
 * time, and the server defended itself as the attack's script expects (no
 * `unexpected` outcome). After `fd_exhaust` the probe's failures are shown, not judged
 * (see PROBE_NOT_JUDGED in attacks.ts). A p99 over a few seconds on a shared machine is noisy, so
 * the comparison has a floor: an attack phase's p99 is over budget only when it is
 * over 2 × max(quiet p99, floor).
 *
 * @module
 */

import type { AbuseKind, KindStats } from "./abuse.ts";
import { PROBE_NOT_JUDGED } from "./attacks.ts";
import type { ProbeStats } from "./good_clients.ts";

/** One phase to run. */
export interface PhaseSpec {
  /** `quiet`, an attack's kind, or `mixed`. */
  name: string;
  /** The attack it runs; null for the quiet phase (and the mixed one). */
  kind: AbuseKind | null;
  /** Length, in ms. */
  ms: number;
  /** Attack connections open at once (all abuser processes). */
  concurrency: number;
}

/** What one phase measured, and its verdict. */
export interface PhaseResult {
  /** As in PhaseSpec. */
  name: string;
  /** As in PhaseSpec. */
  kind: AbuseKind | null;
  /** Its length, in ms. */
  ms: number;
  /** Acknowledged sends of the well-behaved clients started in it. */
  samples: number;
  /** Their acknowledgement time's median and 99th percentile, in ms; null without any. */
  p50: number | null;
  /** See p50. */
  p99: number | null;
  /** p99 over the quiet phase's; null when either is missing. */
  ratio: number | null;
  /** Well-behaved sends refused or failed in it, by code. */
  failures: Record<string, number>;
  /** Acknowledged messages lost (well-behaved clients' and the attack's own). */
  lost: number;
  /** The login probe's attempts in it. */
  probe: ProbeStats;
  /** The attack's connections; null for the quiet phase. */
  attack: KindStats | null;
  /** A few of the attack's unexpected outcomes. */
  unexpected: string[];
  /** Whether the verdict judges it (the mixed phase is only shown). */
  judged: boolean;
}

/** What the verdict of a phase needs besides its figures. */
export interface PhaseJudging {
  /** The quiet phase's result. */
  quiet: PhaseResult;
  /** Below this p99 (ms) an attack phase is never over budget. */
  floorMs: number;
}

/** The largest allowed p99 ratio over the quiet run. */
export const MAX_P99_RATIO = 2;

/** The `p`-th percentile (0..100) of `values` (nearest rank); null when empty. */
export function percentile(values: readonly number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(sorted.length, rank) - 1]!;
}

/**
 * The problems of an attack phase (empty when it passed); see the module's text.
 *
 * @example
 * ```ts
 * import { judgePhase } from "./phases.ts";
 * // judgePhase(errorFlood, { quiet, floorMs: 100 }) -> ["p99 16000 ms: over 2 × 18 ms ..."]
 * ```
 */
export function judgePhase(phase: PhaseResult, judging: PhaseJudging): string[] {
  const problems: string[] = [];
  const quiet = judging.quiet;
  if (phase.p99 !== null && quiet.p99 !== null) {
    const budget = MAX_P99_RATIO * Math.max(quiet.p99, judging.floorMs);
    if (phase.p99 > budget) {
      problems.push(
        `p99 ${fmtMs(phase.p99)} ms, over ${MAX_P99_RATIO} × max(quiet ${fmtMs(quiet.p99)} ms, ` +
          `floor ${judging.floorMs} ms)`,
      );
    }
  }
  // A stalled server also shows as sends that never happened: the clients skip their
  // turn while five requests wait. Less than half the quiet phase's rate is a stall.
  const expected = quiet.ms > 0 ? (quiet.samples / quiet.ms) * phase.ms : 0;
  if (expected >= 20 && phase.samples < expected / 2) {
    problems.push(
      `only ${phase.samples} sends acknowledged (the quiet rate gives ${Math.round(expected)})`,
    );
  }
  if (phase.lost > 0) problems.push(`${phase.lost} acknowledged messages lost`);
  const failed = Object.entries(phase.failures);
  if (failed.length > 0) {
    problems.push(`well-behaved sends failed: ${failed.map(([c, n]) => `${c} ${n}`).join(", ")}`);
  }
  if (phase.probe.failures > 0 && !PROBE_NOT_JUDGED.has(phase.name)) {
    problems.push(
      `the login probe failed ${phase.probe.failures} of ${phase.probe.tries} times` +
        (phase.probe.errors.length > 0 ? ` (${phase.probe.errors[0]})` : ""),
    );
  }
  if (phase.attack !== null && phase.attack.unexpected > 0) {
    problems.push(
      `${phase.attack.unexpected} of ${phase.attack.runs} attack connections got through` +
        (phase.unexpected.length > 0 ? `: ${phase.unexpected[0]}` : ""),
    );
  }
  return problems;
}

/** Whether `phase`'s p99 is within budget, as the table says it: yes, no, or "-". */
export function withinBudget(phase: PhaseResult, judging: PhaseJudging): string {
  if (phase.p99 === null || judging.quiet.p99 === null || phase.name === "quiet") return "-";
  const budget = MAX_P99_RATIO * Math.max(judging.quiet.p99, judging.floorMs);
  if (phase.p99 > budget) return "NO";
  return phase.p99 > MAX_P99_RATIO * judging.quiet.p99 ? "yes (floor)" : "yes";
}

/** An empty probe count. */
export function emptyProbe(): ProbeStats {
  return { tries: 0, failures: 0, maxMs: 0, errors: [] };
}

/** Milliseconds for a table: one decimal under 10, whole above. */
export function fmtMs(ms: number): string {
  return ms < 10 ? ms.toFixed(1) : String(Math.round(ms));
}
