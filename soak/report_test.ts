import assert from "node:assert/strict";
import { emptyAbuseStats } from "./abuse.ts";
import { formatReport, soakFailures, type SoakReport } from "./report.ts";

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
