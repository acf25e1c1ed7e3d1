/**
 * The SQLite store's group commit seen through the server, over a real socket: a lone
 * `say` is committed within its append (no timer in between), the says arriving while its
 * sync runs share the next commit, and nothing is acknowledged or delivered before the
 * sync that made it durable.
 */
import assert from "node:assert/strict";
import { Probe, testServer, until } from "./helpers/harness.ts";
import { HeldSync } from "./helpers/held_sync.ts";
import { SqliteStore } from "../server/sqlite_store.ts";
import type { Store } from "../server/store.ts";

Deno.test("group commit: a lone say commits at once; says during its sync share the next commit", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "chat-group-commit-" });
  const held = new HeldSync();
  const sqlite = await SqliteStore.open(dataDir, { syncWal: held.syncWal });
  held.commits = () => sqlite.stats.commits;
  // Whether each append was committed by the time the call returned.
  const committedInCall: boolean[] = [];
  const store = new Proxy(sqlite, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (prop !== "appendMessage") return typeof value === "function" ? value.bind(target) : value;
      return (...args: Parameters<Store["appendMessage"]>) => {
        const before = target.stats.commits;
        const result = target.appendMessage(...args);
        committedInCall.push(target.stats.commits > before);
        return result;
      };
    },
  });
  const server = await testServer({ dataDir }, { store });
  try {
    await using alice = await Probe.login(server, "alice");
    await using bob = await Probe.login(server, "bob");
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
    assert.deepEqual(committedInCall, [true], "the lone say was committed within its append");
    assert.equal(sqlite.stats.commits, commits + 1);

    // Its sync is held: the next says queue for the commit after it.
    for (const i of [2, 3, 4]) alice.send({ type: "say", id: `s${i}`, room: "gc", text: `m${i}` });
    await until(() => sqlite.stats.queued === 3 ? true : undefined, "three says queued");
    assert.equal(sqlite.stats.commits, commits + 1, "nothing committed while the sync runs");
    assert.deepEqual(committedInCall, [true, false, false, false]);
    assert.ok(!alice.received.some((m) => m.re === "s1"), "no ack before the sync completed");
    assert.ok(!bob.received.some((m) => m.type === "msg"), "no delivery before the sync");

    held.release();
    const acks = [];
    for (const i of [1, 2, 3, 4]) {
      acks.push(await alice.expect((m) => m.re === `s${i}`));
    }
    assert.ok(acks.every((a) => a.type === "ok"), JSON.stringify(acks));
    const ids = acks.map((a) => (a.msg as { id: number }).id);
    assert.deepEqual(ids, [ids[0], ids[0] + 1, ids[0] + 2, ids[0] + 3]);
    for (const i of [1, 2, 3, 4]) await bob.expect({ type: "msg", id: ids[i - 1] });
    assert.equal(sqlite.stats.commits, commits + 2);
    assert.equal(sqlite.stats.largestBatch, 3);
    assert.equal(held.started[syncs + 1], commits + 2, "the batch was committed before its sync");
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
