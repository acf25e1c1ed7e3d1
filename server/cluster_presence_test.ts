import assert from "node:assert/strict";
import { LocalClusterNetwork } from "./cluster_bus.ts";
import { ClusterPresence, type PresenceChange } from "./cluster_presence.ts";

/** A replica on `network` that records its transitions. */
async function node(network: LocalClusterNetwork, id: string, heartbeatMs = 60_000) {
  const changes: string[] = [];
  const waiters: (() => void)[] = [];
  const presence = new ClusterPresence(network.bus(id), heartbeatMs, {
    changed(change: PresenceChange) {
      changes.push(`${change.key} ${change.online ? "on" : "off"}`);
      for (const wake of waiters.splice(0)) wake();
      return Promise.resolve();
    },
    blocked() {},
    hidden() {},
  });
  await presence.start();
  /** Resolves once `count` transitions were seen, failing after a deadline. */
  const seen = (count: number) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`saw ${changes}`)), 10_000);
      const check = () => {
        if (changes.length >= count) {
          clearTimeout(timer);
          resolve();
        } else waiters.push(check);
      };
      check();
    });
  return { presence, changes, seen };
}

Deno.test("cluster presence: online once across nodes, offline at the last share", async () => {
  const network = new LocalClusterNetwork();
  const a = await node(network, "a");
  const b = await node(network, "b");
  try {
    await a.presence.setLocal("ann", "Ann", 1, false, []);
    await b.presence.setLocal("ann", "Ann", 2, false, []);
    assert.equal(a.presence.sessionCount("ann"), 3);
    assert.ok(a.presence.isOnlineElsewhere("ann"));
    await a.presence.setLocal("ann", "Ann", 0, false, []);
    assert.deepEqual(a.changes, ["ann on"]);
    assert.deepEqual(b.changes, ["ann on"]);
    await b.presence.setLocal("ann", "Ann", 0, false, []);
    assert.deepEqual(a.changes, ["ann on", "ann off"]);
    assert.deepEqual(b.changes, ["ann on", "ann off"]);
  } finally {
    a.presence.close();
    b.presence.close();
  }
});

Deno.test("cluster presence: hidden on one node hides everywhere; blocks travel both ways", async () => {
  const network = new LocalClusterNetwork();
  const a = await node(network, "a");
  const b = await node(network, "b");
  try {
    await a.presence.setLocal("ann", "Ann", 1, false, ["cat"]);
    await b.presence.setLocal("bob", "Bob", 1, false, []);
    assert.ok(b.presence.blockedBetween("cat", "ann"));
    assert.deepEqual([...b.presence.blockedBy("cat")], ["ann"]);
    a.presence.setBlock("ann", "cat", false);
    a.presence.setBlock("ann", "bob", true);
    assert.ok(!b.presence.blockedBetween("cat", "ann"));
    assert.ok(b.presence.blockedBetween("bob", "ann"));
    await a.presence.setLocal("ann", "Ann", 1, true, []);
    assert.ok(!b.presence.isVisible("ann"));
    assert.ok(b.presence.isHidden("ann"));
    assert.deepEqual(b.changes, ["ann on", "bob on", "ann off"]);
  } finally {
    a.presence.close();
    b.presence.close();
  }
});

Deno.test("cluster presence: a starting node gets the lists; a silent one expires", async () => {
  const network = new LocalClusterNetwork();
  const a = await node(network, "a", 50);
  const bus = network.bus("b");
  const b = new ClusterPresence(bus, 50, {
    changed: () => Promise.resolve(),
    blocked() {},
    hidden() {},
  });
  try {
    await b.start();
    await b.setLocal("bob", "Bob", 1, false, []);
    const c = await node(network, "c", 50);
    try {
      assert.ok(c.presence.isVisible("bob"), "a starting node missed bob");
      await bus.close();
      await a.seen(2);
      assert.deepEqual(a.changes, ["bob on", "bob off"]);
      assert.ok(!a.presence.isOnline("bob"));
    } finally {
      c.presence.close();
    }
  } finally {
    a.presence.close();
    b.close();
  }
});

Deno.test("cluster presence: a node that closes is dropped at once", async () => {
  const network = new LocalClusterNetwork();
  const a = await node(network, "a");
  const b = await node(network, "b");
  await b.presence.setLocal("bob", "Bob", 1, false, []);
  b.presence.close();
  assert.deepEqual(a.changes, ["bob on", "bob off"]);
  a.presence.close();
});
