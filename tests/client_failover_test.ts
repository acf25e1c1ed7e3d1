/**
 * Failing over between the servers of a list, over real sockets: two real servers
 * sharing one store (as nodes of a cluster share PostgreSQL; the rest of their state is
 * their own, and only the transport's behaviour is asserted). A client given
 * `P1,P2` with P1 down connects to P2; connected to P1, when P1 stops it reconnects to
 * P2 by itself, and what was sent around the switch is stored once and acknowledged.
 */

import assert from "node:assert/strict";
import { ChatClient, type ChatEvent } from "../client/chat_client.ts";
import type { ChatServer } from "../server/server.ts";
import { downPort, twoServers } from "./helpers/two_servers.ts";
import { CuttableProxy } from "./helpers/cuttable_proxy.ts";
import { cert, key, selfSignedCert, selfSignedKey } from "./helpers/tls.ts";
import { certificateFingerprint } from "../cli/serve.ts";

const PASSWORD = "password123";
const WAIT_MS = 20_000;
const ROOM = "failover";

/** Resolves with the first event `test` accepts (a deadline rejects). */
function nextEvent<T extends ChatEvent>(
  client: ChatClient,
  test: (event: ChatEvent) => event is T,
  what: string,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`timed out waiting for ${what}`));
    }, WAIT_MS);
    const off = client.onEvent((event) => {
      if (!test(event)) return;
      clearTimeout(timer);
      off();
      resolve(event);
    });
  });
}

/** The texts of a room's history read through `server`, by a fresh account. */
async function storedTexts(server: ChatServer): Promise<string[]> {
  const reader = await ChatClient.connect({
    port: server.addr.port,
    nick: "reader",
    password: PASSWORD,
    reconnect: false,
  });
  try {
    await reader.join(ROOM);
    const { messages } = await reader.history({ room: ROOM, limit: 500 });
    return messages.map((m) => m.text);
  } finally {
    await reader.close();
  }
}

function count(texts: string[], text: string): number {
  return texts.filter((t) => t === text).length;
}

const local = (port: number) => ({ host: "127.0.0.1", port });

Deno.test("a server list whose first address is down: the client connects to the next", async () => {
  const servers = await twoServers();
  const down = downPort();
  try {
    const alice = await ChatClient.connect({
      servers: [local(down), local(servers.two.addr.port)],
      nick: "alice",
      password: PASSWORD,
      reconnect: false,
    });
    try {
      assert.deepEqual(alice.address, local(servers.two.addr.port));
      await alice.join(ROOM);
      const { msg } = await alice.say(ROOM, "through the second");
      assert.equal(msg.text, "through the second");
    } finally {
      await alice.close();
    }
    await assert.rejects(
      ChatClient.connect({ servers: [], nick: "alice", password: PASSWORD }),
      { code: "bad_request" },
    );
    // Every address down: one error naming each.
    await assert.rejects(
      ChatClient.connect({
        servers: [local(down), local(downPort())],
        nick: "alice",
        password: PASSWORD,
        reconnect: false,
      }),
      (err: Error & { code?: string }) => {
        assert.equal(err.code, "connect_failed");
        assert.match(err.message, new RegExp(`^no server accepted: .*127\\.0\\.0\\.1:${down}`));
        return true;
      },
    );
  } finally {
    await servers.stop();
  }
});

Deno.test("the server stops: the client reconnects to the next address by itself; a message sent meanwhile is stored once", async () => {
  const servers = await twoServers();
  const two = local(servers.two.addr.port);
  const alice = await ChatClient.connect({
    servers: [local(servers.one.addr.port), two],
    nick: "alice",
    password: PASSWORD,
    reconnect: { initialDelayMs: 100, maxDelayMs: 500 },
  });
  try {
    assert.deepEqual(alice.address, local(servers.one.addr.port));
    await alice.join(ROOM);
    const before = await alice.say(ROOM, "before the switch");

    // Sent as soon as the connection is lost, before any reconnection attempt.
    let around: Promise<unknown> | null = null;
    const offDisconnected = alice.onEvent((event) => {
      if (event.type !== "disconnected" || around !== null) return;
      queueMicrotask(() => around = alice.say(ROOM, "around the switch"));
    });
    const held = nextEvent(
      alice,
      (e): e is Extract<ChatEvent, { type: "held" }> => e.type === "held",
      "the message to be held",
    );
    const reconnected = nextEvent(
      alice,
      (e): e is Extract<ChatEvent, { type: "reconnected" }> => e.type === "reconnected",
      "the reconnection",
    );
    await servers.one.shutdown();
    assert.equal((await held).reason, "offline");
    assert.equal((await reconnected).server, `127.0.0.1:${two.port}`);
    assert.deepEqual(alice.address, two);
    offDisconnected();
    assert.ok(around !== null);
    const { msg } = await (around as Promise<{ msg: { id: number; text: string } }>);
    assert.equal(msg.text, "around the switch");
    assert.ok(msg.id > before.msg.id);
    assert.equal(alice.state, "ready");

    const texts = await storedTexts(servers.two);
    assert.equal(count(texts, "before the switch"), 1, texts.join("\n"));
    assert.equal(count(texts, "around the switch"), 1, texts.join("\n"));
  } finally {
    await alice.close();
    await servers.stop();
  }
});

Deno.test("connections dropped mid-burst: the client moves on to the next server, resends what was unacknowledged, each stored once", async () => {
  const servers = await twoServers();
  // The first node is reached through a proxy the test cuts: its connections die at once
  // while requests are in flight. It accepts again at once: the client moves on to the
  // next address all the same (as NATS clients do), the first being tried last.
  const proxy = new CuttableProxy(servers.one.addr.port);
  const alice = await ChatClient.connect({
    servers: [local(proxy.port), local(servers.two.addr.port)],
    nick: "alice",
    password: PASSWORD,
    reconnect: { initialDelayMs: 50, maxDelayMs: 500 },
  });
  try {
    await alice.join(ROOM);
    const texts = Array.from({ length: 40 }, (_, i) => `burst ${i}`);
    const sent = texts.map((text) => alice.say(ROOM, text));
    for (const p of sent) p.catch(() => {}); // failures are seen below
    await sent[0]; // the first acknowledged; others in flight or held
    assert.ok(alice.pendingRequests > 0, "requests unacknowledged when the connection drops");
    proxy.drop();
    const acks = await Promise.all(sent);
    assert.deepEqual(acks.map((a) => a.msg.text), texts);
    assert.equal(new Set(acks.map((a) => a.msg.id)).size, texts.length, "one id per message");
    assert.deepEqual(alice.address, local(servers.two.addr.port));

    const stored = await storedTexts(servers.two);
    for (const text of texts) assert.equal(count(stored, text), 1, `${text}: ${stored.join("|")}`);
  } finally {
    await alice.close();
    await proxy.close();
    await servers.stop();
  }
});

Deno.test("TLS pinned per address: a wrong pin at one address moves on; the failover keeps each address's pin", async () => {
  const servers = await twoServers({ tls: { cert, key } }, {
    tls: { cert: selfSignedCert, key: selfSignedKey },
  });
  const one = servers.one.addr.port;
  const two = servers.two.addr.port;
  const pinOne = { fingerprint: (await certificateFingerprint(cert))! };
  const pinTwo = { fingerprint: (await certificateFingerprint(selfSignedCert))! };
  try {
    // The first address presents another certificate than its pin: not trusted, skipped.
    const skipped = await ChatClient.connect({
      servers: [{ ...local(one), tls: pinTwo }, { ...local(two), tls: pinTwo }],
      nick: "alice",
      password: PASSWORD,
      reconnect: false,
    });
    assert.deepEqual(skipped.address, local(two));
    await skipped.close();
    // Both pins wrong: the TLS failure is the error, naming an address.
    await assert.rejects(
      ChatClient.connect({
        servers: [{ ...local(one), tls: pinTwo }, { ...local(two), tls: pinOne }],
        nick: "alice",
        password: PASSWORD,
        reconnect: false,
      }),
      (err: Error & { code?: string }) => {
        assert.equal(err.code, "tls_failed");
        assert.match(err.message, /^TLS with 127\.0\.0\.1:\d+ failed/);
        return true;
      },
    );

    const alice = await ChatClient.connect({
      servers: [{ ...local(one), tls: pinOne }, { ...local(two), tls: pinTwo }],
      nick: "alice",
      password: PASSWORD,
      reconnect: { initialDelayMs: 50, maxDelayMs: 500 },
    });
    try {
      assert.deepEqual(alice.address, local(one));
      const reconnected = nextEvent(
        alice,
        (e): e is Extract<ChatEvent, { type: "reconnected" }> => e.type === "reconnected",
        "the reconnection",
      );
      await servers.one.shutdown();
      assert.equal((await reconnected).server, `127.0.0.1:${two}`);
      await alice.join(ROOM);
    } finally {
      await alice.close();
    }
  } finally {
    await servers.stop();
  }
});
