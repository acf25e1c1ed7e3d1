import assert from "node:assert/strict";
import { medianRound, pastSaturation } from "./main.ts";
import type { FanoutResult, FixedResult, LevelResult } from "./fanout.ts";

/** A fixed-load outcome with only the figure `medianRound` ranks by. */
function ran(deliveriesPerCpuSec: number) {
  return { ok: true as const, value: { deliveriesPerCpuSec } as FixedResult };
}

Deno.test("medianRound: the round of median deliveries per CPU-second, whatever the order run", () => {
  const rounds = [ran(900_000), ran(500_000), ran(700_000)];
  assert.equal(medianRound(rounds), rounds[2]);
  const even = [ran(4), ran(1), ran(3), ran(2)];
  assert.equal(medianRound(even), even[3], "the lower of the two middle rounds");
});

Deno.test("medianRound: failed rounds are left out; all failed gives the first failure", () => {
  const failed = { ok: false as const, error: "refused" };
  const rounds = [failed, ran(2), ran(1)];
  assert.equal(medianRound(rounds), rounds[2]);
  const none = [failed, { ok: false as const, error: "other" }];
  assert.equal(medianRound(none), failed);
});

Deno.test("pastSaturation: the p99 kept up with, and the most delivered level's when another", () => {
  const kept = { deliveredPerSec: 6_377_631, p99: 8.52 } as LevelResult;
  const past = { deliveredPerSec: 8_161_954, p99: 842.4 } as LevelResult;
  const grew = { levels: [kept, past], maxDeliveries: 8_161_954 } as FanoutResult;
  assert.equal(
    pastSaturation(grew, kept),
    "p99 8.52 ms at 6,377,631 kept up with; p99 842 ms at 8,161,954 past it",
  );
  const fell = { levels: [kept], maxDeliveries: 6_377_631 } as FanoutResult;
  assert.equal(pastSaturation(fell, kept), "p99 8.52 ms at 6,377,631 kept up with");
});
