import assert from "node:assert/strict";
import { decodePayload, FrameDecoder } from "../protocol/frame.ts";
import { LocalBroker, roomSubject, type Subscriber } from "./broker.ts";
import { LocalClusterBus } from "./cluster_bus.ts";
import { MemoryStore } from "./memory_store.ts";
import { CatchUpBroker } from "./reconnect_catch_up.ts";

/** A session that keeps the ids of the messages written to it. */
function session(accountKey: string): Subscriber & { ids: number[] } {
  const ids: number[] = [];
  return {
    accountKey,
    ids,
    accepts: () => true,
    sendEncoded(frames) {
      for (const payload of new FrameDecoder().push(frames)) {
        ids.push((decodePayload(payload).header as { id: number }).id);
      }
      return true;
    },
  };
}

Deno.test("CatchUpBroker sends a node's sessions what never reached it, in order, once", async () => {
  const store = new MemoryStore();
  for (const nick of ["ann", "bob"]) {
    await store.createAccount({ key: nick, nick, passwordHash: null, createdAt: 0 });
  }
  await store.createRoom({ key: "lobby", name: "lobby", topic: "", topicBy: "", createdAt: 0 });
  for (const nick of ["ann", "bob"]) await store.addMember("lobby", nick);
  let connected = true;
  const broker = new CatchUpBroker(new LocalBroker(), store, () => connected);
  const bus = new LocalClusterBus();
  await broker.listenOn(bus);
  try {
    const bob = session("bob");
    await broker.subscribe(roomSubject("lobby"), bob);
    const say = async (text: string, publish: boolean) => {
      const { message } = await store.appendMessage({
        fromKey: "ann",
        from: "ann",
        room: "lobby",
        text,
        ts: Date.now(),
        clientId: text,
      });
      if (publish) await broker.publish(roomSubject("lobby"), { event: message, from: "ann" });
      return message.id;
    };
    const first = await say("reached", true);
    connected = false;
    // Committed elsewhere while this node was cut off: never published here.
    const lost = [await say("lost 1", false), await say("lost 2", false)];
    const live = await say("live again", true);
    connected = true;
    await broker.catchUp(Date.now() - 60_000);
    assert.deepEqual(bob.ids, [first, live, ...lost]);
    // Asked again (another node's request): nothing twice.
    await broker.catchUp(Date.now() - 60_000);
    assert.deepEqual(bob.ids, [first, live, ...lost]);
  } finally {
    await broker.close();
    await bus.close();
  }
});
