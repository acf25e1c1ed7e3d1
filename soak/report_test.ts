import assert from "node:assert/strict";
import { emptyAbuseStats } from "./abuse.ts";
import type { PhaseResult } from "./phases.ts";
import { formatReport, soakFailures, type SoakReport } from "./report.ts";

function phase(name: string, p99: number, extra: Partial<PhaseResult> = {}): PhaseResult {
  return {
    name,
    kind: name === "quiet" || name === "mixed" ? null : "error_flood",
    ms: 10_000,
    samples: 500,
    p50: p99 / 3,
    p99,
    ratio: null,
    failures: {},
    lost: 0,
    probe: { tries: 10, failures: 0, maxMs: 20, errors: [] },
    attack: name === "quiet" || name === "mixed"
      ? null
      : { runs: 40, expected: 40, refused: 0, interrupted: 0, unexpected: 0, lost: 0 },
    unexpected: [],
    judged: name !== "mixed",
    ...extra,
  };
}

function passing(): SoakReport {
  return {
    seed: 1,
    durationMs: 20_000,
    windowMs: 15_000,
    serverOverrides: { maxConnectionsPerIp: 1000 },
    dataDir: "/tmp/x",
    server: {
      port: 4000,
      restarts: 1,
      downMs: 200,
      recoveredMs: 1500,
      unexpectedExits: [],
      servingAtEnd: true,
    },
    good: {
      clients: 2,
      acked: 3,
      ackedRoom: 2,
      ackedDm: 1,
      failures: {},
      unanswered: 0,
      resentDuplicates: 0,
      ackMismatches: 0,
      ackCollisions: 0,
      disconnects: 2,
      reconnects: 2,
      closed: [],
      notices: {},
      noticeTexts: [],
      serverErrors: {},
      otherReceived: 0,
    },
    delivery: {
      expected: 3,
      delivered: 3,
      missing: 0,
      duplicates: 0,
      echoes: 0,
      mismatched: 0,
      waitedMs: 0,
    },
    history: { expected: 6, missing: 0, mismatched: 0, duplicates: 0 },
    lost: 0,
    duplicates: 0,
    lostSample: [],
    abuse: emptyAbuseStats(),
    load: {
      cores: 2,
      serverLagMaxMs: 10,
      serverStallsOver1s: 0,
      serverStatsSlowestMs: 5,
      goodLagMaxMs: 10,
      goodStallsOver1s: 0,
      cpuSeconds: { server: 1, good: 1, abusers: 1 },
    },
    errors: [],
    phases: [phase("quiet", 40), phase("error_flood", 70), phase("mixed", 900)],
    mixed: true,
    p99FloorMs: 100,
    attackerAddresses: ["127.0.0.2"],
  };
}

Deno.test("soakFailures: a clean run passes and prints the figures", () => {
  const report = passing();
  assert.deepEqual(soakFailures(report), []);
  const text = formatReport(report).join("\n");
  assert.match(text, /lost: 0/);
  assert.match(text, /duplicates: 0/);
  assert.match(text, /server restarts \(SIGKILL\): 1/);
  assert.match(text, /soak: PASS/);
});

Deno.test("soakFailures: losses, duplicates, a dead server and refused clients each fail it", () => {
  const cases: [string, (r: SoakReport) => void, RegExp][] = [
    ["lost", (r) => r.lost = 2, /2 acknowledged messages lost/],
    ["duplicates", (r) => r.duplicates = 1, /1 duplicate deliveries/],
    ["not serving", (r) => {
      r.server.servingAtEnd = false;
      r.server.servingProblem = "connect_failed";
    }, /not serving at the end: connect_failed/],
    ["crash", (r) => r.server.unexpectedExits.push("code 1"), /exited unasked: code 1/],
    ["no restart", (r) => r.server.restarts = 0, /not killed and restarted/],
    ["nothing acked", (r) => r.good.acked = 0, /nothing was checked/],
    ["refused", (r) => r.good.failures.rate_limited = 3, /sends failed: rate_limited 3/],
    ["gave up", (r) => r.good.closed.push("good1: gave up"), /1 well-behaved clients gave up/],
    ["told off", (r) => r.good.notices.flood = 1, /told off: flood 1/],
    ["altered", (r) => r.history.mismatched = 1, /1 messages altered/],
    ["harness", (r) => r.errors.push("abusers 1 exited"), /abusers 1 exited/],
  ];
  for (const [name, spoil, reason] of cases) {
    const report = passing();
    spoil(report);
    const failures = soakFailures(report);
    assert.equal(failures.length, 1, `${name}: ${failures.join("; ")}`);
    assert.match(failures[0]!, reason, name);
    assert.match(formatReport(report).join("\n"), /soak: FAIL/, name);
  }
});

Deno.test("soakFailures: an attack phase fails on its p99, losses, the probe or a defect", () => {
  const text = formatReport(passing()).join("\n");
  assert.match(text, /error_flood .* PASS/);
  assert.match(text, /mixed .*\(restart\) .* shown/);
  const cases: [string, Partial<PhaseResult>, RegExp][] = [
    ["p99", { p99: 250 }, /error_flood: p99 250 ms, over 2 × max\(quiet 40 ms, floor 100 ms\)/],
    ["lost", { lost: 3 }, /error_flood: 3 acknowledged messages lost/],
    ["stalled", { samples: 100 }, /only 100 sends acknowledged \(the quiet rate gives 500\)/],
    ["probe", {
      probe: { tries: 10, failures: 4, maxMs: 10, errors: ["locked: try later"] },
    }, /login probe failed 4 of 10 times \(locked: try later\)/],
    ["defect", {
      attack: { runs: 40, expected: 0, refused: 0, interrupted: 0, unexpected: 40, lost: 0 },
      unexpected: ["error_flood: 5000 error frames, never cut off"],
    }, /40 of 40 attack connections got through: error_flood: 5000/],
    ["failed sends", { failures: { internal: 2 } }, /sends failed: internal 2/],
  ];
  for (const [name, extra, reason] of cases) {
    const report = passing();
    report.phases[1] = phase("error_flood", 70, extra);
    const failures = soakFailures(report);
    assert.equal(failures.length, 1, `${name}: ${failures.join("; ")}`);
    assert.match(failures[0]!, reason, name);
    assert.match(formatReport(report).join("\n"), /error_flood .* FAIL/, name);
  }
  // Under the floor a ratio over 2 is noise, not a failure; the mixed phase is not judged.
  const noisy = passing();
  noisy.phases[1] = phase("error_flood", 190);
  noisy.phases[2] = phase("mixed", 10_000, {
    lost: 0,
    probe: { tries: 5, failures: 5, maxMs: 1, errors: [] },
  });
  assert.deepEqual(soakFailures(noisy), []);
  assert.match(formatReport(noisy).join("\n"), /yes \(floor\)/);
});

Deno.test("soakFailures: the login probe's failures are not judged after fd_exhaust, all else is", () => {
  const blocked = { tries: 2, failures: 2, maxMs: 10_000, errors: ["timed out"] };
  const report = passing();
  report.phases[1] = phase("fd_exhaust", 70, { kind: "fd_exhaust", probe: blocked });
  assert.deepEqual(soakFailures(report), []);
  report.phases[1] = phase("fd_exhaust", 70, { kind: "fd_exhaust", probe: blocked, lost: 1 });
  assert.equal(soakFailures(report).length, 1);
  report.phases[1] = phase("error_flood", 70, { probe: blocked });
  assert.match(soakFailures(report).join("\n"), /login probe failed 2 of 2 times/);
});
