import assert from "node:assert/strict";
import { SessionState } from "./session_state.ts";

Deno.test("the prompt's label follows the current room or conversation", () => {
  const state = new SessionState("alice", null, ["rust"]);
  assert.equal(state.target, null);
  assert.equal(state.label, "");
  state.room = "lobby";
  assert.deepEqual(state.target, { kind: "room", room: "lobby" });
  assert.equal(state.label, "#lobby");
  state.query = "bob";
  assert.deepEqual(state.target, { kind: "dm", nick: "bob" });
  assert.equal(state.label, "@bob");
  state.query = null;
  assert.equal(state.label, "#lobby");
});

Deno.test("observe: joins and leaves, the server's spelling, /r's sender, nicks for completion", () => {
  const state = new SessionState("alice", "Lobby");
  state.observe({
    type: "reply",
    request: "join",
    data: { room: "lobby", topic: "", members: ["alice", "Bob"], history: [] },
  });
  assert.equal(state.room, "lobby", "the server's spelling replaces what was typed");
  assert.deepEqual(state.joinedRooms, ["lobby"]);
  state.observe({ type: "member", room: "rust", nick: "ALICE", joined: true });
  assert.ok(state.isJoined("RUST"));
  state.observe({ type: "dm", id: 1, ts: 0, from: "carol", to: "alice", text: "hi" });
  state.observe({ type: "dm", id: 2, ts: 0, from: "alice", to: "dave", text: "hi" });
  assert.equal(state.lastDmFrom, "carol", "our own direct messages do not count");
  state.observe({ type: "presence", nick: "erin", online: true, ts: 0 });
  state.observe({ type: "reply", request: "who", data: { users: ["alice", "frank"] } });
  assert.deepEqual(state.knownNicks.sort(), ["Bob", "carol", "dave", "erin", "frank"]);
  state.observe({ type: "reply", request: "leave", data: { room: "lobby" } });
  assert.equal(state.room, "rust", "leaving the current room picks another joined one");
  state.observe({ type: "member", room: "rust", nick: "alice", joined: false });
  assert.equal(state.room, null);
  assert.equal(state.label, "");
});

Deno.test("sentMessage: our direct messages by id, from replies and our other sessions, bounded", async () => {
  const { SENT_REMEMBERED } = await import("./session_state.ts");
  const state = new SessionState("alice", "lobby");
  const msg = { type: "dm" as const, id: 5, ts: 1, from: "alice", to: "bob", text: "lunch?" };
  state.observe({
    type: "reply",
    request: "dm",
    data: { msg, duplicate: false, delivered: false },
  });
  assert.deepEqual(state.sentMessage(5), { to: "bob", text: "lunch?" });
  state.observe({ ...msg, id: 6, text: "from my phone" });
  assert.equal(state.sentMessage(6)?.text, "from my phone");
  state.observe({ ...msg, id: 7, from: "bob", to: "alice", text: "theirs" });
  assert.equal(state.sentMessage(7), undefined);
  for (let id = 100; id < 100 + SENT_REMEMBERED; id++) state.observe({ ...msg, id });
  assert.equal(state.sentMessage(5), undefined);
  assert.equal(state.sentMessage(100 + SENT_REMEMBERED - 1)?.text, "lunch?");
});

Deno.test("repeatsPresence: the second telling of the same presence", () => {
  const state = new SessionState("alice", "lobby");
  const contact = { type: "contact" as const, nick: "Carol", online: true };
  const presence = { type: "presence" as const, nick: "carol", online: true, ts: 1 };
  assert.equal(state.repeatsPresence(contact), false);
  state.observe(contact);
  assert.equal(state.repeatsPresence(presence), true);
  state.observe(presence);
  const gone = { ...presence, online: false };
  assert.equal(state.repeatsPresence(gone), false);
  state.observe(gone);
  assert.equal(state.repeatsPresence({ ...contact, online: false }), true);
});
