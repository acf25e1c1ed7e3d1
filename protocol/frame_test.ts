import assert from "node:assert/strict";
import { ProtocolError, type ProtocolErrorCode } from "./errors.ts";
import { concatBytes } from "./bytes.ts";
import {
  decodeFrame,
  decodePayload,
  DEFAULT_MAX_FRAME_SIZE,
  encodeFrame,
  encodeFrameAround,
  encodeFrames,
  encodeFrameTransient,
  encodeFrameWithBody,
  type Frame,
  FrameDecoder,
  HEADER_LENGTH_BYTES,
  LENGTH_PREFIX_BYTES,
  MAX_FRAME_SIZE_LIMIT,
} from "./frame.ts";
import { parseClientMessage, parseServerMessage } from "./messages.ts";

const utf8 = new TextEncoder();

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

function u32(n: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, n);
  return out;
}

/** A payload with an arbitrary header-length field, header bytes and body. */
function rawPayload(
  headerBytes: Uint8Array,
  body = new Uint8Array(0),
  headerLength = headerBytes.length,
): Uint8Array {
  return concat(u32(headerLength), headerBytes, body);
}

/** A whole frame (length prefix included) around a raw payload. */
function rawFrame(payload: Uint8Array): Uint8Array {
  return concat(u32(payload.length), payload);
}

/** Feeds `chunks` to a fresh decoder, ends it, and decodes every payload. */
function assertFrames(actual: Frame[], expected: { header: object; body?: Uint8Array }[]): void {
  assert.equal(actual.length, expected.length, "frame count");
  for (let i = 0; i < expected.length; i++) {
    assert.deepEqual(actual[i].header, expected[i].header, `header of frame ${i}`);
    assert.deepEqual(actual[i].body, expected[i].body ?? new Uint8Array(0), `body of frame ${i}`);
  }
}

function isProtocolError(code: ProtocolErrorCode): (err: unknown) => boolean {
  return (err: unknown) => {
    assert.ok(err instanceof ProtocolError, `expected ProtocolError ${code}, got ${err}`);
    assert.equal(err.code, code, `expected code ${code}, got ${err.code}: ${err.message}`);
    return true;
  };
}

function bytes(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 31 + seed * 7) & 0xff;
  return out;
}

// ---------------------------------------------------------------- round trips

Deno.test("encodeFrame lays out u32be length, u32be header length, JSON header, body", () => {
  const header = { type: "ping", id: "1" };
  const json = utf8.encode(JSON.stringify(header));
  const body = new Uint8Array([9, 8, 7]);
  const frame = encodeFrame(header, body);
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  assert.equal(frame.length, LENGTH_PREFIX_BYTES + HEADER_LENGTH_BYTES + json.length + 3);
  assert.equal(view.getUint32(0), HEADER_LENGTH_BYTES + json.length + 3);
  assert.equal(view.getUint32(LENGTH_PREFIX_BYTES), json.length);
  assert.deepEqual(frame.subarray(8, 8 + json.length), json);
  assert.deepEqual(frame.subarray(8 + json.length), body);
});

Deno.test("encodeFrameWithBody: the body filled in place gives the same bytes as encodeFrame", () => {
  const header = { type: "file_data", file: 3, offset: 0 };
  const { frame, body } = encodeFrameWithBody(header, 4);
  assert.equal(body.length, 4);
  assert.equal(body.buffer, frame.buffer);
  assert.deepEqual(body, new Uint8Array(4));
  body.set([1, 2, 3, 4]);
  assert.deepEqual(frame, encodeFrame(header, new Uint8Array([1, 2, 3, 4])));
  assert.deepEqual(decodeFrame(frame).body, new Uint8Array([1, 2, 3, 4]));
});

Deno.test("encodeFrameWithBody lays the frame out in a given buffer when it fits", () => {
  const header = { type: "file_data", file: 3, offset: 0 };
  const into = new Uint8Array(200).fill(0xee);
  const { frame, body } = encodeFrameWithBody(header, 4, into);
  assert.equal(frame.buffer, into.buffer);
  assert.equal(frame.byteOffset, 0);
  body.set([1, 2, 3, 4]);
  assert.deepEqual(frame, encodeFrame(header, new Uint8Array([1, 2, 3, 4])));
  const big = encodeFrameWithBody(header, 500, into); // does not fit: a new array
  assert.notEqual(big.frame.buffer, into.buffer);
  assert.equal(decodeFrame(big.frame).body.length, 500);
});

Deno.test("encodeFrameAround lays the header out before a body already in place, which stays", () => {
  const header = { type: "file_chunk", id: "c1", file: 3, offset: 0, sha256: "ab".repeat(32) };
  const buffer = new Uint8Array(300 + 5).fill(0xee);
  buffer.set([1, 2, 3, 4, 5], 300);
  const frame = encodeFrameAround(header, buffer, 300, 4);
  assert.equal(frame.buffer, buffer.buffer);
  assert.equal(frame.byteOffset + frame.length, 304, "the frame ends with the body, in place");
  assert.deepEqual(frame, encodeFrame(header, new Uint8Array([1, 2, 3, 4])));
  assert.equal(buffer[304], 5, "nothing past the body is touched");
  const empty = encodeFrameAround({ type: "ping" }, buffer, 300, 0);
  assert.deepEqual(empty, encodeFrame({ type: "ping" }));
  assert.throws(() => encodeFrameAround(header, buffer, 60, 4), RangeError);
  assert.throws(() => encodeFrameAround(header, buffer, 300, 6), RangeError);
});

Deno.test("round trip: header only", () => {
  const frame = decodeFrame(encodeFrame({ type: "ping", id: "1" }));
  assert.deepEqual(frame.header, { type: "ping", id: "1" });
  assert.equal(frame.body.length, 0);
});

Deno.test("round trip: header and a binary body with every byte value", () => {
  const body = new Uint8Array(512).map((_, i) => i & 0xff);
  const frame = decodeFrame(encodeFrame({ type: "chunk", n: 3 }, body));
  assert.deepEqual(frame.header, { type: "chunk", n: 3 });
  assert.deepEqual(frame.body, body);
});

Deno.test("round trip: explicitly empty body and empty header object", () => {
  const a = decodeFrame(encodeFrame({ type: "x" }, new Uint8Array(0)));
  assert.deepEqual(a.header, { type: "x" });
  assert.equal(a.body.length, 0);
  const b = decodeFrame(encodeFrame({}));
  assert.deepEqual(b.header, {});
  assert.equal(b.body.length, 0);
});

Deno.test("round trip: unicode header (multi-byte, astral, lone surrogate, control chars)", () => {
  const header = {
    type: "say",
    text: 'héllo wörld — 你好 — 😀🎉 — \u0000\u001f\u2028\u2029 — \ud800 lone — "quoted"\\',
    "ключ": "значение",
  };
  const encoded = encodeFrame(header);
  const frame = decodeFrame(encoded);
  assert.deepEqual(frame.header, header);
});

Deno.test("round trip: body making the payload exactly the maximum, and one byte more refused", () => {
  const header = { type: "file", name: "big.bin" };
  const jsonLength = utf8.encode(JSON.stringify(header)).length;
  const bodyLength = DEFAULT_MAX_FRAME_SIZE - HEADER_LENGTH_BYTES - jsonLength;
  const body = bytes(bodyLength);
  const encoded = encodeFrame(header, body);
  assert.equal(encoded.length, LENGTH_PREFIX_BYTES + DEFAULT_MAX_FRAME_SIZE);
  const frame = decodeFrame(encoded);
  assert.deepEqual(frame.header, header);
  assert.deepEqual(frame.body, body);

  const tooBig = encodeFrame(header, bytes(bodyLength + 1));
  assert.throws(() => decodeFrame(tooBig), isProtocolError("frame_too_large"));
  // A larger configured maximum accepts it.
  assert.equal(decodeFrame(tooBig, DEFAULT_MAX_FRAME_SIZE + 1).body.length, bodyLength + 1);
});

Deno.test("decodeFrame wants exactly one complete frame", () => {
  const one = encodeFrame({ type: "a" });
  assert.throws(() => decodeFrame(concat(one, one)), isProtocolError("bad_frame"));
  assert.throws(() => decodeFrame(new Uint8Array(0)), isProtocolError("bad_frame"));
  assert.throws(
    () => decodeFrame(one.subarray(0, one.length - 1)),
    isProtocolError("truncated_frame"),
  );
});

// ------------------------------------------------------------- resumability

const SAMPLE_FRAMES: { header: object; body?: Uint8Array }[] = [
  { header: { type: "ping", id: "1" } },
  { header: { type: "file", n: 1 }, body: new Uint8Array([0, 1, 2, 255, 254, 0, 0, 7]) },
  { header: { type: "say", text: "ü😀" }, body: new Uint8Array(0) },
  { header: {} },
  { header: { type: "z" }, body: new Uint8Array([42]) },
];
const SAMPLE_BYTES = concat(...SAMPLE_FRAMES.map((f) => encodeFrame(f.header, f.body)));

for (const views of [false, true]) {
  Deno.test(`every pair of split points decodes to the same frames${views ? " (views)" : ""}`, () => {
    const n = SAMPLE_BYTES.length;
    assert.ok(n > 100, "the sample should span many split points");
    let cases = 0;
    for (let i = 0; i <= n; i++) {
      for (let j = i; j <= n; j++) {
        // Chunks are copies, scribbled over once decoded: a view kept too long would show it.
        const chunks = [[0, i], [i, j], [j, n]].map(([a, b]) => SAMPLE_BYTES.slice(a, b));
        let frames: Frame[];
        try {
          frames = decodeChunksScribbling(chunks, views);
        } catch (err) {
          throw new Error(`split at ${i}, ${j}: ${err}`);
        }
        if (frames.length !== SAMPLE_FRAMES.length) {
          assert.fail(`split at ${i}, ${j}: ${frames.length} frames`);
        }
        assertFrames(frames, SAMPLE_FRAMES);
        cases++;
      }
    }
    assert.equal(cases, ((n + 1) * (n + 2)) / 2);
  });
}

/** Decodes like a reader reusing its buffer: each chunk is zeroed once its payloads are decoded. */
function decodeChunksScribbling(chunks: Uint8Array[], views: boolean): Frame[] {
  const decoder = new FrameDecoder({ views });
  const frames: Frame[] = [];
  for (const chunk of chunks) {
    for (const payload of decoder.push(chunk)) {
      const frame = decodePayload(payload);
      frames.push({ header: frame.header, body: views ? frame.body.slice() : frame.body });
    }
    chunk.fill(0);
  }
  decoder.end();
  return frames;
}

Deno.test("views: a payload whole inside a chunk is a view of it, a split one a copy", () => {
  const a = encodeFrame({ type: "a" });
  const b = encodeFrame({ type: "b" });
  const chunk = concat(a, b.subarray(0, 5));
  const decoder = new FrameDecoder({ views: true });
  const [first] = decoder.push(chunk);
  assert.equal(first.buffer, chunk.buffer, "a view");
  const [second] = decoder.push(b.slice(5));
  assert.notEqual(second.buffer, chunk.buffer);
  assert.deepEqual(decodePayload(second).header, { type: "b" });
  assert.throws(
    () => new FrameDecoder({ views: true, maxFrameSize: 4 }).push(a),
    isProtocolError("frame_too_large"),
  );
});

Deno.test("one byte at a time decodes to the same frames; pendingBytes tracks the partial frame", () => {
  const decoder = new FrameDecoder();
  const frames: Frame[] = [];
  let sinceBoundary = 0;
  const boundaries = new Set<number>();
  let at = 0;
  for (const f of SAMPLE_FRAMES) boundaries.add(at += encodeFrame(f.header, f.body).length);
  for (let i = 0; i < SAMPLE_BYTES.length; i++) {
    const out = decoder.push(SAMPLE_BYTES.subarray(i, i + 1));
    for (const payload of out) frames.push(decodePayload(payload));
    sinceBoundary++;
    if (boundaries.has(i + 1)) {
      assert.equal(out.length, 1, `a frame completes at byte ${i + 1}`);
      sinceBoundary = 0;
    } else {
      assert.equal(out.length, 0, `no frame completes at byte ${i + 1}`);
    }
    assert.equal(decoder.pendingBytes, sinceBoundary);
  }
  decoder.end();
  assertFrames(frames, SAMPLE_FRAMES);
});

Deno.test("many frames in one chunk decode in order", () => {
  const count = 2000;
  const chunk = concat(
    ...Array.from({ length: count }, (_, i) => encodeFrame({ type: "n", i }, bytes(i % 5, i))),
  );
  const decoder = new FrameDecoder();
  const payloads = decoder.push(chunk);
  decoder.end();
  assert.equal(payloads.length, count);
  payloads.forEach((payload, i) => {
    const frame = decodePayload(payload);
    assert.deepEqual(frame.header, { type: "n", i });
    assert.deepEqual(frame.body, bytes(i % 5, i));
  });
});

Deno.test("returned payloads are copies: the caller may reuse the chunk", () => {
  const encoded = encodeFrame({ type: "a" }, new Uint8Array([1, 2, 3]));
  const chunk = concat(encoded, encoded);
  const decoder = new FrameDecoder();
  const payloads = decoder.push(chunk);
  chunk.fill(0);
  assert.equal(payloads.length, 2);
  for (const payload of payloads) {
    const frame = decodePayload(payload);
    assert.deepEqual(frame.header, { type: "a" });
    assert.deepEqual(frame.body, new Uint8Array([1, 2, 3]));
  }
});

// ------------------------------------------------------------------- sizes

Deno.test("an oversized length is refused from the four prefix bytes alone, nothing else fed", () => {
  // 0xFFFFFFFF would be a 4 GiB allocation: the decoder must refuse it before buffering.
  const decoder = new FrameDecoder();
  assert.throws(
    () => decoder.push(new Uint8Array([0xff, 0xff, 0xff, 0xff])),
    isProtocolError("frame_too_large"),
  );

  // The same when the prefix arrives one byte at a time: silent for three, refused on the fourth.
  const slow = new FrameDecoder();
  for (let i = 0; i < 3; i++) assert.deepEqual(slow.push(new Uint8Array([0xff])), []);
  assert.equal(slow.pendingBytes, 3);
  assert.throws(() => slow.push(new Uint8Array([0xff])), isProtocolError("frame_too_large"));

  // Just over the default maximum: refused, though not a byte of payload was sent.
  const justOver = new FrameDecoder();
  assert.throws(
    () => justOver.push(u32(DEFAULT_MAX_FRAME_SIZE + 1)),
    isProtocolError("frame_too_large"),
  );
});

Deno.test("maxFrameSize = 10 accepts a 10-byte payload and refuses an 11-byte one", () => {
  const ten = rawPayload(utf8.encode("{}"), new Uint8Array(4)); // 4 + 2 + 4 = 10
  assert.equal(ten.length, 10);
  const decoder = new FrameDecoder({ maxFrameSize: 10 });
  assert.equal(decoder.maxFrameSize, 10);
  const [payload] = decoder.push(rawFrame(ten));
  assert.deepEqual(decodePayload(payload).body, new Uint8Array(4));

  const strict = new FrameDecoder({ maxFrameSize: 10 });
  assert.throws(() => strict.push(u32(11)), isProtocolError("frame_too_large"));
});

Deno.test("maxFrameSize can be changed between chunks and is range-checked", () => {
  const decoder = new FrameDecoder();
  assert.equal(decoder.maxFrameSize, DEFAULT_MAX_FRAME_SIZE);
  const frame = encodeFrame({ type: "abc" }, new Uint8Array(50));
  assert.equal(decoder.push(frame).length, 1);
  decoder.maxFrameSize = 20;
  assert.equal(decoder.maxFrameSize, 20);
  assert.throws(() => decoder.push(frame), isProtocolError("frame_too_large"));

  for (const bad of [0, 3, -1, 1.5, NaN, Infinity, MAX_FRAME_SIZE_LIMIT + 1]) {
    assert.throws(() => new FrameDecoder({ maxFrameSize: bad }), RangeError, `constructor ${bad}`);
    const d = new FrameDecoder();
    assert.throws(() => d.maxFrameSize = bad, RangeError, `setter ${bad}`);
    assert.equal(d.maxFrameSize, DEFAULT_MAX_FRAME_SIZE, "a refused value changes nothing");
  }
  assert.equal(new FrameDecoder({ maxFrameSize: HEADER_LENGTH_BYTES }).maxFrameSize, 4);
});

// --------------------------------------------------------------- truncation

Deno.test("the stream ending inside the length prefix is truncated_frame", () => {
  const decoder = new FrameDecoder();
  decoder.push(encodeFrame({ type: "a" }));
  decoder.push(new Uint8Array([0, 0]));
  assert.equal(decoder.pendingBytes, 2);
  assert.throws(() => decoder.end(), isProtocolError("truncated_frame"));
});

Deno.test("the stream ending inside the payload is truncated_frame", () => {
  const encoded = encodeFrame({ type: "a" }, new Uint8Array(10));
  for (const cut of [LENGTH_PREFIX_BYTES, LENGTH_PREFIX_BYTES + 1, encoded.length - 1]) {
    const decoder = new FrameDecoder();
    assert.deepEqual(decoder.push(encoded.subarray(0, cut)), []);
    assert.throws(() => decoder.end(), isProtocolError("truncated_frame"), `cut at ${cut}`);
  }
});

Deno.test("end() at a frame boundary, or on a fresh decoder, is clean", () => {
  new FrameDecoder().end();
  const decoder = new FrameDecoder();
  decoder.push(encodeFrame({ type: "a" }));
  assert.equal(decoder.pendingBytes, 0);
  decoder.end();
});

// ------------------------------------------------------------- bad payloads

Deno.test("invalid UTF-8 in the header is bad_utf8", () => {
  const cases = [
    [0xff],
    [0x7b, 0x22, 0xc3, 0x22, 0x7d], // {"<truncated 2-byte sequence>"}
    [0x80], // lone continuation byte
    [0xc0, 0xaf], // overlong "/"
    [0xed, 0xa0, 0x80], // an encoded UTF-16 surrogate
    [0xf4, 0x90, 0x80, 0x80], // beyond U+10FFFF
  ];
  for (const header of cases) {
    assert.throws(
      () => decodePayload(rawPayload(new Uint8Array(header))),
      isProtocolError("bad_utf8"),
      `header ${header}`,
    );
  }
});

Deno.test("a header that is not JSON is bad_json", () => {
  for (const text of ["", "{", "nope", "{'a':1}", '{"a":1}x', "{a:1}"]) {
    assert.throws(
      () => decodePayload(rawPayload(utf8.encode(text))),
      isProtocolError("bad_json"),
      JSON.stringify(text),
    );
  }
});

Deno.test("a JSON header that is not an object is bad_json", () => {
  for (const text of ["[]", '[{"type":"ping"}]', "1", "-0.5", "null", '"type"', "true", "false"]) {
    assert.throws(
      () => decodePayload(rawPayload(utf8.encode(text))),
      isProtocolError("bad_json"),
      text,
    );
  }
});

Deno.test("a header length beyond the payload is bad_frame", () => {
  const header = utf8.encode('{"type":"a"}');
  for (const claimed of [header.length + 1, header.length + 100, 0xffff_ffff]) {
    assert.throws(
      () => decodePayload(rawPayload(header, new Uint8Array(0), claimed)),
      isProtocolError("bad_frame"),
      `claimed ${claimed}`,
    );
  }
  // A header length shorter than the JSON leaves the rest as body, which the JSON then lacks.
  assert.throws(
    () => decodePayload(rawPayload(header, new Uint8Array(0), header.length - 1)),
    isProtocolError("bad_json"),
  );
});

Deno.test("a payload shorter than the header-length field is bad_frame", () => {
  for (let n = 0; n < HEADER_LENGTH_BYTES; n++) {
    assert.throws(() => decodePayload(new Uint8Array(n)), isProtocolError("bad_frame"), `${n}`);
    // Through the decoder: the short frame is delimited, then refused by decodePayload.
    const decoder = new FrameDecoder();
    const payloads = decoder.push(rawFrame(new Uint8Array(n)));
    assert.equal(payloads.length, 1, `a ${n}-byte frame is delimited`);
    assert.equal(payloads[0].length, n);
    assert.throws(() => decodePayload(payloads[0]), isProtocolError("bad_frame"));
    decoder.end();
  }
});

Deno.test("a zero-length frame is delimited at once, even with nothing following it", () => {
  const decoder = new FrameDecoder();
  assert.deepEqual(decoder.push(u32(0)), [new Uint8Array(0)]);
  assert.equal(decoder.pendingBytes, 0);
  const later = decoder.push(encodeFrame({ type: "after" }));
  assert.deepEqual(decodePayload(later[0]).header, { type: "after" });
  decoder.end();
});

Deno.test("decodePayload reads a payload that is a view into a larger buffer", () => {
  const encoded = encodeFrame({ type: "v" }, new Uint8Array([5, 6]));
  const big = concat(new Uint8Array(7), encoded, new Uint8Array(3));
  const payload = big.subarray(7 + LENGTH_PREFIX_BYTES, 7 + encoded.length);
  const frame = decodePayload(payload);
  assert.deepEqual(frame.header, { type: "v" });
  assert.deepEqual(frame.body, new Uint8Array([5, 6]));
});

Deno.test("after an error the decoder stays failed", () => {
  const tooLarge = new FrameDecoder({ maxFrameSize: 16 });
  assert.throws(() => tooLarge.push(u32(17)), isProtocolError("frame_too_large"));
  const valid = encodeFrame({});
  assert.throws(() => tooLarge.push(valid), isProtocolError("frame_too_large"));
  assert.throws(() => tooLarge.push(new Uint8Array(0)), isProtocolError("frame_too_large"));
  assert.throws(() => tooLarge.end(), isProtocolError("frame_too_large"));

  const truncated = new FrameDecoder();
  truncated.push(new Uint8Array([0]));
  assert.throws(() => truncated.end(), isProtocolError("truncated_frame"));
  assert.throws(() => truncated.push(valid), isProtocolError("truncated_frame"));
  assert.throws(() => truncated.end(), isProtocolError("truncated_frame"));
});

Deno.test("encodeFrame refuses a payload past the u32 length field", () => {
  // A body whose length alone passes the limit; its bytes are never read or allocated twice.
  const hugeView = {
    length: MAX_FRAME_SIZE_LIMIT,
    byteLength: MAX_FRAME_SIZE_LIMIT,
  } as unknown as Uint8Array;
  assert.throws(() => encodeFrame({ type: "x" }, hugeView), isProtocolError("frame_too_large"));
});

// -------------------------------------------------------------------- fuzz

/** mulberry32: a tiny seeded PRNG, so that every fuzz failure reproduces from its seed. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const FUZZ_MAX_FRAME = 200;
const FRAME_CODES: ProtocolErrorCode[] = ["frame_too_large", "truncated_frame"];
const PAYLOAD_CODES: ProtocolErrorCode[] = ["bad_frame", "bad_utf8", "bad_json"];
const MESSAGE_CODES: ProtocolErrorCode[] = ["unknown_type", "bad_message"];

const FUZZ_SEEDS_HEADERS: object[] = [
  { type: "hello", v: 1, features: ["rooms", "dm"] },
  { type: "login", id: "1", nick: "alice", password: "secret" },
  { type: "say", id: "2", room: "lobby", text: "hi ü😀" },
  { type: "read", id: "3", ids: [1, 2, 3] },
  { type: "history", id: "4", room: "lobby", before: 10, limit: 5 },
  { type: "ok", re: "1", nick: "alice" },
  { type: "msg", room: "r", id: 1, ts: 2, from: "a", text: "t" },
  { type: "nope" },
  {},
];

interface FuzzCase {
  bytes: Uint8Array;
  chunks: Uint8Array[];
}

function fuzzCase(rand: () => number): FuzzCase {
  const int = (n: number) => Math.floor(rand() * n);
  const randomBytes = (n: number) => Uint8Array.from({ length: n }, () => int(256));
  let data: Uint8Array;
  const kind = int(4);
  if (kind === 0) {
    data = randomBytes(int(80));
  } else {
    const frames: Uint8Array[] = [];
    for (let k = 1 + int(3); k > 0; k--) {
      const header = FUZZ_SEEDS_HEADERS[int(FUZZ_SEEDS_HEADERS.length)];
      frames.push(encodeFrame(header, randomBytes(int(3) === 0 ? int(40) : 0)));
    }
    data = concat(...frames);
    for (let m = int(4); m > 0; m--) {
      const op = int(5);
      if (op === 0 && data.length > 0) {
        data[int(data.length)] ^= 1 << int(8); // bit flip
      } else if (op === 1) {
        data = data.subarray(0, int(data.length + 1)); // truncation
      } else if (op === 2 && data.length >= 4) {
        // random length prefix (or header length) at a random offset
        const at = int(data.length - 3);
        const value = int(2) === 0 ? int(FUZZ_MAX_FRAME * 2) : int(0x1_0000_0000);
        new DataView(data.buffer, data.byteOffset).setUint32(at, value);
      } else if (op === 3) {
        const at = int(data.length + 1);
        data = concat(data.subarray(0, at), randomBytes(1 + int(8)), data.subarray(at));
      } else if (data.length > 0) {
        data[int(data.length)] = int(256); // random byte
      }
    }
  }
  const chunks: Uint8Array[] = [];
  let at = 0;
  while (at < data.length) {
    const size = int(3) === 0 ? 1 : 1 + int(data.length - at);
    chunks.push(data.slice(at, at + size));
    at += size;
  }
  if (int(5) === 0) chunks.splice(int(chunks.length + 1), 0, new Uint8Array(0));
  return { bytes: data, chunks };
}

/** Raw delimiting: the payloads completed before the first decoder error, and that error's code. */
function delimit(chunks: Uint8Array[]): { payloads: Uint8Array[]; code?: ProtocolErrorCode } {
  const decoder = new FrameDecoder({ maxFrameSize: FUZZ_MAX_FRAME });
  const payloads: Uint8Array[] = [];
  try {
    for (const chunk of chunks) {
      for (const payload of decoder.push(chunk)) {
        assert.ok(payload.length <= FUZZ_MAX_FRAME, "payload within the maximum");
        payloads.push(payload);
      }
      assert.ok(
        decoder.pendingBytes <= LENGTH_PREFIX_BYTES + FUZZ_MAX_FRAME,
        "buffered bytes within the maximum",
      );
    }
    decoder.end();
  } catch (err) {
    if (!(err instanceof ProtocolError)) throw err;
    assert.ok(FRAME_CODES.includes(err.code), `decoder threw ${err.code}`);
    return { payloads, code: err.code };
  }
  return { payloads };
}

function runFuzzCase(c: FuzzCase): void {
  const split = delimit(c.chunks);
  const whole = delimit([c.bytes]);
  // The error (if any) does not depend on how the bytes were split.
  assert.equal(split.code, whole.code, "same decoder outcome split or whole");
  if (whole.code === undefined) {
    assert.deepEqual(split.payloads, whole.payloads, "same payloads split or whole");
  } else {
    // A chunk that fails drops the payloads it completed before the failure (the
    // stream is dead anyway), so only a prefix relation holds.
    assert.deepEqual(whole.payloads, split.payloads.slice(0, whole.payloads.length));
  }
  for (const payload of split.payloads) {
    let frame: Frame;
    try {
      frame = decodePayload(payload);
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err;
      assert.ok(PAYLOAD_CODES.includes(err.code), `decodePayload threw ${err.code}`);
      continue;
    }
    for (const parse of [parseClientMessage, parseServerMessage]) {
      let message: object;
      try {
        message = parse(frame.header);
      } catch (err) {
        if (!(err instanceof ProtocolError)) throw err;
        assert.ok(MESSAGE_CODES.includes(err.code), `parse threw ${err.code}`);
        assert.equal(err.fatal, false);
        continue;
      }
      // Whatever validates survives a re-encode unchanged (as JSON sees it: -0 is 0).
      const again = parse(decodeFrame(encodeFrame(message, frame.body)).header);
      assert.deepEqual(again, JSON.parse(JSON.stringify(message)));
    }
  }
}

function fuzz(seed: number, cases: number): void {
  const rand = mulberry32(seed);
  for (let i = 0; i < cases; i++) {
    const c = fuzzCase(rand);
    try {
      runFuzzCase(c);
    } catch (err) {
      throw new Error(
        `fuzz failure: seed ${seed} case ${i} (bytes ${Array.from(c.bytes)}): ${err}`,
        { cause: err },
      );
    }
  }
}

Deno.test("fuzz: random and mutated bytes only ever raise ProtocolError (fixed seed)", () => {
  fuzz(0xc0ffee, 3000);
});

Deno.test("fuzz: random and mutated bytes only ever raise ProtocolError (random seeds)", () => {
  for (let k = 0; k < 3; k++) {
    const seed = crypto.getRandomValues(new Uint32Array(1))[0];
    // Printed so that a failure can be replayed: call fuzz(seed, 1000).
    console.log(`fuzz seed ${seed}`);
    fuzz(seed, 1000);
  }
});

Deno.test("FrameDecoder: the rest of a large payload can be read straight into it", () => {
  const body = new Uint8Array(1000).map((_, i) => i % 251);
  const bytes = encodeFrame({ type: "file_data", file: 1, offset: 0 }, body);
  const decoder = new FrameDecoder();
  assert.equal(decoder.payloadSpace(1), null); // no frame under way
  assert.deepEqual(decoder.push(bytes.subarray(0, 100)), []);
  const missing = bytes.length - 100;
  assert.equal(decoder.payloadSpace(missing + 1), null); // fewer missing than asked
  const space = decoder.payloadSpace(missing)!;
  assert.equal(space.length, missing);
  space.set(bytes.subarray(100, 600));
  assert.deepEqual(decoder.filled(500), []);
  assert.throws(() => decoder.filled(missing), RangeError); // past the frame's end
  decoder.payloadSpace(1)!.set(bytes.subarray(600));
  const [payload] = decoder.filled(bytes.length - 600);
  assert.deepEqual(decodePayload(payload).body, body);
  assert.equal(decoder.payloadSpace(1), null);
  assert.deepEqual(decoder.push(bytes), [payload]); // and on with the next frame
  decoder.end();
});

Deno.test("FrameDecoder receives payloads into the arrays its allocate option gives", () => {
  const given: Uint8Array[] = [];
  const decoder = new FrameDecoder({
    allocate: (length) => {
      const bytes = new Uint8Array(new ArrayBuffer(length + 10), 5, length);
      given.push(bytes);
      return bytes;
    },
  });
  const bytes = encodeFrame({ type: "ping", id: "1" }, new Uint8Array([7, 8]));
  const [payload] = decoder.push(bytes);
  assert.equal(payload, given[0]);
  assert.deepEqual(decodePayload(payload).body, new Uint8Array([7, 8]));
  const wrong = new FrameDecoder({ allocate: (length) => new Uint8Array(length + 1) });
  assert.throws(() => wrong.push(bytes), RangeError);
});

Deno.test("onOversized: a frame over the maximum is skipped and the stream stays in step", () => {
  const big = encodeFrame({ type: "ok", re: "r2", data: "x".repeat(5000) });
  const bytes = concatBytes([
    encodeFrame({ type: "ok", re: "r1" }),
    big,
    encodeFrame({ type: "ok", re: "r3" }),
  ]);
  for (const step of [1, 7, bytes.length]) {
    const skipped: { length: number; head: string }[] = [];
    const decoder = new FrameDecoder({
      maxFrameSize: 1024,
      onOversized: (length, head) =>
        skipped.push({ length, head: new TextDecoder().decode(head.subarray(4)) }),
    });
    const payloads: Uint8Array[] = [];
    for (let i = 0; i < bytes.length; i += step) {
      payloads.push(...decoder.push(bytes.subarray(i, i + step)));
    }
    decoder.end();
    assert.deepEqual(payloads.map((p) => decodePayload(p).header.re), ["r1", "r3"]);
    assert.equal(skipped.length, 1);
    assert.equal(skipped[0].length, big.length - 4);
    assert.ok(skipped[0].head.startsWith('{"type":"ok","re":"r2"'), skipped[0].head);
  }
});

Deno.test("encodeFrames: the same bytes as encodeFrame one by one, in one array", () => {
  const headers = [
    { type: "msg", id: 1, text: "hi" },
    { type: "msg", id: 2, text: "é😀\u2028" },
    { type: "msg", id: 3, text: "x".repeat(50_000) }, // past the scratch: it grows
    { type: "ping", id: "4" },
  ];
  const { bytes, ends } = encodeFrames(headers);
  const one = headers.map((h) => encodeFrame(h));
  assert.deepEqual(bytes, concatBytes(one));
  let at = 0;
  ends.forEach((end, i) => {
    assert.equal(end - at, one[i].length);
    at = end;
  });
  assert.deepEqual(encodeFrames([]), { bytes: new Uint8Array(0), ends: [] });
});

Deno.test("encodeFrame without a body: the same bytes as laid out with one, each its own array", () => {
  const headers = [
    { type: "ok", re: "1", msg: { type: "msg", id: 7, text: "hi" } },
    { type: "msg", id: 2, text: "é😀\u2028\u0000" },
    { type: "msg", id: 3, text: "x".repeat(50_000) }, // past the scratch
    {},
  ];
  const frames = headers.map((h) => encodeFrame(h));
  headers.forEach((header, i) => {
    const json = utf8.encode(JSON.stringify(header));
    const view = new DataView(frames[i].buffer, frames[i].byteOffset, frames[i].byteLength);
    assert.equal(frames[i].length, LENGTH_PREFIX_BYTES + HEADER_LENGTH_BYTES + json.length);
    assert.equal(view.getUint32(0), HEADER_LENGTH_BYTES + json.length);
    assert.equal(view.getUint32(LENGTH_PREFIX_BYTES), json.length);
    assert.deepEqual(frames[i].subarray(8), json);
    assert.deepEqual(frames[i], encodeFrameWithBody(header, 0).frame);
    assert.deepEqual(decodeFrame(frames[i]).header, JSON.parse(JSON.stringify(header)));
  });
  // Each frame owns its bytes: a later encoding does not change an earlier one.
  assert.equal(new Set(frames.map((f) => f.buffer)).size, frames.length);
  assert.deepEqual(frames[0], encodeFrameWithBody(headers[0], 0).frame);
});

Deno.test("encodeFrameTransient: encodeFrame's bytes, in a scratch the next encode overwrites", () => {
  const headers = [
    { type: "ok", re: "1", msg: { type: "msg", id: 7, text: "hi" } },
    { type: "msg", id: 2, text: "é😀\u2028" },
    { type: "msg", id: 3, text: "x".repeat(50_000) }, // past the scratch: an array of its own
  ];
  for (const header of headers) {
    assert.deepEqual(encodeFrameTransient(header), encodeFrame(header));
  }
  const first = encodeFrameTransient({ type: "ping", id: "a" });
  const copy = first.slice();
  encodeFrameTransient({ type: "ping", id: "b" });
  assert.notDeepEqual(first, copy, "the scratch was reused");
  assert.deepEqual(decodeFrame(copy).header, { type: "ping", id: "a" });
});
