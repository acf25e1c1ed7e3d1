/**
 * The latency floor at a fixed load (issue #16): a commit's WAL sync starts after its
 * deliveries were handed to the sockets, not before them (starting a sync costs the event
 * loop 35-60 µs, which every delivery of every round waited for). Over real sockets, a
 * real SQLite store: counts of writes started, no timing.
 */
import assert from "node:assert/strict";
import { Probe, testServer, until } from "./helpers/harness.ts";
import { HeldSync } from "./helpers/held_sync.ts";
import { SqliteStore } from "../server/sqlite_store.ts";
import { OutboundQueue } from "../transport/outbound_queue.ts";

Deno.test("a say's WAL sync starts after the writes of its delivery to the room", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "chat-sync-after-writes-" });
  const held = new HeldSync();
  const sqlite = await SqliteStore.open(dataDir, { syncWal: held.syncWal });
  // Each sync's start records how many writes the process had started by then.
  held.commits = () => OutboundQueue.writesStarted;
  const server = await testServer({ dataDir }, { store: sqlite });
  const probes: Probe[] = [];
  try {
    const nicks = ["alice", "bob", "carol", "dave", "erin"];
    for (const nick of nicks) probes.push(await Probe.login(server, nick));
    for (const p of probes) await p.ok("join", { room: "floor" });
    await until(
      () => held.started.length === sqlite.stats.walSyncs ? true : undefined,
      "the syncs of the logins and joins",
    );
    const syncs = held.started.length;
    const before = OutboundQueue.writesStarted;
    const [alice, ...receivers] = probes;
    alice.send({ type: "say", id: "s1", room: "floor", text: "first" });
    await held.begun(syncs + 1);
    const atSync = held.started[syncs] - before;
    // alice's own write of the say may count (the probes' side); the server's four
    // deliveries must all have started before the sync did.
    assert.ok(
      atSync >= receivers.length,
      `${atSync} writes started before the say's sync, want at least ${receivers.length}`,
    );
    for (const p of receivers) await p.expect({ type: "msg", text: "first" });
    assert.equal((await alice.expect({ re: "s1" })).type, "ok");
  } finally {
    for (const p of probes) await p[Symbol.asyncDispose]();
    await server.shutdown();
    await Deno.remove(dataDir, { recursive: true });
  }
});
