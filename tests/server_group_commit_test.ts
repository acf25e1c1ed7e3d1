/**
 * The SQLite store's group commit seen through the server, over a real socket: the says
 * of one turn share a commit, made at once even while a sync runs; the room hears them
 * once committed (kept through a kill of the server), and their sender is acknowledged
 * only after a sync made them durable (kept through a power loss).
 */
import assert from "node:assert/strict";
import { Probe, testServer, until } from "./helpers/harness.ts";
import { HeldSync } from "./helpers/held_sync.ts";
import { SqliteStore } from "../server/sqlite_store.ts";

Deno.test("group commit: says are delivered once committed, during their sync; acknowledged after it", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "chat-group-commit-" });
  const held = new HeldSync();
  const sqlite = await SqliteStore.open(dataDir, { syncWal: held.syncWal });
  held.commits = () => sqlite.stats.commits;
  const server = await testServer({ dataDir }, { store: sqlite });
  try {
    await using alice = await Probe.login(server, "alice");
    await using bob = await Probe.login(server, "bob");
    await using carol = await Probe.login(server, "carol");
    await alice.ok("join", { room: "gc" });
    await bob.ok("join", { room: "gc" });
    // No sync left running from the logins and joins (each sync began is counted).
    await until(
      () => held.started.length === sqlite.stats.walSyncs ? true : undefined,
      "the syncs of the logins and joins",
    );
    const commits = sqlite.stats.commits;
    const syncs = held.started.length;

    held.hold();
    alice.send({ type: "say", id: "s1", room: "gc", text: "lone" });
    await held.begun(syncs + 1);
    assert.equal(held.started[syncs], commits + 1, "committed before its sync began");
    // Its sync is held: bob has it already; alice has no ack.
    const first = Number((await bob.expect({ type: "msg", text: "lone" })).id);
    // The next says commit while that sync runs, and reach bob too.
    for (const i of [2, 3, 4]) alice.send({ type: "say", id: `s${i}`, room: "gc", text: `m${i}` });
    for (const i of [2, 3, 4]) await bob.expect({ type: "msg", text: `m${i}` });
    assert.ok(sqlite.stats.commits > commits + 1, "committed during the sync");
    // A DM too reaches its recipient before its sync.
    alice.send({ type: "dm", id: "d1", to: "carol", text: "psst" });
    await carol.expect({ type: "dm", text: "psst" });
    assert.ok(!alice.received.some((m) => m.type === "ok"), "no ack before the sync completed");

    held.release();
    const acks = [];
    for (const i of [1, 2, 3, 4]) {
      acks.push(await alice.expect((m) => m.re === `s${i}`));
    }
    assert.ok(acks.every((a) => a.type === "ok"), JSON.stringify(acks));
    const ids = acks.map((a) => (a.msg as { id: number }).id);
    assert.deepEqual(ids, [first, first + 1, first + 2, first + 3]);
    const dm = await alice.expect({ re: "d1" });
    assert.equal(dm.type, "ok");
    assert.equal(dm.delivered, true);
    // What bob was told is what is stored.
    const history = await bob.ok("history", { room: "gc" });
    assert.deepEqual(
      (history.messages as { id: number }[]).map((m) => m.id).slice(-4),
      ids,
    );
  } finally {
    held.release();
    await server.shutdown();
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("group commit: a new nick's account, lobby membership and login record share one sync", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "chat-group-commit-" });
  const held = new HeldSync();
  const sqlite = await SqliteStore.open(dataDir, { syncWal: held.syncWal });
  const server = await testServer({ dataDir, auth: "none" }, { store: sqlite });
  try {
    await using alice = await Probe.login(server, "alice");
    await until(
      () => held.started.length === sqlite.stats.walSyncs ? true : undefined,
      "the syncs of alice's login",
    );
    const syncs = held.started.length;
    // A login storm: a sync is running (of alice's join, one write) when carol's login writes.
    held.hold();
    alice.send({ type: "join", id: "j", room: "lobby" });
    await held.begun(syncs + 1);
    await using carol = await Probe.dial(server);
    await carol.hello();
    carol.send({ type: "login", id: "l", nick: "carol" });
    // Her three writes are committed while that sync runs, none waiting for another's sync
    // (before, each waited for the sync of the one before it: three syncs in a row).
    const deadline = Date.now() + 10_000;
    while (
      !(await sqlite.accountRooms("carol")).includes("lobby") ||
      !(await sqlite.onlineSince(0)).includes("carol") ||
      await sqlite.getAccount("carol") === null
    ) {
      assert.ok(Date.now() < deadline, "carol's writes were not all committed during one sync");
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.ok(!carol.received.some((m) => m.re === "l"), "no reply before her writes are durable");
    held.release();
    assert.equal((await carol.expect({ re: "l" })).type, "ok");
    assert.equal(held.started.length, syncs + 2, "the running sync, then one for all of hers");
    await alice.expect({ re: "j" });
  } finally {
    held.release();
    await server.shutdown();
    await Deno.remove(dataDir, { recursive: true });
  }
});
