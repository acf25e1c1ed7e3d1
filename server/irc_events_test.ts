import assert from "node:assert/strict";
import v8 from "node:v8";
import {
  formatIrcMessage,
  MAX_LINE_BYTES,
  parseIrcLine,
  splitUtf8Lines,
  utf8Length,
} from "../protocol/irc_line.ts";
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

Deno.test("textLines gives the lines of splitting every text, one-line texts included", () => {
  // What it gave before one-line texts were formatted as they are, without splitting.
  const split = (source: string, target: string, text: string, tags: Record<string, string>) => {
    const budget = MAX_LINE_BYTES - 2 - utf8Length(`:${source} PRIVMSG ${target} :`);
    return splitUtf8Lines(text.replace(/\0/g, ""), Math.max(16, budget)).map((piece) =>
      formatIrcMessage({ tags, source, command: "PRIVMSG", params: [target, piece] })
    );
  };
  const pieces = ["a", "b c", " ", "  ", ":", "\u00e9", "\u{1f600}", "\t", "\r", "\n", "\0", "xyz"];
  let seed = 7;
  const random = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  for (let i = 0; i < 2000; i++) {
    let text = "";
    const length = random(4) === 0 ? 400 + random(300) : random(40);
    for (let j = 0; j < length; j++) text += pieces[random(pieces.length)];
    const source = random(2) === 0 ? "alice!alice@chat" : `${"n".repeat(random(60))}!x@chat`;
    const tags: Record<string, string> = random(2) === 0
      ? {}
      : { time: "1970-01-01T00:00:00.000Z", msgid: "7" };
    assert.deepEqual(
      textLines("PRIVMSG", source, "#rust", text, tags),
      split(source, "#rust", text, tags),
      JSON.stringify(text),
    );
  }
});

Deno.test("a one-line room message is formatted with little garbage beside its line", () => {
  const allocated = () =>
    (v8.getHeapStatistics() as { total_allocated_bytes?: number }).total_allocated_bytes;
  if (allocated() === undefined) {
    console.log("skipped: this runtime does not count allocated bytes");
    return;
  }
  const event = {
    type: "msg",
    id: 7,
    room: "rust",
    from: "alice",
    text: "a message of about a hundred bytes, as the benchmarks send: " + "x".repeat(40),
    ts: 0,
  } as const;
  let bytes = 0;
  for (let i = 0; i < 10_000; i++) bytes += eventLines(plain, event)[0].length; // compiled
  const n = 20_000;
  const before = allocated()!;
  for (let i = 0; i < n; i++) bytes += eventLines(plain, event)[0].length;
  const perLine = (allocated()! - before) / n;
  // Split and formatted through arrays, entries and closures: ~1,790 B per line; ~770 after.
  assert.ok(perLine < 1_200, `${perLine.toFixed(0)} B per line (${bytes})`);
});
