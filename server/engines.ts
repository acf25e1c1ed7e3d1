/**
 * The engines of a server, chosen by its configuration: where it keeps the chat (the
 * {@linkcode Store}), how it fans messages out to sessions (the {@linkcode Broker}) and how
 * it talks to other nodes (the {@linkcode ClusterBus}).
 *
 * - A single server (the default): SQLite in the data folder (memory without one), fan-out
 *   in process, a bus nobody else hears. Exactly what `chat serve` always did.
 * - Several nodes (`--postgres` and `--nats`): PostgreSQL keeps everything, NATS carries
 *   fan-out and node-to-node messages. A starting node waits for both (tries again for
 *   `--engine-wait` seconds, they may be starting too), then fails saying what to check.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { type Broker, LocalBroker } from "./broker.ts";
import { type ClusterBus, LocalClusterBus } from "./cluster_bus.ts";
import type { ServerConfig } from "./config.ts";
import { EngineUnavailableError } from "./engine_wait.ts";
import { MemoryStore } from "./memory_store.ts";
import { SqliteStore } from "./sqlite_store.ts";
import type { Store } from "./store.ts";

const log = getLogger(["chat", "server", "engines"]);

/** The engines a server runs on. */
export interface Engines {
  /** Where the chat is kept. */
  readonly store: Store;
  /** Fan-out to sessions. */
  readonly broker: Broker;
  /** Node-to-node messages. */
  readonly bus: ClusterBus;
  /** What they are, for the log: `SQLite in ./chat-data`, `PostgreSQL at ..., NATS at ...`. */
  readonly description: string;
}

/** Engines given by the caller (tests inject them); the others are opened. */
export type GivenEngines = Partial<Pick<Engines, "store" | "broker" | "bus">>;

/**
 * Opens the engines `config` asks for, except those `given`.
 *
 * @throws {EngineUnavailableError} when PostgreSQL or NATS cannot be reached within
 * `config.engineWaitSec`; {@linkcode StoreError} `open_failed` when the SQLite folder
 * cannot be used. What was opened before the failure is closed again.
 * @example
 * ```ts ignore
 * import { openEngines } from "./engines.ts";
 * import { resolveServerConfig } from "./config.ts";
 * const engines = await openEngines(resolveServerConfig({ dataDir: null }));
 * engines.description; // "memory (no data folder)"
 * ```
 */
export async function openEngines(
  config: ServerConfig,
  given: GivenEngines = {},
): Promise<Engines> {
  if (config.postgres !== null || config.nats !== null) return await openCluster(config, given);
  const store = given.store ??
    (config.dataDir === null ? new MemoryStore() : await SqliteStore.open(config.dataDir));
  return {
    store,
    broker: given.broker ?? new LocalBroker(),
    bus: given.bus ?? new LocalClusterBus(),
    description: config.dataDir === null
      ? "memory (no data folder)"
      : `SQLite in ${config.dataDir}`,
  };
}

/** PostgreSQL and NATS: the engines of a node of several. */
function openCluster(config: ServerConfig, _given: GivenEngines): Promise<Engines> {
  if (config.postgres === null || config.nats === null) {
    throw new EngineUnavailableError("a node of several needs both PostgreSQL and NATS");
  }
  log.error("PostgreSQL and NATS engines are not part of this build yet");
  throw new EngineUnavailableError("PostgreSQL and NATS engines are not part of this build yet");
}
