import assert from "node:assert/strict";
import { delay, Probe, withServer } from "./helpers/harness.ts";

Deno.test("rooms: join creates, members hear joins and messages, only members post", async () => {
  await withServer(async (server) => {
    await using alice = await Probe.login(server, "alice");
    await using bob = await Probe.login(server, "bob");
    const joined = await alice.ok("join", { room: "Dev" });
    assert.equal(joined.room, "Dev");
    assert.deepEqual(joined.members, ["alice"]);
    assert.deepEqual(joined.history, []);
    await bob.fails("say", { room: "dev", text: "let me in" }, "not_member");
    await bob.ok("join", { room: "#dev" });
    await alice.expect({ type: "member", room: "Dev", nick: "bob", joined: true });

    const said = await bob.ok("say", { room: "dev", text: "hello devs" });
    const msg = said.msg as Record<string, unknown>;
    assert.equal(msg.room, "Dev");
    assert.equal(msg.from, "bob");
    assert.equal(typeof msg.id, "number");
    const got = await alice.expect({ type: "msg", room: "Dev" });
    assert.equal(got.text, "hello devs");
    assert.equal(got.id, msg.id);
    await bob.expectNone({ type: "msg", text: "hello devs" });

    const list = await alice.ok("rooms");
    assert.deepEqual(list.rooms, [
      { name: "Dev", members: 2, topic: "" },
      { name: "lobby", members: 2, topic: "" },
    ]);
    const members = await alice.ok("members", { room: "dev" });
    assert.deepEqual(members.members, [
      { nick: "alice", online: true },
      { nick: "bob", online: true },
    ]);

    await bob.ok("topic", { room: "dev", topic: "shipping v1" });
    const topic = await alice.expect({ type: "topic", room: "Dev" });
    assert.equal(topic.topic, "shipping v1");
    assert.equal(topic.by, "bob");
    assert.equal((await alice.ok("topic", { room: "dev" })).topic, "shipping v1");

    await bob.ok("leave", { room: "dev" });
    await alice.expect({ type: "member", room: "Dev", nick: "bob", joined: false });
    await bob.fails("leave", { room: "dev" }, "not_member");
    await bob.fails("say", { room: "dev", text: "gone" }, "not_member");
    await bob.fails("join", { room: "no spaces" }, "bad_name");
    await bob.fails("members", { room: "nowhere" }, "unknown_room");
  });
});

Deno.test("rooms: memberships are stored and restored at the next login", async () => {
  await withServer(async (server) => {
    const alice = await Probe.login(server, "alice");
    await alice.ok("join", { room: "ops" });
    await alice.ok("say", { room: "ops", text: "before" });
    alice.close();
    await delay(50);
    await using again = await Probe.login(server, "alice");
    const login = again.received.length; // nothing pending
    assert.equal(login, 0);
    await again.ok("say", { room: "ops", text: "still a member" });
  });
});

Deno.test("rooms: joining delivers the last 50 messages; history pages further back", async () => {
  await withServer(async (server) => {
    await using alice = await Probe.login(server, "alice");
    await alice.ok("join", { room: "log" });
    for (let i = 1; i <= 60; i++) {
      alice.send({ type: "say", id: `m${i}`, room: "log", text: `n${i}` });
    }
    for (let i = 1; i <= 60; i++) await alice.expect({ type: "ok", re: `m${i}` });
    await using bob = await Probe.login(server, "bob");
    const joined = await bob.ok("join", { room: "log" });
    const history = joined.history as { text: string; id: number }[];
    assert.equal(history.length, 50);
    assert.equal(history[0].text, "n11");
    assert.equal(history[49].text, "n60");
    const page = await bob.ok("history", { room: "log", before: history[0].id, limit: 5 });
    assert.deepEqual((page.messages as { text: string }[]).map((m) => m.text), [
      "n6",
      "n7",
      "n8",
      "n9",
      "n10",
    ]);
    assert.equal(page.more, true);
    const first = await bob.ok("history", { room: "log", before: history[0].id, limit: 500 });
    assert.equal((first.messages as unknown[]).length, 10);
    assert.equal(first.more, false);
    await bob.fails("history", { room: "log", with: "alice" }, "bad_message");
    await bob.fails("history", { room: "secret-room-none" }, "unknown_room");
  });
});

Deno.test("sync: everything after the last seen id, across rooms and direct messages", async () => {
  await withServer(async (server) => {
    await using alice = await Probe.login(server, "alice");
    await using bob = await Probe.login(server, "bob");
    const first = await alice.ok("say", { room: "lobby", text: "one" });
    const after = (first.msg as { id: number }).id;
    await alice.ok("say", { room: "lobby", text: "two" });
    await alice.ok("dm", { to: "bob", text: "three" });
    await using carol = await Probe.login(server, "carol");
    await carol.ok("dm", { to: "alice", text: "not for bob" });
    const synced = await bob.ok("sync", { after });
    assert.deepEqual((synced.messages as { text: string }[]).map((m) => m.text), ["two", "three"]);
    assert.equal(synced.more, false);
    const paged = await bob.ok("sync", { after, limit: 1 });
    assert.equal((paged.messages as unknown[]).length, 1);
    assert.equal(paged.more, true);
  });
});

Deno.test("dm: online delivery with receipts; errors for unknown, self and blocked", async () => {
  await withServer(async (server) => {
    await using alice = await Probe.login(server, "alice");
    await using bob = await Probe.login(server, "bob");
    const sent = await alice.ok("dm", { to: "BOB", text: "psst" });
    assert.equal(sent.delivered, true);
    const msg = sent.msg as { id: number; to: string };
    assert.equal(msg.to, "bob");
    const got = await bob.expect({ type: "dm", from: "alice" });
    assert.equal(got.text, "psst");
    await bob.ok("read", { ids: [got.id] });
    const receipt = await alice.expect({ type: "receipt", status: "read" });
    assert.equal(receipt.id, msg.id);
    assert.equal(receipt.by, "bob");
    // Reading twice tells nobody again.
    assert.equal((await bob.ok("read", { ids: [got.id] })).count, 0);

    await alice.fails("dm", { to: "nobody", text: "hi" }, "unknown_user");
    await alice.fails("dm", { to: "alice", text: "hi me" }, "self");
    await alice.fails("dm", { to: "bob", text: "   " }, "bad_text");
    await alice.fails("dm", { to: "bob", text: "x".repeat(5000) }, "bad_text");
    await bob.ok("block", { nick: "alice" });
    const blocked = await alice.fails("dm", { to: "bob", text: "hello?" }, "blocked");
    assert.match(String(blocked.message), /recipient has blocked you/);
    await bob.expectNone({ type: "dm", text: "hello?" });
  });
});

Deno.test("dm: offline messages are stored and delivered in order at the next login", async () => {
  await withServer(async (server) => {
    (await Probe.login(server, "bob")).close();
    await using alice = await Probe.login(server, "alice");
    for (const text of ["first", "second", "third"]) {
      const reply = await alice.ok("dm", { to: "bob", text });
      assert.equal(reply.delivered, false);
    }
    await using bob = await Probe.dial(server);
    await bob.hello();
    const login = await bob.ok("login", { nick: "bob", password: "password123" });
    assert.equal(login.pending, 3);
    for (const text of ["first", "second", "third"]) {
      const dm = await bob.expect({ type: "dm" });
      assert.equal(dm.text, text);
    }
    for (let i = 0; i < 3; i++) {
      await alice.expect({ type: "receipt", status: "delivered", by: "bob" });
    }
    // Delivered once: the next login has nothing pending.
    bob.close();
    await delay(50);
    await using bob2 = await Probe.dial(server);
    await bob2.hello();
    assert.equal((await bob2.ok("login", { nick: "bob", password: "password123" })).pending, 0);
  });
});

Deno.test("dm: a resend with the same client id is stored and delivered once", async () => {
  await withServer(async (server) => {
    await using alice = await Probe.login(server, "alice");
    await using bob = await Probe.login(server, "bob");
    const first = await alice.ok("dm", { id: "same-id", to: "bob", text: "once" });
    const again = await alice.ok("dm", { id: "same-id", to: "bob", text: "once" });
    assert.equal(again.duplicate, true);
    assert.deepEqual(again.msg, first.msg);
    const room1 = await alice.ok("say", { id: "room-id", room: "lobby", text: "once too" });
    const room2 = await alice.ok("say", { id: "room-id", room: "lobby", text: "once too" });
    assert.equal(room2.duplicate, true);
    assert.deepEqual(room2.msg, room1.msg);
    await delay(100);
    assert.equal(bob.received.filter((m) => m.type === "dm").length, 1);
    assert.equal(bob.received.filter((m) => m.type === "msg").length, 1);
    const history = await bob.ok("history", { with: "alice" });
    assert.equal((history.messages as unknown[]).length, 1);
  });
});

Deno.test("sessions: every session of an account receives what is addressed to it", async () => {
  await withServer(async (server) => {
    await using phone = await Probe.login(server, "alice");
    await using laptop = await Probe.login(server, "alice");
    await using bob = await Probe.login(server, "bob");
    await bob.ok("dm", { to: "alice", text: "to both" });
    await phone.expect({ type: "dm", text: "to both" });
    await laptop.expect({ type: "dm", text: "to both" });
    await bob.ok("say", { room: "lobby", text: "room too" });
    await phone.expect({ type: "msg", text: "room too" });
    await laptop.expect({ type: "msg", text: "room too" });
    // What one session sends, the other sees; the sender gets it in its reply only.
    await phone.ok("dm", { to: "bob", text: "from my phone" });
    await laptop.expect({ type: "dm", text: "from my phone" });
    await phone.expectNone({ type: "dm", text: "from my phone" });
    // A room joined on one device is joined on all.
    await laptop.ok("join", { room: "books" });
    await phone.expect({ type: "member", room: "books", nick: "alice", joined: true });
    await bob.ok("join", { room: "books" });
    await bob.ok("say", { room: "books", text: "reading" });
    await phone.expect({ type: "msg", room: "books", text: "reading" });
    // Online while one session is.
    phone.close();
    await bob.expectNone({ type: "presence", nick: "alice", online: false }, 200);
    assert.deepEqual((await bob.ok("who")).users, ["alice", "bob"]);
    laptop.close();
    await bob.expect({ type: "presence", nick: "alice", online: false });
  });
});

Deno.test("broadcast: reaches every online account but the sender and its blockers", async () => {
  await withServer(async (server) => {
    await using alice = await Probe.login(server, "alice");
    await using bob = await Probe.login(server, "bob");
    await using carol = await Probe.login(server, "carol");
    await carol.ok("block", { nick: "alice" });
    const reply = await alice.ok("broadcast", { text: "hear ye" });
    assert.equal(reply.reached, 1);
    assert.equal(reply.blocked, 1);
    const got = await bob.expect({ type: "broadcast" });
    assert.equal(got.from, "alice");
    assert.equal(got.text, "hear ye");
    await carol.expectNone({ type: "broadcast" });
    await alice.expectNone({ type: "broadcast" });
  });
});

Deno.test("presence: notices, who, whoelse, whoelse since, hide and reveal", async () => {
  await withServer(async (server) => {
    await using alice = await Probe.login(server, "alice");
    const bob = await Probe.login(server, "bob");
    await alice.expect({ type: "presence", nick: "bob", online: true });
    assert.deepEqual((await alice.ok("who")).users, ["alice", "bob"]);
    assert.deepEqual((await alice.ok("whoelse")).users, ["bob"]);
    bob.close();
    await alice.expect({ type: "presence", nick: "bob", online: false });
    assert.deepEqual((await alice.ok("whoelse")).users, []);
    assert.deepEqual((await alice.ok("whoelse", { since: 60 })).users, ["bob"]);
    await delay(1100);
    assert.deepEqual((await alice.ok("whoelse", { since: 1 })).users, []);

    await using carol = await Probe.login(server, "carol");
    await alice.expect({ type: "presence", nick: "carol", online: true });
    await carol.ok("hide");
    await alice.expect({ type: "presence", nick: "carol", online: false });
    assert.deepEqual((await alice.ok("who")).users, ["alice"]);
    assert.deepEqual((await alice.ok("members", { room: "lobby" })).members, [
      { nick: "alice", online: true },
      { nick: "bob", online: false },
      { nick: "carol", online: false },
    ]);
    await carol.ok("reveal");
    await alice.expect({ type: "presence", nick: "carol", online: true });
    assert.deepEqual((await alice.ok("who")).users, ["alice", "carol"]);
  });
});

Deno.test("presence: no notices about someone to those they have blocked", async () => {
  await withServer(async (server) => {
    await using alice = await Probe.login(server, "alice");
    const bob = await Probe.login(server, "bob");
    await bob.ok("block", { nick: "alice" });
    bob.close();
    await delay(100);
    alice.received.length = 0; // bob's first login, before the block
    await using carol = await Probe.login(server, "carol");
    const bob2 = await Probe.login(server, "bob");
    await carol.expect({ type: "presence", nick: "bob", online: true });
    await alice.expectNone({ type: "presence", nick: "bob", online: true });
    bob2.close();
    await carol.expect({ type: "presence", nick: "bob", online: false });
    await alice.expectNone({ type: "presence", nick: "bob", online: false });
  });
});

Deno.test("block: confirmations, errors, stored, and room messages filtered", async () => {
  await withServer(async (server) => {
    await using alice = await Probe.login(server, "alice");
    await using bob = await Probe.login(server, "bob");
    assert.equal((await bob.ok("block", { nick: "ALICE" })).nick, "alice");
    await bob.fails("block", { nick: "alice" }, "already_blocked");
    await bob.fails("block", { nick: "bob" }, "self");
    await bob.fails("block", { nick: "ghost" }, "unknown_user");
    assert.deepEqual((await bob.ok("blocks")).nicks, ["alice"]);
    await alice.ok("say", { room: "lobby", text: "can you hear me" });
    await bob.expectNone({ type: "msg", text: "can you hear me" });
    await bob.ok("unblock", { nick: "alice" });
    await bob.fails("unblock", { nick: "alice" }, "not_blocked");
    await alice.ok("dm", { to: "bob", text: "now?" });
    await bob.expect({ type: "dm", text: "now?" });
  });
});

Deno.test("contacts: add, remove, list with online state, and notices", async () => {
  await withServer(async (server) => {
    await using alice = await Probe.login(server, "alice");
    (await Probe.login(server, "bob")).close();
    assert.equal((await alice.ok("contact_add", { nick: "Bob" })).nick, "bob");
    await alice.fails("contact_add", { nick: "bob" }, "already_contact");
    await alice.fails("contact_add", { nick: "alice" }, "self");
    await alice.fails("contact_add", { nick: "nobody" }, "unknown_user");
    assert.deepEqual((await alice.ok("contacts")).contacts, [{ nick: "bob", online: false }]);
    const bob = await Probe.login(server, "bob");
    await alice.expect({ type: "contact", nick: "bob", online: true });
    assert.deepEqual((await alice.ok("contacts")).contacts, [{ nick: "bob", online: true }]);
    bob.close();
    await alice.expect({ type: "contact", nick: "bob", online: false });
    await alice.ok("contact_remove", { nick: "bob" });
    await alice.fails("contact_remove", { nick: "bob" }, "not_contact");
    assert.deepEqual((await alice.ok("contacts")).contacts, []);
  });
});

Deno.test("logout: replies, closes, and the others are told", async () => {
  await withServer(async (server) => {
    await using alice = await Probe.login(server, "alice");
    await using bob = await Probe.login(server, "bob");
    await bob.ok("logout");
    await bob.closed();
    await alice.expect({ type: "presence", nick: "bob", online: false });
  });
});

Deno.test("presence: a burst of logins reaches everyone once each, blocks respected", async () => {
  await withServer(async (server) => {
    await using watcher = await Probe.login(server, "watcher");
    // zed blocks the watcher: the watcher must not hear of zed, whatever batch zed is in.
    const zed = await Probe.login(server, "zed");
    await watcher.expect({ type: "presence", nick: "zed", online: true });
    await zed.ok("block", { nick: "watcher" });
    // From the block on, zed appears offline to the watcher (and is not heard of again).
    await watcher.expect({ type: "presence", nick: "zed", online: false });
    await zed.ok("logout");
    await zed.closed();
    const nicks = Array.from({ length: 30 }, (_, i) => `burst${i}`);
    const burst = await Promise.all([...nicks, "zed"].map((nick) => Probe.login(server, nick)));
    try {
      for (const nick of nicks) {
        await watcher.expect({ type: "presence", nick, online: true });
      }
      // Each of the burst hears of those logged in after it, never of itself.
      const last = burst[nicks.length - 1];
      await last.ok("ping");
      assert.equal(last.received.filter((m) => m.nick === `burst${nicks.length - 1}`).length, 0);
      await Promise.all(burst.map(async (probe) => {
        await probe.ok("logout");
        await probe.closed();
      }));
      for (const nick of nicks) {
        await watcher.expect({ type: "presence", nick, online: false });
      }
      await watcher.ok("ping");
      const heard = watcher.received.filter((m) => m.type === "presence");
      assert.deepEqual(heard, [], "nothing twice, nothing of zed (who blocks the watcher)");
    } finally {
      await Promise.all(burst.map((probe) => probe[Symbol.asyncDispose]()));
    }
  });
});
