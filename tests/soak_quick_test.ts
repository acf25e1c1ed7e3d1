/**
 * A tiny soak (soak/soak.ts) in CI: 10 well-behaved clients through a quiet phase, two
 * attack phases (clients that never read, bad fields from logged-in sessions), then
 * 50 abusive connections and one SIGKILL restart of a server in its own process,
 * in about 20 seconds. The attack phases are judged against a 3 s p99 floor: CI
 * machines are shared and a p99 over 3 s of ten clients is noise; this checks that the
 * phases run and lose nothing, `deno task soak` measures the ratios. The attacks of
 * issue #13 that today's server does not withstand join this list once fixed.
 */

import assert from "node:assert/strict";
import { QUICK_SOAK } from "../soak/options.ts";
import { formatReport, soakFailures } from "../soak/report.ts";
import { runSoak } from "../soak/soak.ts";

Deno.test("soak: nothing acknowledged is lost or duplicated across attack phases, abuse and a SIGKILL restart", async () => {
  const report = await runSoak({
    ...QUICK_SOAK,
    durationSec: 10,
    goodClients: 10,
    goodProcesses: 1,
    abusiveConnections: 50,
    abuserProcesses: 1,
    abuserConcurrency: 20,
    neverReadHoldMs: 1000,
    // A short login deadline, so the slowloris connections meet it within the run.
    serverOverrides: { maxConnectionsPerIp: 1000, loginTimeoutMs: 2000 },
    seed: 20261121,
    sendIntervalMs: [300, 1000],
    warmupSec: 1,
    quietSec: 3,
    phaseSec: 3,
    phaseSecByKind: {},
    settleSec: 0.5,
    // Attacks whose outcome does not hang on timing, and that today's server withstands:
    // the attacks of #13 join once fixed (register_flood's verdict needs each
    // registration answered within the login deadline, 2 s here).
    attacks: ["never_read", "wrong_fields"],
    attackConcurrency: { never_read: 4, wrong_fields: 8 },
    p99FloorMs: 3000,
  });
  const printed = formatReport(report).join("\n");
  assert.deepEqual(soakFailures(report), [], printed);
  assert.equal(report.server.restarts, 1, printed);
  assert.ok(report.server.servingAtEnd, printed);
  assert.ok(report.good.acked > 0, printed);
  assert.ok(report.delivery.expected > 0, printed);
  assert.equal(report.delivery.delivered, report.delivery.expected, printed);
  assert.equal(report.history.missing, 0, printed);
  assert.equal(report.lost, 0, printed);
  assert.equal(report.duplicates, 0, printed);
  // Every well-behaved client saw the restart and came back by itself.
  assert.ok(report.good.reconnects >= report.good.clients, printed);
  const abuse = report.abuse;
  assert.equal(abuse.connectionsTried, 50, printed);
  assert.ok(abuse.badFramesSent > 0, printed);
  assert.ok(abuse.rateLimited > 0, printed);
  assert.ok(abuse.floodDisconnects > 0, printed);
  assert.ok(abuse.slowlorisClosed > 0, printed);
  // Every bad frame got its error, every slowloris its close. (Floods are left out:
  // whether a request flood is cut off depends on timing, see the flood figures.)
  for (const [kind, k] of Object.entries(abuse.kinds)) {
    if (kind !== "flood") assert.equal(k.unexpected, 0, `${kind}\n${printed}`);
  }
  // A quiet phase, one per attack, the mixed one: each measured, none lost anything.
  assert.deepEqual(
    report.phases.map((p) => p.name),
    ["quiet", "never_read", "wrong_fields", "quiet_end", "mixed"],
    printed,
  );
  for (const phase of report.phases) {
    assert.ok(phase.samples > 0 && phase.p99 !== null, `${phase.name}\n${printed}`);
    assert.equal(phase.lost, 0, `${phase.name}\n${printed}`);
    if (phase.kind !== null) assert.ok(phase.attack!.runs > 0, `${phase.name}\n${printed}`);
  }
  assert.match(printed, /wrong_fields .* PASS/);
});
