/**
 * The client library against the real server, through a TCP proxy the test can cut:
 * a client that loses its connection catches up on what it missed, once, and sends
 * what was queued meanwhile.
 */

import assert from "node:assert/strict";
import { ChatClient, type ChatEvent } from "../client/chat_client.ts";
import { connectClient, testServer } from "./helpers/harness.ts";
import { reservePorts } from "./helpers/ports.ts";
import { CuttableProxy } from "./helpers/cuttable_proxy.ts";
import { certificateFingerprint } from "../cli/serve.ts";
import { ca, cert, key } from "./helpers/tls.ts";

const STEP_MS = 10_000;

async function nextEvent(events: AsyncIterator<ChatEvent>): Promise<ChatEvent> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const next = await Promise.race([
    events.next(),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error("timed out waiting for an event")), STEP_MS);
    }),
  ]).finally(() => clearTimeout(timer));
  assert.ok(!next.done, "events ended");
  return next.value;
}

async function eventsUntil(
  events: AsyncIterator<ChatEvent>,
  until: (event: ChatEvent) => boolean,
): Promise<ChatEvent[]> {
  const out: ChatEvent[] = [];
  while (true) {
    const event = await nextEvent(events);
    out.push(event);
    if (until(event)) return out;
  }
}

Deno.test("a dropped client catches up on missed messages once and sends what was queued", async () => {
  const server = await testServer();
  const proxy = new CuttableProxy(server.addr.port);
  const alice = await ChatClient.connect({
    port: proxy.port,
    nick: "alice",
    password: "password123",
    reconnect: { initialDelayMs: 20, maxDelayMs: 50, jitter: 0 },
  });
  const bob = await connectClient(server, "bob");
  try {
    const events = alice.events[Symbol.asyncIterator]();
    const one = await bob.say("lobby", "one");
    const seen = await eventsUntil(events, (e) => e.type === "msg");
    assert.equal((seen.at(-1) as { id: number }).id, one.msg.id);

    proxy.cut();
    await eventsUntil(events, (e) => e.type === "reconnecting");
    const queued = alice.say("lobby", "written while cut off");
    const two = await bob.say("lobby", "two");
    const psst = await bob.dm("alice", "psst");
    assert.equal(psst.delivered, false, "alice is offline");

    proxy.resume();
    const caughtUp = await eventsUntil(events, (e) => e.type === "dm");
    const messages = caughtUp.filter((e) => e.type === "msg" || e.type === "dm");
    assert.ok(caughtUp.some((e) => e.type === "reconnected"));
    assert.deepEqual(
      messages.map((m) => [m.type, (m as { id: number }).id, (m as { text: string }).text]),
      [["msg", two.msg.id, "two"], ["dm", psst.msg.id, "psst"]],
      "missed messages in order, 'one' not again",
    );
    const sent = await queued;
    assert.equal(sent.msg.text, "written while cut off");
    assert.ok(sent.msg.id > psst.msg.id);

    // Bob sees alice's queued message; alice does not get it back as an event.
    const bobEvents = bob.events[Symbol.asyncIterator]();
    const atBob = await eventsUntil(bobEvents, (e) => e.type === "msg");
    assert.equal((atBob.at(-1) as { text: string }).text, "written while cut off");
    const ping = await bob.say("lobby", "after");
    const rest = await eventsUntil(events, (e) => e.type === "msg");
    assert.deepEqual(rest.filter((e) => e.type === "msg").map((e) => (e as { id: number }).id), [
      ping.msg.id,
    ]);
  } finally {
    await alice.close();
    await bob.close();
    await proxy.close();
    await server.shutdown();
  }
});

for (
  const [how, tlsOf] of [
    ["a pinned fingerprint", async () => ({ fingerprint: (await certificateFingerprint(cert))! })],
    ["a CA", () => Promise.resolve({ caCerts: [ca] })],
  ] as const
) {
  Deno.test(`a TLS client (${how}) reconnects when the server is stopped and started again`, async () => {
    // Reserved against the other test files, so that the restart below can have it again.
    using reserved = reservePorts();
    const port = reserved.port;
    let server = await testServer({ port, tls: { cert, key } });
    const alice = await ChatClient.connect({
      port,
      nick: "alice",
      password: "password123",
      tls: await tlsOf(),
      // Attempts while the server is down are refused: they must not end the client.
      reconnect: { initialDelayMs: 20, maxDelayMs: 50, jitter: 0 },
    });
    try {
      const events = alice.events[Symbol.asyncIterator]();
      await server.shutdown();
      await eventsUntil(events, (e) => e.type === "reconnecting");
      // At least one attempt is refused while nothing listens.
      await eventsUntil(events, (e) => e.type === "reconnecting" && e.attempt >= 2);
      server = await testServer({ port, tls: { cert, key } });
      const after = await eventsUntil(
        events,
        (e) => e.type === "reconnected" || e.type === "closed",
      );
      assert.equal(after.at(-1)!.type, "reconnected", JSON.stringify(after.at(-1)));
      const sent = await alice.say("lobby", "back");
      assert.equal(sent.msg.text, "back");
    } finally {
      await alice.close();
      await server.shutdown();
    }
  });
}
