/**
 * End-to-end checks of the benchmark machinery on tiny sizes: real processes, real
 * sockets, no timing asserted — only that what was sent was counted and nothing broke.
 */
import assert from "node:assert/strict";
import { withCluster } from "./cluster.ts";
import { measureFanout } from "./fanout.ts";
import { measureIdle } from "./idle.ts";
import { measureStorm } from "./storm.ts";
import { measureDurable } from "./durable.ts";

const tiny = {
  members: 6,
  sendersPerLoad: 1,
  probesPerLoad: 2,
  startDeliveries: 500,
  step: 2,
  maxLevels: 1,
  levelMs: 300,
};

for (const target of ["server", "relay"] as const) {
  Deno.test(`fan-out through the ${target}: sends, deliveries and latency are counted`, async () => {
    const result = await withCluster(
      { target, loads: 2, serverArgs: ["--memory"] },
      (cluster) => measureFanout(cluster, tiny),
    );
    assert.equal(result.levels.length, 2); // one ramp level and the half-max run
    const [ramp, half] = result.levels;
    assert.equal(ramp.sent, 30); // 500 deliveries/s ÷ 5 receivers × 0.3 s
    assert.equal(ramp.dropped, 0);
    assert.equal(ramp.errors, 0, ramp.firstError);
    assert.ok(ramp.samples > 0, "probes recorded latencies");
    assert.ok(ramp.deliveredPerSec > 0);
    assert.ok(result.maxDeliveries > 0);
    assert.equal(half.kind, "half");
  });
}

Deno.test("durable: acknowledged appends are counted, SQLite group commits reported", async () => {
  const dir = await Deno.makeTempDir({ prefix: "chat-bench-test-" });
  try {
    const result = await withCluster(
      { target: "server", loads: 1, serverArgs: ["--data-dir", dir] },
      (cluster) => measureDurable(cluster, { sendersPerLoad: 2, window: 4, durationMs: 300 }),
    );
    assert.equal(result.store, "sqlite");
    assert.equal(result.errors, 0, result.firstError);
    assert.ok(result.ackedPerSec > 0);
    assert.ok(result.commits !== undefined && result.commits.commits > 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("reconnect storm: every client resumes and holds every message once", async () => {
  const result = await withCluster(
    { target: "server", loads: 2, serverArgs: ["--memory"] },
    (cluster) => measureStorm(cluster, { clients: 20, senderRate: 50, leadMs: 300, tailMs: 500 }),
  );
  assert.equal(result.resumed, 20, result.firstFailure);
  assert.ok(result.sent >= 30);
  assert.equal(result.missing, 0);
  assert.equal(result.duplicates, 0);
});

Deno.test("idle: connections are held and memory is read from the target", async () => {
  const result = await withCluster(
    { target: "server", loads: 1, serverArgs: ["--memory"], v8Flags: ["--expose-gc"] },
    (cluster) =>
      measureIdle(cluster, {
        connections: 30,
        concurrency: 8,
        settleTimeoutMs: 5000,
        deadlineMs: 10_000,
        rssSettleWindowMs: 1000,
      }),
  );
  assert.equal(result.connections, 30, result.firstFailure);
  assert.equal(result.gc, true);
  assert.ok(result.rssAfterKiB > 0 && result.rssBeforeKiB > 0);
  assert.ok(Number.isFinite(result.rssPerConn));
});
