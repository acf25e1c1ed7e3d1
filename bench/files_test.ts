/**
 * The file-transfer benchmark on a small file: real processes, real sockets; only that
 * every transfer arrived intact and was timed, no speed asserted.
 */
import assert from "node:assert/strict";
import { measureFiles } from "./files.ts";

Deno.test("files: raw, relay and peer-to-peer transfers arrive intact and are timed", async () => {
  const result = await measureFiles({ sizeBytes: 2 * 1024 * 1024, timeoutMs: 20_000 });
  assert.equal(result.sizeBytes, 2 * 1024 * 1024);
  for (const figure of [result.raw, result.relay, result.peer]) {
    assert.ok(figure.ms > 0);
    assert.ok(figure.mbPerSec > 0);
  }
  assert.ok(result.relayRatio > 0 && result.peerRatio > 0);
});
