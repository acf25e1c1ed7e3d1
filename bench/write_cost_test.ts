import assert from "node:assert/strict";
import { runSender, WAYS } from "./write_cost.ts";

Deno.test("write_cost: every way writes its fixed rounds to receivers in another process and reports its CPU", async () => {
  // Tiny fixed work: 3 receivers, 20 rounds of 512 bytes; each way in a sender process.
  const settings = { receivers: 3, roundsPerSecond: 200, ms: 100, bytes: 512 };
  for (const way of Object.keys(WAYS)) {
    const result = await runSender(way, settings);
    assert.equal(result.way, way);
    assert.equal(result.writes, way === "idle" ? 0 : 60, way);
    // Every byte written reached the receivers (counted there); the empty sends carry none.
    const bytes = way === "ffi-send-empty" ? 0 : settings.bytes;
    assert.equal(result.receivedBytes, result.writes * bytes, way);
    assert.ok(result.cpuUs > 0 && result.systemUs <= result.cpuUs, JSON.stringify(result));
    assert.ok(result.wallMs >= 90, JSON.stringify(result));
  }
});

Deno.test("write_cost: the floor ways (FFI send, node:net's native handle) write on the connections' own sockets, the empty send nothing", async () => {
  const settings = { receivers: 4, roundsPerSecond: 200, ms: 100, bytes: 300 };
  for (const way of ["ffi-send", "node-handle"]) {
    const full = await runSender(way, settings);
    assert.equal(full.writes, 80, way);
    assert.equal(full.receivedBytes, 80 * 300, JSON.stringify(full));
  }
  const empty = await runSender("ffi-send-empty", settings);
  assert.equal(empty.writes, 80);
  assert.equal(empty.receivedBytes, 0, JSON.stringify(empty));
});
