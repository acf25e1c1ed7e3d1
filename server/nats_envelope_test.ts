import assert from "node:assert/strict";
import { encodeFrame } from "../protocol/frame.ts";
import type { ServerMessage } from "../protocol/messages.ts";
import { briefOf } from "./broker.ts";
import { decodeEnvelope, encodeEnvelope, NatsEnvelopeError } from "./nats_envelope.ts";

const dm: ServerMessage = { type: "dm", id: 7, ts: 1, from: "Ann", to: "Bob", text: "hi" };
const note: ServerMessage = { type: "notice", code: "info", text: "hello" };

Deno.test("NATS envelope: frames come back as sent, filters and brief in the header", () => {
  const publications = [
    { event: dm, from: "ann", except: new Set(["cy"]), exceptSession: "s1" },
    { event: note },
  ];
  const { bytes, frames } = encodeEnvelope("node-1", publications);
  assert.deepEqual(frames, [encodeFrame(dm), encodeFrame(note)]);
  // A publication with its frame already is copied as it is.
  const again = encodeEnvelope("node-1", [{ event: note, frame: encodeFrame(dm) }]);
  assert.deepEqual(again.frames, [encodeFrame(dm)]);
  assert.deepEqual(decodeEnvelope(again.bytes).publications[0].frame, encodeFrame(dm));
  const { node, publications: got } = decodeEnvelope(bytes);
  assert.equal(node, "node-1");
  assert.equal(got.length, 2);
  assert.deepEqual(got[0].frame, encodeFrame(dm));
  assert.deepEqual(got[1].frame, encodeFrame(note));
  assert.deepEqual(briefOf(got[0]), { type: "dm", id: 7, to: "Bob" });
  assert.deepEqual(briefOf(got[1]), { type: "notice" });
  assert.equal(got[0].from, "ann");
  assert.deepEqual(got[0].except, new Set(["cy"]));
  assert.equal(got[0].exceptSession, "s1");
  assert.equal(got[1].from, undefined);
  // The event is decoded from its frame on demand.
  assert.deepEqual(got[0].event, dm);
  assert.deepEqual(got[1].event, note);
});

Deno.test("NATS envelope: what this version cannot read throws NatsEnvelopeError", () => {
  const good = encodeEnvelope("n", [{ event: note }]).bytes;
  const headerEnd = good.length - encodeFrame(note).length;
  const withFrames = (frames: Uint8Array) => {
    const bytes = new Uint8Array(headerEnd + frames.length);
    bytes.set(good.subarray(0, headerEnd));
    bytes.set(frames, headerEnd);
    return bytes;
  };
  const bad: Record<string, Uint8Array> = {
    "empty": new Uint8Array(0),
    "old JSON": new TextEncoder().encode(JSON.stringify({ n: "n", p: [{ e: note }] })),
    "other version": Uint8Array.of(2, ...good.subarray(1)),
    "header past the end": Uint8Array.of(1, 0, 0, 1, 0, 123),
    "truncated frame": good.subarray(0, good.length - 1),
    "bytes after the frames": withFrames(Uint8Array.of(...encodeFrame(note), 0)),
    "missing frame": withFrames(new Uint8Array(0)),
    "frame header length too long": withFrames(Uint8Array.of(0, 0, 0, 5, 0, 0, 0, 9, 1)),
  };
  for (const [what, bytes] of Object.entries(bad)) {
    assert.throws(() => decodeEnvelope(bytes), NatsEnvelopeError, what);
  }
  const badHeader = (header: unknown) => {
    const json = new TextEncoder().encode(JSON.stringify(header));
    const frame = encodeFrame(note);
    const bytes = new Uint8Array(5 + json.length + frame.length);
    bytes[0] = 1;
    new DataView(bytes.buffer).setUint32(1, json.length);
    bytes.set(json, 5);
    bytes.set(frame, 5 + json.length);
    return bytes;
  };
  for (
    const header of [
      null,
      [],
      { n: 1, p: [{ t: "x" }] },
      { n: "n", p: [] },
      {
        n: "n",
        p: [{ t: 5 }],
      },
      { n: "n", p: [{ t: "x", x: [1] }] },
      { n: "n", p: [{ t: "x", i: "7" }] },
    ]
  ) {
    assert.throws(() => decodeEnvelope(badHeader(header)), NatsEnvelopeError);
  }
  assert.equal(decodeEnvelope(badHeader({ n: "n", p: [{ t: "notice" }] })).node, "n");
});
