import assert from "node:assert/strict";
import { encodeFrame } from "../protocol/frame.ts";
import { concatBytes } from "../protocol/bytes.ts";
import type { ServerMessage } from "../protocol/messages.ts";
import { eventLines, IRC_CAPABILITIES, type IrcView } from "./irc_events.ts";
import { IrcFanoutCache, SHARED_EVENT_TYPES } from "./irc_fanout.ts";

const text = (bytes: Uint8Array | null) => bytes === null ? null : new TextDecoder().decode(bytes);

/** One event of each shared type, sent by alice. */
const SHARED_SAMPLES: ServerMessage[] = [
  { type: "msg", id: 7, room: "rust", from: "alice", text: "hi\nthere", ts: 1000 },
  { type: "member", room: "rust", nick: "alice", joined: true },
  { type: "member", room: "rust", nick: "alice", joined: false },
  { type: "topic", room: "rust", topic: "crabs", by: "alice", ts: 2000 },
] as ServerMessage[];

/** Every subset of the capabilities offered. */
function capSets(): Set<string>[] {
  const all = [...IRC_CAPABILITIES];
  return Array.from(
    { length: 1 << all.length },
    (_, mask) => new Set(all.filter((_, i) => mask & (1 << i))),
  );
}

Deno.test("the shared event types' lines depend on the capabilities only, never on the receiver (its sender included)", () => {
  for (const type of SHARED_EVENT_TYPES) {
    assert.ok(SHARED_SAMPLES.some((e) => e.type === type), `a sample of ${type}`);
  }
  for (const event of SHARED_SAMPLES) {
    for (const caps of capSets()) {
      const views: IrcView[] = ["alice", "ALICE", "bob", "carol"].map((nick) => ({ nick, caps }));
      const [first, ...rest] = views.map((view) => eventLines(view, event));
      for (const lines of rest) assert.deepEqual(lines, first, `${event.type} with ${[...caps]}`);
    }
  }
});

Deno.test("IrcFanoutCache: one translation per capability set for shared events; per receiver otherwise", () => {
  const cache = new IrcFanoutCache();
  const fail = (err: unknown) => assert.fail(String(err));
  const frames = concatBytes(SHARED_SAMPLES.map((e) => encodeFrame(e)));
  const plainBob: IrcView = { nick: "bob", caps: new Set() };
  const plainCarol: IrcView = { nick: "carol", caps: new Set() };
  const tagged: IrcView = { nick: "dave", caps: new Set(["message-tags", "server-time"]) };
  const sameCapsOtherOrder: IrcView = {
    nick: "erin",
    caps: new Set(["server-time", "message-tags"]),
  };
  const a = cache.bytesFor(frames, plainBob, fail);
  assert.equal(cache.bytesFor(frames, plainCarol, fail), a, "the same bytes, not made again");
  const t = cache.bytesFor(frames, tagged, fail);
  assert.notEqual(text(t), text(a));
  assert.equal(cache.bytesFor(frames, sameCapsOtherOrder, fail), t);
  const expected = SHARED_SAMPLES.flatMap((e) => eventLines(plainBob, e)).join("\r\n") + "\r\n";
  assert.equal(text(a), expected);

  // A direct message names its receiver: translated for each.
  const dm = encodeFrame(
    { type: "dm", id: 9, to: "bob", from: "alice", text: "psst", ts: 3000 } as ServerMessage,
  );
  assert.equal(text(cache.bytesFor(dm, plainBob, fail)), ":alice!alice@chat PRIVMSG bob psst\r\n");
  assert.equal(
    text(cache.bytesFor(dm, plainCarol, fail)),
    ":alice!alice@chat PRIVMSG carol psst\r\n",
  );
  // Nothing to say (presence): null.
  const presence = encodeFrame({ type: "presence", nick: "x", online: true, ts: 1 });
  assert.equal(cache.bytesFor(presence, plainBob, fail), null);
  // A frame that does not decode is reported for each receiver; the others still go.
  const bad = concatBytes([
    Uint8Array.from([0, 0, 0, 6, 0, 0, 0, 2, 0x7b, 0x78]),
    encodeFrame(SHARED_SAMPLES[0]),
  ]);
  const errors: unknown[] = [];
  const lines = text(cache.bytesFor(bad, plainBob, (err) => errors.push(err)));
  cache.bytesFor(bad, plainCarol, (err) => errors.push(err));
  assert.equal(errors.length, 2);
  assert.ok(lines?.includes("PRIVMSG #rust"), String(lines));
});

Deno.test("IrcFanoutCache: capabilities that change no line (cap-notify, sasl) share the bytes of the set without them", () => {
  const fail = (err: unknown) => assert.fail(String(err));
  const frames = concatBytes(SHARED_SAMPLES.map((e) => encodeFrame(e)));
  for (const caps of capSets()) {
    const plain = new Set([...caps].filter((cap) => cap !== "cap-notify" && cap !== "sasl"));
    // They change no line...
    for (const event of SHARED_SAMPLES) {
      assert.deepEqual(
        eventLines({ nick: "bob", caps }, event),
        eventLines({ nick: "bob", caps: plain }, event),
        `${event.type} with ${[...caps]}`,
      );
    }
    // ...so a receiver with them gets the bytes made for the set without them.
    const cache = new IrcFanoutCache();
    const made = cache.bytesFor(frames, { nick: "bob", caps: plain }, fail);
    assert.equal(cache.bytesFor(frames, { nick: "carol", caps }, fail), made);
  }
});

Deno.test("IrcFanoutCache: a batch's frames are decoded once though its senders get views of it between the other receivers", () => {
  // The broker hands a batch's buffer to every receiver, and each sender (never sent its
  // own message back) a view of the runs it takes: in the room's order, interleaved.
  const cache = new IrcFanoutCache();
  const fail = (err: unknown) => assert.fail(String(err));
  const events = ["one", "two", "three"].map((t, i) => ({
    type: "msg",
    id: i + 1,
    room: "rust",
    from: ["alice", "bob", "carol"][i],
    text: t,
    ts: 1000,
  })) as ServerMessage[];
  const frames = events.map((e) => encodeFrame(e));
  const bytes = concatBytes(frames);
  const ends = frames.map((_, i) => frames.slice(0, i + 1).reduce((n, f) => n + f.length, 0));
  const plain: IrcView = { nick: "dave", caps: new Set() };
  const expect = (from: number, to: number) =>
    events.slice(from, to).flatMap((e) => eventLines(plain, e)).join("\r\n") + "\r\n";
  const decodesBefore = cache.decodes;
  for (let round = 0; round < 3; round++) {
    assert.equal(text(cache.bytesFor(bytes, plain, fail)), expect(0, 3));
    // alice's view: the frames after her own.
    assert.equal(text(cache.bytesFor(bytes.subarray(ends[0]), plain, fail)), expect(1, 3));
    assert.equal(text(cache.bytesFor(bytes, plain, fail)), expect(0, 3));
    // bob's views: before and after his own.
    assert.equal(text(cache.bytesFor(bytes.subarray(0, ends[0]), plain, fail)), expect(0, 1));
    assert.equal(text(cache.bytesFor(bytes.subarray(ends[1]), plain, fail)), expect(2, 3));
  }
  assert.equal(cache.decodes - decodesBefore, 3, "each frame decoded once");
});

Deno.test("IrcFanoutCache: a batch handed to its senders' views first is decoded once and formatted once per capability set", () => {
  // A room's senders are among its first members: the broker hands them their views (the
  // runs of the batch their own messages leave) before the whole batch reaches the others.
  const cache = new IrcFanoutCache();
  const fail = (err: unknown) => assert.fail(String(err));
  const senders = ["alice", "bob", "carol", "dave"];
  const events = Array.from({ length: 16 }, (_, i) => ({
    type: "msg",
    id: i + 1,
    room: "rust",
    from: senders[Math.floor(i / 4)],
    text: `text ${i}`,
    ts: 1000,
  })) as ServerMessage[];
  const frames = events.map((e) => encodeFrame(e));
  const bytes = concatBytes(frames);
  const ends = frames.map((_, i) => frames.slice(0, i + 1).reduce((n, f) => n + f.length, 0));
  const at = (i: number) => i === 0 ? 0 : ends[i - 1];
  const plain = new Set<string>();
  const tagged = new Set(["server-time", "message-tags"]);
  const expect = (caps: Set<string>, from: number, to: number) =>
    events.slice(from, to).flatMap((e) => eventLines({ nick: "x", caps }, e)).join("\r\n") +
    "\r\n";
  const decodesBefore = cache.decodes;
  const formatsBefore = cache.formats;
  for (const caps of [plain, tagged]) {
    for (let s = 0; s < senders.length; s++) {
      const view: IrcView = { nick: senders[s], caps };
      // The runs before and after the sender's own four messages.
      if (s > 0) {
        assert.equal(
          text(cache.bytesFor(bytes.subarray(0, at(4 * s)), view, fail)),
          expect(caps, 0, 4 * s),
        );
      }
      if (s < senders.length - 1) {
        assert.equal(
          text(cache.bytesFor(bytes.subarray(at(4 * s + 4)), view, fail)),
          expect(caps, 4 * s + 4, 16),
        );
      }
    }
    for (const nick of ["erin", "frank"]) {
      assert.equal(text(cache.bytesFor(bytes, { nick, caps }, fail)), expect(caps, 0, 16));
    }
  }
  assert.equal(cache.decodes - decodesBefore, 16, "each frame decoded once");
  assert.equal(cache.formats - formatsBefore, 32, "each event formatted once per capability set");
});

Deno.test("IrcFanoutCache: a batch's lines are written once into bytes that the runs handed out are views of", () => {
  // No strings kept for a job's end: what a scavenge in mid-job would copy and promote.
  const cache = new IrcFanoutCache();
  const fail = (err: unknown) => assert.fail(String(err));
  const events = Array.from({ length: 8 }, (_, i) => ({
    type: "msg",
    id: i + 1,
    room: "rust",
    from: i < 4 ? "alice" : "bob",
    text: `text ${i}`,
    ts: 1000,
  })) as ServerMessage[];
  const frames = events.map((e) => encodeFrame(e));
  const bytes = concatBytes(frames);
  const half = frames.slice(0, 4).reduce((n, f) => n + f.length, 0);
  const plain: IrcView = { nick: "carol", caps: new Set() };
  const whole = cache.bytesFor(bytes, plain, fail)!;
  const bobs = cache.bytesFor(bytes.subarray(half), { nick: "alice", caps: new Set() }, fail)!;
  const alices = cache.bytesFor(bytes.subarray(0, half), { nick: "bob", caps: new Set() }, fail)!;
  assert.equal(`${text(alices)}${text(bobs)}`, text(whole));
  assert.equal(bobs.buffer, whole.buffer, "bob's messages: a view of the batch's bytes");
  assert.equal(alices.buffer, whole.buffer, "alice's messages: a view of the batch's bytes");
});
