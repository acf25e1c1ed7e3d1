/**
 * A cluster of chat servers in one process, over real sockets and REAL engines: one
 * scratch PostgreSQL and one `nats-server` per test file ({@linkcode startClusterEngines},
 * called at module level), a fresh database per cluster, and for each node what
 * `server/engines.ts` opens for `chat serve --postgres ... --nats ...`: its own
 * {@linkcode PostgresStore}, {@linkcode NatsLink}, {@linkcode NatsBroker} (behind the
 * {@linkcode CatchUpBroker}) and {@linkcode NatsClusterBus} owning the link, all with
 * one node id. Held files are opened by `openEngines` from the node's PostgreSQL
 * settings.
 *
 * Two handles for tests: closing a node's bus ({@linkcode TestCluster.buses}) closes its
 * NATS link, so that the node falls silent (no heartbeat, no fan-out) without logging
 * its sessions out, as a hung process or one cut from NATS; and
 * {@linkcode HeldBroker.hold} holds back the confirmation of a node's subscriptions.
 *
 * @example
 * ```ts ignore
 * import { startCluster, startClusterEngines } from "./cluster.ts";
 * const engines = await startClusterEngines(); // null: not installed (reason printed)
 * Deno.test({ name: "two nodes", ignore: engines === null }, async () => {
 *   await using cluster = await startCluster(2);
 *   const [a, b] = cluster.nodes; // Probe.login(a, "ann")...
 * });
 * ```
 *
 * @module
 */

import { join } from "node:path";
import { nameKey } from "../../protocol/names.ts";
import type { Broker, Publication, Subscriber } from "../../server/broker.ts";
import type { ServerConfig } from "../../server/config.ts";
import { NatsBroker } from "../../server/nats_broker.ts";
import { NatsClusterBus } from "../../server/nats_cluster_bus.ts";
import { NatsLink } from "../../server/nats_connection.ts";
import { PostgresStore } from "../../server/postgres_store.ts";
import { CatchUpBroker } from "../../server/reconnect_catch_up.ts";
import type { ChatServer } from "../../server/server.ts";
import { testServer } from "./harness.ts";
import { NATS_SKIP, NatsServer } from "./nats.ts";
import { POSTGRES_SKIP, type ScratchPostgres, startPostgres } from "./postgres.ts";

/** Why the in-process cluster tests skip here, or null when both engines are installed. */
export const CLUSTER_SKIP: string | null = POSTGRES_SKIP ?? NATS_SKIP ?? null;

/**
 * A {@linkcode Broker} passing everything to `inner` (a node's {@linkcode NatsBroker}),
 * whose subscriptions can be held back: {@linkcode hold}.
 */
export class HeldBroker implements Broker {
  readonly #inner: Broker;
  #held: { until: Promise<void>; asked: () => void } | null = null;

  constructor(inner: Broker) {
    this.#inner = inner;
  }

  /**
   * Holds back subscriptions, as a remote engine may take a while to confirm: one asked
   * meanwhile reaches NATS (and resolves) only after `release()`. `asked` resolves when
   * the first one is asked.
   */
  hold(): { asked: Promise<void>; release: () => void } {
    const until = Promise.withResolvers<void>();
    const asked = Promise.withResolvers<void>();
    this.#held = { until: until.promise, asked: asked.resolve };
    return {
      asked: asked.promise,
      release: () => {
        this.#held = null;
        until.resolve();
      },
    };
  }

  async subscribe(subject: string, subscriber: Subscriber): Promise<void> {
    const held = this.#held;
    if (held !== null) {
      held.asked();
      await held.until;
    }
    await this.#inner.subscribe(subject, subscriber);
  }

  unsubscribe(subject: string, subscriber: Subscriber): void {
    this.#inner.unsubscribe(subject, subscriber);
  }

  publish(subject: string, publication: Publication): Promise<number> {
    return this.#inner.publish(subject, publication);
  }

  publishBatch(subject: string, publications: readonly Publication[]): Promise<number> {
    return this.#inner.publishBatch(subject, publications);
  }

  publishLocal(subject: string, publication: Publication): Promise<number> {
    return this.#inner.publishLocal(subject, publication);
  }

  publishLocalBatch(subject: string, publications: readonly Publication[]): Promise<number> {
    return this.#inner.publishLocalBatch(subject, publications);
  }

  close(): Promise<void> {
    this.#held = null;
    return this.#inner.close();
  }
}

/** This test file's engines: one PostgreSQL, one nats-server. */
export interface ClusterEngines {
  readonly postgres: ScratchPostgres;
  readonly nats: NatsServer;
}

let engines: Promise<ClusterEngines | null> | undefined;

/**
 * Starts this test file's PostgreSQL and nats-server, once (later calls return the same);
 * null, printing why, when one is not installed. Call it at module level, before the
 * tests: the engines' processes outlive every test. Both stop when the process ends.
 */
export function startClusterEngines(): Promise<ClusterEngines | null> {
  return engines ??= (async () => {
    if (CLUSTER_SKIP !== null) {
      console.warn(CLUSTER_SKIP);
      return null;
    }
    const postgres = await startPostgres({ fsync: false });
    if (postgres === null) return null;
    // Its log in a file: nothing on stderr for the helper to read while tests run.
    const nats = await NatsServer.start(["-l", join(postgres.dir, "nats.log")]);
    globalThis.addEventListener("unload", () => void nats.close());
    return { postgres, nats };
  })();
}

/** A running in-process cluster. */
export interface TestCluster extends AsyncDisposable {
  /** The nodes, in order. */
  readonly nodes: ChatServer[];
  /**
   * Each node's cluster bus; it owns the node's NATS link, so closing it makes the node
   * fall silent (no heartbeat, no fan-out) without logging its sessions out.
   */
  readonly buses: NatsClusterBus[];
  /** Each node's broker under its catch-up layer (to hold its subscriptions back). */
  readonly brokers: HeldBroker[];
  /** The URL of this cluster's database. */
  readonly databaseUrl: string;
  /** Starts one more node (it joins the running ones). */
  addNode(): Promise<ChatServer>;
  /**
   * Waits until every node takes each of `nicks` for online: a login is told to the
   * other nodes over NATS after it is answered.
   */
  known(...nicks: string[]): Promise<void>;
  /** Shuts every node down. */
  shutdown(): Promise<void>;
}

/** Waits until `condition` holds, checking every 10 ms, failing after `timeoutMs`. */
export async function waitFor(
  condition: () => boolean,
  what: string,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/**
 * Starts `count` nodes on a fresh database of this file's engines
 * ({@linkcode startClusterEngines}), with `overrides` of the test server's settings.
 * Throws when the engines are not installed (check {@linkcode CLUSTER_SKIP}).
 */
export async function startCluster(
  count: number,
  overrides: Partial<ServerConfig> = {},
): Promise<TestCluster> {
  const started = await startClusterEngines();
  if (started === null) throw new Error(CLUSTER_SKIP ?? "no engines");
  const databaseUrl = await started.postgres.createDatabase();
  const natsUrl = started.nats.url;
  const nodes: ChatServer[] = [];
  const buses: NatsClusterBus[] = [];
  const brokers: HeldBroker[] = [];
  const shutdown = async () => {
    await Promise.all(nodes.map((node) => node.shutdown()));
  };
  const addNode = async () => {
    // One id for the node everywhere, as server/engines.ts does.
    const nodeId = `n${nodes.length}-${crypto.randomUUID().slice(0, 4)}`;
    const store = await PostgresStore.open({ url: databaseUrl, nodeId });
    let link: NatsLink | undefined;
    let bus: NatsClusterBus | undefined;
    let broker: CatchUpBroker | undefined;
    try {
      link = await NatsLink.open(natsUrl, { name: `chat ${nodeId}` });
      const connected = link;
      bus = new NatsClusterBus(link, { nodeId, ownsLink: true });
      const held = new HeldBroker(new NatsBroker(link, { nodeId }));
      broker = new CatchUpBroker(held, store, () => connected.connected);
      await broker.listenOn(bus);
      const node = await testServer({
        ...overrides,
        postgres: { url: databaseUrl },
        nats: { servers: [natsUrl] },
      }, { store, broker, bus });
      buses.push(bus);
      brokers.push(held);
      nodes.push(node);
      return node;
    } catch (err) {
      // Closing twice what startServer closed on failing does nothing.
      await broker?.close().catch(() => {});
      await (bus ?? link)?.close().catch(() => {});
      await store.close().catch(() => {});
      throw err;
    }
  };
  const known = (...nicks: string[]) =>
    waitFor(
      () => nodes.every((node) => nicks.every((nick) => node.hub.presence.isOnline(nameKey(nick)))),
      `every node knows ${nicks.join(", ")} online`,
    );
  try {
    for (let i = 0; i < count; i++) await addNode();
  } catch (err) {
    await shutdown();
    throw err;
  }
  return {
    nodes,
    buses,
    brokers,
    databaseUrl,
    addNode,
    known,
    shutdown,
    [Symbol.asyncDispose]: shutdown,
  };
}
