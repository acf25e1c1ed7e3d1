/**
 * End-to-end checks of the benchmark machinery on tiny sizes: real processes, real
 * sockets, no timing asserted — only that what was sent was counted and nothing broke.
 */
import assert from "node:assert/strict";
import { withCluster } from "./cluster.ts";
import { measureFanout, measureFixed, openRoom } from "./fanout.ts";
import { INSPIRCD_SKIP } from "./inspircd.ts";
import { measureIdle } from "./idle.ts";
import { measureStorm } from "./storm.ts";
import { measureDurable, measureLoneWriter } from "./durable.ts";
import { measureSyncFloor } from "./sync_floor.ts";
import { measureClusterNodes } from "./cluster_nodes.ts";
import { CLUSTER_SKIP } from "../tests/helpers/cluster_nodes.ts";
import { measureLoginRate } from "./login_rate.ts";

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
    // Each level waited for all its deliveries: the next one started from an idle target.
    assert.deepEqual([ramp.undelivered, half.undelivered, result.failure], [0, 0, null]);
  });
}

for (const target of ["server", "relay"] as const) {
  Deno.test(`fixed load through the ${target}: a warm-up, then one measured level at the offered rate`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "chat-bench-test-" });
    try {
      const plan = { ...tiny, deliveries: 500, warmupMs: 100, durationMs: 300 };
      const result = await withCluster(
        // The suite's fixed-load server is durable: SQLite in a data folder.
        { target, loads: 2, serverArgs: ["--data-dir", dir] },
        (cluster) => measureFixed(cluster, plan),
      );
      assert.equal(result.target, target);
      assert.equal(result.level.kind, "fixed");
      assert.equal(result.level.sent, 30); // 500 deliveries/s ÷ 5 receivers × 0.3 s
      assert.equal(result.level.offeredDeliveries, 500);
      assert.equal(result.level.errors, 0, result.level.firstError);
      assert.ok(result.level.samples > 0, "probes recorded latencies");
      assert.ok(result.deliveriesPerCpuSec > 0);
      if (target === "server") {
        assert.ok(result.store, "the SQLite server's commits are reported");
        assert.ok(result.store.appends >= 30, `appends: ${result.store.appends}`);
        assert.ok(result.store.walSyncs >= 1);
      } else assert.equal(result.store, undefined);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

for (const auth of ["none", "password"] as const) {
  Deno.test(`fan-out over IRC connections (--auth ${auth}): PRIVMSGs sent, deliveries and latency counted`, async () => {
    const dir = auth === "password" ? await Deno.makeTempDir({ prefix: "chat-bench-test-" }) : "";
    try {
      const result = await withCluster(
        {
          target: "server",
          loads: 2,
          serverArgs: auth === "password"
            ? ["--irc", "--auth", "password", "--data-dir", dir]
            : ["--irc", "--memory"],
          irc: true,
          // With --auth password, the first PASS of a nick registers its account.
          ...(auth === "password" ? { ircPassword: "bench-password-1" } : {}),
        },
        (cluster) => measureFanout(cluster, tiny),
      );
      assert.equal(result.target, "irc");
      const [ramp, half] = result.levels;
      assert.equal(ramp.sent, 30);
      assert.equal(ramp.dropped, 0);
      assert.equal(ramp.errors, 0, ramp.firstError);
      assert.ok(ramp.samples > 0, "probes recorded latencies");
      assert.ok(ramp.deliveredPerSec > 0);
      assert.equal(half.kind, "half");
      assert.deepEqual([ramp.undelivered, half.undelivered, result.failure], [0, 0, null]);
    } finally {
      if (dir !== "") await Deno.remove(dir, { recursive: true });
    }
  });
}

if (INSPIRCD_SKIP !== null) {
  console.warn(`bench/suite_test.ts: ${INSPIRCD_SKIP}; its test is skipped`);
}

Deno.test({
  name:
    "InspIRCd baseline: a burst of PRIVMSGs is delivered whole (no flood control), then it is stopped and its folder removed",
  ignore: INSPIRCD_SKIP !== null,
  async fn() {
    const room = "room6";
    let pid = 0;
    let dir = "";
    await withCluster({ target: "inspircd", loads: 2 }, async (cluster) => {
      pid = cluster.target.pid;
      dir = String(cluster.target.info.dir);
      assert.equal(cluster.mode, "inspircd");
      await openRoom(cluster, tiny, room);
      await Promise.all(cluster.loads.map((l) => l.request("stats", { reset: true })));
      // 500 PRIVMSGs in half a second from each sender: InspIRCd's default flood control
      // (a penalty threshold of 10 commands, 1 a second) would hold them back for minutes.
      const runs = await Promise.all(
        cluster.loads.map((l) =>
          l.request("run", { group: "senders", rate: 1000, durationMs: 500, room }, 30_000)
        ),
      );
      const sent = runs.reduce((n, r) => n + Number(r.sent), 0);
      assert.equal(sent, 1000);
      assert.equal(runs.reduce((n, r) => n + Number(r.dropped), 0), 0);
      // Every message reaches the room's 5 other members: wait for the count, or fail.
      const wanted = sent * (tiny.members - 1);
      let counters: Record<string, number>[] = [];
      const deadline = Date.now() + 30_000;
      while (Date.now() < deadline) {
        const stats = await Promise.all(cluster.loads.map((l) => l.request("stats")));
        counters = stats.map((s) => s.counters as Record<string, number>);
        if (counters.reduce((n, c) => n + c.messages, 0) >= wanted) break;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      assert.equal(counters.reduce((n, c) => n + c.messages, 0), wanted);
      assert.equal(counters.reduce((n, c) => n + c.errors, 0), 0, String(counters[0]?.firstError));
    });
    assert.ok(pid > 0);
    assert.throws(() => Deno.statSync(`/proc/${pid}`), "inspircd has exited");
    assert.throws(() => Deno.statSync(dir), "its temp folder is removed");
  },
});

Deno.test({
  name: "InspIRCd baseline: fan-out and fixed load through the same IRC load clients",
  ignore: INSPIRCD_SKIP !== null,
  async fn() {
    const fan = await withCluster(
      { target: "inspircd", loads: 2 },
      (cluster) => measureFanout(cluster, tiny),
    );
    assert.equal(fan.target, "inspircd");
    const [ramp, half] = fan.levels;
    assert.equal(ramp.sent, 30); // 500 deliveries/s ÷ 5 receivers × 0.3 s
    assert.equal(ramp.errors, 0, ramp.firstError);
    assert.ok(ramp.samples > 0, "probes recorded latencies");
    assert.equal(half.kind, "half");
    assert.deepEqual([ramp.undelivered, half.undelivered, fan.failure], [0, 0, null]);
    const plan = { ...tiny, deliveries: 500, warmupMs: 100, durationMs: 300 };
    const fixed = await withCluster(
      { target: "inspircd", loads: 2 },
      (cluster) => measureFixed(cluster, plan),
    );
    assert.equal(fixed.level.sent, 30);
    assert.equal(fixed.level.errors, 0, fixed.level.firstError);
    assert.ok(fixed.deliveriesPerCpuSec > 0);
    assert.equal(fixed.store, undefined);
  },
});

Deno.test("fan-out over the browser client's WebSocket: each message's frames counted, latency read", async () => {
  const result = await withCluster(
    { target: "server", loads: 2, serverArgs: ["--web", "--memory"], web: true },
    (cluster) => measureFanout(cluster, tiny),
  );
  assert.equal(result.target, "server");
  const [ramp, half] = result.levels;
  assert.equal(ramp.sent, 30); // 500 deliveries/s ÷ 5 receivers × 0.3 s
  assert.equal(ramp.dropped, 0);
  assert.equal(ramp.errors, 0, ramp.firstError);
  assert.ok(ramp.samples > 0, "probes recorded latencies");
  assert.ok(ramp.deliveredPerSec > 0);
  assert.equal(half.kind, "half");
  assert.deepEqual([ramp.undelivered, half.undelivered, result.failure], [0, 0, null]);
});

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

Deno.test("lone writer: one say at a time, each its own commit; the bare floor is measured", async () => {
  const dir = await Deno.makeTempDir({ prefix: "chat-bench-test-" });
  try {
    const result = await withCluster(
      { target: "server", loads: 1, serverArgs: ["--data-dir", dir] },
      (cluster) => measureLoneWriter(cluster, { warmupMs: 100, durationMs: 300 }),
    );
    assert.equal(result.store, "sqlite");
    assert.equal(result.errors, 0, result.firstError);
    assert.equal(result.outstanding, 1);
    assert.ok(result.ackedPerSec > 0 && result.p50 > 0);
    assert.ok(result.commits !== undefined && result.commits.appends > 0);
    assert.equal(result.commits.largestBatch, 1, "one message in flight at a time");
    const floor = await measureSyncFloor(dir, { warmupMs: 0, durationMs: 100 });
    assert.ok(floor.perSec > 0 && floor.p50 > 0 && floor.commitP50 > 0);
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

Deno.test("cluster: one SQLite node and two nodes on PostgreSQL + NATS deliver across nodes", async () => {
  const result = await measureClusterNodes({
    setups: [{ engines: "sqlite", nodes: 1 }, { engines: "pg", nodes: 2 }],
    rooms: [{ members: 8, fixedMsgs: 50 }],
    loads: 2,
    sendersPerLoad: 1,
    probesPerLoad: 2,
    startDeliveries: 300,
    step: 2,
    maxLevels: 1,
    levelMs: 300,
    durable: { sendersPerLoad: 1, window: 4, durationMs: 300 },
  }, { pin: false, log: () => {} });
  // Without PostgreSQL or nats-server only the SQLite node runs, and the reason is given.
  assert.equal(result.setups.length, CLUSTER_SKIP === null ? 2 : 1);
  assert.equal(result.skipped, CLUSTER_SKIP);
  for (const setup of result.setups) {
    assert.ok(setup.ok, setup.ok ? "" : `${setup.name}: ${setup.error}`);
    const v = setup.value;
    assert.equal(v.crossNode, setup.setup.nodes > 1);
    const [room] = v.rooms;
    assert.ok(room.ok, room.ok ? "" : room.error);
    const [ramp, fixed] = room.value.levels;
    assert.equal(room.value.levels.length, 2); // one ramp level and the fixed-rate run
    assert.equal(fixed.kind, "fixed");
    assert.equal(fixed.sent, 30); // 50 msgs/s × 0.6 s
    for (const level of [ramp, fixed]) {
      assert.equal(level.dropped, 0);
      assert.equal(level.errors, 0, level.firstError);
      assert.equal(level.nodesCpu.nodes.length, setup.setup.nodes);
      // A level ends once every delivery has arrived (through NATS too), so each level's
      // probes (on the node after their senders': with two nodes, cross-node) have timed
      // their own senders' messages.
      assert.equal(level.undelivered, 0, `${setup.name}: ${level.kind} level drained`);
      assert.ok(level.samples > 0, `${setup.name}: probes recorded latencies`);
    }
    assert.ok(v.durable.ok, v.durable.ok ? "" : v.durable.error);
    assert.equal(v.durable.value.errors, 0, v.durable.value.firstError);
    assert.ok(v.durable.value.ackedPerSec > 0);
  }
});

Deno.test("login storm: every client logs in; presence past the threshold is not everyone's", async () => {
  const run = (allMax: number) =>
    withCluster(
      {
        target: "server",
        loads: 1,
        serverArgs: ["--memory", "--presence-all-max", String(allMax)],
      },
      (cluster) => measureLoginRate(cluster, { clients: 40, concurrency: 10, roomSize: 5 }),
    );
  const targeted = await run(10);
  const everyone = await run(100);
  assert.equal(targeted.clients, 40);
  assert.equal(everyone.clients, 40);
  // Everyone told: the first client hears the 39 others; past 10 online, only the first
  // 10 logins (the lobby, of 40, is a crowd; the rooms are joined after each login).
  assert.ok(everyone.presenceBytesMax > 0);
  assert.ok(
    targeted.presenceBytesMax < everyone.presenceBytesMax / 2,
    `${targeted.presenceBytesMax} against ${everyone.presenceBytesMax}`,
  );
});
