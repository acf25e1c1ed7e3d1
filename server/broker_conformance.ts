/**
 * The behaviour every {@linkcode Broker} shares, as one suite run over each engine:
 * {@linkcode LocalBroker} (one node) and the NATS broker (two nodes on one NATS).
 *
 * A suite gets a pair of brokers: `publisher` is the node that publishes, `subscriber`
 * the node whose sessions listen (the same broker in process). Deliveries are awaited
 * as events with a deadline; a delivery that must NOT happen is checked against a later
 * publication from the same node that must, which would have come after it.
 *
 * @module
 */

import assert from "node:assert/strict";
import { decodePayload, FrameDecoder } from "../protocol/frame.ts";
import type { ServerMessage } from "../protocol/messages.ts";
import type { Broker, Publication, Subscriber } from "./broker.ts";

/** Two nodes of one engine (or one broker twice). */
export interface BrokerPair {
  /** The node that publishes. */
  readonly publisher: Broker;
  /** The node whose subscribers listen. */
  readonly subscriber: Broker;
  /** Stops both (and their engine). */
  close(): Promise<void>;
}

/** How long a test waits for a delivery before failing. */
export const DELIVERY_WAIT_MS = 15_000;

let sessionCounter = 0;

/** A session-like subscriber that records the texts of the notices it is handed. */
export class Recorder implements Subscriber {
  /** Its account. */
  readonly accountKey: string;
  /** Its session id (what `exceptSession` names). */
  readonly session = `t${++sessionCounter}`;
  /** Accounts it blocks. */
  readonly blocks: ReadonlySet<string>;
  /** Texts received, in order. */
  readonly texts: string[] = [];
  /** Buffers handed to it, in order. */
  readonly buffers: Uint8Array[] = [];
  readonly #decoder = new FrameDecoder();
  #wake: (() => void) | undefined;

  /** A subscriber of account `accountKey` blocking `blocks`. */
  constructor(accountKey: string, blocks: string[] = []) {
    this.accountKey = accountKey;
    this.blocks = new Set(blocks);
  }

  /** The hub's filters: except, exceptSession, blocks of `from`. */
  accepts(publication: Publication): boolean {
    if (publication.exceptSession === this.session) return false;
    if (publication.except?.has(this.accountKey)) return false;
    return publication.from === undefined || !this.blocks.has(publication.from);
  }

  /** Records the frames. */
  sendEncoded(frames: Uint8Array): boolean {
    this.buffers.push(frames);
    for (const payload of this.#decoder.push(frames)) {
      this.texts.push(String(decodePayload(payload).header.text));
    }
    this.#wake?.();
    return true;
  }

  /** Resolves once `text` was received; fails after {@linkcode DELIVERY_WAIT_MS}. */
  async waitFor(text: string): Promise<void> {
    const deadline = Date.now() + DELIVERY_WAIT_MS;
    while (!this.texts.includes(text)) {
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new assert.AssertionError({
          message: `${this.accountKey} did not receive ${JSON.stringify(text)}; got ${
            JSON.stringify(this.texts)
          }`,
        });
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

/** `promise`, or a failure naming `what` after {@linkcode DELIVERY_WAIT_MS}. */
export async function within<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new assert.AssertionError({ message: `timed out waiting: ${what}` })),
      DELIVERY_WAIT_MS,
    );
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** A notice event carrying `text`. */
export function notice(text: string): ServerMessage {
  return { type: "notice", code: "info", text };
}

/**
 * Registers the shared Broker tests for `engine`; `open` makes a fresh pair per test.
 * `ignore` skips them (engine not installed).
 */
export function brokerConformance(
  engine: string,
  open: () => Promise<BrokerPair>,
  ignore = false,
): void {
  const test = (name: string, fn: (pair: BrokerPair) => Promise<void>) =>
    Deno.test({
      name: `${engine} broker: ${name}`,
      ignore,
      async fn() {
        const pair = await open();
        try {
          await fn(pair);
        } finally {
          await pair.close();
        }
      },
    });

  test("a subscriber hears what is published, filters applied", async ({ publisher, subscriber }) => {
    const ann = new Recorder("ann");
    const ann2 = new Recorder("ann");
    const bob = new Recorder("bob", ["eve"]);
    for (const r of [ann, ann2, bob]) await subscriber.subscribe("room.lobby", r);
    await publisher.publish("room.lobby", { event: notice("to-all") });
    await publisher.publish("room.lobby", {
      event: notice("not-bob"),
      except: new Set(["bob"]),
    });
    await publisher.publish("room.lobby", {
      event: notice("not-ann1"),
      exceptSession: ann.session,
    });
    await publisher.publish("room.lobby", { event: notice("from-eve"), from: "eve" });
    await publisher.publish("room.lobby", { event: notice("end") });
    for (const r of [ann, ann2, bob]) await r.waitFor("end");
    assert.deepEqual(ann.texts, ["to-all", "not-bob", "from-eve", "end"]);
    assert.deepEqual(ann2.texts, ["to-all", "not-bob", "not-ann1", "from-eve", "end"]);
    assert.deepEqual(bob.texts, ["to-all", "not-ann1", "end"]);
  });

  test("a batch arrives in order, each subscriber getting what it accepts", async (pair) => {
    const ann = new Recorder("ann");
    const bob = new Recorder("bob", ["eve"]);
    for (const r of [ann, bob]) await pair.subscriber.subscribe("room.lobby", r);
    await pair.publisher.publishBatch("room.lobby", [
      { event: notice("1") },
      { event: notice("2"), except: new Set(["bob"]) },
      { event: notice("3"), from: "eve" },
      { event: notice("4"), exceptSession: ann.session },
      { event: notice("5") },
    ]);
    await pair.publisher.publishBatch("room.lobby", [{ event: notice("6") }]);
    await ann.waitFor("6");
    await bob.waitFor("6");
    assert.deepEqual(ann.texts, ["1", "2", "3", "5", "6"]);
    assert.deepEqual(bob.texts, ["1", "4", "5", "6"]);
  });

  test("publications of one node on one subject arrive in order", async (pair) => {
    const ann = new Recorder("ann");
    await pair.subscriber.subscribe("user.ann", ann);
    const sent: string[] = [];
    for (let i = 0; i < 300; i++) {
      const text = String(i);
      sent.push(text);
      if (i % 3 === 0) {
        await pair.publisher.publishBatch("user.ann", [{ event: notice(text) }]);
      } else {
        await pair.publisher.publish("user.ann", { event: notice(text) });
      }
    }
    await ann.waitFor("299");
    assert.deepEqual(ann.texts, sent);
  });

  test("names with `.`, `*`, `>` and spaces reach their own subject only", async (pair) => {
    const names = ["room.a", "room.a.b", "room.*", "room.>", "room.a b", "room.a%2Eb", "user.a"];
    const recorders = new Map(names.map((name) => [name, new Recorder(name)]));
    for (const [name, r] of recorders) await pair.subscriber.subscribe(name, r);
    for (const name of names) {
      await pair.publisher.publish(name, { event: notice(`on ${name}`) });
    }
    for (const name of names) await pair.publisher.publish(name, { event: notice("end") });
    for (const [name, r] of recorders) {
      await r.waitFor("end");
      assert.deepEqual(r.texts, [`on ${name}`, "end"], name);
    }
  });

  test("unsubscribe stops delivery; subscribing again resumes it", async (pair) => {
    const ann = new Recorder("ann");
    const bob = new Recorder("bob");
    await pair.subscriber.subscribe("room.x", ann);
    await pair.subscriber.subscribe("room.x", bob);
    pair.subscriber.unsubscribe("room.x", bob);
    pair.subscriber.unsubscribe("room.x", bob); // idempotent
    await pair.publisher.publish("room.x", { event: notice("1") });
    await ann.waitFor("1");
    pair.subscriber.unsubscribe("room.x", ann);
    // "2" must have passed before ann subscribes again: a later publication of the same
    // node on another subject, heard by a third subscriber, proves it has.
    const carol = new Recorder("carol");
    await pair.subscriber.subscribe("room.y", carol);
    await pair.publisher.publish("room.x", { event: notice("2") });
    await pair.publisher.publish("room.y", { event: notice("passed") });
    await carol.waitFor("passed");
    await pair.subscriber.subscribe("room.x", ann);
    await pair.publisher.publish("room.x", { event: notice("3") });
    await ann.waitFor("3");
    assert.deepEqual(ann.texts, ["1", "3"]);
    assert.deepEqual(bob.texts, []);
  });

  test("publish resolves to how many of the publishing node's subscribers accepted", async ({ publisher }) => {
    const ann = new Recorder("ann");
    const bob = new Recorder("bob");
    const eve = new Recorder("eve");
    for (const r of [ann, bob, eve]) await publisher.subscribe("room.lobby", r);
    const one = await publisher.publish("room.lobby", {
      event: notice("a"),
      except: new Set(["eve"]),
    });
    assert.equal(one, 2);
    const batch = await publisher.publishBatch("room.lobby", [
      { event: notice("b"), except: new Set(["eve", "bob"]) },
      { event: notice("c"), except: new Set(["eve"]) },
    ]);
    assert.equal(batch, 2);
    assert.equal(await publisher.publish("room.none", { event: notice("d") }), 0);
    assert.deepEqual(ann.texts, ["a", "b", "c"]);
    assert.deepEqual(eve.texts, []);
  });
}
