import assert from "node:assert/strict";
import { MAX_LINE_BYTES, parseIrcLine, utf8Length } from "../protocol/irc_line.ts";
import { eventLines, type IrcView, textLines } from "./irc_events.ts";

const plain: IrcView = { nick: "bob", caps: new Set() };
const tagged: IrcView = {
  nick: "bob",
  caps: new Set(["server-time", "message-tags", "echo-message"]),
};

Deno.test("a room message is a PRIVMSG to the channel, tagged as the client asked", () => {
  const event = { type: "msg", id: 7, room: "rust", from: "alice", text: "hi", ts: 0 } as const;
  assert.deepEqual(eventLines(plain, event), [":alice!alice@chat PRIVMSG #rust hi"]);
  const [line] = eventLines(tagged, event);
  assert.deepEqual(parseIrcLine(line).tags, { time: "1970-01-01T00:00:00.000Z", msgid: "7" });
});

Deno.test("a text with line ends or over a line's bytes becomes several lines, each within 512", () => {
  const text = "first\r\nsecond\n\n" + "\u00e9".repeat(1000) + " end";
  const lines = textLines("PRIVMSG", "alice!alice@chat", "#rust", text, { time: "x" });
  const texts = lines.map((line) => parseIrcLine(line).params[1]);
  assert.equal(texts[0], "first");
  assert.equal(texts[1], "second");
  assert.equal(texts.slice(2).join("").replace(/ /g, ""), "\u00e9".repeat(1000) + "end");
  for (const line of lines) {
    const withoutTags = line.slice(line.indexOf(" ") + 1);
    assert.ok(utf8Length(withoutTags) + 2 <= MAX_LINE_BYTES, `${utf8Length(withoutTags)} bytes`);
  }
  // NUL cannot travel in IRC: dropped.
  assert.deepEqual(textLines("NOTICE", "s", "bob", "a\0b"), [":s NOTICE bob ab"]);
});

Deno.test("a topic with line ends stays one TOPIC line", () => {
  const event = { type: "topic", room: "rust", topic: "one\ntwo", by: "alice", ts: 0 } as const;
  assert.deepEqual(eventLines(plain, event), [":alice!alice@chat TOPIC #rust :one two"]);
});

Deno.test("a DM from another session of one's own account shows only with echo-message", () => {
  const event = { type: "dm", id: 3, from: "bob", to: "carol", text: "hey", ts: 0 } as const;
  assert.deepEqual(eventLines(plain, event), []);
  assert.equal(parseIrcLine(eventLines(tagged, event)[0]).params[0], "carol");
  const incoming = { ...event, from: "carol", to: "bob" };
  assert.equal(parseIrcLine(eventLines(plain, incoming)[0]).params[0], "bob");
});

Deno.test("events IRC has no word for give no lines; members JOIN and PART", () => {
  assert.deepEqual(eventLines(plain, { type: "presence", nick: "a", online: true, ts: 0 }), []);
  assert.deepEqual(
    eventLines(plain, { type: "receipt", id: 1, status: "read", by: "a", ts: 0 }),
    [],
  );
  assert.deepEqual(eventLines(plain, { type: "member", room: "r", nick: "a", joined: true }), [
    ":a!a@chat JOIN #r",
  ]);
  assert.deepEqual(eventLines(plain, { type: "member", room: "r", nick: "a", joined: false }), [
    ":a!a@chat PART #r",
  ]);
});
