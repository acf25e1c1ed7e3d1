import assert from "node:assert/strict";
import { delay, Probe, testServer } from "./helpers/harness.ts";

Deno.test("drain: everyone is told to reconnect, then sessions close a few at a time", async () => {
  const server = await testServer({ drainWindowMs: 600, metricsPort: 0 });
  const probes: Probe[] = [];
  for (let i = 0; i < 6; i++) probes.push(await Probe.login(server, `user${i}`));
  const closedAt: number[] = [];
  const start = performance.now();
  const watching = probes.map((p) => p.closed(5000).then(() => closedAt.push(performance.now())));
  const stopping = server.shutdown("maintenance");
  for (const probe of probes) {
    const notice = await probe.expect({ type: "notice", code: "shutdown" });
    assert.match(String(notice.text), /maintenance; reconnect/);
  }
  // While draining, the health check says so and nobody new gets in.
  const health = await fetch(`http://127.0.0.1:${server.metricsAddr!.port}/healthz`);
  assert.equal(health.status, 503);
  assert.equal(await health.text(), "draining\n");
  await assert.rejects(Probe.login(server, "latecomer"));
  await stopping;
  await Promise.all(watching);
  const spread = Math.max(...closedAt) - Math.min(...closedAt);
  assert.ok(spread >= 300, `closes spread over ${spread.toFixed(0)} ms, not the 600 ms window`);
  assert.ok(Math.max(...closedAt) - start < 3000);
  for (const probe of probes) probe.close();
});

Deno.test("metrics: Prometheus text with counters, gauges and store latency; /healthz", async () => {
  const server = await testServer({ metricsPort: 0 });
  try {
    const base = `http://127.0.0.1:${server.metricsAddr!.port}`;
    await using alice = await Probe.login(server, "alice");
    await using bob = await Probe.login(server, "bob");
    await alice.ok("say", { room: "lobby", text: "counted" });
    await bob.expect({ type: "msg", text: "counted" });
    await using intruder = await Probe.dial(server);
    await intruder.hello();
    await intruder.fails("login", { nick: "alice", password: "not-hers" }, "wrong_password");

    const response = await fetch(`${base}/metrics`);
    assert.equal(response.status, 200);
    assert.match(response.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
    const text = await response.text();
    const value = (name: string) => {
      const line = text.split("\n").find((l) => l.startsWith(`${name} `));
      assert.ok(line, `${name} missing from:\n${text}`);
      return Number(line.split(" ")[1]);
    };
    assert.equal(value("chat_logins_total"), 2);
    assert.equal(value("chat_auth_failures_total"), 1);
    assert.equal(value("chat_messages_in_total"), 1);
    assert.equal(value("chat_connections"), 3);
    assert.equal(value("chat_sessions"), 2);
    assert.equal(value("chat_online_accounts"), 2);
    assert.equal(value("chat_draining"), 0);
    assert.ok(value("chat_deliveries_total") >= 1);
    assert.ok(value("chat_bytes_in_total") > 0);
    assert.ok(value("chat_bytes_out_total") > 0);
    assert.equal(value("chat_rate_limited_total"), 0);
    assert.match(text, /# TYPE chat_logins_total counter/);
    assert.match(text, /chat_store_seconds_count\{op="appendMessage"\} 1\n/);
    assert.match(text, /chat_store_seconds_bucket\{op="appendMessage",le="\+Inf"\} 1\n/);

    const health = await fetch(`${base}/healthz`);
    assert.equal(health.status, 200);
    assert.equal(await health.text(), "ok\n");
    const missing = await fetch(`${base}/nothing`);
    assert.equal(missing.status, 404);
    await missing.body?.cancel();
    const post = await fetch(`${base}/metrics`, { method: "POST" });
    assert.equal(post.status, 405);
    await post.body?.cancel();
  } finally {
    await server.shutdown();
  }
});

Deno.test("metrics: slow consumer cut-offs, floods and protocol errors are counted", async () => {
  const server = await testServer({
    metricsPort: 0,
    rateMessagesPerSec: 1,
    rateMessagesBurst: 2,
    floodStrikes: 3,
  });
  try {
    await using flooder = await Probe.login(server, "flooder");
    for (let i = 0; i < 8; i++) {
      flooder.send({ type: "say", id: `s${i}`, room: "lobby", text: "x" });
    }
    await flooder.expect({ type: "notice", code: "flood" });
    await using garbage = await Probe.login(server, "garbage");
    garbage.sendRaw(new Uint8Array([0, 0, 0, 6, 0, 0, 0, 2, 0x7b, 0x7b]));
    await garbage.closed();
    await delay(50);
    const text = await (await fetch(`http://127.0.0.1:${server.metricsAddr!.port}/metrics`))
      .text();
    assert.match(text, /\nchat_flood_disconnects_total 1\n/);
    assert.match(text, /\nchat_rate_limited_total [3-9]\n/);
    assert.match(text, /\nchat_protocol_errors_total 1\n/);
  } finally {
    await server.shutdown();
  }
});

Deno.test("drain: sessions closed by a shutdown are not announced to the others", async () => {
  const server = await testServer({ drainWindowMs: 300 });
  const probes: Probe[] = [];
  for (let i = 0; i < 4; i++) probes.push(await Probe.login(server, `quiet${i}`));
  await delay(100);
  for (const probe of probes) probe.received.length = 0;
  await server.shutdown("maintenance");
  for (const probe of probes) {
    await probe.closed();
    assert.deepEqual(
      probe.received.filter((m) => m.type === "presence"),
      [],
      "no logout notices while draining",
    );
    probe.close();
  }
});
