import assert from "node:assert/strict";
import { runSender, WAYS } from "./write_cost.ts";

Deno.test("write_cost: every way writes its fixed rounds to receivers in another process and reports its CPU", async () => {
  // Tiny fixed work: 3 receivers, 20 rounds of 512 bytes; each way in a sender process.
  const settings = { receivers: 3, roundsPerSecond: 200, ms: 100, bytes: 512 };
  for (const way of Object.keys(WAYS)) {
    const result = await runSender(way, settings);
    assert.equal(result.way, way);
    assert.equal(result.writes, way === "idle" ? 0 : 60, way);
    // Every byte written reached the receivers (counted there).
    assert.equal(result.receivedBytes, result.writes * settings.bytes, way);
    assert.ok(result.cpuUs > 0 && result.systemUs <= result.cpuUs, JSON.stringify(result));
    assert.ok(result.wallMs >= 90, JSON.stringify(result));
  }
});
