import assert from "node:assert/strict";
import { Probe, withServer } from "./helpers/harness.ts";

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
