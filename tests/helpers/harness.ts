/**
 * Test harness for the server, in the style of the NATS server's tests: a server on
 * a random loopback port and a raw protocol client whose `send` / `expect` helpers
 * make tests read like transcripts. It speaks frames directly (no client library),
 * so server tests do not depend on the client's behaviour.
 *
 * @module
 */

import assert from "node:assert/strict";
import { encodeFrame } from "../../protocol/frame.ts";
import { clientHello, SERVER_FEATURES } from "../../protocol/hello.ts";
import { parseServerMessage, type ServerMessage } from "../../protocol/messages.ts";
import { FramedConnection } from "../../transport/framed_connection.ts";
import { dial } from "../../transport/net.ts";
import { NO_LIMITS, resolveServerConfig, type ServerConfig } from "../../server/config.ts";
import { type ChatServer, type ServerDeps, startServer } from "../../server/server.ts";
import { ChatClient, type ChatClientOptions } from "../../client/chat_client.ts";

/**
 * Starts a server on 127.0.0.1 with a random port, in-memory storage, cheap hashing and
 * no flood or connection limits (the limits' own tests turn them on).
 */
export function testServer(
  overrides: Partial<ServerConfig> = {},
  deps: ServerDeps = {},
): Promise<ChatServer> {
  return startServer(
    resolveServerConfig({
      host: "127.0.0.1",
      port: 0,
      dataDir: null,
      passwordCost: 1024,
      shutdownGraceMs: 500,
      drainWindowMs: 0,
      ...NO_LIMITS,
      ...overrides,
    }),
    deps,
  );
}

/**
 * A {@linkcode ChatClient} logged in to `server` as `nick` (password `password123`,
 * no reconnecting unless `overrides` say otherwise).
 */
export async function connectClient(
  server: ChatServer,
  nick: string,
  overrides: Partial<ChatClientOptions> = {},
): Promise<ChatClient> {
  return await ChatClient.connect({
    port: server.addr.port,
    nick,
    password: "password123",
    reconnect: false,
    ...overrides,
  });
}

/** Runs `fn` against a fresh {@linkcode testServer}, shutting it down afterwards. */
export async function withServer(
  fn: (server: ChatServer) => Promise<void>,
  overrides: Partial<ServerConfig> = {},
): Promise<void> {
  const server = await testServer(overrides);
  try {
    await fn(server);
  } finally {
    await server.shutdown();
  }
}

/** Default time a test waits for one expected frame. */
export const EXPECT_TIMEOUT_MS = 3000;

/** A frame the server sent, validated. */
export type Received = ServerMessage & Record<string, unknown>;

/**
 * A raw protocol client for tests: sends frames, buffers everything received,
 * and lets a test expect the next frame matching a pattern.
 */
export class Probe implements AsyncDisposable {
  readonly conn: FramedConnection;
  readonly received: Received[] = [];
  #waiters: { match: (m: Received) => boolean; resolve: (m: Received) => void }[] = [];
  #ended = false;
  #endWaiters: (() => void)[] = [];
  #counter = 0;
  readonly reader: Promise<void>;

  constructor(conn: FramedConnection) {
    this.conn = conn;
    this.reader = this.#read();
  }

  /** Dials the server without saying anything. */
  static async dial(server: ChatServer, tls?: { caCerts: string[] }): Promise<Probe> {
    const conn = await dial({
      host: "127.0.0.1",
      port: server.addr.port,
      ...(tls ? { tls: { ...tls, serverName: "localhost" } } : {}),
    });
    return new Probe(new FramedConnection(conn));
  }

  /** Dials, says hello and logs in; fails the test when login is refused. */
  static async login(server: ChatServer, nick: string, password = "password123"): Promise<Probe> {
    const probe = await Probe.dial(server);
    await probe.hello();
    const reply = await probe.request("login", { nick, password });
    assert.equal(reply.type, "ok", `login of ${nick} refused: ${JSON.stringify(reply)}`);
    return probe;
  }

  /** Sends hello and waits for the server's. */
  async hello(): Promise<Received> {
    this.conn.send(clientHello(SERVER_FEATURES, "probe"));
    return await this.expect({ type: "hello" });
  }

  /** Sends any header object as a frame. */
  send(header: Record<string, unknown>, body?: Uint8Array): void {
    this.conn.send(header, body);
  }

  /** Sends raw bytes. */
  sendRaw(bytes: Uint8Array): void {
    this.conn.sendEncoded(bytes);
  }

  /** Sends a request with a fresh id (unless `fields.id` is given) and awaits its reply. */
  async request(type: string, fields: Record<string, unknown> = {}): Promise<Received> {
    const id = (fields.id as string | undefined) ?? `r${++this.#counter}`;
    this.send({ type, id, ...fields });
    return await this.expect((m) => (m.type === "ok" || m.type === "error") && m.re === id);
  }

  /** Sends a request and asserts it succeeded; returns the reply. */
  async ok(type: string, fields: Record<string, unknown> = {}): Promise<Received> {
    const reply = await this.request(type, fields);
    assert.equal(reply.type, "ok", `${type} failed: ${JSON.stringify(reply)}`);
    return reply;
  }

  /** Sends a request and asserts it failed with `code`; returns the reply. */
  async fails(type: string, fields: Record<string, unknown>, code: string): Promise<Received> {
    const reply = await this.request(type, fields);
    assert.equal(reply.type, "error", `${type} should fail with ${code}: ${JSON.stringify(reply)}`);
    assert.equal(reply.code, code, `${type}: ${JSON.stringify(reply)}`);
    return reply;
  }

  /**
   * Waits for (and removes) the first received frame matching `pattern`: a partial
   * object compared field by field, or a predicate.
   */
  expect(
    pattern: Record<string, unknown> | ((m: Received) => boolean),
    timeoutMs = EXPECT_TIMEOUT_MS,
  ): Promise<Received> {
    const match = typeof pattern === "function" ? pattern : matcher(pattern);
    const index = this.received.findIndex(match);
    if (index >= 0) return Promise.resolve(this.received.splice(index, 1)[0]);
    return new Promise((resolve, reject) => {
      const waiter = {
        match,
        resolve: (m: Received) => {
          clearTimeout(timer);
          resolve(m);
        },
      };
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        reject(
          new Error(
            `timed out waiting for ${describe(pattern)}; received: ${
              JSON.stringify(this.received).slice(0, 2000)
            }`,
          ),
        );
      }, timeoutMs);
      this.#waiters.push(waiter);
    });
  }

  /** Asserts that nothing matching `pattern` arrives within `ms`. */
  async expectNone(pattern: Record<string, unknown>, ms = 200): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, ms));
    const found = this.received.find(matcher(pattern));
    assert.equal(found, undefined, `unexpected ${JSON.stringify(found)}`);
  }

  /** Resolves when the server has closed the connection. */
  closed(timeoutMs = EXPECT_TIMEOUT_MS): Promise<void> {
    if (this.#ended) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("connection still open")), timeoutMs);
      this.#endWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** Whether the server has closed the connection. */
  get ended(): boolean {
    return this.#ended;
  }

  close(): void {
    this.conn.abort();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.conn.abort();
    await this.reader;
  }

  async #read(): Promise<void> {
    try {
      for await (const frame of this.conn) {
        const message = parseServerMessage(frame.header) as Received;
        // A frame's body (file data) rides along, under a name no header uses.
        if (frame.body.length > 0) message.frameBody = frame.body;
        const waiter = this.#waiters.find((w) => w.match(message));
        if (waiter !== undefined) {
          this.#waiters = this.#waiters.filter((w) => w !== waiter);
          waiter.resolve(message);
        } else {
          this.received.push(message);
        }
      }
    } catch {
      // the tests look at `ended` and at what was received
    } finally {
      this.#ended = true;
      this.conn.abort();
      for (const wake of this.#endWaiters) wake();
    }
  }
}

function matcher(pattern: Record<string, unknown>): (m: Received) => boolean {
  return (m) =>
    Object.entries(pattern).every(([k, v]) =>
      typeof v === "object" && v !== null ? JSON.stringify(m[k]) === JSON.stringify(v) : m[k] === v
    );
}

function describe(pattern: unknown): string {
  return typeof pattern === "function" ? "a matching frame" : JSON.stringify(pattern);
}

/** Encodes a header as a frame (for raw-byte tests). */
export function frameOf(header: Record<string, unknown>): Uint8Array {
  return encodeFrame(header);
}

/** Polls `find` every 10 ms until it returns a value, failing after `ms`. */
export async function until<T>(
  find: () => T | undefined,
  what: string,
  ms = 10_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  while (true) {
    const found = find();
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Waits `ms` milliseconds. */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
