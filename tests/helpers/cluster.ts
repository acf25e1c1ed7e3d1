/**
 * A cluster of chat servers in one process, over real sockets: each node has its own
 * broker and bus, all share one store. The brokers fan out over a
 * {@linkcode LocalClusterNetwork} of their own (as NATS would carry publications), so
 * closing a node's cluster bus silences its heartbeats without cutting its fan-out.
 *
 * @module
 */

import {
  type Broker,
  LocalBroker,
  type Publication,
  type Subscriber,
} from "../../server/broker.ts";
import { type ClusterBus, LocalClusterNetwork } from "../../server/cluster_bus.ts";
import type { ServerConfig } from "../../server/config.ts";
import { MemoryStore } from "../../server/memory_store.ts";
import type { ChatServer } from "../../server/server.ts";
import type { Store } from "../../server/store.ts";
import { testServer } from "./harness.ts";

const FANOUT_TOPIC = "fanout";

/** A publication as it crosses between nodes (JSON, `except` as a list). */
interface WirePublication {
  event: Publication["event"];
  from?: string;
  except?: string[];
  exceptSession?: string;
}

/**
 * A {@linkcode Broker} for one node of an in-process cluster: publications reach this
 * node's subscribers at once and the other nodes' over a bus, as JSON; `publish`
 * counts this node's receivers only (as a NATS broker does); `publishLocal` stays here.
 */
export class ClusterBroker implements Broker {
  readonly #local = new LocalBroker();
  readonly #bus: ClusterBus;
  #stop: (() => void) | undefined;
  #held: { until: Promise<void>; asked: () => void } | null = null;

  private constructor(bus: ClusterBus) {
    this.#bus = bus;
  }

  /** A broker over `bus`, listening. */
  static async open(bus: ClusterBus): Promise<ClusterBroker> {
    const broker = new ClusterBroker(bus);
    broker.#stop = await bus.listen(FANOUT_TOPIC, ({ from, data }) => {
      if (from === bus.nodeId) return;
      const { subject, publications } = data as { subject: string; publications: string };
      const decoded = (JSON.parse(publications) as WirePublication[]).map(fromWire);
      broker.#local.publishBatchNow(subject, decoded);
    });
    return broker;
  }

  /**
   * Holds back the confirmation of subscriptions, as a remote engine takes a while to
   * confirm: a subscription asked meanwhile takes effect (and resolves) only at
   * `release()`. `asked` resolves when the first one is asked.
   */
  hold(): { asked: Promise<void>; release: () => void } {
    let release!: () => void;
    let asked!: () => void;
    const until = new Promise<void>((resolve) => release = resolve);
    const first = new Promise<void>((resolve) => asked = resolve);
    this.#held = { until, asked };
    return {
      asked: first,
      release: () => {
        this.#held = null;
        release();
      },
    };
  }

  async subscribe(subject: string, subscriber: Subscriber): Promise<void> {
    const held = this.#held;
    if (held !== null) {
      held.asked();
      await held.until;
    }
    await this.#local.subscribe(subject, subscriber);
  }

  unsubscribe(subject: string, subscriber: Subscriber): void {
    this.#local.unsubscribe(subject, subscriber);
  }

  publish(subject: string, publication: Publication): Promise<number> {
    return this.publishBatch(subject, [publication]);
  }

  publishBatch(subject: string, publications: readonly Publication[]): Promise<number> {
    const accepted = this.#local.publishBatchNow(subject, publications);
    this.#bus.send(FANOUT_TOPIC, {
      subject,
      publications: JSON.stringify(publications.map(toWire)),
    });
    return Promise.resolve(accepted);
  }

  publishLocal(subject: string, publication: Publication): Promise<number> {
    return this.#local.publishLocal(subject, publication);
  }

  publishLocalBatch(subject: string, publications: readonly Publication[]): Promise<number> {
    return this.#local.publishLocalBatch(subject, publications);
  }

  async close(): Promise<void> {
    this.#stop?.();
    await this.#local.close();
  }
}

function toWire({ except, ...rest }: Publication): WirePublication {
  return except === undefined ? rest : { ...rest, except: [...except] };
}

function fromWire({ except, ...rest }: WirePublication): Publication {
  return except === undefined ? rest : { ...rest, except: new Set(except) };
}

/** One store shared by every node: closing a node does not close it. */
function shared(store: Store): Store {
  return new Proxy(store, {
    get(target, property) {
      if (property === "close") return () => Promise.resolve();
      const value = Reflect.get(target, property, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

/** A running in-process cluster. */
export interface TestCluster extends AsyncDisposable {
  /** The nodes, in order (ids `n0`, `n1`...). */
  readonly nodes: ChatServer[];
  /** Each node's cluster bus (close one to make its node fall silent). */
  readonly buses: ClusterBus[];
  /** Each node's broker. */
  readonly brokers: ClusterBroker[];
  /** The shared store. */
  readonly store: MemoryStore;
  /** Starts one more node (it joins the running ones). */
  addNode(): Promise<ChatServer>;
  /** Shuts every node down. */
  shutdown(): Promise<void>;
}

/** Waits until `condition` holds, checking every 10 ms, failing after `timeoutMs`. */
export async function waitFor(
  condition: () => boolean,
  what: string,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/**
 * Starts `count` nodes sharing one in-memory store, with `overrides` of the test
 * server's settings.
 */
export async function startCluster(
  count: number,
  overrides: Partial<ServerConfig> = {},
): Promise<TestCluster> {
  const store = new MemoryStore();
  const network = new LocalClusterNetwork();
  const fanout = new LocalClusterNetwork();
  const nodes: ChatServer[] = [];
  const buses: ClusterBus[] = [];
  const brokers: ClusterBroker[] = [];
  const shutdown = async () => {
    await Promise.all(nodes.map((node) => node.shutdown()));
    await store.close();
  };
  const addNode = async () => {
    const id = `n${nodes.length}`;
    const bus = network.bus(id);
    const broker = await ClusterBroker.open(fanout.bus(id));
    const node = await testServer(overrides, { store: shared(store), broker, bus });
    buses.push(bus);
    brokers.push(broker);
    nodes.push(node);
    return node;
  };
  try {
    for (let i = 0; i < count; i++) await addNode();
  } catch (err) {
    await shutdown();
    throw err;
  }
  return { nodes, buses, brokers, store, addNode, shutdown, [Symbol.asyncDispose]: shutdown };
}
