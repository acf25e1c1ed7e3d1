import assert from "node:assert/strict";
import { ChatError } from "./chat_error.ts";
import { type CommandContext, executeLine } from "./commands.ts";
import type { DisplayItem } from "./render.ts";
import { SessionState } from "./session_state.ts";
import { viewOf, Views } from "./views.ts";

function msg(room: string, from: string, text: string): DisplayItem {
  return { type: "msg", id: 1, ts: 0, room, from, text };
}

function dm(from: string, to: string, text: string): DisplayItem {
  return { type: "dm", id: 2, ts: 0, from, to, text };
}

Deno.test("viewOf: rooms' lines, conversations' lines, and the rest", () => {
  assert.equal(viewOf(msg("dev", "bob", "hi"), "alice"), "#dev");
  assert.equal(viewOf(dm("bob", "alice", "hi"), "alice"), "@bob");
  assert.equal(viewOf(dm("alice", "bob", "hi"), "alice"), "@bob");
  assert.equal(viewOf({ type: "member", room: "dev", nick: "bob", joined: true }, "alice"), "#dev");
  assert.equal(viewOf({ type: "info", text: "x" }, "alice"), null);
});

Deno.test("one view: every line is printed, nothing counted", () => {
  const state = new SessionState("alice", "lobby");
  const views = new Views(state);
  assert.equal(views.accept(msg("lobby", "bob", "hi"), ["<bob> hi"]), true);
  // A direct message from someone with no view open shows where the user is.
  assert.equal(views.accept(dm("bob", "alice", "psst"), ["*bob* psst"]), true);
  assert.equal(views.accept({ type: "info", text: "x" }, ["x"]), true);
  assert.equal(views.status(), "");
  assert.deepEqual(views.list(), ["1. #lobby *"]);
});

Deno.test("lines of another view are kept and counted, mentions and DMs marked", () => {
  const state = new SessionState("alice", "lobby", ["dev", "ops"]);
  const views = new Views(state);
  assert.equal(views.accept(msg("dev", "bob", "one"), ["<bob> one"]), false);
  assert.equal(views.accept(msg("dev", "bob", "two"), ["<bob> two"]), false);
  assert.equal(views.accept(msg("ops", "carol", "alice: look"), ["<carol> alice: look"]), false);
  // Our own line in another room (from another session, or /say) is shown, not counted.
  assert.equal(views.accept(msg("dev", "alice", "mine"), ["<alice> mine"]), true);
  // Joins in another room are kept, not printed, not counted.
  assert.equal(
    views.accept({ type: "member", room: "dev", nick: "dave", joined: true }, ["* dave joined"]),
    false,
  );
  assert.equal(views.status(), "[#dev 2 #ops 1!] ");
  assert.deepEqual(views.list(), [
    "1. #dev (2 unread)",
    "2. #ops (1 unread, for you)",
    "3. #lobby *",
  ]);

  const switched = views.switchTo("#dev");
  assert.deepEqual(switched, {
    label: "#dev",
    lines: ["<bob> one", "<bob> two", "<alice> mine", "* dave joined"],
    unread: 2,
    dmIds: [],
  });
  assert.equal(state.label, "#dev");
  assert.equal(views.status(), "[#ops 1!] ");
  // Now the lobby's lines are kept and counted.
  assert.equal(views.accept(msg("lobby", "bob", "back"), ["<bob> back"]), false);
  assert.equal(views.accept(msg("dev", "bob", "here"), ["<bob> here"]), true);
  assert.equal(views.status(), "[#ops 1! #lobby 1] ");
  // By number, and by a bare name.
  assert.equal(views.switchTo("2").label, "#ops");
  assert.equal(views.switchTo("LOBBY").lines.at(-1), "<bob> back");
  assert.equal(views.status(), "");
});

Deno.test("a conversation opened with /query is a view; its lines are counted and marked", () => {
  const state = new SessionState("alice", "lobby");
  const views = new Views(state);
  state.query = "bob";
  assert.equal(views.status(), "");
  state.query = null;
  assert.equal(views.accept(dm("bob", "alice", "psst"), ["*bob* psst"]), false);
  assert.equal(views.accept(dm("alice", "bob", "yes?"), ["-> *bob* yes?"]), true);
  assert.equal(views.status(), "[@bob 1!] ");
  assert.deepEqual(views.list(), ["1. #lobby *", "2. @bob (1 unread, for you)"]);
  const switched = views.switchTo("bob");
  assert.deepEqual(switched.lines, ["*bob* psst", "-> *bob* yes?"]);
  // The direct message counted is read only now, when shown (its receipt is sent then).
  assert.deepEqual(switched.dmIds, [2]);
  assert.deepEqual(views.switchTo("bob").dmIds, []);
  assert.equal(state.query, "bob");
  assert.equal(state.label, "@bob");
  views.switchTo("#lobby");
  assert.equal(state.query, null);
  assert.equal(state.label, "#lobby");
});

Deno.test("each view keeps its last lines only; a switch gives at most the limit asked", () => {
  const state = new SessionState("alice", "lobby", ["dev"]);
  const views = new Views(state, 3);
  for (let i = 1; i <= 5; i++) views.accept(msg("dev", "bob", `${i}`), [`${i}`]);
  assert.equal(views.status(), "[#dev 5] ");
  assert.deepEqual(views.switchTo("dev", 2).lines, ["4", "5"]);
  assert.deepEqual(views.switchTo("dev").lines, ["3", "4", "5"]);
});

Deno.test("switchTo: an unknown view is a usage error naming the views", () => {
  const views = new Views(new SessionState("alice", "lobby"));
  assert.throws(
    () => views.switchTo("#nope"),
    (err) => err instanceof ChatError && err.code === "usage" && /#lobby/.test(err.message),
  );
  assert.throws(() => views.switchTo("9"), ChatError);
});

Deno.test("/window lists the views, /w NAME switches and shows the kept lines", async () => {
  const state = new SessionState("alice", "lobby", ["dev"]);
  const views = new Views(state);
  views.accept(msg("dev", "bob", "hi"), ["<bob> hi"]);
  const shown: DisplayItem[] = [];
  const ctx = {
    client: {},
    state,
    views,
    show: (item: DisplayItem) => shown.push(item),
    quit: () => {},
  } as unknown as CommandContext;
  await executeLine(ctx, "/window");
  assert.deepEqual(shown.pop(), { type: "info", text: "* 1. #dev (1 unread)\n* 2. #lobby *" });
  await executeLine(ctx, "/w dev");
  assert.deepEqual(shown.pop(), { type: "info", text: "---- #dev (1 unread) ----\n<bob> hi" });
  assert.equal(state.label, "#dev");
  await executeLine(ctx, "/w nowhere");
  assert.equal((shown.pop() as { code: string }).code, "usage");
});

Deno.test("/window is not offered without views (script mode)", async () => {
  const shown: DisplayItem[] = [];
  const ctx = {
    client: {},
    state: new SessionState("alice", "lobby"),
    show: (item: DisplayItem) => shown.push(item),
    quit: () => {},
  } as unknown as CommandContext;
  await executeLine(ctx, "/window");
  assert.equal((shown.pop() as { code: string }).code, "unsupported");
});
