import assert from "node:assert/strict";
import { cpuPerDelivery, type LevelResult } from "./fanout.ts";

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
