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
