/**
 * What the crash tests share around a `chat serve` process that kills itself at a chosen
 * point (`CHAT_TEST_KILL_AT`, tests/helpers/kill_switch.ts) and is started again on the
 * same port: its death checked, clients that reconnect until it is back, a recipient that
 * takes the file, the process stopped at the end.
 *
 * @module
 */

import assert from "node:assert/strict";
import { ChatClient } from "../../client/chat_client.ts";
import { FileTransfers } from "../../client/file_transfer.ts";
import type { FileTransferEvent } from "../../transport/file_transfer_events.ts";
import { until } from "./harness.ts";

/** Generous: a loaded machine takes seconds to start a server again. */
export const CRASH_WAIT_MS = 60_000;

/** Anything a test closes at its end, newest first. */
export type Closing = { close(): void | Promise<void> }[];

/** Waits for the server to kill itself (asserting it did: SIGKILL), at most {@linkcode CRASH_WAIT_MS}. */
export async function killedItself(child: Deno.ChildProcess): Promise<void> {
  const timer = setTimeout(() => child.kill("SIGTERM"), CRASH_WAIT_MS);
  try {
    const status = await child.status;
    assert.equal(status.signal, "SIGKILL", "the server did not reach the point where it dies");
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Logs `nick` in on `port` (password `password123`); with `reconnect`, it reconnects for
 * as long as a loaded machine takes to restart the server. Closed with `closing`.
 */
export async function connectTo(
  port: number,
  nick: string,
  reconnect: boolean,
  closing: Closing,
): Promise<ChatClient> {
  const client = await ChatClient.connect({
    port,
    nick,
    password: "password123",
    reconnect: reconnect ? { initialDelayMs: 50, maxDelayMs: 200, maxAttempts: 1000 } : false,
  });
  closing.push(client);
  return client;
}

/**
 * Accepts every file offered to `client` into `dir` and waits for the first one to be
 * saved or to fail (the transfers are closed with `closing`).
 */
export async function receiveOne(
  client: ChatClient,
  dir: string,
  closing: Closing,
): Promise<FileTransferEvent> {
  const events: FileTransferEvent[] = [];
  const transfers = new FileTransfers(client, { acceptDir: dir, onEvent: (e) => events.push(e) });
  closing.push(transfers);
  return await until(
    () => events.find((e) => e.type === "file_saved" || e.type === "file_failed"),
    "the recipient's copy",
    CRASH_WAIT_MS,
  );
}

/** Closes what the test opened (newest first), then stops the server process. */
export async function closeAll(closing: Closing, child: Deno.ChildProcess): Promise<void> {
  for (const c of closing.reverse()) await Promise.resolve(c.close()).catch(() => {});
  try {
    child.kill("SIGTERM");
  } catch {
    // gone already
  }
  await child.status;
}
