/**
 * The file-transfer benchmark on a small file: real processes, real sockets; only that
 * every transfer arrived intact and was timed, no speed asserted.
 */
import assert from "node:assert/strict";
import { measureFiles } from "./files.ts";

Deno.test("files: raw (plain and durable), relay, peer-to-peer and ceiling transfers arrive intact and are timed", async () => {
  const result = await measureFiles({ sizeBytes: 2 * 1024 * 1024, timeoutMs: 20_000, rounds: 2 });
  assert.equal(result.sizeBytes, 2 * 1024 * 1024);
  assert.equal(result.rounds, 2);
  const figures = [
    result.raw,
    result.rawDurable,
    result.relay,
    result.peer,
    result.relayCeiling,
    result.peerCeiling,
  ];
  for (const figure of figures) {
    assert.ok(figure.ms > 0);
    assert.ok(figure.mbPerSec > 0);
  }
  assert.deepEqual(Object.keys(result.runsMbPerSec), [
    "raw",
    "rawDurable",
    "relay",
    "peer",
    "relayCeiling",
    "peerCeiling",
  ]);
  for (const runs of Object.values(result.runsMbPerSec)) {
    assert.equal(runs.length, 2);
  }
  // The goal's ratio is against the plain copy; the ones against the durable copy beside it.
  assert.ok(result.rawDurableRatio > 0);
  assert.equal(
    result.relayDurableRatio,
    Math.round(result.relay.mbPerSec / result.rawDurable.mbPerSec * 1000) / 1000,
  );
  assert.ok(result.peerDurableRatio > 0);
  // Through the server, the share of the bytes sent from the upload's memory is known.
  assert.ok(result.relay.fromMemory !== undefined);
  assert.ok(result.relay.fromMemory >= 0 && result.relay.fromMemory <= 1);
  assert.equal(result.raw.fromMemory, undefined);
  // And of the bytes read back, the share read synchronously (just written).
  assert.ok(result.relay.readSync !== undefined);
  assert.ok(result.relay.readSync >= 0 && result.relay.readSync <= 1);
  assert.equal(result.raw.readSync, undefined);
  // The median of two runs is the slower one.
  assert.equal(result.relay.mbPerSec, Math.min(...result.runsMbPerSec.relay));
  assert.ok(result.relayRatio > 0 && result.peerRatio > 0);
  assert.ok(result.relayCeilingRatio > 0 && result.peerCeilingRatio > 0);
  // The bounds: never beyond the raw copy, three processes through the server.
  for (const bound of [result.relayBound, result.peerBound]) {
    assert.ok(bound !== null && bound.ratio > 0 && bound.ratio <= 1 && bound.ms >= result.raw.ms);
  }
  assert.deepEqual(Object.keys(result.relayBound!.processMs), ["sender", "server", "receiver"]);
  assert.ok(
    "hop" in result.relayCeiling.cpuMs || Object.keys(result.relayCeiling.cpuMs).length === 0,
  );
});

Deno.test("files: the kinds asked for alone; the others are zero", async () => {
  const result = await measureFiles({
    sizeBytes: 1024 * 1024,
    timeoutMs: 20_000,
    rounds: 1,
    kinds: ["raw", "relay"],
  });
  assert.ok(result.raw.mbPerSec > 0 && result.relay.mbPerSec > 0 && result.relayRatio > 0);
  assert.deepEqual(result.runsMbPerSec.peer, []);
  assert.equal(result.peer.mbPerSec, 0);
  assert.equal(result.peerRatio, 0);
  assert.equal(result.relayCeilingRatio, 0);
  assert.equal(result.rawDurable.mbPerSec, 0);
  assert.equal(result.relayDurableRatio, 0);
  assert.ok(result.byteCosts !== null && result.byteCosts.sha256 > 0);
});
