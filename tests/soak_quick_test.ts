/**
 * A tiny soak (soak/soak.ts) in CI: 10 well-behaved clients, 50 abusive connections and
 * one SIGKILL restart of a server in its own process, in about 10 seconds.
 */

import assert from "node:assert/strict";
import { QUICK_SOAK } from "../soak/options.ts";
import { formatReport, soakFailures } from "../soak/report.ts";
import { runSoak } from "../soak/soak.ts";

Deno.test("soak: nothing acknowledged is lost or duplicated across abuse and a SIGKILL restart", async () => {
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
});
