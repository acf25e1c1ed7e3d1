/**
 * The chat server's configuration and its defaults.
 *
 * @module
 */

import { DEFAULT_MAX_FRAME_SIZE } from "../protocol/frame.ts";

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
  /** Messages delivered when joining a room. */
  historyOnJoin: number;
  /** Milliseconds to finish writes at shutdown before closing anyway. */
  shutdownGraceMs: number;
  /** scrypt cost parameter N for password hashes (a power of two). */
  passwordCost: number;
}

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
  historyOnJoin: 50,
  shutdownGraceMs: 3000,
  passwordCost: 1 << 15,
});

/** Fills in defaults for every setting not given. */
export function resolveServerConfig(partial: Partial<ServerConfig> = {}): ServerConfig {
  const config: ServerConfig = { ...DEFAULT_SERVER_CONFIG, credentials: [], ...partial };
  return config;
}
