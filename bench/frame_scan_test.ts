import assert from "node:assert/strict";
import { encodeFrame } from "../protocol/frame.ts";
import {
  FrameKind,
  frameKind,
  lineStamp,
  replyTo,
  type Stamp,
  trailingStamp,
  u32,
} from "./frame_scan.ts";

function header(frame: Uint8Array): [number, number] {
  const start = 8;
  return [start, start + u32(frame, 4)];
}

Deno.test("frameKind tells the types the load clients count", () => {
  const cases: [object, number][] = [
    [{ type: "msg", id: 1, ts: 2, room: "r", from: "a", text: "b0|1.5" }, FrameKind.Message],
    [{ type: "say", id: "1", room: "r", text: "x" }, FrameKind.Message],
    [{ type: "ok", re: "c1" }, FrameKind.Ok],
    [{ type: "error", re: "c1", code: "x", message: "y" }, FrameKind.Error],
    [{ type: "presence", nick: "a", online: true, ts: 1 }, FrameKind.Presence],
    [{ type: "member", room: "r", nick: "a", joined: true }, FrameKind.Member],
    [{ type: "hello", v: 1, features: [], server: "s", maxFrame: 1 }, FrameKind.Hello],
    [{ type: "notice", code: "slow_consumer", text: "t" }, FrameKind.Notice],
    [{ type: "dm", id: 1 }, FrameKind.Other],
    [{ id: 1, type: "msg" }, FrameKind.Other],
    [{ type: "m" }, FrameKind.Other],
  ];
  for (const [h, kind] of cases) {
    const frame = encodeFrame(h);
    const [s, e] = header(frame);
    assert.equal(frameKind(frame, s, e), kind, JSON.stringify(h));
  }
});

Deno.test("trailingStamp reads tag and time from the end of the text", () => {
  const stamp: Stamp = { tag: -1, ms: 0 };
  const frame = encodeFrame({
    type: "msg",
    id: 7,
    room: "r",
    from: "a",
    text: "b12|1795294470885.173",
  });
  const [s, e] = header(frame);
  assert.equal(trailingStamp(frame, s, e, stamp), true);
  assert.equal(stamp.tag, 12);
  assert.ok(Math.abs(stamp.ms - 1795294470885.173) < 1e-3);
  const whole = encodeFrame({ type: "say", text: "b0|42" });
  assert.equal(trailingStamp(whole, ...header(whole), stamp), true);
  assert.deepEqual(stamp, { tag: 0, ms: 42 });
});

Deno.test("trailingStamp refuses texts of another shape and leaves its output alone", () => {
  const stamp: Stamp = { tag: 5, ms: 9 };
  for (const text of ["hello", "b|12", "x1|12", "b1|", "b1|12x", "12"]) {
    const frame = encodeFrame({ type: "msg", text });
    assert.equal(trailingStamp(frame, ...header(frame), stamp), false, text);
  }
  const notLast = encodeFrame({ type: "msg", text: "b1|2", id: 3 });
  assert.equal(trailingStamp(notLast, ...header(notLast), stamp), false);
  assert.deepEqual(stamp, { tag: 5, ms: 9 });
});

Deno.test("replyTo reads the request id of ok and error replies", () => {
  const ok = encodeFrame({ type: "ok", re: "12_1795294470885.173", msg: { id: 1 } });
  assert.equal(replyTo(ok, ...header(ok)), "12_1795294470885.173");
  const error = encodeFrame({ type: "error", re: "c3", code: "x", message: "m" });
  assert.equal(replyTo(error, ...header(error)), "c3");
  const none = encodeFrame({ type: "error", code: "x", message: "m" });
  assert.equal(replyTo(none, ...header(none)), null);
});

Deno.test("lineStamp reads tag and time from the end of an IRC line", () => {
  const line = new TextEncoder().encode(":s0_1!s0_1@chat PRIVMSG #room10 :b3|1733400000123.456");
  const stamp: Stamp = { tag: -1, ms: 0 };
  assert.equal(lineStamp(line, 0, line.length, stamp), true);
  assert.equal(stamp.tag, 3);
  assert.equal(stamp.ms, 1733400000123.456);
  const plain = new TextEncoder().encode(":a!a@chat PRIVMSG #x :hello 12");
  assert.equal(lineStamp(plain, 0, plain.length, { tag: -1, ms: 0 }), false);
});
