import assert from "node:assert/strict";
import { FULL_SOAK, parseSoakArgs, QUICK_SOAK, SoakUsageError } from "./options.ts";
import { killTimeMs, slowlorisCount, soakOverrides, trafficWindowMs } from "./soak.ts";

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

Deno.test("soakOverrides: only the per-IP cap changes, raised to fit everyone", () => {
  assert.deepEqual(soakOverrides({ ...FULL_SOAK }), { maxConnectionsPerIp: 1000 });
  const crowded = soakOverrides({ ...FULL_SOAK, goodClients: 900, abuserConcurrency: 300 });
  assert.equal(crowded.maxConnectionsPerIp, 900 + 300 + 300 + 100);
});
