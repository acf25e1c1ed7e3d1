/**
 * Frames that start and never finish: a started frame must arrive within the frame
 * timeout whatever the idle timeout, and the bytes held for unfinished frames over all
 * connections have a bound.
 */

import assert from "node:assert/strict";
import { delay, Probe, testServer, until } from "./helpers/harness.ts";

/** The first bytes of a frame announcing a payload of `length` bytes: its prefix and a few. */
function startOfFrame(length: number): Uint8Array {
  const bytes = new Uint8Array(4 + 10);
  new DataView(bytes.buffer).setUint32(0, length);
  return bytes;
}

/** Polls `check` every 20 ms until it is true, failing after `ms`. */
async function eventually(check: () => Promise<boolean>, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error("timed out waiting for a metric");
    await delay(20);
  }
}

/** Reads a gauge or counter from the server's /metrics. */
async function metric(port: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name} `));
  assert.ok(line, `${name} missing`);
  return Number(line.split(" ")[1]);
}

Deno.test("partial frames: a frame that has started must finish within --frame-timeout, even with --idle-timeout 0", async () => {
  const server = await testServer({ idleTimeoutSec: 0, frameTimeoutMs: 500, metricsPort: 0 });
  try {
    await using staller = await Probe.login(server, "staller");
    await using steady = await Probe.login(server, "steady");
    staller.sendRaw(startOfFrame(1_000_000));
    const error = await staller.expect({ type: "error", code: "frame_timeout" }, 5000);
    assert.match(String(error.message), /within 0\.5 s/);
    await staller.closed(5000);
    // A session that finishes its frames is not touched.
    await steady.ok("ping");
    assert.equal(await metric(server.metricsAddr!.port, "chat_frame_timeouts_total"), 1);
  } finally {
    await server.shutdown();
  }
});

Deno.test("partial frames: the bytes held for unfinished frames over all sessions are bounded", async () => {
  const bound = 3 * 1024 * 1024;
  const server = await testServer({
    idleTimeoutSec: 0,
    frameTimeoutMs: 0,
    maxPartialFrameBytes: bound,
    metricsPort: 0,
  });
  const port = server.metricsAddr!.port;
  const stallers: Probe[] = [];
  try {
    await using talker = await Probe.login(server, "talker");
    for (let i = 0; i < 6; i++) stallers.push(await Probe.login(server, `staller${i}`));
    // One at a time, each seen held (the gauge grows) or refused, so the first three hold.
    for (const [i, staller] of stallers.entries()) {
      staller.sendRaw(startOfFrame(1_000_000));
      if (i < 3) {
        await eventually(async () =>
          await metric(port, "chat_partial_frame_bytes") === (i + 1) * 1_000_000
        );
      } else {
        const error = await staller.expect({ type: "error", code: "server_busy" });
        assert.match(String(error.message), /unfinished frames/);
        await staller.closed();
      }
    }
    assert.ok(await metric(port, "chat_partial_frame_bytes") <= bound);
    assert.equal(await metric(port, "chat_partial_frames_refused_total"), 3);
    // Chat goes on: small requests are never held against the bound.
    await talker.ok("say", { room: "lobby", text: "x".repeat(2000) });
    // Once the holders go, large frames are taken again.
    for (const staller of stallers.slice(0, 3)) staller.close();
    await until(
      () => server.hub.sessionCount === 1 ? true : undefined,
      "the stallers' sessions to end",
    );
    const big = await talker.request("no_such_type", { pad: "y".repeat(900_000) });
    assert.equal(big.code, "unknown_command");
    assert.equal(await metric(port, "chat_partial_frame_bytes"), 0);
  } finally {
    for (const staller of stallers) staller.close();
    await server.shutdown();
  }
});
