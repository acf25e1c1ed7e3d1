import assert from "node:assert/strict";
import { encodeFrame } from "../protocol/frame.ts";
import { concatBytes } from "../protocol/bytes.ts";
import type { ServerMessage } from "../protocol/messages.ts";
import { eventLines, IRC_CAPABILITIES, type IrcView } from "./irc_events.ts";
import { IrcFanoutCache, SHARED_EVENT_TYPES } from "./irc_fanout.ts";
import type { Publication } from "./broker.ts";
import { decodeEnvelope, encodeEnvelope } from "./nats_envelope.ts";

const text = (bytes: Uint8Array | null) => bytes === null ? null : new TextDecoder().decode(bytes);

/** One event of each shared type, sent by alice. */
const SHARED_SAMPLES: ServerMessage[] = [
  { type: "msg", id: 7, room: "rust", from: "alice", text: "hi\nthere", ts: 1000 },
  { type: "member", room: "rust", nick: "alice", joined: true },
  { type: "member", room: "rust", nick: "alice", joined: false },
  { type: "topic", room: "rust", topic: "crabs", by: "alice", ts: 2000 },
] as ServerMessage[];

/**
 * A fan-out as the broker hands it: the events' frames back to back, the publications
 * they are of, and where each frame ends.
 */
function fanout(events: readonly ServerMessage[]): {
  bytes: Uint8Array;
  publications: Publication[];
  ends: number[];
} {
  const frames = events.map((e) => encodeFrame(e));
  const ends = frames.map((_, i) => frames.slice(0, i + 1).reduce((n, f) => n + f.length, 0));
  return { bytes: concatBytes(frames), publications: events.map((event) => ({ event })), ends };
}

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

Deno.test("IrcFanoutCache: one translation per capability set for shared events, per receiver otherwise, from the publications' events (no frame decoded)", () => {
  const cache = new IrcFanoutCache();
  const fail = (err: unknown) => assert.fail(String(err));
  const { bytes, publications } = fanout(SHARED_SAMPLES);
  const n = publications.length;
  const plainBob: IrcView = { nick: "bob", caps: new Set() };
  const plainCarol: IrcView = { nick: "carol", caps: new Set() };
  const tagged: IrcView = { nick: "dave", caps: new Set(["message-tags", "server-time"]) };
  const sameCapsOtherOrder: IrcView = {
    nick: "erin",
    caps: new Set(["server-time", "message-tags"]),
  };
  const a = cache.bytesFor(bytes, plainBob, fail, n, publications);
  assert.equal(
    cache.bytesFor(bytes, plainCarol, fail, n, publications),
    a,
    "the same bytes, not made again",
  );
  const t = cache.bytesFor(bytes, tagged, fail, n, publications);
  assert.notEqual(text(t), text(a));
  assert.equal(cache.bytesFor(bytes, sameCapsOtherOrder, fail, n, publications), t);
  const expected = SHARED_SAMPLES.flatMap((e) => eventLines(plainBob, e)).join("\r\n") + "\r\n";
  assert.equal(text(a), expected);
  assert.equal(cache.formats, 2 * n, "each event formatted once per capability set");
  assert.equal(cache.decodes, 0, "no frame decoded: the publications' events are formatted");

  // A direct message names its receiver: translated for each.
  const dm = fanout([
    { type: "dm", id: 9, to: "bob", from: "alice", text: "psst", ts: 3000 } as ServerMessage,
  ]);
  assert.equal(
    text(cache.bytesFor(dm.bytes, plainBob, fail, 1, dm.publications)),
    ":alice!alice@chat PRIVMSG bob psst\r\n",
  );
  assert.equal(
    text(cache.bytesFor(dm.bytes, plainCarol, fail, 1, dm.publications)),
    ":alice!alice@chat PRIVMSG carol psst\r\n",
  );
  // Nothing to say (presence): null.
  const presence = fanout([{ type: "presence", nick: "x", online: true, ts: 1 }]);
  assert.equal(cache.bytesFor(presence.bytes, plainBob, fail, 1, presence.publications), null);
  assert.equal(cache.decodes, 0);
});

Deno.test("IrcFanoutCache: an event that cannot be read is told to each receiver; the others still go", () => {
  // A publication from another node decodes its frame when its event is asked for.
  const cache = new IrcFanoutCache();
  const { bytes, publications } = fanout(SHARED_SAMPLES.slice(0, 1));
  const broken: Publication = {
    get event(): ServerMessage {
      throw new Error("bad frame");
    },
  };
  const all = [broken, ...publications];
  const errors: unknown[] = [];
  const lines = text(
    cache.bytesFor(bytes, { nick: "bob", caps: new Set() }, (err) => errors.push(err), 2, all),
  );
  cache.bytesFor(bytes, { nick: "carol", caps: new Set() }, (err) => errors.push(err), 2, all);
  assert.equal(errors.length, 2);
  assert.equal(
    lines,
    ":alice!alice@chat PRIVMSG #rust hi\r\n:alice!alice@chat PRIVMSG #rust there\r\n",
  );
});

Deno.test("IrcFanoutCache: frames handed without their publications are decoded for their receiver", () => {
  const cache = new IrcFanoutCache();
  const plain: IrcView = { nick: "bob", caps: new Set() };
  const { bytes } = fanout(SHARED_SAMPLES);
  const expected = SHARED_SAMPLES.flatMap((e) => eventLines(plain, e)).join("\r\n") + "\r\n";
  assert.equal(text(cache.bytesFor(bytes, plain, (err) => assert.fail(String(err)))), expected);
  assert.equal(cache.decodes, SHARED_SAMPLES.length);
  // A frame that does not decode is reported; the others still go.
  const bad = concatBytes([
    Uint8Array.from([0, 0, 0, 6, 0, 0, 0, 2, 0x7b, 0x78]),
    encodeFrame(SHARED_SAMPLES[0]),
  ]);
  const errors: unknown[] = [];
  const lines = text(cache.bytesFor(bad, plain, (err) => errors.push(err)));
  assert.equal(errors.length, 1);
  assert.ok(lines?.includes("PRIVMSG #rust"), String(lines));
});

Deno.test("IrcFanoutCache: capabilities that change no line (cap-notify, sasl) share the bytes of the set without them", () => {
  const fail = (err: unknown) => assert.fail(String(err));
  const { bytes, publications } = fanout(SHARED_SAMPLES);
  const n = publications.length;
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
    const made = cache.bytesFor(bytes, { nick: "bob", caps: plain }, fail, n, publications);
    assert.equal(cache.bytesFor(bytes, { nick: "carol", caps }, fail, n, publications), made);
  }
});

Deno.test("IrcFanoutCache: a batch handed to its senders' views first, between the other receivers, is formatted once per capability set", () => {
  // A room's senders are among its first members: the broker hands them their views (the
  // runs of the batch their own messages leave), the whole batch to the others.
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
  const { bytes, publications, ends } = fanout(events);
  const at = (i: number) => i === 0 ? 0 : ends[i - 1];
  const plain = new Set<string>();
  const tagged = new Set(["server-time", "message-tags"]);
  const expect = (caps: Set<string>, from: number, to: number) =>
    events.slice(from, to).flatMap((e) => eventLines({ nick: "x", caps }, e)).join("\r\n") +
    "\r\n";
  for (const caps of [plain, tagged]) {
    for (let s = 0; s < senders.length; s++) {
      const view: IrcView = { nick: senders[s], caps };
      // The runs before and after the sender's own four messages.
      if (s > 0) {
        const run = cache.bytesFor(bytes.subarray(0, at(4 * s)), view, fail, 4 * s, publications);
        assert.equal(text(run), expect(caps, 0, 4 * s));
      }
      if (s < senders.length - 1) {
        const first = 4 * s + 4;
        const run = cache.bytesFor(
          bytes.subarray(at(first)),
          view,
          fail,
          16 - first,
          publications,
          first,
        );
        assert.equal(text(run), expect(caps, first, 16));
      }
      const other: IrcView = { nick: `other${s}`, caps };
      assert.equal(text(cache.bytesFor(bytes, other, fail, 16, publications)), expect(caps, 0, 16));
    }
  }
  assert.equal(cache.decodes, 0, "no frame decoded");
  assert.equal(cache.formats, 32, "each event formatted once per capability set");
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
  const { bytes, publications, ends } = fanout(events);
  const half = ends[3];
  const plain: IrcView = { nick: "carol", caps: new Set() };
  const whole = cache.bytesFor(bytes, plain, fail, 8, publications)!;
  const bobs = cache.bytesFor(
    bytes.subarray(half),
    { nick: "alice", caps: new Set() },
    fail,
    4,
    publications,
    4,
  )!;
  const alices = cache.bytesFor(
    bytes.subarray(0, half),
    { nick: "bob", caps: new Set() },
    fail,
    4,
    publications,
  )!;
  assert.equal(`${text(alices)}${text(bobs)}`, text(whole));
  assert.equal(bobs.buffer, whole.buffer, "bob's messages: a view of the batch's bytes");
  assert.equal(alices.buffer, whole.buffer, "alice's messages: a view of the batch's bytes");
});

Deno.test("IrcFanoutCache: the next fan-out, in the same job or a later one, never changes the bytes handed out for the one before", async () => {
  // The cache's tables are reused from one fan-out to the next; the bytes handed out are
  // queued on the connections until written.
  const cache = new IrcFanoutCache();
  const fail = (err: unknown) => assert.fail(String(err));
  const plain: IrcView = { nick: "carol", caps: new Set() };
  const say = (texts: string[]) =>
    fanout(texts.map((t, i) =>
      ({
        type: "msg",
        id: i + 1,
        room: "rust",
        from: "alice",
        text: t,
        ts: 1000,
      }) as ServerMessage
    ));
  const lines = (texts: string[]) =>
    texts.map((t) => `:alice!alice@chat PRIVMSG #rust ${t}\r\n`).join("");
  const one = say(["one", "two", "three"]);
  const first = cache.bytesFor(one.bytes, plain, fail, 3, one.publications);
  const two = say(["four", "five"]);
  const second = cache.bytesFor(two.bytes, plain, fail, 2, two.publications);
  assert.equal(text(second), lines(["four", "five"]));
  await Promise.resolve(); // the end of the job
  const three = say(["six", "seven", "eight"]);
  const third = cache.bytesFor(three.bytes, plain, fail, 3, three.publications);
  assert.equal(text(third), lines(["six", "seven", "eight"]));
  assert.equal(text(first), lines(["one", "two", "three"]));
  assert.equal(text(second), lines(["four", "five"]));
  // The same publications in a later job: formatted again, the same lines.
  assert.equal(text(cache.bytesFor(one.bytes, plain, fail, 3, one.publications)), text(first));
});

Deno.test("IrcFanoutCache: publications that came from another node encoded are formatted from their events, decoded once for every receiver", () => {
  const cache = new IrcFanoutCache();
  const fail = (err: unknown) => assert.fail(String(err));
  const sent = fanout(SHARED_SAMPLES);
  const { publications } = decodeEnvelope(encodeEnvelope("node-a", sent.publications).bytes);
  const n = publications.length;
  const bytes = concatBytes(publications.map((p) => p.frame!));
  const plain: IrcView = { nick: "bob", caps: new Set() };
  const a = cache.bytesFor(bytes, plain, fail, n, publications);
  assert.equal(cache.bytesFor(bytes, { nick: "carol", caps: new Set() }, fail, n, publications), a);
  assert.equal(
    text(a),
    SHARED_SAMPLES.flatMap((e) => eventLines(plain, e)).join("\r\n") + "\r\n",
  );
  assert.equal(cache.decodes, 0, "the publications decode their own frames, once each");
  assert.equal(publications[0].event, publications[0].event, "kept by the publication");
});
