/**
 * Failures of a cluster of real `chat serve` nodes (child processes), each with real
 * engines: nats-server restarted, PostgreSQL stopped and started, a node killed with
 * SIGKILL (tests/helpers/cluster_nodes.ts). Clients are the client library's.
 */

import assert from "node:assert/strict";
import { ChatClient, type ChatEvent } from "../client/chat_client.ts";
import { ChatError } from "../client/chat_error.ts";
import type { ChatMessage } from "../protocol/messages.ts";
import { CLUSTER_SKIP, type ClusterNode, startCluster } from "./helpers/cluster_nodes.ts";
import { until } from "./helpers/harness.ts";

const ignore = CLUSTER_SKIP !== null;
const options = { ignore, sanitizeResources: false, sanitizeOps: false };

interface Watched {
  client: ChatClient;
  events: ChatEvent[];
}

async function clientOn(node: ClusterNode | ClusterNode[], nick: string): Promise<Watched> {
  const nodes = Array.isArray(node) ? node : [node];
  const client = await ChatClient.connect({
    servers: nodes.map((n) => ({ host: "127.0.0.1", port: n.port })),
    nick,
    password: "password123",
    reconnect: Array.isArray(node) ? { initialDelayMs: 50, maxDelayMs: 500 } : false,
    connectTimeoutMs: 30_000,
  });
  const events: ChatEvent[] = [];
  client.onEvent((event) => events.push(event));
  return { client, events };
}

function roomTexts(events: ChatEvent[], from: string): string[] {
  return events
    .filter((e): e is ChatMessage & ChatEvent => e.type === "msg" && e.from === from)
    .map((m) => m.text);
}

/** Sends `text` in the lobby and waits until `watcher` has it (a fence). */
async function fence(from: Watched, watcher: Watched, text: string): Promise<void> {
  await from.client.say("lobby", text);
  await until(
    () => roomTexts(watcher.events, from.client.nick).includes(text) || undefined,
    `"${text}" at ${watcher.client.nick}`,
    30_000,
  );
}

Deno.test({
  ...options,
  name: "cluster failures: NATS restarted: what was committed meanwhile reaches online " +
    "sessions on other nodes, in order, once",
}, async () => {
  await using cluster = await startCluster({ nodes: 2 });
  const [a, b] = cluster.nodes;
  const ann = await clientOn(a, "ann");
  const bob = await clientOn(b, "bob");
  try {
    await fence(ann, bob, "before");
    await cluster.nats.stop();
    const cut = Array.from({ length: 20 }, (_, i) => `cut off ${i}`);
    // Acknowledged: PostgreSQL took them, whatever NATS does.
    for (const text of cut) await ann.client.say("lobby", text);
    await cluster.nats.start();
    await until(
      () => roomTexts(bob.events, "ann").length >= 1 + cut.length || undefined,
      "the messages of the cut at bob",
      60_000,
    );
    // A later message is a fence: anything doubled would have come before it.
    await fence(ann, bob, "after");
    assert.deepEqual(roomTexts(bob.events, "ann"), ["before", ...cut, "after"]);
    assert.ok(a.running && b.running);
  } finally {
    await Promise.all([ann.client.close(), bob.client.close()]);
  }
});

Deno.test({
  ...options,
  name: "cluster failures: PostgreSQL stopped: requests fail with store_unavailable, " +
    "nothing crashes, it resumes when PostgreSQL is back",
}, async () => {
  await using cluster = await startCluster({ nodes: 2 });
  const [a, b] = cluster.nodes;
  const ann = await clientOn(a, "ann");
  const bob = await clientOn(b, "bob");
  try {
    await fence(ann, bob, "before");
    await cluster.postgres.stop();
    const err = await ann.client.say("lobby", "while down", { id: "down-1" }).catch((e) => e);
    assert.ok(err instanceof ChatError, String(err));
    assert.equal(err.code, "store_unavailable", err.message);
    assert.match(err.message, /cannot reach its database/);
    // Not acknowledged, so not delivered either.
    assert.ok(!roomTexts(bob.events, "ann").includes("while down"));
    await cluster.postgres.start();
    // The same request again, once PostgreSQL answers: stored and delivered once.
    const deadline = Date.now() + 60_000;
    let reply;
    while (reply === undefined) {
      try {
        reply = await ann.client.say("lobby", "while down", { id: "down-1" });
      } catch (e) {
        if (!(e instanceof ChatError) || e.code !== "store_unavailable" || Date.now() > deadline) {
          throw e;
        }
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    }
    assert.equal(reply.duplicate, false);
    await fence(ann, bob, "after");
    assert.deepEqual(roomTexts(bob.events, "ann"), ["before", "while down", "after"]);
    assert.ok(a.running && b.running, "a node exited");
  } finally {
    await Promise.all([ann.client.close(), bob.client.close()]);
  }
});

Deno.test({
  ...options,
  name: "cluster failures: a node killed with SIGKILL: its clients fail over, resend, catch " +
    "up; nothing acknowledged lost or doubled; its sessions go offline",
}, async () => {
  await using cluster = await startCluster({ nodes: 2, args: ["--cluster-heartbeat", "1"] });
  const [a, b] = cluster.nodes;
  const bob = await clientOn(b, "bob");
  const carl = await clientOn(a, "carl"); // never reconnects: his presence must expire
  const ann = await clientOn([a, b], "ann"); // node A first, B to fail over to
  try {
    await until(
      () =>
        bob.events.some((e) => e.type === "presence" && e.nick === "carl" && e.online) ||
        undefined,
      "carl online at bob",
      30_000,
    );
    await fence(ann, bob, "before");
    const texts = Array.from({ length: 40 }, (_, i) => `m ${i}`);
    // Pipelined; A is killed while some are acknowledged and others are in flight.
    const sends = texts.map((text) => ann.client.say("lobby", text));
    await Promise.race([sends[5], new Promise((resolve) => setTimeout(resolve, 30_000))]);
    await a.kill("SIGKILL");
    const replies = await Promise.all(sends);
    const ids = replies.map((r) => r.msg.id);
    assert.equal(new Set(ids).size, texts.length, "two messages share an id");
    // Stored once each, in the order sent.
    const stored = (await bob.client.sync(0, 500)).messages
      .filter((m) => m.from === "ann" && texts.includes(m.text));
    assert.deepEqual(stored.map((m) => m.text), texts);
    assert.deepEqual(stored.map((m) => m.id), ids);
    // Live at bob: each at most once, and with what a node dying cost caught up by id.
    await fence(ann, bob, "after");
    const live = roomTexts(bob.events, "ann").filter((t) => texts.includes(t));
    assert.equal(new Set(live).size, live.length, `doubled at bob: ${live}`);
    // ann caught up by id too (nothing of hers or others' missing after the resume).
    assert.ok(ann.client.lastMessageId >= ids[ids.length - 1]);
    // carl's session died with node A: it expires everywhere.
    await until(
      () =>
        bob.events.some((e) => e.type === "presence" && e.nick === "carl" && !e.online) ||
        undefined,
      "carl offline at bob",
      30_000,
    );
    const who = await bob.client.who();
    assert.ok(!who.users.includes("carl"), `carl still listed: ${who.users}`);
    assert.ok(who.users.includes("ann"));
    // His login session is ended in the shared history too: whoelse of the last second
    // stops listing him (it would forever, were it left open).
    const deadline = Date.now() + 30_000;
    for (;;) {
      const recent = (await bob.client.whoelse(1)).users;
      if (!recent.includes("carl")) break;
      if (Date.now() > deadline) assert.fail(`carl still in whoelse 1: ${recent}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  } finally {
    await Promise.all([ann.client.close(), carl.client.close(), bob.client.close()]);
  }
});
