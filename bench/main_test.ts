import assert from "node:assert/strict";
import { medianRound } from "./main.ts";
import type { FixedResult } from "./fanout.ts";

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
