/**
 * The soak's figures, its verdict, and how both are printed.
 *
 * @module
 */

import type { AbuseStats } from "./abuse.ts";
import { fmtMs, judgePhase, type PhaseResult, withinBudget } from "./phases.ts";

/** Everything a soak run measured. */
export interface SoakReport {
  /** Seed of the random choices (repeat a run with `--seed`). */
  seed: number;
  /** Length of the whole run, in ms. */
  durationMs: number;
  /** Length of the traffic window, in ms. */
  windowMs: number;
  /** Server settings changed from the defaults. */
  serverOverrides: Record<string, number>;
  /** The server's data folder. */
  dataDir: string;
  /** The server's side. */
  server: {
    /** Port it served on (the same after the restart). */
    port: number;
    /** Times it was killed with SIGKILL and started again. */
    restarts: number;
    /** Milliseconds from the kill to listening again. */
    downMs: number | null;
    /** Milliseconds from the kill until every well-behaved client was ready again. */
    recoveredMs: number | null;
    /** Exits nobody asked for. */
    unexpectedExits: string[];
    /** Whether it still answered a fresh login and ping at the end. */
    servingAtEnd: boolean;
    /** Why not, when it did not. */
    servingProblem?: string;
  };
  /** The well-behaved clients. */
  good: {
    /** Clients. */
    clients: number;
    /** Messages acknowledged to them: all, room, direct. */
    acked: number;
    /** Room messages among them. */
    ackedRoom: number;
    /** Direct messages among them. */
    ackedDm: number;
    /** Sends refused or failed, by code. */
    failures: Record<string, number>;
    /** Sends with no reply when the wait ended. */
    unanswered: number;
    /** Resends the server recognised as already stored. */
    resentDuplicates: number;
    /** Acks whose text differs from what was sent. */
    ackMismatches: number;
    /** Ids acknowledged for two different messages. */
    ackCollisions: number;
    /** Disconnections and reconnections seen. */
    disconnects: number;
    /** Reconnections completed. */
    reconnects: number;
    /** Clients that gave up, with the reason. */
    closed: string[];
    /** Notices received, by code. */
    notices: Record<string, number>;
    /** The first few notices' texts. */
    noticeTexts: string[];
    /** Error events not tied to a request, by code. */
    serverErrors: Record<string, number>;
    /** Messages received from abusers (spam in shared rooms, direct floods). */
    otherReceived: number;
  };
  /** Deliveries to the well-behaved clients. */
  delivery: {
    /** Deliveries due. */
    expected: number;
    /** Received exactly once as acknowledged. */
    delivered: number;
    /** Never received. */
    missing: number;
    /** Received more than once. */
    duplicates: number;
    /** Own messages that came back as events. */
    echoes: number;
    /** Received with another sender or text. */
    mismatched: number;
    /** Milliseconds spent waiting for the last ones. */
    waitedMs: number;
  };
  /** Histories of the well-behaved clients (`sync` from 0). */
  history: {
    /** Messages that had to be there (each client: sent and due). */
    expected: number;
    /** Missing. */
    missing: number;
    /** Present with another sender or text. */
    mismatched: number;
    /** Listed twice. */
    duplicates: number;
  };
  /** Acknowledged messages missing from a history or from a recipient. */
  lost: number;
  /** Deliveries received twice, own echoes and history duplicates. */
  duplicates: number;
  /** Some ids of lost messages, for a post-mortem. */
  lostSample: number[];
  /** The abusers' counts in the mixed phase (the attack phases' are in `phases`). */
  abuse: AbuseStats;
  /** How loaded the machine was. */
  load: {
    /** CPU cores. */
    cores: number;
    /** The server's longest event-loop lag, in ms. */
    serverLagMaxMs: number;
    /** The server's event-loop stalls over 1 s. */
    serverStallsOver1s: number;
    /** The slowest answer of the server process to the soak's `stats`, in ms. */
    serverStatsSlowestMs: number;
    /** The well-behaved clients' processes' longest event-loop lag, in ms. */
    goodLagMaxMs: number;
    /** Their stalls over 1 s. */
    goodStallsOver1s: number;
    /**
     * CPU seconds used by the server (both lives; the first as last reported before
     * the kill), the well-behaved clients and the abusers.
     */
    cpuSeconds: { server: number; good: number; abusers: number };
  };
  /** Problems of the run itself (a child that failed, a step that timed out). */
  errors: string[];
  /** The quiet phase, each attack's phase and the mixed one (see phases.ts). */
  phases: PhaseResult[];
  /** Whether the mixed phase (with its SIGKILL restart) ran. */
  mixed: boolean;
  /** Below this p99 (ms) an attack phase is never over budget. */
  p99FloorMs: number;
  /** The other loopback addresses some attacks came from (empty: all from 127.0.0.1). */
  attackerAddresses: string[];
}

/**
 * Why the soak failed; empty when it passed. It passes only when nothing
 * acknowledged was lost or duplicated, the server kept serving through the restart,
 * and every well-behaved client was served to the end.
 */
export function soakFailures(report: SoakReport): string[] {
  const reasons: string[] = [...report.errors];
  if (report.lost > 0) reasons.push(`${report.lost} acknowledged messages lost`);
  if (report.duplicates > 0) reasons.push(`${report.duplicates} duplicate deliveries`);
  if (report.server.unexpectedExits.length > 0) {
    reasons.push(`the server exited unasked: ${report.server.unexpectedExits.join("; ")}`);
  }
  if (!report.server.servingAtEnd) {
    reasons.push(`the server was not serving at the end: ${report.server.servingProblem ?? "?"}`);
  }
  if (report.mixed && report.server.restarts < 1) {
    reasons.push("the server was not killed and restarted");
  }
  for (const phase of report.phases) {
    for (const problem of phaseProblems(report, phase)) reasons.push(`${phase.name}: ${problem}`);
  }
  if (report.good.acked === 0) reasons.push("no message was acknowledged: nothing was checked");
  if (report.good.closed.length > 0) {
    reasons.push(
      `${report.good.closed.length} well-behaved clients gave up: ${
        report.good.closed.slice(0, 3).join("; ")
      }`,
    );
  }
  const refused = Object.entries(report.good.failures);
  if (refused.length > 0) {
    reasons.push(`well-behaved sends failed: ${describeCounts(report.good.failures)}`);
  }
  if (report.good.unanswered > 0) {
    reasons.push(`${report.good.unanswered} well-behaved sends never answered`);
  }
  const mismatches = report.delivery.mismatched + report.history.mismatched +
    report.good.ackMismatches + report.good.ackCollisions;
  if (mismatches > 0) reasons.push(`${mismatches} messages altered (sender, text or id)`);
  const badNotices = Object.entries(report.good.notices).filter(([code]) => code !== "shutdown");
  if (badNotices.length > 0) {
    reasons.push(
      `well-behaved clients were told off: ${describeCounts(Object.fromEntries(badNotices))}`,
    );
  }
  return reasons;
}

/** The report as the lines `deno task soak` prints. */
export function formatReport(report: SoakReport): string[] {
  const a = report.abuse;
  const g = report.good;
  const failures = soakFailures(report);
  const kinds = Object.entries(a.kinds).filter(([, k]) => k.runs > 0).map(([kind, k]) =>
    `    ${kind.padEnd(16)} ${String(k.runs).padStart(5)} runs: ${k.expected} as expected, ` +
    `${k.interrupted} cut short, ${k.refused} refused, ${k.unexpected} unexpected`
  );
  const lines = [
    "",
    `soak: ${(report.durationMs / 1000).toFixed(1)} s (traffic ${
      (report.windowMs / 1000).toFixed(1)
    } s), seed ${report.seed}`,
    `  server: default limits except ${
      describeCounts(report.serverOverrides) || "none"
    }; port ${report.server.port}`,
    `  server restarts (SIGKILL): ${report.server.restarts}` +
    (report.server.downMs !== null ? `, down ${report.server.downMs} ms` : "") +
    (report.server.recoveredMs !== null
      ? `, all well-behaved clients back after ${report.server.recoveredMs} ms`
      : ""),
    `  server kept serving: ${
      report.server.servingAtEnd ? "yes" : `NO (${report.server.servingProblem})`
    }`,
    "",
    `  mixed phase, connections tried (abusive): ${a.connectionsTried} (${a.connected} accepted, ${a.connectFailed} while the server was down)`,
    `  bad frames sent: ${a.badFramesSent}`,
    `  flood messages sent: ${a.floodMessagesSent}`,
    `  rate-limit errors seen: ${a.rateLimited}`,
    `  flood disconnects seen: ${a.floodDisconnects}`,
    `  slowloris connections closed at the login deadline: ${a.slowlorisClosed}` +
    (a.slowlorisCloseMs ? ` (after ${a.slowlorisCloseMs.min}–${a.slowlorisCloseMs.max} ms)` : ""),
    `  slow consumers cut off: ${a.slowConsumerCutoffs}`,
    `  abuser logins: ${a.logins}; errors sent to abusers: ${
      describeCounts(a.errorCodes) || "none"
    }`,
    ...kinds,
    ...(a.unexpected.length > 0
      ? ["  unexpected answers (first few):", ...a.unexpected.map((u) => `    ${u}`)]
      : []),
    "",
    `  well-behaved clients: ${g.clients}; disconnections ${g.disconnects}, reconnections ${g.reconnects}`,
    `  messages acknowledged: ${g.acked} (${g.ackedRoom} room, ${g.ackedDm} direct; ${g.resentDuplicates} resends recognised)`,
    `  deliveries due: ${report.delivery.expected}; delivered exactly once: ${report.delivery.delivered}` +
    ` (last ones waited for ${report.delivery.waitedMs} ms)`,
    `  history checked: ${report.history.expected} entries; missing ${report.history.missing}`,
    `  spam received from abusers: ${g.otherReceived}`,
    ...(g.noticeTexts.length > 0
      ? ["  notices to well-behaved clients (first few):", ...g.noticeTexts.map((t) => `    ${t}`)]
      : []),
    `  lost: ${report.lost}`,
    `  duplicates: ${report.duplicates}`,
    "",
    `  load: ${report.load.cores} cores; CPU seconds: server ${report.load.cpuSeconds.server}, ` +
    `well-behaved clients ${report.load.cpuSeconds.good}, abusers ${report.load.cpuSeconds.abusers}`,
    `  event-loop lag, longest: server ${report.load.serverLagMaxMs} ms ` +
    `(${report.load.serverStallsOver1s} stalls over 1 s; slowest answer to the soak ${report.load.serverStatsSlowestMs} ms), ` +
    `well-behaved clients ${report.load.goodLagMaxMs} ms (${report.load.goodStallsOver1s} stalls over 1 s)`,
    "",
    ...formatPhases(report),
    "",
    failures.length === 0
      ? "soak: PASS"
      : `soak: FAIL\n${failures.map((f) => `  - ${f}`).join("\n")}`,
  ];
  if (failures.length > 0) lines.push(`  data folder kept: ${report.dataDir}`);
  return lines;
}

/** Why a phase failed (see judgePhase in phases.ts); empty when it passed or is not judged. */
export function phaseProblems(report: SoakReport, phase: PhaseResult): string[] {
  const quiet = report.phases.find((p) => p.name === "quiet");
  if (!phase.judged || quiet === undefined) return [];
  return judgePhase(phase, { quiet, floorMs: report.p99FloorMs });
}

/**
 * The per-phase table: the well-behaved clients' p50 and p99 in each phase, the p99
 * against the quiet phase's, whether it is within 2× (or under the floor), what was
 * lost, the login probe, the attack's connections and what got through, and the
 * phase's verdict.
 */
export function formatPhases(report: SoakReport): string[] {
  const quiet = report.phases.find((p) => p.name === "quiet");
  if (quiet === undefined) return [];
  const judging = { quiet, floorMs: report.p99FloorMs };
  const header = [
    "phase".padEnd(16),
    "secs".padStart(5),
    "sends".padStart(6),
    "p50 ms".padStart(7),
    "p99 ms".padStart(7),
    "vs quiet".padStart(9),
    "within 2×".padStart(12),
    "lost".padStart(5),
    "probe".padStart(7),
    "attack runs".padStart(12),
    "got through".padStart(12),
    "  verdict",
  ].join(" ");
  const rows = report.phases.map((p) => {
    const attack = p.attack;
    return [
      p.name.padEnd(16),
      (p.ms / 1000).toFixed(1).padStart(5),
      String(p.samples).padStart(6),
      (p.p50 === null ? "-" : fmtMs(p.p50)).padStart(7),
      (p.p99 === null ? "-" : fmtMs(p.p99)).padStart(7),
      (p.ratio === null ? "-" : `${p.ratio.toFixed(2)}×`).padStart(9),
      (p.judged ? withinBudget(p, judging) : p.name === "mixed" ? "(restart)" : "(drift)")
        .padStart(12),
      `${p.lost}`.padStart(5),
      `${p.probe.tries - p.probe.failures}/${p.probe.tries}`.padStart(7),
      (attack === null ? "-" : `${attack.runs}`).padStart(12),
      (attack === null ? "-" : `${attack.unexpected}/${attack.expected + attack.unexpected}`)
        .padStart(12),
      `  ${!p.judged ? "shown" : phaseProblems(report, p).length === 0 ? "PASS" : "FAIL"}`,
    ].join(" ");
  });
  const notes = report.phases.flatMap((p) =>
    phaseProblems(report, p).map((problem) => `    ${p.name}: ${problem}`)
  );
  return [
    `  phases (well-behaved clients' say/dm acknowledgement times; an attack phase passes with ` +
    `p99 ≤ 2 × max(quiet p99, floor ${report.p99FloorMs} ms), lost: 0, every probe login ` +
    `ok (after fd_exhaust: shown, not judged) and nothing got through)`,
    `  attack runs: connections of the attack; got through: runs where the defence failed, ` +
    `of the runs that ran to a verdict (0/0: none did, e.g. a phase shorter than the attack)`,
    `  attacks from: 127.0.0.1${
      report.attackerAddresses.length > 0
        ? `; wrong_password, register_flood and prelogin_flood from ${
          report.attackerAddresses.join(", ")
        }`
        : " only"
    }`,
    `  ${header}`,
    ...rows.map((r) => `  ${r}`),
    ...(notes.length > 0 ? ["  phase failures:", ...notes] : []),
  ];
}

function describeCounts(counts: Record<string, number>): string {
  return Object.entries(counts).map(([k, v]) => `${k} ${v}`).join(", ");
}
