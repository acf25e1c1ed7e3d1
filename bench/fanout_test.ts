import assert from "node:assert/strict";
import {
  awaitDeliveries,
  cpuPerDelivery,
  type FanoutResult,
  levelFailure,
  type LevelResult,
  saturationLevel,
} from "./fanout.ts";

function level(kind: string, deliveredPerSec: number, target: number, loads: number[]) {
  return { kind, deliveredPerSec, cpu: { target, loads, other: 0 } } as LevelResult;
}

Deno.test("CPU per delivery: CPU shares over deliveries of the ramp levels, the half-max run left out", () => {
  const result = cpuPerDelivery([
    level("ramp", 100_000, 10, [5, 5]), // 0.1 core over 100,000/s: 1 µs
    level("ramp-repeat", 300_000, 50, [20, 10]),
    level("half", 50_000, 90, [90, 90]),
  ]);
  // target: 0.6 core / 400,000/s = 1.5 µs; loads: 0.4 core / 400,000/s = 1 µs
  assert.deepEqual(result, { target: 1.5, loads: 1 });
  assert.ok(Number.isNaN(cpuPerDelivery([]).target));
});

Deno.test("awaitDeliveries: waits until every delivery has been counted, not for a silence", async () => {
  // Counts that stall for a while (a busy target with a backlog) before going on.
  const seen = [0, 300, 300, 300, 300, 300, 700, 1000, 1000];
  let polls = 0;
  const r = await awaitDeliveries(
    () => Promise.resolve({ delivered: seen[Math.min(polls++, seen.length - 1)], errors: 0 }),
    1000,
    99,
    60_000,
    1,
  );
  assert.deepEqual([r.delivered, r.undelivered], [1000, 0]);
  assert.equal(polls, 8, "stops at the first count that reaches the expected one");
});

Deno.test("awaitDeliveries: refused messages are not waited for; a deadline ends the wait with what is missing", async () => {
  // 10 messages to 9 other members each, 2 refused: 72 deliveries to wait for.
  const refused = await awaitDeliveries(
    () => Promise.resolve({ delivered: 72, errors: 2 }),
    90,
    9,
    60_000,
  );
  assert.equal(refused.undelivered, 0);
  let polls = 0;
  const stuck = await awaitDeliveries(
    () => Promise.resolve({ delivered: 40 + Math.min(polls++, 5), errors: 0 }),
    90,
    9,
    100,
    5,
  );
  assert.equal(stuck.undelivered, 45);
  assert.ok(stuck.ms >= 100, `gave up after ${stuck.ms} ms`);
});

Deno.test("levelFailure: a level with deliveries missing failed, with what and where", () => {
  const base = { kind: "ramp-repeat", offeredDeliveries: 3_200_000, drainMs: 20_004 };
  assert.equal(levelFailure({ ...base, undelivered: 0 } as LevelResult), null);
  assert.equal(
    levelFailure({ ...base, undelivered: 1234 } as LevelResult),
    "ramp-repeat level at 3200000 deliveries/s offered: 1234 deliveries still missing 20 s after sending",
  );
});

/** A ramp as the full run of 2026-12-06 measured it: [kind, delivered/s, p99 ms, saturated]. */
function ramp(levels: [string, number, number, boolean][]): FanoutResult {
  const ls = levels.map(([kind, deliveredPerSec, p99, saturated]) =>
    ({ kind, deliveredPerSec, p99, saturated }) as LevelResult
  );
  return {
    levels: ls,
    maxDeliveries: Math.max(...ls.map((l) => l.deliveredPerSec)),
  } as FanoutResult;
}

Deno.test("saturationLevel: the most delivered ramp level kept up with, not a level past it", () => {
  // The server's throughput still grew past its saturation point (8.16M delivered while
  // falling behind, p99 842 ms); InspIRCd's fell past its own (2.69M, p99 55 s).
  const server = ramp([
    ["ramp", 3_189_391, 8.69, false],
    ["ramp", 5_079_854, 578.25, true],
    ["ramp-repeat", 6_377_631, 8.52, false],
    ["ramp", 8_161_954, 842.4, true],
    ["half", 4_074_674, 8.03, false],
  ]);
  const inspircd = ramp([
    ["ramp", 1_591_976, 18.81, false],
    ["ramp", 2_960_525, 166.07, false],
    ["ramp", 2_688_380, 54_973.65, true],
  ]);
  assert.equal(saturationLevel(server)?.deliveredPerSec, 6_377_631);
  assert.equal(saturationLevel(server)?.p99, 8.52);
  assert.equal(saturationLevel(inspircd)?.deliveredPerSec, 2_960_525);
  // The half-max run is not a ramp level, however much it delivered.
  const halfMost = ramp([["ramp", 100, 1, false], ["ramp", 200, 900, true], [
    "half",
    150,
    2,
    false,
  ]]);
  assert.equal(saturationLevel(halfMost)?.deliveredPerSec, 100);
  assert.equal(saturationLevel(ramp([["ramp", 200, 900, true]])), undefined);
});
