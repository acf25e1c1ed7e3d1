/**
 * The chat server's configuration and its defaults.
 *
 * @module
 */

import { DEFAULT_MAX_FRAME_SIZE } from "../protocol/frame.ts";
import type { LockoutScope } from "./lockout.ts";

/** How logins are checked. */
export type AuthMode = "password" | "none";

/** Everything a server needs to start. */
export interface ServerConfig {
  /** Address to bind. */
  host: string;
  /** TCP port; 0 picks a free one. */
  port: number;
  /** Data folder for the SQLite store; `null` keeps everything in memory (tests). */
  dataDir: string | null;
  /** TLS certificate chain and key as PEM text; absent for plain TCP. */
  tls?: { cert: string; key: string };
  /** `password` registers on first login and verifies after; `none` is nick-only. */
  auth: AuthMode;
  /** Accounts to import at start (the course app's `username password` lines). */
  credentials: { nick: string; password: string }[];
  /** Seconds a nick stays locked after 3 consecutive wrong passwords. */
  blockDurationSec: number;
  /** Seconds without a command before a session is logged out; 0 turns it off. */
  idleTimeoutSec: number;
  /** Largest incoming frame payload, in bytes. */
  maxFrameSize: number;
  /** Bound of each session's outbound queue, in bytes. */
  maxQueueBytes: number;
  /** A write stalled this long cuts the consumer off, in ms. */
  writeTimeoutMs: number;
  /** Milliseconds a new connection has to complete hello and login. */
  loginTimeoutMs: number;
  /** Messages (say, dm, broadcast) a session may send per second; 0: unlimited. */
  rateMessagesPerSec: number;
  /** Messages a session may send in a burst before the rate applies. */
  rateMessagesBurst: number;
  /** Requests of any kind a session may send per second; 0: unlimited. */
  rateRequestsPerSec: number;
  /** Requests a session may send in a burst. */
  rateRequestsBurst: number;
  /** Bytes a session may send per second; 0: unlimited. */
  rateBytesPerSec: number;
  /** Bytes a session may send in a burst (at least one frame's worth). */
  rateBytesBurst: number;
  /** Rate-limited requests within 10 seconds after which the session is disconnected. */
  floodStrikes: number;
  /** Connections open at once, in all; 0: unlimited. */
  maxConnections: number;
  /** Connections open at once from one IP address; 0: unlimited. */
  maxConnectionsPerIp: number;
  /** Sessions one account may have at once; 0: unlimited. */
  maxSessionsPerAccount: number;
  /** Failed logins allowed per IP address per minute (burst and rate); 0: unlimited. */
  loginFailuresPerMinutePerIp: number;
  /** Messages delivered when joining a room. */
  historyOnJoin: number;
  /**
   * Milliseconds over which a shutdown closes sessions, a few at a time, after telling
   * every client to reconnect (so they do not all come back at once); 0 closes all at once.
   */
  drainWindowMs: number;
  /** Port of the metrics endpoint (`/metrics`, `/healthz`); null turns it off. */
  metricsPort: number | null;
  /** Address the metrics endpoint binds. */
  metricsHost: string;
  /** Milliseconds to finish writes at shutdown before closing anyway. */
  shutdownGraceMs: number;
  /** scrypt cost parameter N for password hashes (a power of two). */
  passwordCost: number;
  /** Largest file accepted for transfer through the server, in bytes. */
  maxFileSize: number;
  /** Bytes of files one account may have held by the server for their recipients at once. */
  fileQuotaBytes: number;
  /** Seconds a file is held for its recipient before it is deleted. */
  fileTtlSec: number;
  /**
   * Folder of the files held for their recipients; `null`: `files/` in the data folder
   * (a temporary folder when `dataDir` is null).
   */
  fileDir: string | null;
  /**
   * Milliseconds an incoming frame may take to arrive once its first byte has, whatever
   * the idle timeout; 0: no limit.
   */
  frameTimeoutMs: number;
  /**
   * Bytes held, over all connections, for incoming frames not complete yet (a frame's
   * payload is allocated whole once its length is known); 0: no limit.
   */
  maxPartialFrameBytes: number;
  /** Milliseconds a TLS client has to finish its handshake; the connection is closed after. */
  tlsHandshakeTimeoutMs: number;
  /**
   * Whom 3 wrong passwords lock out: `address` (default) the nick for that address, and
   * for addresses that never logged in to it; `account` the nick from every address.
   */
  lockoutScope: LockoutScope;
  /** Password hashes (scrypt) computed at once; more wait in a queue. */
  passwordHashConcurrency: number;
  /** Logins waiting for a password hash before new ones are refused; 0: unbounded. */
  passwordHashQueue: number;
  /** Accounts one IP address may register per minute (burst and rate); 0: unlimited. */
  registrationsPerMinutePerIp: number;
  /** Accounts that may be registered per minute in all (burst and rate); 0: unlimited. */
  registrationsPerMinute: number;
  /** File and relay bytes (file_chunk, relay, file_read) per session per second; 0: unlimited. */
  rateFileBytesPerSec: number;
  /**
   * Bytes of files the server holds for their recipients at once, from everyone; each
   * file counts {@linkcode FILE_OVERHEAD_BYTES} more than its size; 0: unlimited.
   */
  filesBudgetBytes: number;
  /**
   * Free space kept on the disk of the files' folder, in bytes: uploads are refused, and
   * cut off, before they would eat into it, so that the database stays writable.
   */
  minFreeBytes: number;
  /** Files one account may have held by the server at once (zero-byte ones too); 0: unlimited. */
  maxHeldFilesPerSender: number;
  /**
   * Milliseconds between a node's heartbeats to the other nodes of a cluster; a node not
   * heard from for {@linkcode MISSED_HEARTBEATS} of them is taken for dead and its
   * sessions go offline everywhere (`cluster_presence.ts`).
   */
  clusterHeartbeatMs: number;
  /**
   * Accounts online (on every node) up to which every login and logout is told to every
   * session; above it only to those sharing a room of at most this many members with the
   * account, or having it as a contact (`/who` answers the rest on demand). 0: always
   * targeted.
   */
  presenceAllMax: number;
  /**
   * PostgreSQL holding everything, shared by the nodes of a cluster (with {@linkcode nats});
   * null: SQLite in {@linkcode dataDir}, a single server.
   */
  postgres: PostgresSettings | null;
  /**
   * NATS servers carrying fan-out and node-to-node messages between the nodes of a
   * cluster (with {@linkcode postgres}); null: in process, a single server.
   */
  nats: NatsSettings | null;
  /**
   * Seconds a starting node waits for PostgreSQL and NATS to answer, trying again,
   * before it gives up and says what to check.
   */
  engineWaitSec: number;
  /**
   * Port of the browser client (the page over HTTP, its WebSocket at `/ws`), on the same
   * address as the chat port; null turns it off. `chat serve` defaults it to the chat
   * port + 1 (see server/web_server.ts for why a port of its own).
   */
  webPort: number | null;
  /**
   * TCP port of the IRC listener (`server/irc_connection.ts`), on `host`; null: off,
   * 0: a free one.
   */
  ircPort: number | null;
  /**
   * TCP port of the IRC listener over TLS (the server's `tls` certificate), on `host`;
   * null: off, 0: a free one.
   */
  ircTlsPort: number | null;
  /** Seconds a session token ("remember me", `token_issue`) works after it is issued. */
  tokenTtlSec: number;
  /**
   * Least milliseconds from one group commit of room and direct messages to the next, with
   * SQLite (see `SqliteStoreOptions.commitGapMs`); 0: every turn's messages commit at once.
   */
  commitGapMs: number;
}

/** Where PostgreSQL is and how to log in to it. */
export interface PostgresSettings {
  /** Connection URL without its password, e.g. `postgres://chat@db:5432/chat`. */
  url: string;
  /** The password (from a file or the environment, never the command line). */
  password?: string;
}

/** Where the NATS servers are and how to log in to them. */
export interface NatsSettings {
  /** Server URLs without credentials, e.g. `["nats://nats-1:4222", "nats://nats-2:4222"]`. */
  servers: string[];
  /** User name, with {@linkcode pass}. */
  user?: string;
  /** Password of {@linkcode user}. */
  pass?: string;
  /** Token, when the servers take a token instead of a user and password. */
  token?: string;
}

/** Heartbeats a node may miss before the others drop its sessions. */
export const MISSED_HEARTBEATS = 3;

/**
 * What a held file counts against the server's budget besides its size: its record, its
 * inode, its blocks. Generous, so that empty files cannot be held by the million (the
 * default budget holds at most 131,072 files).
 */
export const FILE_OVERHEAD_BYTES = 64 * 1024;

/** The defaults of every setting. */
export const DEFAULT_SERVER_CONFIG: Readonly<ServerConfig> = Object.freeze({
  host: "0.0.0.0",
  port: 44444,
  dataDir: "./chat-data",
  auth: "password",
  credentials: [],
  blockDurationSec: 60,
  idleTimeoutSec: 0,
  maxFrameSize: DEFAULT_MAX_FRAME_SIZE,
  maxQueueBytes: 4 * 1024 * 1024,
  writeTimeoutMs: 10_000,
  loginTimeoutMs: 10_000,
  rateMessagesPerSec: 5,
  rateMessagesBurst: 10,
  rateRequestsPerSec: 50,
  rateRequestsBurst: 100,
  rateBytesPerSec: 256 * 1024,
  rateBytesBurst: 2 * 1024 * 1024,
  floodStrikes: 50,
  maxConnections: 10_000,
  maxConnectionsPerIp: 64,
  maxSessionsPerAccount: 8,
  loginFailuresPerMinutePerIp: 30,
  historyOnJoin: 50,
  shutdownGraceMs: 1000,
  drainWindowMs: 2000,
  metricsPort: null,
  metricsHost: "127.0.0.1",
  passwordCost: 1 << 15,
  maxFileSize: 256 * 1024 * 1024,
  fileQuotaBytes: 1024 * 1024 * 1024,
  fileTtlSec: 7 * 24 * 60 * 60,
  fileDir: null,
  frameTimeoutMs: 30_000,
  maxPartialFrameBytes: 128 * 1024 * 1024,
  tlsHandshakeTimeoutMs: 10_000,
  lockoutScope: "address",
  passwordHashConcurrency: 2,
  passwordHashQueue: 64,
  registrationsPerMinutePerIp: 5,
  registrationsPerMinute: 60,
  rateFileBytesPerSec: 16 * 1024 * 1024,
  filesBudgetBytes: 8 * 1024 * 1024 * 1024,
  minFreeBytes: 256 * 1024 * 1024,
  maxHeldFilesPerSender: 100,
  clusterHeartbeatMs: 2000,
  postgres: null,
  nats: null,
  engineWaitSec: 30,
  presenceAllMax: 200,
  webPort: null,
  ircPort: null,
  ircTlsPort: null,
  tokenTtlSec: 30 * 24 * 3600,
  commitGapMs: 0,
});

/** The settings that turn every flood and connection limit off (benchmarks, tests). */
export const NO_LIMITS: Readonly<Partial<ServerConfig>> = Object.freeze({
  rateMessagesPerSec: 0,
  rateRequestsPerSec: 0,
  rateBytesPerSec: 0,
  maxConnections: 0,
  maxConnectionsPerIp: 0,
  maxSessionsPerAccount: 0,
  loginFailuresPerMinutePerIp: 0,
  passwordHashQueue: 0,
  registrationsPerMinutePerIp: 0,
  registrationsPerMinute: 0,
  rateFileBytesPerSec: 0,
});

/** Fills in defaults for every setting not given. */
export function resolveServerConfig(partial: Partial<ServerConfig> = {}): ServerConfig {
  const config: ServerConfig = { ...DEFAULT_SERVER_CONFIG, credentials: [], ...partial };
  return config;
}
