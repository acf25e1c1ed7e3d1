import assert from "node:assert/strict";
import { decodePayload, encodeFrame } from "../protocol/frame.ts";
import { ProtocolError } from "../protocol/errors.ts";
import { BudgetedFrameDecoder, UNBUDGETED_FRAME_BYTES } from "./budgeted_frame_decoder.ts";
import { PartialFrameBudget } from "./partial_frame_budget.ts";

Deno.test("BudgetedFrameDecoder: a large payload is reserved while under way, given back once complete", () => {
  const budget = new PartialFrameBudget(() => 1024 * 1024);
  const given: number[] = [];
  const decoder = new BudgetedFrameDecoder(budget, {
    allocate: (length) => {
      given.push(length);
      return new Uint8Array(length);
    },
  });
  const frame = encodeFrame({ type: "big" }, new Uint8Array(UNBUDGETED_FRAME_BYTES));
  assert.deepEqual(decoder.push(frame.subarray(0, 100)), []);
  assert.equal(budget.held, frame.length - 4);
  assert.equal(decoder.reserved, frame.length - 4);
  const [payload] = decoder.push(frame.subarray(100));
  assert.equal(decodePayload(payload).header.type, "big");
  assert.equal(budget.held, 0);
  assert.deepEqual(given, [frame.length - 4], "allocated through the `allocate` option");
  // A small frame is not counted.
  decoder.push(encodeFrame({ type: "small" }).subarray(0, 8));
  assert.equal(budget.held, 0);
});

Deno.test("BudgetedFrameDecoder: a payload the budget cannot hold fails with server_busy; release gives back", () => {
  const budget = new PartialFrameBudget(() => UNBUDGETED_FRAME_BYTES * 3);
  const first = new BudgetedFrameDecoder(budget, {});
  const second = new BudgetedFrameDecoder(budget, {});
  const frame = encodeFrame({ type: "big" }, new Uint8Array(UNBUDGETED_FRAME_BYTES * 2));
  first.push(frame.subarray(0, 10));
  assert.throws(
    () => second.push(frame.subarray(0, 10)),
    (err) => err instanceof ProtocolError && err.code === "server_busy",
  );
  first.release();
  assert.equal(budget.held, 0);
  assert.equal(new BudgetedFrameDecoder(budget, {}).push(frame).length, 1);
  assert.equal(budget.held, 0);
});
