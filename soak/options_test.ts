import assert from "node:assert/strict";
import { FULL_SOAK, parseSoakArgs, QUICK_SOAK, SoakUsageError } from "./options.ts";
import { ATTACK_KINDS } from "./attacks.ts";
import {
  killTimeMs,
  phasesMs,
  planPhases,
  slowlorisCount,
  SOAK_FRAME_TIMEOUT_MS,
  soakOverrides,
  trafficWindowMs,
} from "./soak.ts";

Deno.test("parseSoakArgs: the full run by default, --quick, and numbers checked", () => {
  const full = parseSoakArgs([])!;
  assert.equal(full.durationSec, 120);
  assert.equal(full.abusiveConnections, 3000);
  assert.equal(full.goodClients, 100);
  const quick = parseSoakArgs(["--quick", "--seed", "7", "--clients", "12"])!;
  assert.equal(quick.durationSec, QUICK_SOAK.durationSec);
  assert.equal(quick.abusiveConnections, 500);
  assert.equal(quick.seed, 7);
  assert.equal(quick.goodClients, 12);
  assert.equal(parseSoakArgs(["--help"]), null);
  assert.throws(() => parseSoakArgs(["--duration", "ten"]), SoakUsageError);
  assert.throws(() => parseSoakArgs(["--clients", "1"]), /from 2 to/);
  assert.throws(() => parseSoakArgs(["--frobnicate"]), SoakUsageError);
});

Deno.test("the run's timeline: a traffic window, a kill that lets slowloris meet the deadline", () => {
  assert.equal(trafficWindowMs(120), 100_000);
  assert.equal(trafficWindowMs(20), 15_000);
  // Midway when there is room for a 10 s login deadline before it...
  assert.equal(killTimeMs(100_000, 0.5, 10_000), 50_000);
  // ...later when not, but always 3 s before the window ends.
  assert.equal(killTimeMs(15_000, 0.5, 10_000), 11_500);
  assert.equal(killTimeMs(6_000, 0.5, 10_000), 3_000);
  assert.equal(slowlorisCount(3000), 300);
});

Deno.test("soakOverrides: the per-IP cap raised to fit everyone, a short frame deadline, registration limits off", () => {
  assert.deepEqual(soakOverrides({ ...FULL_SOAK }), {
    maxConnectionsPerIp: 1000,
    frameTimeoutMs: SOAK_FRAME_TIMEOUT_MS,
    registrationsPerMinutePerIp: 0,
    registrationsPerMinute: 0,
  });
  const crowded = soakOverrides({ ...FULL_SOAK, goodClients: 900, abuserConcurrency: 300 });
  assert.equal(crowded.maxConnectionsPerIp, 900 + 300 + 300 + 100);
});

Deno.test("parseSoakArgs: the attack phases are chosen on the command line", () => {
  const full = parseSoakArgs([])!;
  assert.deepEqual(full.attacks, [...ATTACK_KINDS]);
  assert.ok(full.mixed);
  const picked = parseSoakArgs([
    "--attacks",
    "ping_flood,dm_backlog",
    "--no-mixed",
    "--phase",
    "4",
    "--floor",
    "50",
    "--password-cost",
    "32768",
  ])!;
  assert.deepEqual(picked.attacks, ["ping_flood", "dm_backlog"]);
  assert.equal(picked.mixed, false);
  assert.equal(picked.p99FloorMs, 50);
  assert.equal(picked.serverOverrides.passwordCost, 32768);
  assert.deepEqual(planPhases(picked).map((p) => [p.name, p.ms]), [
    ["quiet", 15_000],
    ["ping_flood", 4000],
    ["dm_backlog", 4000],
    ["quiet_end", 15_000],
  ]);
  assert.deepEqual(parseSoakArgs(["--attacks", "none"])!.attacks, []);
  const all = parseSoakArgs(["--attacks", "all"])!.attacks;
  assert.ok(all.includes("flood") && all.includes("wrong_password") && !all.includes("slowloris"));
  assert.throws(
    () => parseSoakArgs(["--attacks", "ping_flood,teleport"]),
    /unknown kind "teleport"/,
  );
  assert.throws(() => parseSoakArgs(["--password-cost", "1000"]), /power of 2/);
  // TLS: its own attack, no mixed phase; the others speak in the clear.
  const tls = parseSoakArgs(["--tls"])!;
  assert.deepEqual([tls.tls, tls.attacks, tls.mixed], [true, ["silent_tls"], false]);
  assert.ok(!parseSoakArgs(["--attacks", "all"])!.attacks.includes("silent_tls"));
  assert.throws(() => parseSoakArgs(["--attacks", "silent_tls"]), /silent_tls needs --tls/);
  assert.throws(
    () => parseSoakArgs(["--tls", "--attacks", "ping_flood"]),
    /ping_flood cannot run with --tls/,
  );
});

Deno.test("planPhases: the quiet phase, then each attack with its length and concurrency", () => {
  const phases = planPhases({ ...FULL_SOAK, attacks: ["partial_frame", "flood"] });
  assert.deepEqual(phases, [
    { name: "quiet", kind: null, ms: 15_000, concurrency: 0 },
    { name: "partial_frame", kind: "partial_frame", ms: 20_000, concurrency: 32 },
    { name: "flood", kind: "flood", ms: 10_000, concurrency: 8 },
    { name: "quiet_end", kind: null, ms: 15_000, concurrency: 0 },
  ]);
  // Warm-up, the phases, a settling pause between two.
  assert.equal(
    phasesMs({ ...FULL_SOAK, attacks: ["partial_frame", "flood"] }),
    2000 + 60_000 + 3 * 2000,
  );
  assert.deepEqual(planPhases({ ...FULL_SOAK, attacks: [] }).map((p) => p.name), ["quiet"]);
});
