import assert from "node:assert/strict";
import { ringsBell } from "./bell.ts";

Deno.test("the bell rings for direct messages and mentions from others only", () => {
  const dm = { type: "dm" as const, id: 1, ts: 0, to: "alice", text: "hi" };
  const msg = { type: "msg" as const, id: 2, ts: 0, room: "lobby" };
  assert.equal(ringsBell({ ...dm, from: "bob" }, "alice"), true);
  assert.equal(ringsBell({ ...dm, from: "Alice", to: "bob" }, "alice"), false, "our own dm");
  assert.equal(ringsBell({ ...msg, from: "bob", text: "hi all" }, "alice"), false);
  assert.equal(ringsBell({ ...msg, from: "bob", text: "hi @Alice!" }, "alice"), true);
  assert.equal(ringsBell({ ...msg, from: "bob", text: "alice: lunch?" }, "alice"), true);
  assert.equal(ringsBell({ ...msg, from: "bob", text: "malice aforethought" }, "alice"), false);
  assert.equal(ringsBell({ ...msg, from: "alice", text: "I am alice" }, "alice"), false);
  assert.equal(
    ringsBell(
      { type: "broadcast", ts: 0, from: "bob", text: "alice, the server restarts" },
      "alice",
    ),
    true,
  );
  const privateText = { type: "private_text" as const, id: "x", ts: 0, text: "psst" };
  assert.equal(ringsBell({ ...privateText, from: "bob", to: "alice" }, "alice"), true);
  assert.equal(ringsBell({ ...privateText, from: "alice", to: "bob" }, "alice"), false);
  assert.equal(
    ringsBell({ type: "presence", nick: "bob", online: true, ts: 0 }, "alice"),
    false,
  );
  assert.equal(ringsBell({ type: "info", text: "alice" }, "alice"), false);
});
