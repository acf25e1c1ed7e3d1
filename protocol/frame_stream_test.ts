import assert from "node:assert/strict";
import { concatBytes } from "./bytes.ts";
import { ProtocolError, type ProtocolErrorCode } from "./errors.ts";
import { encodeFrame, type Frame } from "./frame.ts";
import { FrameDecoderStream, FrameEncoderStream, type OutgoingFrame } from "./frame_stream.ts";

/** mulberry32: a tiny seeded PRNG, so that a failing split reproduces from its seed. */
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

function randomSplit(bytes: Uint8Array, rand: () => number): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  let at = 0;
  while (at < bytes.length) {
    const size = rand() < 0.3 ? 1 : 1 + Math.floor(rand() * Math.min(64, bytes.length - at));
    chunks.push(bytes.slice(at, at + size));
    at += size;
  }
  return chunks;
}

async function assertStreamError(
  stream: ReadableStream<unknown>,
  code: ProtocolErrorCode,
): Promise<void> {
  await assert.rejects(Array.fromAsync(stream), (err: unknown) => {
    assert.ok(err instanceof ProtocolError, `expected ProtocolError, got ${err}`);
    assert.equal(err.code, code);
    return true;
  });
}

const FRAMES: OutgoingFrame[] = Array.from({ length: 30 }, (_, i) => ({
  header: { type: "n", i, text: "ü".repeat(i % 4) },
  ...(i % 3 === 0 ? {} : { body: Uint8Array.from({ length: i * 3 }, (_, k) => (k * i) & 0xff) }),
}));
const BYTES = concatBytes(FRAMES.map((f) => encodeFrame(f.header, f.body)));

function assertFrames(actual: Frame[]): void {
  assert.equal(actual.length, FRAMES.length);
  actual.forEach((frame, i) => {
    assert.deepEqual(frame.header, FRAMES[i].header);
    assert.deepEqual(frame.body, FRAMES[i].body ?? new Uint8Array(0));
  });
}

Deno.test("FrameDecoderStream decodes a byte stream split at random points", async () => {
  for (const seed of [1, 2, 3, 42, 0xdecade]) {
    const chunks = randomSplit(BYTES, mulberry32(seed));
    const frames = await Array.fromAsync(
      ReadableStream.from(chunks).pipeThrough(new FrameDecoderStream()),
    );
    try {
      assertFrames(frames);
    } catch (err) {
      throw new Error(`split seed ${seed}: ${err}`, { cause: err });
    }
  }
});

Deno.test("FrameDecoderStream decodes the whole stream in one chunk", async () => {
  const frames = await Array.fromAsync(
    ReadableStream.from([BYTES]).pipeThrough(new FrameDecoderStream()),
  );
  assertFrames(frames);
});

Deno.test("FrameDecoderStream errors with truncated_frame when the stream ends mid-frame", async () => {
  const cut = BYTES.subarray(0, BYTES.length - 1);
  await assertStreamError(
    ReadableStream.from([cut]).pipeThrough(new FrameDecoderStream()),
    "truncated_frame",
  );
  await assertStreamError(
    ReadableStream.from([new Uint8Array([0, 0])]).pipeThrough(new FrameDecoderStream()),
    "truncated_frame",
  );
});

Deno.test("FrameDecoderStream delivers complete frames before the truncation error", async () => {
  const first = encodeFrame({ type: "first" });
  const reader = ReadableStream.from([first, new Uint8Array([0, 0, 0, 9, 0])])
    .pipeThrough(new FrameDecoderStream())
    .getReader();
  const { value } = await reader.read();
  assert.deepEqual(value?.header, { type: "first" });
  await assert.rejects(reader.read(), (err: unknown) => {
    return err instanceof ProtocolError && err.code === "truncated_frame";
  });
});

Deno.test("FrameDecoderStream honours maxFrameSize", async () => {
  const big = encodeFrame({ type: "big" }, new Uint8Array(100));
  await assertStreamError(
    ReadableStream.from([big]).pipeThrough(new FrameDecoderStream({ maxFrameSize: 64 })),
    "frame_too_large",
  );
  const frames = await Array.fromAsync(
    ReadableStream.from([big]).pipeThrough(new FrameDecoderStream({ maxFrameSize: 200 })),
  );
  assert.equal(frames[0].body.length, 100);
});

Deno.test("FrameDecoderStream errors on a bad payload", async () => {
  const notObject = new Uint8Array([0, 0, 0, 6, 0, 0, 0, 2, 0x5b, 0x5d]); // header "[]"
  await assertStreamError(
    ReadableStream.from([notObject]).pipeThrough(new FrameDecoderStream()),
    "bad_json",
  );
});

Deno.test("FrameEncoderStream encodes exactly as encodeFrame does", async () => {
  const chunks = await Array.fromAsync(
    ReadableStream.from(FRAMES).pipeThrough(new FrameEncoderStream()),
  );
  assert.equal(chunks.length, FRAMES.length);
  assert.deepEqual(concatBytes(chunks), BYTES);
});

Deno.test("FrameEncoderStream piped into FrameDecoderStream round-trips", async () => {
  const frames = await Array.fromAsync(
    ReadableStream.from(FRAMES)
      .pipeThrough(new FrameEncoderStream())
      .pipeThrough(new FrameDecoderStream()),
  );
  assertFrames(frames);
});
