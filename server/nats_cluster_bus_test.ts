import assert from "node:assert/strict";
import { isDeepStrictEqual } from "node:util";
import { NATS_SKIP, natsNodes, NatsServer } from "../tests/helpers/nats.ts";
import { DELIVERY_WAIT_MS, within } from "./broker_conformance.ts";
import type { ClusterMessage } from "./cluster_bus.ts";
import { NatsLink } from "./nats_connection.ts";
import { NatsClusterBus, type NatsClusterBusOptions } from "./nats_cluster_bus.ts";
import { natsSubject } from "./nats_subjects.ts";

const ignore = NATS_SKIP !== undefined;

/** What a listener heard, with a wait for a message. */
class Heard {
  readonly messages: ClusterMessage[] = [];
  #wake: (() => void) | undefined;

  readonly handler = (message: ClusterMessage): void => {
    this.messages.push(message);
    this.#wake?.();
  };

  /** The data heard, in order. */
  get data(): unknown[] {
    return this.messages.map((m) => m.data);
  }

  /** Resolves once a message with `data` deep-equal to `expected` was heard. */
  async waitFor(expected: unknown): Promise<void> {
    const deadline = Date.now() + DELIVERY_WAIT_MS;
    const has = () => this.messages.some((m) => isDeepStrictEqual(m.data, expected));
    while (!has()) {
      const left = deadline - Date.now();
      if (left <= 0) {
        assert.fail(`never heard ${JSON.stringify(expected)}; heard ${JSON.stringify(this.data)}`);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = undefined;
    }
  }
}

/** A NATS server and `count` nodes' cluster buses on it. */
async function cluster(count: number, options: NatsClusterBusOptions = {}) {
  const c = await natsNodes(count, (link) => new NatsClusterBus(link, options));
  return { ...c, buses: c.nodes };
}

Deno.test({
  name: "NatsClusterBus: every node hears the others and itself, in order, with the sender's id",
  ignore,
  async fn() {
    const c = await cluster(2);
    try {
      const [a, b] = c.buses;
      assert.notEqual(a.nodeId, b.nodeId);
      assert.match(a.nodeId, /^[0-9a-f-]{36}$/);
      const heardA = new Heard();
      const heardB = new Heard();
      await a.listen("presence", heardA.handler);
      await b.listen("presence", heardB.handler);
      const sent = Array.from({ length: 200 }, (_, i) => ({ n: i, nested: { s: "é", z: null } }));
      for (const data of sent) a.send("presence", data);
      b.send("presence", "from b");
      await heardB.waitFor(sent[199]);
      await heardA.waitFor("from b");
      const fromA = (h: Heard) => h.messages.filter((m) => m.from === a.nodeId).map((m) => m.data);
      assert.deepEqual(fromA(heardB), sent);
      assert.deepEqual(fromA(heardA), sent);
      const own = { topic: "presence", from: b.nodeId, data: "from b" };
      assert.deepEqual(heardB.messages.filter((m) => m.from !== a.nodeId), [own]);
      assert.deepEqual(heardA.messages.filter((m) => m.from !== a.nodeId), [own]);
    } finally {
      await c.close();
    }
  },
});

Deno.test({
  name: "NatsClusterBus: topics with `.`, `*`, `>` reach their own listeners only; stop stops",
  ignore,
  async fn() {
    const c = await cluster(2);
    try {
      const [a, b] = c.buses;
      const topics = ["room.a", "room.a.b", "room.*", "room.>", "room", "presence"];
      const heard = new Map(topics.map((t) => [t, new Heard()]));
      for (const [topic, h] of heard) await b.listen(topic, h.handler);
      const twice = new Heard();
      const stop1 = await b.listen("presence", twice.handler);
      const stop2 = await b.listen("presence", twice.handler);
      for (const topic of topics) a.send(topic, `on ${topic}`);
      for (const [topic, h] of heard) await h.waitFor(`on ${topic}`);
      stop1();
      a.send("presence", "after one stop");
      await heard.get("presence")!.waitFor("after one stop");
      stop2();
      a.send("presence", "after both");
      for (const topic of topics) a.send(topic, "end");
      for (const [topic, h] of heard) {
        await h.waitFor("end");
        const expected = topic === "presence"
          ? [`on ${topic}`, "after one stop", "after both", "end"]
          : [`on ${topic}`, "end"];
        assert.deepEqual(h.data, expected, topic);
      }
      assert.deepEqual(twice.data, ["on presence", "on presence", "after one stop"]);
    } finally {
      await c.close();
    }
  },
});

Deno.test({
  name: "NatsClusterBus: NATS restarted: onReconnect fires on every node and messages flow again",
  ignore,
  async fn() {
    const c = await cluster(2);
    try {
      const [a, b] = c.buses;
      const heard = new Heard();
      await b.listen("presence", heard.handler);
      a.send("presence", "before");
      await heard.waitFor("before");
      const reconnects = [0, 0];
      const back = c.buses.map((bus, i) =>
        new Promise<void>((resolve) =>
          bus.onReconnect(() => {
            reconnects[i]++;
            resolve();
          })
        )
      );
      await c.nats.restart();
      await within(Promise.all(back), "onReconnect on both nodes");
      a.send("presence", "after");
      await heard.waitFor("after");
      assert.deepEqual(heard.data, ["before", "after"]);
      assert.deepEqual(reconnects, [1, 1]);
    } finally {
      await c.close();
    }
  },
});

Deno.test({
  name: "NatsClusterBus: messages over the bound or malformed are dropped; closed, it is silent",
  ignore,
  async fn() {
    const c = await cluster(1, { maxPayload: 1024 });
    const rogue = await NatsLink.open(c.nats.url, { name: "rogue" });
    try {
      const [b] = c.buses;
      const heard = new Heard();
      await b.listen("presence", heard.handler);
      const subject = natsSubject("chat.n.", "presence");
      const encode = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));
      rogue.connection.publish(subject, encode({ f: "rogue", d: "x".repeat(2048) }));
      rogue.connection.publish(subject, new TextEncoder().encode("not json"));
      rogue.connection.publish(subject, encode({ d: "no sender" }));
      rogue.connection.publish(subject, encode({ f: "rogue", d: "fine" }));
      await heard.waitFor("fine");
      assert.deepEqual(heard.messages, [{ topic: "presence", from: "rogue", data: "fine" }]);
      assert.equal(b.dropped, 3);
      b.send("presence", "x".repeat(2048)); // too big for the others: dropped, never thrown
      assert.equal(b.dropped, 4);
      await b.close();
      b.send("presence", "closed");
      assert.equal(heard.messages.length, 2);
    } finally {
      await rogue.close();
      await c.close();
    }
  },
});

Deno.test({
  name: "NatsClusterBus: a node hears its own message once, even on a link that echoes",
  ignore,
  async fn() {
    const nats = await NatsServer.start();
    const links = [
      await NatsLink.open(nats.url, { echo: true }),
      await NatsLink.open(nats.url, { echo: true }),
    ];
    const [a, b] = links.map((link) => new NatsClusterBus(link));
    try {
      const here = new Heard();
      const there = new Heard();
      await a.listen("presence", here.handler);
      await b.listen("presence", there.handler);
      a.send("presence", 1);
      a.send("presence", 2);
      // Once b has 2, NATS has queued a's echoes to a: b's message reaches a after them.
      await there.waitFor(2);
      b.send("presence", "end");
      await here.waitFor("end");
      assert.deepEqual(here.data, [1, 2, "end"]);
      assert.deepEqual(there.data, [1, 2, "end"]);
    } finally {
      await a.close();
      await b.close();
      for (const link of links) await link.close();
      await nats.close();
    }
  },
});
