/**
 * Message client ids in time order, from every client that makes them: the server keeps
 * them in a unique index (sender, client id), where ids in time order add at the end of
 * each sender's part instead of on a random page (see `protocol/request_id.ts`).
 */
import assert from "node:assert/strict";
import { MemoryStore } from "../server/memory_store.ts";
import type { AppendOptions, AppendResult, NewMessage } from "../server/store.ts";
import { connectClient, testServer } from "./helpers/harness.ts";
import { ircPort, IrcProbe } from "./helpers/irc_probe.ts";

/** A memory store that records the client id of every message appended. */
class RecordingStore extends MemoryStore {
  readonly clientIds: string[] = [];
  #waiters: { n: number; resolve: () => void }[] = [];

  override appendMessage(message: NewMessage, options?: AppendOptions): Promise<AppendResult> {
    this.clientIds.push(message.clientId);
    const ready = this.#waiters.filter((w) => this.clientIds.length >= w.n);
    this.#waiters = this.#waiters.filter((w) => this.clientIds.length < w.n);
    for (const w of ready) w.resolve();
    return super.appendMessage(message, options);
  }

  /** Resolves once `n` messages were appended; fails after 10 s. */
  async appended(n: number): Promise<void> {
    if (this.clientIds.length >= n) return;
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#waiters.push({ n, resolve });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`${this.clientIds.length} of ${n} messages after 10 s`)),
        10_000,
      );
    });
    try {
      await Promise.race([promise, late]);
    } finally {
      clearTimeout(timer);
    }
  }
}

/** The millisecond part of each id (a version 7 UUID's first 13 characters), after `prefix`. */
function timesOf(ids: string[], prefix = ""): string[] {
  return ids.map((id) => {
    assert.ok(id.startsWith(prefix), id);
    return id.slice(prefix.length, prefix.length + 13);
  });
}

const COUNT = 20;

Deno.test("request ids: a chat client's messages reach the store with client ids in time order", async () => {
  const store = new RecordingStore();
  const server = await testServer({}, { store });
  try {
    await using alice = await connectClient(server, "alice");
    await alice.join("rust");
    for (let i = 0; i < COUNT; i++) await alice.say("rust", `m${i}`);
    const times = timesOf(store.clientIds.slice(0, COUNT));
    // Random ids (UUID v4) came in no order: sorted by chance once in 20! tries.
    assert.deepEqual([...times].sort(), times, `ids: ${store.clientIds.join(" ")}`);
    for (const id of store.clientIds.slice(0, COUNT)) {
      assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    }
  } finally {
    await server.shutdown();
  }
});

Deno.test("request ids: an IRC client's messages reach the store with client ids in time order", async () => {
  const store = new RecordingStore();
  const server = await testServer({ ircPort: 0 }, { store });
  try {
    await using irc = await IrcProbe.register(ircPort(server), "alice");
    await irc.send("JOIN #rust");
    await irc.expectCommand("366", "alice", "#rust");
    await irc.send(...Array.from({ length: COUNT }, (_, i) => `PRIVMSG #rust :m${i}`));
    await store.appended(COUNT);
    const times = timesOf(store.clientIds, "irc-");
    assert.deepEqual([...times].sort(), times, `ids: ${store.clientIds.join(" ")}`);
  } finally {
    await server.shutdown();
  }
});
