import assert from "node:assert/strict";
import { type ClusterMessage, LocalClusterBus, LocalClusterNetwork } from "./cluster_bus.ts";

Deno.test("LocalClusterNetwork: every bus hears the others and itself, in order, until it stops", async () => {
  const network = new LocalClusterNetwork();
  const a = network.bus("a");
  const b = network.bus("b");
  const heardA: ClusterMessage[] = [];
  const heardB: ClusterMessage[] = [];
  await a.listen("presence", (m) => heardA.push(m));
  const stopB = await b.listen("presence", (m) => heardB.push(m));
  a.send("presence", { n: 1 });
  b.send("presence", { n: 2 });
  a.send("other", { n: 3 });
  assert.deepEqual(heardA.map((m) => [m.from, m.data]), [["a", { n: 1 }], ["b", { n: 2 }]]);
  assert.deepEqual(heardB.map((m) => m.topic), ["presence", "presence"]);
  stopB();
  a.send("presence", { n: 4 });
  assert.equal(heardB.length, 2);
  await a.close();
  b.send("presence", { n: 5 });
  assert.equal(heardA.length, 3);
});

Deno.test("LocalClusterBus alone: a single server hears its own messages; closed, it sends nothing", async () => {
  const bus = new LocalClusterBus();
  const heard: unknown[] = [];
  await bus.listen("t", (m) => heard.push(m.data));
  bus.send("t", "x");
  await bus.close();
  bus.send("t", "y");
  assert.deepEqual(heard, ["x"]);
});
