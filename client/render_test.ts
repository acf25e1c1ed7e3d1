// deno-lint-ignore-file no-control-regex -- these tests are about control characters
import assert from "node:assert/strict";
import { colorNick, formatItem, formatTime, isMention, sanitize, toJsonEvent } from "./render.ts";

const TS = Date.UTC(2024, 0, 2, 9, 5, 30);
const msg = { type: "msg" as const, room: "lobby", id: 7, ts: TS, from: "bob", text: "hi all" };
const dm = { type: "dm" as const, to: "alice", id: 8, ts: TS, from: "bob", text: "psst" };

Deno.test("sanitize removes CSI, OSC, DCS and other escape sequences", () => {
  assert.equal(sanitize("\x1b[31mred\x1b[0m plain"), "red plain");
  assert.equal(sanitize("a\x1b[2J\x1b[Hb"), "ab");
  assert.equal(sanitize("\x1b[?1049h\x1b[1;31;42mX"), "X");
  assert.equal(sanitize("\x1b]0;pwned title\x07after"), "after");
  assert.equal(sanitize("\x1b]8;;http://evil\x1b\\link\x1b]8;;\x1b\\"), "link");
  assert.equal(sanitize("\x1bPq#0;2;0;0;0\x1b\\x"), "x");
  assert.equal(sanitize("\x1b_apc\x1b\\y"), "y");
  assert.equal(sanitize("\x1bc reset"), " reset");
  assert.equal(sanitize("\x1b(0box"), "box");
  assert.equal(sanitize("cut \x1b]0;unterminated"), "cut ");
  assert.equal(sanitize("lone \x1b"), "lone ");
  assert.equal(sanitize("\x1b[31"), "");
});

Deno.test("sanitize removes C1 controls, including 8-bit CSI and OSC", () => {
  assert.equal(sanitize("\x9b31mred"), "red");
  assert.equal(sanitize("\x9d0;title\x9cafter"), "after");
  assert.equal(sanitize("a\x85b\x8dc\x9ad"), "abcd");
  assert.equal(sanitize("del\x7f"), "del");
  assert.doesNotMatch(sanitize("x\x80\x81\x90\x9e"), /[\x80-\x9f]/);
});

Deno.test("sanitize shows other C0 controls visibly, so a message stays one line", () => {
  assert.equal(sanitize("two\nlines"), "two\u240alines");
  assert.equal(sanitize("fake\r12:00 <admin> hi"), "fake\u240d12:00 <admin> hi");
  assert.equal(sanitize("bell\x07 bs\b nul\x00"), "bell\u2407 bs\u2408 nul\u2400");
  assert.equal(sanitize("tab\there"), "tab here");
  assert.equal(sanitize("line\u2028sep"), "line\u240asep");
  assert.doesNotMatch(sanitize("\x01\x02\x1f\x0b\x0c"), /[\x00-\x1f]/);
});

Deno.test("sanitize removes bidirectional overrides and keeps ordinary text intact", () => {
  assert.equal(sanitize("abc\u202edcba\u202c"), "abcdcba");
  assert.equal(sanitize("\u2066x\u2069"), "x");
  const ordinary = 'héllo wörld — 日本語 😀 <tags> & "quotes" [brackets] ~!@#$%^&*()';
  assert.equal(sanitize(ordinary), ordinary);
});

Deno.test("formatItem: messages, DMs and presence as HH:MM lines", () => {
  const o = { utc: true, self: "alice" };
  assert.deepEqual(formatItem(msg, o), ["09:05 [lobby] <bob> hi all"]);
  assert.deepEqual(formatItem(dm, o), ["09:05 *bob* psst"]);
  assert.deepEqual(formatItem({ ...dm, from: "alice", to: "bob" }, o), ["09:05 -> *bob* psst"]);
  assert.deepEqual(
    formatItem({ type: "presence", nick: "carol", online: true, ts: TS }, o),
    ["09:05 * carol is online"],
  );
  assert.deepEqual(
    formatItem({ type: "presence", nick: "carol", online: true, ts: TS, away: "lunch" }, o),
    ["09:05 * carol is away: lunch"],
  );
  assert.deepEqual(
    formatItem({ type: "presence", nick: "carol", online: true, ts: TS, away: "" }, o),
    ["09:05 * carol is back"],
  );
  assert.deepEqual(
    formatItem({ type: "broadcast", ts: TS, from: "bob", text: "all hands" }, o),
    ["09:05 [broadcast] <bob> all hands"],
  );
  assert.deepEqual(
    formatItem({ type: "receipt", id: 8, status: "read", by: "bob", ts: TS }, o),
    ["09:05 ✓✓ bob read your direct message"],
  );
  assert.deepEqual(
    formatItem({ type: "topic", room: "lobby", topic: "news", by: "bob", ts: TS }, o),
    ["09:05 [lobby] * bob set the topic: news"],
  );
  const now = () => TS;
  assert.deepEqual(
    formatItem({ type: "member", room: "rust", nick: "bob", joined: false }, { ...o, now }),
    ["09:05 [rust] * bob left"],
  );
  assert.deepEqual(
    formatItem({ type: "reconnecting", attempt: 2, delayMs: 1500 }, { ...o, now }),
    ["09:05 ! reconnecting in 1.5 s (attempt 2)"],
  );
  assert.deepEqual(
    formatItem(
      { type: "error", code: "usage", message: "usage: /msg NICK TEXT", command: "/msg" },
      {
        ...o,
        now,
      },
    ),
    ["09:05 ! /msg: usage: /msg NICK TEXT"],
  );
});

Deno.test("formatItem sanitizes nicks, rooms, topics and text", () => {
  const evil = "\x1b]0;owned\x07\x1b[2Jhi\nthere";
  const lines = [
    ...formatItem({ ...msg, from: "bo\x1b[31mb", room: "lo\x85bby", text: evil }, { utc: true }),
    ...formatItem({ type: "topic", room: "r", topic: evil, by: "x", ts: TS }, { utc: true }),
    ...formatItem({ type: "notice", code: "info", text: evil }, { utc: true }),
    ...formatItem({ type: "closed", reason: evil }, { utc: true }),
  ];
  for (const line of lines) {
    assert.doesNotMatch(line, /[\x00-\x1f\x7f-\x9f]/, JSON.stringify(line));
  }
  assert.equal(lines[0], "09:05 [lobby] <bob> hi\u240athere");
});

Deno.test("formatItem: replies to commands", () => {
  const o = { utc: true, self: "alice" };
  assert.deepEqual(
    formatItem({ type: "reply", request: "who", data: { users: ["alice", "bob"] } }, o),
    ["* online: alice, bob"],
  );
  assert.deepEqual(
    formatItem({
      type: "reply",
      request: "dm",
      data: { msg: { ...dm, from: "alice", to: "bob" }, duplicate: false, delivered: false },
    }, o),
    ["09:05 -> *bob* psst (offline: delivered later)"],
  );
  assert.deepEqual(
    formatItem({
      type: "reply",
      request: "join",
      data: { room: "rust", topic: "crabs", members: ["alice", "bob"], history: [msg] },
    }, o),
    ["09:05 [lobby] <bob> hi all", "* joined rust — topic: crabs — members: alice, bob"],
  );
  assert.deepEqual(formatItem({ type: "reply", request: "read", data: { count: 1 } }, o), []);
});

Deno.test("colours: stable per nick, none when off", () => {
  assert.equal(colorNick("bob", false), "bob");
  assert.match(colorNick("bob", true), /^\x1b\[\d+mbob\x1b\[39m$/);
  const code = (s: string) => s.slice(0, s.indexOf("m"));
  assert.equal(code(colorNick("Bob", true)), code(colorNick("bob", true)));
  assert.equal(formatItem(msg, { utc: true, color: false })[0], "09:05 [lobby] <bob> hi all");
  assert.match(formatItem(msg, { utc: true, color: true })[0], /\x1b\[/);
});

Deno.test("toJsonEvent: type and, where they apply, id, ts, from, room, to, text", () => {
  assert.deepEqual(toJsonEvent(msg), {
    type: "msg",
    id: 7,
    ts: TS,
    from: "bob",
    room: "lobby",
    text: "hi all",
  });
  assert.deepEqual(toJsonEvent(dm), {
    type: "dm",
    id: 8,
    ts: TS,
    from: "bob",
    to: "alice",
    text: "psst",
  });
  assert.deepEqual(
    toJsonEvent({
      type: "reply",
      request: "say",
      data: { msg: { ...msg, from: "alice" }, duplicate: false },
    }),
    {
      type: "reply",
      request: "say",
      id: 7,
      ts: TS,
      from: "alice",
      room: "lobby",
      text: "hi all",
      duplicate: false,
    },
  );
  assert.deepEqual(
    toJsonEvent({
      type: "reply",
      request: "dm",
      data: { msg: dm, duplicate: true, delivered: false },
    }),
    {
      type: "reply",
      request: "dm",
      id: 8,
      ts: TS,
      from: "bob",
      to: "alice",
      text: "psst",
      duplicate: true,
      delivered: false,
    },
  );
  assert.deepEqual(toJsonEvent({ type: "reply", request: "who", data: { users: ["a"] } }), {
    type: "reply",
    request: "who",
    users: ["a"],
  });
  assert.deepEqual(toJsonEvent({ type: "presence", nick: "bob", online: false, ts: 1 }), {
    type: "presence",
    nick: "bob",
    online: false,
    ts: 1,
  });
  assert.deepEqual(toJsonEvent({ type: "closed", reason: "bye", code: "idle_timeout" }), {
    type: "closed",
    reason: "bye",
    code: "idle_timeout",
  });
  // Text is kept exactly; JSON escapes control characters itself.
  const line = JSON.stringify(toJsonEvent({ ...msg, text: "a\x1b[2Jb\nc" }));
  assert.doesNotMatch(line, /[\x00-\x1f]/);
  assert.equal((JSON.parse(line) as { text: string }).text, "a\x1b[2Jb\nc");
});

Deno.test("formatTime and isMention", () => {
  assert.equal(formatTime(TS, true), "09:05");
  assert.equal(formatTime(NaN, true), "--:--");
  assert.ok(isMention("hey alice, lunch?", "alice"));
  assert.ok(isMention("@Alice hi", "alice"));
  assert.ok(isMention("alice", "alice"));
  assert.ok(!isMention("malice aforethought", "alice"));
  assert.ok(!isMention("alice_b is here", "alice"));
  assert.ok(isMention("ping a.b", "a.b"));
  assert.ok(!isMention("ping axb", "a.b"));
});

Deno.test("file transfer events: one line each, names sanitized, progress drawn elsewhere", () => {
  const at = { utc: true, now: () => Date.UTC(2024, 0, 1, 9, 5) };
  const sha = "ab".repeat(32);
  assert.deepEqual(
    formatItem({
      type: "file_offered",
      file: 12,
      from: "bob",
      name: "\x1b]0;owned\x07../report.pdf",
      size: 1536,
      sha256: sha,
      auto: false,
    }, at),
    [
      "09:05 * bob offers report.pdf (#12) (its name made safe), 1.5 KiB, SHA-256 abababababababab…: " +
      "/accept #12 or /decline #12",
    ],
  );
  assert.deepEqual(
    formatItem({
      type: "file_saved",
      file: 12,
      from: "bob",
      name: "r.pdf",
      size: 10,
      sha256: sha,
      path: "/home/a/Downloads/r (1).pdf",
    }, at),
    ["09:05 * saved r.pdf (#12) from bob as /home/a/Downloads/r (1).pdf (10 B, SHA-256 verified)"],
  );
  // Peer to peer (protocol version 5 on) no SHA-256 is computed: none is claimed.
  assert.deepEqual(
    formatItem({
      type: "file_saved",
      file: 2,
      from: "bob",
      name: "r.pdf",
      size: 10,
      path: "/home/a/Downloads/r.pdf",
    }, at),
    ["09:05 * saved r.pdf (#2) from bob as /home/a/Downloads/r.pdf (10 B, every byte authenticated)"],
  );
  assert.deepEqual(
    formatItem({ type: "file_answer", file: 2, by: "bob", name: "r.pdf", answer: "completed" }, at),
    ["09:05 * bob received r.pdf (#2), every byte authenticated"],
  );
  assert.deepEqual(
    formatItem({ type: "file_cancelled", file: 3, by: "server", name: "x", reason: "expired" }, at),
    ["09:05 * x (#3) expired on the server"],
  );
  assert.deepEqual(
    formatItem({
      type: "file_progress",
      file: 3,
      direction: "send",
      nick: "bob",
      name: "x",
      bytes: 1,
      size: 2,
      rate: 1,
      eta: 1,
    }, at),
    [],
  );
  assert.deepEqual(
    formatItem({
      type: "file_failed",
      file: 3,
      direction: "receive",
      nick: "bob",
      name: "x\ny",
      code: "corrupt",
      reason: "SHA-256 mismatch",
    }, at),
    ["09:05 ! receiving x␊y (#3) from bob failed: SHA-256 mismatch"],
  );
});

Deno.test("a held message shows as the line it will be, marked pending; a held command shows nothing", () => {
  const at = { utc: true, now: () => Date.UTC(2024, 0, 1, 9, 5), self: "alice" };
  const held = { type: "held", id: "r1", reason: "offline" } as const;
  assert.deepEqual(
    formatItem({ ...held, request: "say", room: "lobby", text: "hi\x1b[2J" }, at),
    ["09:05 [lobby] <alice> hi (pending: sent once reconnected)"],
  );
  assert.deepEqual(
    formatItem({ ...held, request: "dm", to: "bob", text: "psst", reason: "rate_limited" }, at),
    ["09:05 -> *bob* psst (pending: sent as the server's rate limit allows)"],
  );
  assert.deepEqual(formatItem({ ...held, request: "who" }, at), []);
});

Deno.test("a receipt quotes the start of the message it is about, not its id", () => {
  const sent = new Map([[8, { text: "lunch at noon? I was thinking of the new place" }], [
    9,
    { text: "ok\x1b[31m" },
  ]]);
  const o = { utc: true, sentMessage: (id: number) => sent.get(id) };
  assert.deepEqual(
    formatItem({ type: "receipt", id: 8, status: "read", by: "bob", ts: TS }, o),
    ['09:05 ✓✓ bob read "lunch at noon? I was th…"'],
  );
  assert.deepEqual(
    formatItem({ type: "receipt", id: 9, status: "delivered", by: "bob", ts: TS }, o),
    ['09:05 ✓ bob got "ok"'],
  );
  // Quiet: dim on a terminal.
  const [line] = formatItem(
    { type: "receipt", id: 9, status: "read", by: "bob", ts: TS },
    { ...o, color: true },
  );
  assert.match(line, /\x1b\[2m✓✓ bob read "ok"\x1b\[22m$/);
  // The full event stays for --json.
  assert.deepEqual(
    toJsonEvent({ type: "receipt", id: 8, status: "read", by: "bob", ts: TS }),
    { type: "receipt", id: 8, status: "read", by: "bob", ts: TS },
  );
});

Deno.test("/me: an action reads * nick text", () => {
  const o = { utc: true, self: "alice" };
  const msg = {
    type: "msg" as const,
    room: "lobby",
    id: 1,
    ts: TS,
    from: "bob",
    text: "/me waves",
  };
  assert.deepEqual(formatItem(msg, o), ["09:05 [lobby] * bob waves"]);
  const dm = { type: "dm" as const, to: "alice", id: 2, ts: TS, from: "bob", text: "/me nods" };
  assert.deepEqual(formatItem(dm, o), ["09:05 * bob nods (to you)"]);
  assert.deepEqual(
    formatItem({ ...dm, from: "alice", to: "bob" }, o),
    ["09:05 -> *bob* * alice nods"],
  );
  assert.deepEqual(formatItem({ ...msg, text: "/meh" }, o), ["09:05 [lobby] <bob> /meh"]);
});

Deno.test("cosmetics: quiet normal events, one logout line, one retry, short echo, mentions", () => {
  const o = { utc: true, now: () => TS, self: "alice" };
  assert.deepEqual(formatItem({ type: "reconnected" }, o), ["09:05 * reconnected"]);
  assert.deepEqual(formatItem({ type: "reconnected", server: "[::1]:44444" }, o), [
    "09:05 * reconnected to [::1]:44444",
  ]);
  // The idle logout: its notice is told by the closed that follows, once, as normal.
  const text = "logged out after 600 s without a command";
  assert.deepEqual(formatItem({ type: "notice", code: "idle_timeout", text }, o), []);
  assert.deepEqual(
    formatItem({ type: "closed", code: "idle_timeout", reason: text }, o),
    [`09:05 * connection closed: ${text}`],
  );
  assert.deepEqual(
    formatItem({ type: "closed", code: "kicked", reason: "bye" }, o),
    ["09:05 ! connection closed: bye"],
  );
  assert.deepEqual(
    formatItem({
      type: "error",
      code: "rate_limited",
      message: "slow down: too many messages; retry in 0.2 s",
      retryAfter: 0.2,
      command: "hi",
    }, o),
    ["09:05 ! hi: slow down: too many messages; retry in 0.2 s"],
  );
  assert.deepEqual(
    formatItem({ type: "error", code: "x", message: "busy", retryAfter: 1, command: "hi" }, o),
    ["09:05 ! hi: busy (try again in 1 s)"],
  );
  const [long] = formatItem({
    type: "error",
    code: "too_long",
    message: "message is longer than 4000 characters",
    command: "x".repeat(5000),
  }, o);
  assert.equal(long, `09:05 ! ${"x".repeat(59)}…: message is longer than 4000 characters`);
  const mention = { ...msg, text: "alice: lunch?" };
  assert.deepEqual(formatItem(mention, o), ["09:05 [lobby] <bob> alice: lunch?"]);
  const [bright] = formatItem(mention, { ...o, color: true });
  assert.match(bright, /\x1b\[1;7malice: lunch\?\x1b\[22;27m$/);
  const [plain] = formatItem(msg, { ...o, color: true });
  assert.doesNotMatch(plain, /\x1b\[1;7m/);
});
