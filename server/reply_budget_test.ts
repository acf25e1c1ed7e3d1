import assert from "node:assert/strict";
import { fitFirst, fitLast, replyBudget, replyFloor } from "./reply_budget.ts";

Deno.test("fitFirst and fitLast keep what fits in the budget, by JSON size", () => {
  const items = ["aaaa", "\u0001", "cccc"]; // 7, 9 and 7 bytes with their commas
  assert.deepEqual(fitFirst(items, 16), { items: ["aaaa", "\u0001"], cut: true, bytes: 16 });
  assert.deepEqual(fitLast(items, 16), { items: ["\u0001", "cccc"], cut: true, bytes: 16 });
  assert.deepEqual(fitFirst(items, 100).cut, false);
  assert.deepEqual(fitFirst([], 0), { items: [], cut: false, bytes: 0 });
});

Deno.test("a page keeps one item over the budget when it fits the floor", () => {
  const big = "x".repeat(100);
  assert.deepEqual(fitFirst([big, "y"], 10).items, []);
  assert.deepEqual(fitFirst([big, "y"], 10, 200).items, [big]);
  assert.deepEqual(fitLast(["y", big], 10, 200).items, [big]);
  assert.equal(replyBudget(4 * 1024 * 1024), 512 * 1024);
  assert.equal(replyFloor(1024), 768);
});
