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
import type { NatsSettings, PostgresSettings, ServerConfig } from "./config.ts";
import { EngineUnavailableError, waitForEngine } from "./engine_wait.ts";
import { MemoryStore } from "./memory_store.ts";
import { NatsBroker } from "./nats_broker.ts";
import { NatsClusterBus } from "./nats_cluster_bus.ts";
import { NatsLink } from "./nats_connection.ts";
import type { FileServiceDeps } from "./files.ts";
import { openPostgresFiles } from "./postgres_files.ts";
import { PostgresStore } from "./postgres_store.ts";
import { CatchUpBroker } from "./reconnect_catch_up.ts";
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
  /**
   * Held files' records and bytes; absent: the file folder (`files.db` and the bytes),
   * as a single server keeps them.
   */
  readonly files?: FileServiceDeps;
  /** What they are, for the log: `SQLite in ./chat-data`, `PostgreSQL at ..., NATS at ...`. */
  readonly description: string;
}

/** Engines given by the caller (tests inject them); the others are opened. */
export type GivenEngines = Partial<Pick<Engines, "store" | "broker" | "bus" | "files">>;

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
    (config.dataDir === null
      ? new MemoryStore()
      : await SqliteStore.open(config.dataDir, { commitGapMs: config.commitGapMs }));
  return {
    store,
    broker: given.broker ?? new LocalBroker(),
    bus: given.bus ?? new LocalClusterBus(),
    ...(given.files === undefined ? {} : { files: given.files }),
    description: config.dataDir === null
      ? "memory (no data folder)"
      : `SQLite in ${config.dataDir}`,
  };
}

/** PostgreSQL and NATS: the engines of a node of several. */
async function openCluster(config: ServerConfig, given: GivenEngines): Promise<Engines> {
  const { postgres, nats } = config;
  if (postgres === null || nats === null) {
    throw new EngineUnavailableError(
      "a node of several needs both PostgreSQL (--postgres) and NATS (--nats)",
    );
  }
  // One id for the node everywhere: its sessions' rows, its messages on NATS.
  const nodeId = given.bus?.nodeId ?? crypto.randomUUID().slice(0, 8);
  const timeoutMs = config.engineWaitSec * 1000;
  const natsWhere = `NATS at ${nats.servers.join(",")}`;
  let store: Store | undefined;
  let files: FileServiceDeps | undefined;
  try {
    store = given.store ?? await waitForEngine(
      () => PostgresStore.open({ url: postgresUrl(postgres), nodeId }),
      {
        what: `PostgreSQL at ${postgres.url}`,
        timeoutMs,
        hint: "that PostgreSQL runs there and listens on that address (listen_addresses, " +
          "the port), that this machine may connect (pg_hba.conf), the user and its password " +
          "(--postgres-password-file or PGPASSWORD) and that the database exists",
        permanent: isPermanentPostgresError,
      },
    );
    // Held files too, so that a file uploaded on one node is read from any other.
    files = given.files ?? await waitForEngine(
      () => openPostgresFiles(postgresUrl(postgres)),
      { what: `PostgreSQL at ${postgres.url} (held files)`, timeoutMs, hint: "the same" },
    );
    let link: NatsLink | undefined;
    if (given.broker === undefined || given.bus === undefined) {
      link = await waitForEngine(
        () => NatsLink.open(natsServerList(nats), { name: `chat ${nodeId}` }),
        {
          what: natsWhere,
          timeoutMs,
          hint: "that nats-server runs there and that this machine may connect to its port " +
            "(4222 by default), and the user and password or token (--nats-password-file or " +
            "CHAT_NATS_PASSWORD)",
        },
      );
    }
    // The bus owns the link: the server closes the broker, then the bus.
    const bus = given.bus ?? new NatsClusterBus(link!, { nodeId, ownsLink: true });
    let broker = given.broker;
    if (broker === undefined) {
      // What other nodes publish while NATS is out of reach is read back from PostgreSQL.
      const caughtUp = new CatchUpBroker(
        new NatsBroker(link!, { nodeId }),
        store,
        () => link!.connected,
      );
      await caughtUp.listenOn(bus);
      broker = caughtUp;
    }
    log.info("node {nodeId}: PostgreSQL at {postgres}, {nats}", {
      nodeId,
      postgres: postgres.url,
      nats: natsWhere,
    });
    return {
      store,
      broker,
      bus,
      files,
      description: `node ${nodeId}: PostgreSQL at ${postgres.url}, ${natsWhere}`,
    };
  } catch (err) {
    if (given.store === undefined) await store?.close().catch(() => {});
    if (given.files === undefined) {
      await files?.store.close().catch(() => {});
      await files?.bytes.close().catch(() => {});
    }
    throw err;
  }
}

/** The store's connection URL: the settings' URL with the password put back in. */
function postgresUrl(settings: PostgresSettings): string {
  if (settings.password === undefined) return settings.url;
  const url = new URL(settings.url);
  url.password = encodeURIComponent(settings.password);
  return url.href;
}

/** The NATS link's server list: the URLs with the credentials put back in. */
function natsServerList(settings: NatsSettings): string {
  const auth = settings.token !== undefined
    ? `${encodeURIComponent(settings.token)}@`
    : settings.user !== undefined
    ? `${encodeURIComponent(settings.user)}:${encodeURIComponent(settings.pass ?? "")}@`
    : "";
  return settings.servers.map((server) => server.replace("://", `://${auth}`)).join(",");
}

/**
 * PostgreSQL refusals that waiting does not cure: a wrong password or user (28xxx), a
 * missing database (3D000).
 */
function isPermanentPostgresError(err: unknown): boolean {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && (code.startsWith("28") || code === "3D000")) return true;
  }
  return false;
}
