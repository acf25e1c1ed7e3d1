import assert from "node:assert/strict";
import { connectClient, Probe, withServer } from "./helpers/harness.ts";

Deno.test("ids: a request id reused for another message is refused with id_conflict", async () => {
  await withServer(async (server) => {
    await using alice = await Probe.login(server, "alice");
    await using bob = await Probe.login(server, "bob");
    await alice.ok("join", { room: "rust" });
    const dm = await alice.ok("dm", { id: "m1", to: "bob", text: "psst" });
    await bob.expect({ type: "dm", text: "psst" });
    await alice.fails("say", { id: "m1", room: "lobby", text: "psst" }, "id_conflict");
    await alice.fails("dm", { id: "m1", to: "bob", text: "other text" }, "id_conflict");
    await using carol = await Probe.login(server, "carol");
    await alice.fails("dm", { id: "m1", to: "carol", text: "psst" }, "id_conflict");
    const again = await alice.ok("dm", { id: "m1", to: "bob", text: "psst" });
    assert.equal(again.duplicate, true);
    assert.deepEqual(again.msg, dm.msg);

    await alice.ok("say", { id: "r1", room: "lobby", text: "hello" });
    await alice.fails("dm", { id: "r1", to: "bob", text: "hello" }, "id_conflict");
    await alice.fails("say", { id: "r1", room: "rust", text: "hello" }, "id_conflict");
    await alice.fails("say", { id: "r1", room: "lobby", text: "hello!" }, "id_conflict");
    assert.equal(
      (await alice.ok("say", { id: "r1", room: "lobby", text: "hello" })).duplicate,
      true,
    );

    // Nothing refused was stored or delivered.
    const lobby = await bob.ok("history", { room: "lobby" });
    assert.deepEqual((lobby.messages as { text: string }[]).map((m) => m.text), ["hello"]);
    const direct = await bob.ok("history", { with: "alice" });
    assert.deepEqual((direct.messages as { text: string }[]).map((m) => m.text), ["psst"]);
    assert.equal(carol.received.some((m) => m.type === "dm"), false);
  });
});

Deno.test("block: a blocked user's room messages stay out of sync, history and join", async () => {
  await withServer(async (server) => {
    await using bob = await Probe.login(server, "bob");
    await using mallory = await Probe.login(server, "mallory");
    await bob.ok("join", { room: "rust" });
    await mallory.ok("join", { room: "rust" });
    await bob.ok("block", { nick: "mallory" });
    const start = (await bob.ok("sync", { after: 0 })).messages as { id: number }[];
    const after = start.length === 0 ? 0 : start[start.length - 1].id;
    for (let i = 0; i < 4; i++) {
      await mallory.ok("say", { room: "rust", text: `spam ${i}` });
      await mallory.ok("say", { room: "lobby", text: `lobby spam ${i}` });
    }
    await using carol = await Probe.login(server, "carol");
    await carol.ok("join", { room: "rust" });
    await carol.ok("say", { room: "rust", text: "hi from carol" });
    await bob.expect({ type: "msg", text: "hi from carol" });

    const texts = (reply: Record<string, unknown>, field = "messages") =>
      (reply[field] as { text: string }[]).map((m) => m.text);
    assert.deepEqual(texts(await bob.ok("sync", { after })), ["hi from carol"]);
    assert.deepEqual(texts(await bob.ok("history", { room: "rust" })), ["hi from carol"]);
    const page = await bob.ok("history", { room: "rust", limit: 1 });
    assert.deepEqual(texts(page), ["hi from carol"]);
    assert.equal(page.more, false, "blocked messages do not count as more");
    assert.deepEqual(texts(await bob.ok("history", { room: "lobby" })), []);
    assert.deepEqual(texts(await bob.ok("join", { room: "rust" }), "history"), ["hi from carol"]);
    // Others still see them; after an unblock, so does bob.
    assert.equal(texts(await carol.ok("history", { room: "rust" })).length, 5);
    await bob.ok("unblock", { nick: "mallory" });
    assert.equal(texts(await bob.ok("sync", { after })).length, 9);
  });
});

/** `n` characters of three UTF-8 bytes each, after a tag: about 12 KB for 4000. */
function bulky(tag: string, n = 4000): string {
  return tag + " " + "€".repeat(n - tag.length - 1);
}

Deno.test("held dms: 400 of 12 KB reach a returning user once each, in order, with 400 receipts", async () => {
  await withServer(async (server) => {
    (await Probe.login(server, "bob")).close();
    await using alice = await Probe.login(server, "alice");
    await using carol = await Probe.login(server, "carol");
    const sent: number[] = [];
    for (let i = 0; i < 400; i++) {
      const sender = i % 2 === 0 ? alice : carol;
      const reply = await sender.ok("dm", { to: "bob", text: bulky(`held ${i}`) });
      assert.equal(reply.delivered, false);
      sent.push((reply.msg as { id: number }).id);
    }
    await using bob = await Probe.dial(server);
    await bob.hello();
    const login = await bob.request("login", { nick: "bob", password: "password123" });
    assert.equal(login.type, "ok", `the login failed: ${JSON.stringify(login)}`);
    assert.equal(login.pending, 400);
    const got: number[] = [];
    for (let i = 0; i < 400; i++) {
      const dm = await bob.expect({ type: "dm" }, 10_000);
      assert.ok(
        (dm.text as string).startsWith(`held ${i} `),
        `dm ${i}: ${String(dm.text).slice(0, 20)}`,
      );
      got.push(dm.id as number);
    }
    assert.deepEqual(got, sent, "every held message once, in order");
    assert.equal(bob.ended, false, "the recipient was not cut off");
    for (const sender of [alice, carol]) {
      for (let i = 0; i < 200; i++) {
        await sender.expect({ type: "receipt", status: "delivered", by: "bob" }, 10_000);
      }
    }
    // Nothing more: a new session of bob has nothing held, and no more receipts came.
    await bob.ok("ping");
    assert.equal(bob.received.filter((m) => m.type === "dm").length, 0, "no dm twice");
    await bob.ok("logout");
    await using again = await Probe.dial(server);
    await again.hello();
    assert.equal((await again.ok("login", { nick: "bob", password: "password123" })).pending, 0);
    await alice.ok("ping");
    await carol.ok("ping");
    assert.equal(alice.received.filter((m) => m.type === "receipt").length, 0);
    assert.equal(carol.received.filter((m) => m.type === "receipt").length, 0);
  });
});

Deno.test("held dms: 60 logins while messages arrive never get the same dm twice", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "chat-held-" });
  try {
    await withServer(async (server) => {
      (await Probe.login(server, "bob")).close();
      // Four senders keep one direct message to bob in flight each, all along: each is
      // stored, made durable, then published, and bob's logins land in between.
      const senders = await Promise.all(
        ["alice", "carol", "dave", "erin"].map((nick) => Probe.login(server, nick)),
      );
      let acked = 0;
      let stop = false;
      const stored: number[] = [];
      const seen = new Set<number>();
      const ackWaiters: { count: number; wake: () => void }[] = [];
      const sending = senders.map(async (sender) => {
        for (let i = 0; !stop; i++) {
          const reply = await sender.ok("dm", { to: "bob", text: `message ${i}` });
          stored.push((reply.msg as { id: number }).id);
          acked++;
          for (const w of ackWaiters.filter((w) => acked >= w.count)) {
            ackWaiters.splice(ackWaiters.indexOf(w), 1);
            w.wake();
          }
        }
      });
      const acks = (count: number) =>
        new Promise<void>((wake) => acked >= count ? wake() : ackWaiters.push({ count, wake }));
      let twice = 0;
      let received = 0;
      for (let round = 0; round < 60; round++) {
        await using bob = await Probe.dial(server);
        await bob.hello();
        await bob.ok("login", { nick: "bob", password: "password123" });
        // Two more acknowledged per sender: what was in flight at the login is published.
        await acks(acked + 2 * senders.length);
        await bob.ok("ping");
        await bob.ok("logout");
        // Counted after the logout's reply: a dm published after the ping still reached this
        // session (and is not held for the next one).
        const ids = bob.received.filter((m) => m.type === "dm").map((m) => m.id as number);
        received += ids.length;
        twice += ids.length - new Set(ids).size;
        for (const id of ids) seen.add(id);
      }
      stop = true;
      await Promise.all(sending);
      for (const sender of senders) await sender[Symbol.asyncDispose]();
      assert.ok(received >= 120, `bob received ${received} direct messages`);
      assert.equal(twice, 0, `of ${received} direct messages, ${twice} came twice to one session`);
      // Nothing lost: the last ones held reach the next login.
      await using bob = await Probe.dial(server);
      await bob.hello();
      await bob.ok("login", { nick: "bob", password: "password123" });
      for (const id of stored.filter((id) => !seen.has(id))) await bob.expect({ type: "dm", id });
    }, { dataDir });
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("held dms: with acks, delivered only once the client acknowledges them; the rest stay held", async () => {
  await withServer(async (server) => {
    (await Probe.login(server, "bob")).close();
    await using alice = await Probe.login(server, "alice");
    const stored: number[] = [];
    for (let i = 0; i < 6; i++) {
      stored.push(
        ((await alice.ok("dm", { to: "bob", text: `held ${i}` })).msg as { id: number }).id,
      );
    }
    {
      await using bob = await Probe.dial(server);
      await bob.hello();
      const login = await bob.ok("login", { nick: "bob", password: "password123", ack: true });
      assert.equal(login.pending, 6);
      for (const id of stored) assert.equal((await bob.expect({ type: "dm", id })).held, true);
      await alice.ok("ping");
      assert.equal(alice.received.filter((m) => m.type === "receipt").length, 0, "not before acks");
      const acked = await bob.ok("delivered", { ids: [stored[0], stored[1], 999_999] });
      assert.equal(acked.count, 2);
      for (const id of stored.slice(0, 2)) {
        await alice.expect({ type: "receipt", id, status: "delivered", by: "bob" });
      }
      assert.equal((await bob.ok("delivered", { ids: [stored[0]] })).count, 0, "once");
      await alice.ok("ping");
      assert.equal(alice.received.filter((m) => m.type === "receipt").length, 0);
      await bob.ok("logout");
    }
    // The four not acknowledged come again, and nothing else.
    await using bob = await Probe.dial(server);
    await bob.hello();
    const login = await bob.ok("login", { nick: "bob", password: "password123", ack: true });
    assert.equal(login.pending, 4);
    for (const id of stored.slice(2)) await bob.expect({ type: "dm", id });
    assert.equal((await bob.ok("delivered", { ids: stored })).count, 4);
    for (const id of stored.slice(2)) {
      await alice.expect({ type: "receipt", id, status: "delivered", by: "bob" });
    }
    await bob.ok("ping");
    assert.equal(bob.received.filter((m) => m.type === "dm").length, 0);
  });
});

Deno.test("held dms: the client library receives 400 of 12 KB once each and acknowledges them", async () => {
  await withServer(async (server) => {
    (await connectClient(server, "bob")).close();
    await using alice = await Probe.login(server, "alice");
    const sent: number[] = [];
    for (let i = 0; i < 400; i++) {
      sent.push(
        ((await alice.ok("dm", { to: "bob", text: bulky(`held ${i}`) })).msg as { id: number }).id,
      );
    }
    await using bob = await connectClient(server, "bob");
    const got: number[] = [];
    for await (const event of bob.events) {
      if (event.type === "dm") got.push(event.id);
      if (got.length === 400) break;
    }
    assert.deepEqual(got, sent);
    for (let i = 0; i < 400; i++) {
      await alice.expect({ type: "receipt", status: "delivered", by: "bob" }, 10_000);
    }
    await alice.ok("ping");
    assert.equal(
      alice.received.filter((m) => m.type === "receipt").length,
      0,
      "400 receipts, no more",
    );
  });
});
