/**
 * The bench's round stages (`transport/round_stages.ts`, `bench/fixed_rate.ts --stages`)
 * through a real server on a real SQLite store: a `say` makes one round, with its read,
 * its commit, its fan-out and the writes to the room counted in it. Counts, no timing.
 */
import assert from "node:assert/strict";
import { Probe, testServer, until } from "./helpers/harness.ts";
import { SqliteStore } from "../server/sqlite_store.ts";
import { roundStages, type StageFigures } from "../transport/round_stages.ts";

Deno.test("round stages: a say's round counts its read, its message and the writes to the room", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "chat-round-stages-" });
  const sqlite = await SqliteStore.open(dataDir);
  const server = await testServer({ dataDir }, { store: sqlite });
  const probes: Probe[] = [];
  try {
    roundStages.enable();
    for (const nick of ["alice", "bob", "carol", "dave", "erin"]) {
      probes.push(await Probe.login(server, nick));
    }
    for (const p of probes) await p.ok("join", { room: "stages" });
    const [alice, ...receivers] = probes;
    roundStages.reset();
    const sent = performance.timeOrigin + performance.now();
    alice.send({ type: "say", id: "s1", room: "stages", text: `b0|${sent.toFixed(3)}` });
    for (const p of receivers) await p.expect({ type: "msg" });
    assert.equal((await alice.expect({ re: "s1" })).type, "ok");
    // The reply to alice is written after the sync: counted in the round too.
    await until(() => roundStages.summary().rounds === 1 ? true : undefined, "one round");
    const s = roundStages.summary();
    const f = (name: string) => s[name] as StageFigures;
    assert.equal(f("messages").p50, 1);
    assert.ok(f("reads").p50 >= 1, JSON.stringify(s));
    assert.ok(f("writes").p50 >= receivers.length, `writes: ${JSON.stringify(f("writes"))}`);
    for (const stage of ["sentToRead", "commit", "fanout", "writeSpan", "readToFirstWrite"]) {
      assert.equal(f(stage).n, 1, `${stage}: ${JSON.stringify(f(stage))}`);
      assert.ok(f(stage).p50 >= 0, `${stage}: ${JSON.stringify(f(stage))}`);
    }
  } finally {
    for (const p of probes) await p[Symbol.asyncDispose]();
    await server.shutdown();
    await Deno.remove(dataDir, { recursive: true });
  }
});
