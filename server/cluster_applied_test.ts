import assert from "node:assert/strict";
import { ClusterApplied } from "./cluster_applied.ts";
import { type ClusterMessage, LocalClusterNetwork } from "./cluster_bus.ts";

/** Node `b`: keeps the changes it receives, answers them when told to. */
async function receiver(network: LocalClusterNetwork, id: string) {
  const bus = network.bus(id);
  const applied = new ClusterApplied(bus, "t");
  const pending: ClusterMessage[] = [];
  await bus.listen("t", (message) => {
    if (!applied.receive(message) && message.from !== id) pending.push(message);
  });
  return {
    pending,
    answer: () => {
      for (const message of pending.splice(0)) applied.applied(message);
    },
  };
}

Deno.test("ClusterApplied: a change is done once every peer answered it", async () => {
  const network = new LocalClusterNetwork();
  const a = network.bus("a");
  const told = new ClusterApplied(a, "t", { peers: () => ["b", "c"], timeoutMs: 60_000 });
  await a.listen("t", (m) => told.receive(m));
  const b = await receiver(network, "b");
  const c = await receiver(network, "c");
  let done = false;
  const sent = told.send({ t: "x", n: 1 }).then(() => done = true);
  assert.equal(b.pending.length, 1);
  assert.equal((b.pending[0].data as { n: number }).n, 1);
  b.answer();
  await Promise.resolve();
  assert.equal(done, false, "done before c answered");
  c.answer();
  await sent;
  assert.equal(done, true);
});

Deno.test("ClusterApplied: alone, or with a peer that never answers, a change is done anyway", async () => {
  const network = new LocalClusterNetwork();
  const a = network.bus("a");
  const alone = new ClusterApplied(a, "t");
  await alone.send({ t: "x" });
  const waiting = new ClusterApplied(a, "t", { peers: () => ["ghost"], timeoutMs: 50 });
  await a.listen("t", (m) => waiting.receive(m));
  await waiting.send({ t: "x" }); // after the timeout
  const closing = new ClusterApplied(a, "t", { peers: () => ["ghost"], timeoutMs: 60_000 });
  const sent = closing.send({ t: "x" });
  closing.close();
  await sent;
});
