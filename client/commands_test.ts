import assert from "node:assert/strict";
import type { ReplyMap } from "../protocol/replies.ts";
import { ChatError } from "./chat_error.ts";
import {
  closestCommand,
  type CommandClient,
  type CommandContext,
  commandNames,
  COMMANDS,
  completeLine,
  executeLine,
  findCommand,
  helpText,
  parseLine,
} from "./commands.ts";
import type { DisplayItem } from "./render.ts";
import { SessionState } from "./session_state.ts";

type Call = [string, ...unknown[]];

/** A client that records each call and answers like a server would. */
function fakeClient(calls: Call[], fail: Partial<Record<string, ChatError>> = {}): CommandClient {
  const answer = <T>(name: string, args: unknown[], data: T): Promise<T> => {
    calls.push([name, ...args]);
    const error = fail[name];
    return error ? Promise.reject(error) : Promise.resolve(data);
  };
  const msg = (room: string, text: string) => ({
    type: "msg" as const,
    room,
    id: 1,
    ts: 0,
    from: "alice",
    text,
  });
  const dm = (to: string, text: string) => ({
    type: "dm" as const,
    to,
    id: 2,
    ts: 0,
    from: "alice",
    text,
  });
  const client: CommandClient = {
    join: (room) =>
      answer("join", [room], { room, topic: "", members: ["alice", "bob"], history: [] }),
    leave: (room) => answer("leave", [room], { room }),
    rooms: () => answer("rooms", [], { rooms: [{ name: "rust", members: 2, topic: "" }] }),
    members: (room) => answer("members", [room], { room, members: [] }),
    topic: (room, topic) =>
      answer("topic", topic === undefined ? [room] : [room, topic], {
        room,
        topic: topic ?? "old",
        by: "bob",
      }),
    say: (room, text) => answer("say", [room, text], { msg: msg(room, text), duplicate: false }),
    dm: (to, text) =>
      answer("dm", [to, text], { msg: dm(to, text), duplicate: false, delivered: true }),
    broadcast: (text) => answer("broadcast", [text], { reached: 1, blocked: 0 }),
    who: () => answer("who", [], { users: ["alice", "carol"] }),
    whoelse: (since) => answer("whoelse", since === undefined ? [] : [since], { users: [] }),
    hide: () => answer("hide", [], { hidden: true }),
    reveal: () => answer("reveal", [], { hidden: false }),
    block: (nick) => answer("block", [nick], { nick }),
    unblock: (nick) => answer("unblock", [nick], { nick }),
    blocks: () => answer("blocks", [], { nicks: [] }),
    contactAdd: (nick) => answer("contactAdd", [nick], { nick }),
    contactRemove: (nick) => answer("contactRemove", [nick], { nick }),
    contacts: () => answer("contacts", [], { contacts: [] }),
    history: (query) =>
      answer("history", [query], { messages: [], more: false } as ReplyMap["history"]),
    logOutEverywhere: () => answer("logOutEverywhere", [], { revoked: 2 }),
    away: (text) => answer("away", text === undefined ? [] : [text], { away: text ?? "" }),
  };
  return client;
}

function setup(fail: Partial<Record<string, ChatError>> = {}) {
  const calls: Call[] = [];
  const shown: DisplayItem[] = [];
  let quit = 0;
  const state = new SessionState("alice", "lobby");
  const ctx: CommandContext = {
    client: fakeClient(calls, fail),
    state,
    show: (item) => {
      state.observe(item);
      shown.push(item);
    },
    quit: () => quit++,
  };
  return { calls, shown, state, ctx, quits: () => quit };
}

Deno.test("parseLine: commands, words, rest with spacing, plain text, // escape", () => {
  assert.deepEqual(parseLine(""), { kind: "empty" });
  assert.deepEqual(parseLine("   \r\n"), { kind: "empty" });
  assert.deepEqual(parseLine("hello /there"), { kind: "text", text: "hello /there" });
  assert.deepEqual(parseLine("//shrug"), { kind: "text", text: "/shrug" });
  const parsed = parseLine("/msg bob   hi   there  \r");
  assert.equal(parsed.kind, "command");
  if (parsed.kind !== "command") return;
  assert.equal(parsed.name, "msg");
  assert.deepEqual(parsed.args.words, ["bob", "hi", "there"]);
  assert.equal(parsed.args.rest(1), "hi   there");
  assert.equal(parsed.args.rest(0), "bob   hi   there");
  assert.equal(parsed.args.rest(5), "");
});

Deno.test("the table: unique names and aliases, every entry documented", () => {
  const names = COMMANDS.flatMap((c) => [
    c.name,
    ...c.aliases.map((a) => typeof a === "string" ? a : a.name),
  ]);
  assert.equal(new Set(names).size, names.length, "a name is used twice");
  for (const spec of COMMANDS) {
    assert.ok(spec.summary.length > 0, spec.name);
    assert.match(spec.name, /^[a-z_]+$/);
  }
  const required = [
    "join",
    "leave",
    "rooms",
    "members",
    "topic",
    "msg",
    "r",
    "query",
    "broadcast",
    "who",
    "whoelse",
    "hide",
    "reveal",
    "block",
    "unblock",
    "blocks",
    "contacts",
    "contact",
    "history",
    "quit",
    "help",
    // private (end-to-end encrypted) sessions
    "private",
    "p",
    "accept",
    "decline",
    "stopprivate",
    // other chat programs' spellings
    "message",
    "whoelsesince",
    "logout",
    "get_rooms",
    "create_room",
    "room",
    "dm",
    "list_users",
    "add_contact",
    "remove_contact",
    "list_contacts",
    "exit",
  ];
  for (const name of required) assert.ok(findCommand(name), `/${name} is missing`);
  assert.equal(findCommand("MSG")?.spec.name, "msg");
  assert.deepEqual(findCommand("add_contact")?.prefix, ["add"]);
  assert.ok(commandNames().includes("/whoelsesince"));
});

Deno.test("/help is generated from the table", async () => {
  const { ctx, shown } = setup();
  assert.equal(await executeLine(ctx, "/help"), true);
  const text = (shown[0] as { text: string }).text;
  assert.equal(text, helpText());
  for (const spec of COMMANDS) {
    assert.ok(text.includes(`/${spec.name}${spec.args ? ` ${spec.args}` : ""}`), spec.name);
    assert.ok(text.includes(spec.summary), spec.name);
  }
  assert.match(text, /\/msg NICK TEXT +send a direct message \(also \/message, \/dm/);
  shown.length = 0;
  await executeLine(ctx, "/help add_contact");
  assert.match((shown[0] as { text: string }).text, /^\/contact add\|remove NICK/);
  assert.match((shown[0] as { text: string }).text, /also \/add_contact NICK = \/contact add NICK/);
});

Deno.test("unknown commands and missing arguments fail with one clear error", async () => {
  const { ctx: plain, shown, calls } = setup();
  const record = (name: string) => (...args: unknown[]) => {
    calls.push([name, ...args]);
    return Promise.resolve();
  };
  const ctx: CommandContext = {
    ...plain,
    privates: {
      start: record("start"),
      accept: record("accept"),
      decline: record("decline"),
      send: record("send"),
      stop: record("stop"),
    },
  };
  assert.equal(await executeLine(ctx, "/frobnicate now"), false);
  assert.deepEqual(shown.pop(), {
    type: "error",
    code: "unknown_command",
    message: "unknown command /frobnicate: /help lists the commands",
    command: "/frobnicate now",
  });
  for (
    const [line, usage] of [
      ["/msg", "usage: /msg NICK TEXT"],
      ["/msg bob", "usage: /msg NICK TEXT"],
      ["/join", "usage: /join ROOM"],
      ["/join a b", "usage: /join ROOM"],
      ["/block", "usage: /block NICK"],
      ["/contact", "usage: /contact add|remove NICK"],
      ["/contact frob bob", "usage: /contact add|remove NICK"],
      ["/add_contact", "usage: /contact add|remove NICK"],
      ["/broadcast   ", "usage: /broadcast TEXT"],
      ["/room lobby", "usage: /say ROOM TEXT"],
      ["/private", "usage: /private NICK [TEXT]"],
      ["/p bob", "usage: /p NICK TEXT"],
      ["/accept", "usage: /accept NICK|#FILE"],
      ["/decline bob carol", "usage: /decline NICK|#FILE"],
      ["/stopprivate", "usage: /stopprivate NICK"],
    ]
  ) {
    assert.equal(await executeLine(ctx, line), false, line);
    const error = shown.pop() as { code: string; message: string };
    assert.equal(error.code, "usage", line);
    assert.equal(error.message, usage, line);
  }
  assert.deepEqual(calls, [], "nothing was sent");
});

Deno.test("each command calls the client with the right arguments", async () => {
  const { ctx, calls } = setup();
  const lines = [
    "/rooms",
    "/get_rooms",
    "/members",
    "/members rust",
    "/msg bob hi  there",
    "/message bob yo",
    "/dm bob hey",
    "/broadcast hello all",
    "/who",
    "/list_users",
    "/whoelse",
    "/whoelsesince 60",
    "/hide",
    "/reveal",
    "/block mallory",
    "/unblock mallory",
    "/blocks",
    "/contacts",
    "/list_contacts",
    "/contact add bob",
    "/add_contact carol",
    "/contact remove bob",
    "/remove_contact carol",
    "/room rust sneaky",
    "/topic",
    "/topic lobby",
    "/topic a new topic",
    "/topic #rust rusty",
    "/history",
    "/history 5",
  ];
  for (const line of lines) assert.equal(await executeLine(ctx, line), true, line);
  assert.deepEqual(calls, [
    ["rooms"],
    ["rooms"],
    ["members", "lobby"],
    ["members", "rust"],
    ["dm", "bob", "hi  there"],
    ["dm", "bob", "yo"],
    ["dm", "bob", "hey"],
    ["broadcast", "hello all"],
    ["who"],
    ["who"],
    ["whoelse"],
    ["whoelse", 60],
    ["hide"],
    ["reveal"],
    ["block", "mallory"],
    ["unblock", "mallory"],
    ["blocks"],
    ["contacts"],
    ["contacts"],
    ["contactAdd", "bob"],
    ["contactAdd", "carol"],
    ["contactRemove", "bob"],
    ["contactRemove", "carol"],
    ["say", "rust", "sneaky"],
    ["topic", "lobby"],
    ["topic", "lobby"],
    ["topic", "lobby", "a new topic"],
    ["topic", "rust", "rusty"],
    ["history", { room: "lobby", limit: 20 }],
    ["history", { room: "lobby", limit: 5 }],
  ]);
});

Deno.test("plain text goes to the current room, or to the /query conversation", async () => {
  const { ctx, calls, state, shown } = setup();
  await executeLine(ctx, "hello room");
  await executeLine(ctx, "/query bob");
  assert.equal(state.label, "@bob");
  await executeLine(ctx, "hello bob");
  await executeLine(ctx, "/history 3");
  await executeLine(ctx, "/query");
  assert.equal(state.label, "#lobby");
  await executeLine(ctx, "//slash");
  assert.deepEqual(calls, [
    ["say", "lobby", "hello room"],
    ["dm", "bob", "hello bob"],
    ["history", { with: "bob", limit: 3 }],
    ["say", "lobby", "/slash"],
  ]);
  assert.equal(shown[0].type, "reply");
  assert.equal(await executeLine(ctx, "/query alice"), false, "not to ourselves");
});

Deno.test("/join switches at once (so the next line goes there); reverts when refused", async () => {
  const { ctx, calls, state } = setup();
  const joining = executeLine(ctx, "/join rust");
  // Before the reply: the next line already goes to rust.
  const saying = executeLine(ctx, "first in rust");
  assert.equal(state.room, "rust");
  await joining;
  await saying;
  assert.deepEqual(calls, [["join", "rust"], ["say", "rust", "first in rust"]]);
  assert.deepEqual(state.joinedRooms.sort(), ["lobby", "rust"]);

  const refused = setup({ join: new ChatError("bad_name", "bad room name") });
  assert.equal(await executeLine(refused.ctx, "/join b@d"), false);
  assert.equal(refused.state.room, "lobby");
  const error = refused.shown.pop() as { code: string; command: string };
  assert.equal(error.code, "bad_name");
  assert.equal(error.command, "/join b@d");
});

Deno.test("/leave leaves the current room by default and picks another", async () => {
  const { ctx, calls, state } = setup();
  await executeLine(ctx, "/join rust");
  await executeLine(ctx, "/leave");
  assert.deepEqual(calls.at(-1), ["leave", "rust"]);
  assert.equal(state.room, "lobby");
  await executeLine(ctx, "/leave");
  assert.equal(state.room, null);
  assert.equal(await executeLine(ctx, "text with no room"), false);
  assert.equal(await executeLine(ctx, "/members"), false);
});

Deno.test("/r answers the last direct message received", async () => {
  const { ctx, calls, state } = setup();
  assert.equal(await executeLine(ctx, "/r hello?"), false);
  state.observe({ type: "dm", to: "alice", id: 9, ts: 0, from: "Carol", text: "psst" });
  // Our own DMs (from another session) do not change whom /r answers.
  state.observe({ type: "dm", to: "dave", id: 10, ts: 0, from: "alice", text: "hi" });
  assert.equal(await executeLine(ctx, "/r  what's up"), true);
  assert.deepEqual(calls, [["dm", "Carol", "what's up"]]);
});

Deno.test("/whoelse and /history check their numbers", async () => {
  const { ctx, calls, shown } = setup();
  for (const line of ["/whoelse soon", "/whoelse -5", "/history 0", "/history 501", "/history x"]) {
    assert.equal(await executeLine(ctx, line), false, line);
    assert.equal((shown.pop() as { code: string }).code, "usage");
  }
  assert.deepEqual(calls, []);
});

Deno.test("server refusals are shown with their code and retryAfter", async () => {
  const { ctx, shown } = setup({
    dm: new ChatError("blocked", "bob has blocked you"),
    say: new ChatError("rate_limited", "slow down", { retryAfter: 2 }),
  });
  assert.equal(await executeLine(ctx, "/msg bob hi"), false);
  assert.deepEqual(shown.pop(), {
    type: "error",
    code: "blocked",
    message: "bob has blocked you",
    command: "/msg bob hi",
  });
  assert.equal(await executeLine(ctx, "hi all"), false);
  assert.deepEqual(shown.pop(), {
    type: "error",
    code: "rate_limited",
    message: "slow down",
    command: "hi all",
    retryAfter: 2,
  });
});

Deno.test("/quit and its aliases end the session", async () => {
  const { ctx, quits, calls } = setup();
  for (const line of ["/quit", "/logout", "/exit"]) await executeLine(ctx, line);
  assert.equal(quits(), 3);
  assert.deepEqual(calls, []);
});

Deno.test("/logout everywhere revokes the account's tokens and sessions, then leaves", async () => {
  const { ctx, quits, calls, shown } = setup();
  await executeLine(ctx, "/logout everywhere");
  assert.deepEqual(calls, [["logOutEverywhere"]]);
  assert.equal(quits(), 1);
  assert.deepEqual(shown, [{ type: "reply", request: "token_revoke", data: { revoked: 2 } }]);
  await executeLine(ctx, "/quit somewhere");
  assert.equal(quits(), 1, "a wrong argument is a usage error, not a quit");
});

Deno.test("tab completion: commands, rooms, nicks", async () => {
  const { ctx, state } = setup();
  await executeLine(ctx, "/who"); // learns carol
  state.addNick("bob");
  await executeLine(ctx, "/rooms"); // learns rust
  assert.deepEqual(completeLine("/jo", state), [["/join"], "/jo"]);
  assert.deepEqual(completeLine("/whoe", state), [["/whoelse", "/whoelsesince"], "/whoe"]);
  assert.deepEqual(completeLine("/join r", state), [["rust"], "r"]);
  assert.deepEqual(completeLine("/msg b", state), [["bob"], "b"]);
  assert.deepEqual(completeLine("/contact a", state), [["add"], "a"]);
  assert.deepEqual(completeLine("/contact add c", state), [["carol"], "c"]);
  assert.deepEqual(completeLine("hi @c", state), [["@carol"], "@c"]);
  assert.deepEqual(completeLine("hi ", state), [["bob", "carol"], ""]);
  assert.deepEqual(completeLine("/nothing x", state), [[], "x"]);
  assert.ok(!completeLine("a", state)[0].includes("alice"), "our own nick is not offered");
});

Deno.test("file commands: /send, and /accept and /decline by #FILE or by NICK", async () => {
  const { ctx: plain, shown, calls } = setup();
  const record = (name: string) => (...args: unknown[]) => {
    calls.push([name, ...args]);
    return Promise.resolve();
  };
  const ctx: CommandContext = {
    ...plain,
    privates: {
      start: record("private.start"),
      accept: record("private.accept"),
      decline: record("private.decline"),
      send: record("private.send"),
      stop: record("private.stop"),
    },
    files: {
      send: (...args: unknown[]) => {
        calls.push(["files.send", ...args]);
        return Promise.resolve({
          file: 7,
          to: "bob",
          size: 1,
          offset: 0,
          online: true,
          expires: 0,
        });
      },
      accept: (...args: unknown[]) => {
        calls.push(["files.accept", ...args]);
        return Promise.resolve("/tmp/x");
      },
      decline: record("files.decline"),
      cancel: record("files.cancel"),
      list: () => Promise.resolve({ files: [] }),
    },
  };
  calls.length = 0;
  assert.equal(await executeLine(ctx, "/send bob ./my file (1).pdf"), true);
  assert.equal(await executeLine(ctx, "/accept #12"), true);
  assert.equal(await executeLine(ctx, "/decline #3"), true);
  assert.equal(await executeLine(ctx, "/accept carol"), true);
  assert.equal(await executeLine(ctx, "/decline 12"), true, "a nick of digits is a nick");
  assert.equal(await executeLine(ctx, "/cancel #5"), true);
  assert.deepEqual(calls, [
    ["files.send", "bob", "./my file (1).pdf"],
    ["files.accept", 12],
    ["files.decline", 3],
    ["private.accept", "carol"],
    ["private.decline", "12"],
    ["files.cancel", 5],
  ]);
  for (
    const [line, message] of [
      ["/send bob", "usage: /send NICK PATH"],
      ["/accept #x", '"#x" is not a file number: they look like #12'],
      ["/accept #0", '"#0" is not a file number: they look like #12'],
      ["/accept #1 #2", "usage: /accept NICK|#FILE"],
      ["/cancel bob", "usage: /cancel #FILE"],
    ]
  ) {
    assert.equal(await executeLine(ctx, line), false, line);
    assert.equal((shown.pop() as { message: string }).message, message, line);
  }
  assert.equal(await executeLine(plain, "/send bob x"), false);
  assert.equal((shown.pop() as { code: string }).code, "unsupported");
});

Deno.test("other messengers' habits: did you mean, /file, /send with text, /me", async () => {
  const { ctx: plain, shown, calls } = setup();
  assert.equal(await executeLine(plain, "/jion rust"), false);
  assert.equal(
    (shown.pop() as { message: string }).message,
    "unknown command /jion: did you mean /join? /help lists the commands",
  );
  assert.equal(await executeLine(plain, "/mgs bob hi"), false);
  assert.match((shown.pop() as { message: string }).message, /did you mean \/msg\?/);
  assert.equal(closestCommand("whoo"), "who");
  assert.equal(closestCommand("xyzzy"), null);
  assert.equal(closestCommand("blcoks"), "blocks");

  const ctx: CommandContext = {
    ...plain,
    files: {
      send: (nick: string, path: string) => {
        calls.push(["files.send", nick, path]);
        return Promise.reject(new ChatError("not_a_file", `no such file: ${path}`));
      },
      accept: () => Promise.resolve(""),
      decline: () => Promise.resolve(),
      cancel: () => Promise.resolve(),
      list: () => Promise.resolve({ files: [] }),
    },
  };
  assert.equal(await executeLine(ctx, "/file bob report.pdf"), false);
  assert.deepEqual(calls.pop(), ["files.send", "bob", "report.pdf"]);
  shown.pop();
  assert.equal(await executeLine(ctx, "/send bob hi there"), false);
  assert.deepEqual(shown.pop(), {
    type: "error",
    code: "not_a_file",
    message: "no such file: hi there (to send it as a message: /msg bob hi there)",
    command: "/send bob hi there",
  });

  calls.length = 0;
  assert.equal(await executeLine(plain, "/me waves"), true);
  plain.state.query = "bob";
  assert.equal(await executeLine(plain, "/me nods"), true);
  assert.deepEqual(calls, [["say", "lobby", "/me waves"], ["dm", "bob", "/me nods"]]);
  assert.equal(await executeLine(plain, "/me"), false);
  assert.equal((shown.pop() as { message: string }).message, "usage: /me TEXT");
});

Deno.test("/help wraps to the terminal at word boundaries, under the summary column", () => {
  for (const columns of [100, 80, 60, 40, 20]) {
    const lines = helpText(columns).split("\n");
    // (A command's usage is never cut: on 20 columns a long one is wider.)
    if (columns >= 40) { for (const line of lines) assert.ok(line.length <= columns, line); }
    assert.deepEqual(
      lines.join(" ").split(/\s+/).filter((w) => w !== ""),
      helpText().split(/\s+/).filter((w) => w !== ""),
      "the same words",
    );
  }
  assert.equal(helpText(Infinity), helpText());
});

Deno.test("/away: tells the server; back, with what was missed", async () => {
  const { ctx, shown, state } = setup();
  assert.equal(await executeLine(ctx, "/away"), false);
  assert.equal((shown.pop() as { message: string }).message, "not away: /away TEXT marks you away");
  assert.equal(await executeLine(ctx, "/away lunch"), true);
  assert.equal(state.away, "lunch");
  assert.match((shown.pop() as { text: string }).text, /^\* away: lunch \(\/away alone/);
  const dm = { type: "dm" as const, to: "alice", id: 1, ts: 0, from: "bob", text: "hi" };
  state.observe(dm);
  state.observe({ ...dm, id: 2 });
  state.observe({ ...dm, id: 3, from: "carol" });
  state.observe({ type: "msg", room: "lobby", id: 4, ts: 0, from: "dave", text: "alice: ping" });
  state.observe({ type: "msg", room: "lobby", id: 5, ts: 0, from: "dave", text: "nothing" });
  assert.equal(await executeLine(ctx, "/back"), true);
  assert.equal(state.away, null);
  assert.deepEqual(shown.pop(), {
    type: "info",
    text: "* back: while away, 3 direct messages (bob, carol) and 1 mention",
  });
  assert.equal(await executeLine(ctx, "/away brb"), true);
  assert.equal(await executeLine(ctx, "/away"), true);
  assert.deepEqual(shown.pop(), { type: "info", text: "* back" });
});
