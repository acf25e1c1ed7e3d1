import assert from "node:assert/strict";
import { PartialFrameBudget } from "./partial_frame_budget.ts";

Deno.test("PartialFrameBudget: reserves up to its limit, read live; 0 is no limit", () => {
  let limit = 1000;
  const budget = new PartialFrameBudget(() => limit);
  assert.equal(budget.tryReserve(600), true);
  assert.equal(budget.tryReserve(500), false);
  assert.equal(budget.held, 600);
  limit = 2000; // a reload applies at the next reservation
  assert.equal(budget.tryReserve(500), true);
  budget.release(1100);
  assert.equal(budget.held, 0);
  budget.release(10); // never below zero
  assert.equal(budget.held, 0);
  limit = 0;
  assert.equal(budget.tryReserve(1e12), true);
});
