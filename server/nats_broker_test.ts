import assert from "node:assert/strict";
import { NATS_SKIP, natsNodes, NatsServer } from "../tests/helpers/nats.ts";
import { brokerConformance, notice, Recorder, within } from "./broker_conformance.ts";
import { briefOf, type Publication, type Subscriber } from "./broker.ts";
import type { ServerMessage } from "../protocol/messages.ts";
import { NatsLink } from "./nats_connection.ts";
import { NatsBroker, type NatsBrokerOptions } from "./nats_broker.ts";
import { natsSubject } from "./nats_subjects.ts";
import { encodeEnvelope } from "./nats_envelope.ts";
import { encodeFrame } from "../protocol/frame.ts";

const ignore = NATS_SKIP !== undefined;

/** A NATS server and `count` nodes' brokers on it. */
async function cluster(count: number, options: NatsBrokerOptions = {}) {
  const c = await natsNodes(count, (link) => new NatsBroker(link, options));
  return { ...c, brokers: c.nodes };
}

/** Resolves at the next confirmed reconnect of `link`. */
function reconnected(link: NatsLink): Promise<void> {
  return new Promise((resolve) => {
    const remove = link.onReconnect(() => {
      remove();
      resolve();
    });
  });
}

brokerConformance("NATS (two nodes)", async () => {
  const c = await cluster(2);
  return { publisher: c.brokers[0], subscriber: c.brokers[1], close: c.close };
}, ignore);

Deno.test({
  name: "NATS broker: NATS restarted on the same port, both nodes resubscribe by themselves",
  ignore,
  async fn() {
    const c = await cluster(2);
    try {
      const [a, b] = c.brokers;
      const ann = new Recorder("ann");
      await b.subscribe("room.lobby", ann);
      await a.publish("room.lobby", { event: notice("before") });
      await ann.waitFor("before");

      const local = new Recorder("local");
      await a.subscribe("room.lobby", local);
      const back = c.links.map(reconnected);
      await c.nats.stop();
      // Cut off, a node still delivers to its own sessions (the others catch up later).
      assert.equal(await a.publish("room.lobby", { event: notice("during") }), 1);
      assert.deepEqual(local.texts, ["during"]);
      // A subscription made while NATS is down is confirmed once it is back.
      const bob = new Recorder("bob");
      const bobSubscribed = b.subscribe("user.bob", bob);
      await c.nats.start();
      await within(Promise.all(back), "both nodes reconnect");
      await within(bobSubscribed, "a subscription made while NATS was down is confirmed");

      await a.publish("room.lobby", { event: notice("after") });
      await a.publish("user.bob", { event: notice("to bob") });
      await ann.waitFor("after");
      await bob.waitFor("to bob");
      assert.deepEqual(ann.texts.filter((t) => t !== "during"), ["before", "after"]);
      assert.deepEqual(local.texts, ["during", "after"]);
      assert.deepEqual(bob.texts, ["to bob"]);
    } finally {
      await c.close();
    }
  },
});

Deno.test({
  name: "NATS broker: a batch is one NATS message; one over the maximum payload is split in order",
  ignore,
  async fn() {
    const c = await cluster(2, { maxPayload: 4096 });
    const spy = await NatsLink.open(c.nats.url, { name: "spy" });
    try {
      const [a, b] = c.brokers;
      // The NATS messages of the subject, as a third connection sees them.
      const seen: string[] = [];
      let wake = () => {};
      spy.connection.subscribe(natsSubject("chat.b.", "room.lobby"), {
        callback: (_err, msg) => {
          seen.push(new TextDecoder().decode(msg.data));
          wake();
        },
      });
      const spied = (text: string) =>
        within(
          new Promise<void>((resolve) => {
            wake = () => seen.some((m) => m.includes(text)) && resolve();
            wake();
          }),
          `the spy sees ${text}`,
        );
      await spy.confirm();
      const ann = new Recorder("ann");
      await b.subscribe("room.lobby", ann);
      const small = Array.from({ length: 5 }, (_, i) => ({ event: notice(`s${i}`) }));
      await a.publishBatch("room.lobby", small);
      await ann.waitFor("s4");
      await spied('"s4"');
      assert.equal(seen.length, 1);
      const big = Array.from(
        { length: 20 },
        (_, i) => ({ event: notice(`b${i} ${"x".repeat(900)}`) }),
      );
      await a.publishBatch("room.lobby", big);
      await ann.waitFor(`b19 ${"x".repeat(900)}`);
      assert.deepEqual(ann.texts.slice(5), big.map((p) => (p.event as { text: string }).text));
      await spied('"b19 ');
      assert.ok(seen.length > 2, `${seen.length} messages`);
      assert.ok(seen.every((m) => m.length <= 4096));
      assert.equal(a.dropped + b.dropped, 0);
    } finally {
      await spy.close();
      await c.close();
    }
  },
});

Deno.test({
  name: "NATS broker: messages over the node's bound or malformed are dropped, the rest delivered",
  ignore,
  async fn() {
    const c = await cluster(1, { maxPayload: 2048 });
    const rogue = await NatsLink.open(c.nats.url, { name: "rogue" });
    try {
      const [b] = c.brokers;
      const ann = new Recorder("ann");
      await b.subscribe("room.lobby", ann);
      const subject = natsSubject("chat.b.", "room.lobby");
      const wire = (text: string) => encodeEnvelope("rogue", [{ event: notice(text) }]).bytes;
      rogue.connection.publish(subject, wire(`big ${"x".repeat(4096)}`));
      rogue.connection.publish(subject, new TextEncoder().encode("{not json"));
      // The JSON of the nodes before envelopes (a mixed-version cluster): dropped.
      const json = JSON.stringify({ n: "r", p: [{ e: notice("old") }] });
      rogue.connection.publish(subject, new TextEncoder().encode(json));
      // An envelope whose frame is cut short.
      rogue.connection.publish(subject, wire("cut").subarray(0, wire("cut").length - 2));
      rogue.connection.publish(subject, wire("fine"));
      await ann.waitFor("fine");
      assert.deepEqual(ann.texts, ["fine"]);
      assert.equal(b.dropped, 4);
    } finally {
      await rogue.close();
      await c.close();
    }
  },
});

Deno.test({
  name: "NATS broker: two prefixes on one NATS do not hear each other",
  ignore,
  async fn() {
    const c = await cluster(1);
    const otherLink = await NatsLink.open(c.nats.url);
    const other = new NatsBroker(otherLink, { prefix: "school" });
    try {
      const ann = new Recorder("ann");
      const bob = new Recorder("bob");
      await c.brokers[0].subscribe("room.lobby", ann);
      await other.subscribe("room.lobby", bob);
      const third = new NatsBroker(await NatsLink.open(c.nats.url), { ownsLink: true });
      await third.publish("room.lobby", { event: notice("chat") });
      await third.close();
      await ann.waitFor("chat");
      // bob's cluster publishes after: had "chat" leaked, bob would have it first.
      const fourth = new NatsBroker(await NatsLink.open(c.nats.url), {
        prefix: "school.",
        ownsLink: true,
      });
      await fourth.publish("room.lobby", { event: notice("school") });
      await fourth.close();
      await bob.waitFor("school");
      assert.deepEqual(ann.texts, ["chat"]);
      assert.deepEqual(bob.texts, ["school"]);
    } finally {
      await other.close();
      await otherLink.close();
      await c.close();
    }
  },
});

Deno.test({
  name: "NATS broker: a node holds one NATS subscription per subject with local subscribers",
  ignore,
  async fn() {
    const c = await cluster(1);
    try {
      const [b] = c.brokers;
      const ann = new Recorder("ann");
      const bob = new Recorder("bob");
      await b.subscribe("room.lobby", ann);
      await b.subscribe("room.lobby", bob);
      await b.subscribe("user.ann", ann);
      assert.equal(b.natsSubscriptionCount, 2);
      b.unsubscribe("room.lobby", ann);
      assert.equal(b.natsSubscriptionCount, 2);
      b.unsubscribe("room.lobby", bob);
      b.unsubscribe("user.ann", ann);
      assert.equal(b.natsSubscriptionCount, 0);
    } finally {
      await c.close();
    }
  },
});

Deno.test({
  name: "NATS broker: the publishing node delivers once, even on a link that echoes",
  ignore,
  async fn() {
    const nats = await NatsServer.start();
    const links = [
      await NatsLink.open(nats.url, { echo: true }),
      await NatsLink.open(nats.url, { echo: true }),
    ];
    const [a, b] = links.map((link) => new NatsBroker(link));
    try {
      const here = new Recorder("here");
      const there = new Recorder("there");
      await a.subscribe("room.lobby", here);
      await b.subscribe("room.lobby", there);
      assert.equal(await a.publish("room.lobby", { event: notice("1") }), 1);
      await a.publishBatch("room.lobby", [{ event: notice("2") }, { event: notice("3") }]);
      // Once b has "3", NATS has queued a's echoes to a: b's "end" reaches a after them.
      await there.waitFor("3");
      await b.publish("room.lobby", { event: notice("end") });
      await here.waitFor("end");
      await there.waitFor("end");
      assert.deepEqual(here.texts, ["1", "2", "3", "end"]);
      assert.deepEqual(there.texts, ["1", "2", "3", "end"]);
    } finally {
      await a.close();
      await b.close();
      for (const link of links) await link.close();
      await nats.close();
    }
  },
});

Deno.test({
  name:
    "NATS broker: a receiving node hands its subscribers the frames as sent, filters from the header",
  ignore,
  async fn() {
    const c = await cluster(2);
    try {
      const [a, b] = c.brokers;
      const seen: Publication[] = [];
      const frames: Uint8Array[] = [];
      let delivered!: () => void;
      const arrived = new Promise<void>((resolve) => delivered = resolve);
      const bob: Subscriber = {
        accountKey: "bob",
        accepts(publication) {
          seen.push(publication);
          return publication.from !== "cy";
        },
        sendEncoded(bytes) {
          frames.push(bytes);
          delivered();
          return true;
        },
      };
      await b.subscribe("user.bob", bob);
      const dm: ServerMessage = { type: "dm", id: 9, ts: 1, from: "Ann", to: "Bob", text: "hi" };
      const blocked: ServerMessage = { ...dm, id: 10, from: "Cy" };
      await a.publishBatch("user.bob", [{ event: blocked, from: "cy" }, {
        event: dm,
        from: "ann",
      }]);
      await within(arrived, "bob's node delivers");
      assert.equal(seen.length, 2);
      // Encoded by the publishing node, read by no one on the way: no event decoded.
      assert.deepEqual(seen.map((p) => p.frame), [encodeFrame(blocked), encodeFrame(dm)]);
      assert.deepEqual(seen.map(briefOf), [
        { type: "dm", id: 10, to: "Bob" },
        { type: "dm", id: 9, to: "Bob" },
      ]);
      assert.deepEqual(frames, [encodeFrame(dm)]);
    } finally {
      await c.close();
    }
  },
});
