/**
 * Blocking and hiding over real sockets (issue 14, item 4), and a second session of an
 * account told to the first (item 13).
 *
 * A block hides presence both ways: the blocked user sees nothing of the blocker (no
 * presence, not in `who`, `whoelse` or `whoelse since`, offline in `members` and
 * `contacts`, no read receipts), and the blocker is not told of the one it blocked either.
 * A hidden user appears offline everywhere and sends no read receipts while hidden (nor
 * at `reveal`: what was read while hidden stays unreported).
 *
 * "Nothing arrives" is checked after a barrier: once a third party has the event, or a
 * `ping` reply came back after it was published, it would be in `received` already.
 */

import assert from "node:assert/strict";
import { Probe, withServer } from "./helpers/harness.ts";

Deno.test("block: the blocked user sees nothing of the blocker", async () => {
  await withServer(async (server) => {
    await using alice = await Probe.login(server, "alice");
    await using bob = await Probe.login(server, "bob");
    await using carol = await Probe.login(server, "carol");
    await carol.ok("contact_add", { nick: "alice" });
    const sent = await carol.ok("dm", { to: "alice", text: "before the block" });
    const dm = await alice.expect({ type: "dm", text: "before the block" });

    await alice.ok("block", { nick: "carol" });
    // Carol's view of alice goes offline at once; bob's does not change.
    await carol.expect({ type: "presence", nick: "alice", online: false });
    await carol.expect({ type: "contact", nick: "alice", online: false });
    assert.deepEqual((await carol.ok("who")).users, ["bob", "carol"]);
    assert.deepEqual((await carol.ok("whoelse")).users, ["bob"]);
    assert.deepEqual((await carol.ok("whoelse", { since: 60 })).users, ["bob"]);
    assert.deepEqual((await carol.ok("members", { room: "lobby" })).members, [
      { nick: "alice", online: false },
      { nick: "bob", online: true },
      { nick: "carol", online: true },
    ]);
    assert.deepEqual((await carol.ok("contacts")).contacts, [{ nick: "alice", online: false }]);
    assert.deepEqual((await bob.ok("who")).users, ["alice", "bob", "carol"]);

    // Reading carol's earlier message tells carol nothing.
    assert.equal((await alice.ok("read", { ids: [dm.id] })).count, 1);
    await carol.ok("ping");
    await carol.expectNone({ type: "receipt", id: (sent.msg as { id: number }).id }, 0);

    // Alice going and coming: bob is told, carol is not (nor as a contact).
    alice.close();
    await bob.expect({ type: "presence", nick: "alice", online: false });
    await carol.ok("ping");
    await carol.expectNone({ type: "presence", nick: "alice" }, 0);
    await carol.expectNone({ type: "contact", nick: "alice" }, 0);
    await using again = await Probe.login(server, "alice");
    await bob.expect({ type: "presence", nick: "alice", online: true });
    assert.deepEqual((await again.ok("who")).users, ["alice", "bob"]);
    await carol.ok("ping");
    await carol.expectNone({ type: "presence", nick: "alice" }, 0);
    await carol.expectNone({ type: "contact", nick: "alice" }, 0);
    assert.deepEqual((await carol.ok("whoelse", { since: 60 })).users, ["bob"]);
    assert.deepEqual((await carol.ok("contacts")).contacts, [{ nick: "alice", online: false }]);
  });
});

Deno.test("block: the blocker is not told of the one it blocks; unblock shows both again", async () => {
  await withServer(async (server) => {
    await using alice = await Probe.login(server, "alice");
    await using bob = await Probe.login(server, "bob");
    const carol = await Probe.login(server, "carol");
    await alice.expect({ type: "presence", nick: "carol", online: true });
    await alice.ok("block", { nick: "carol" });
    await alice.expect({ type: "presence", nick: "carol", online: false });
    assert.deepEqual((await alice.ok("who")).users, ["alice", "bob"]);
    assert.deepEqual((await alice.ok("whoelse")).users, ["bob"]);
    assert.deepEqual(
      ((await alice.ok("members", { room: "lobby" })).members as { nick: string }[])
        .find((m) => m.nick === "carol"),
      { nick: "carol", online: false },
    );

    carol.close();
    await bob.expect({ type: "presence", nick: "carol", online: false });
    await alice.ok("ping");
    await alice.expectNone({ type: "presence", nick: "carol" }, 0);
    await using carol2 = await Probe.login(server, "carol");
    await bob.expect({ type: "presence", nick: "carol", online: true });
    await alice.ok("ping");
    await alice.expectNone({ type: "presence", nick: "carol" }, 0);

    await alice.ok("unblock", { nick: "carol" });
    await alice.expect({ type: "presence", nick: "carol", online: true });
    await carol2.expect({ type: "presence", nick: "alice", online: true });
    assert.deepEqual((await alice.ok("who")).users, ["alice", "bob", "carol"]);
    assert.deepEqual((await carol2.ok("who")).users, ["alice", "bob", "carol"]);
  });
});

Deno.test("hide: a hidden user sends no read receipts, not even at reveal", async () => {
  await withServer(async (server) => {
    await using alice = await Probe.login(server, "alice");
    await using bob = await Probe.login(server, "bob");
    await alice.ok("contact_add", { nick: "bob" });
    await bob.ok("hide");
    await alice.expect({ type: "presence", nick: "bob", online: false });
    await alice.expect({ type: "contact", nick: "bob", online: false });
    assert.deepEqual((await alice.ok("contacts")).contacts, [{ nick: "bob", online: false }]);
    assert.deepEqual((await alice.ok("whoelse", { since: 60 })).users, []);

    const first = await alice.ok("dm", { to: "bob", text: "are you there?" });
    const got = await bob.expect({ type: "dm", text: "are you there?" });
    assert.equal((await bob.ok("read", { ids: [got.id] })).count, 1);
    await alice.ok("ping");
    await alice.expectNone({ type: "receipt" }, 0);

    await bob.ok("reveal");
    await alice.expect({ type: "presence", nick: "bob", online: true });
    await alice.ok("ping");
    await alice.expectNone({ type: "receipt", id: (first.msg as { id: number }).id }, 0);

    // Once revealed, reads are told again.
    const second = await alice.ok("dm", { to: "bob", text: "now?" });
    const got2 = await bob.expect({ type: "dm", text: "now?" });
    await bob.ok("read", { ids: [got2.id] });
    const receipt = await alice.expect({ type: "receipt", status: "read" });
    assert.equal(receipt.id, (second.msg as { id: number }).id);
  });
});

Deno.test("sessions: a second session's login is told to the account's other sessions", async () => {
  await withServer(async (server) => {
    await using phone = await Probe.login(server, "alice");
    await using bob = await Probe.login(server, "bob");
    await using laptop = await Probe.login(server, "alice");
    const notice = await phone.expect({ type: "notice", code: "session_login" });
    assert.match(
      String(notice.text),
      /^alice logged in again from 127\.0\.0\.1 \(2 sessions now\)$/,
    );
    await laptop.ok("ping");
    await laptop.expectNone({ type: "notice" }, 0);
    await bob.ok("ping");
    await bob.expectNone({ type: "notice" }, 0);
  });
});
