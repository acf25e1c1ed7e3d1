import assert from "node:assert/strict";
import { labeledLines } from "./irc_labels.ts";

Deno.test("labeledLines: ACK for none, the label on one, a batch for several", () => {
  assert.deepEqual(labeledLines("a", [], true, "b"), ["@label=a :chat.server ACK"]);
  assert.deepEqual(labeledLines("a", ["@time=t PONG x"], true, "b"), ["@time=t;label=a PONG x"]);
  assert.deepEqual(labeledLines("a b", ["L1", "@batch=in L2"], true, "out"), [
    "@label=a\\sb :chat.server BATCH +out labeled-response",
    "@batch=out L1",
    "@batch=in L2",
    ":chat.server BATCH -out",
  ]);
  assert.deepEqual(labeledLines("a", ["L1", "L2"], false, "b"), ["L1", "L2"], "no batch cap");
});
