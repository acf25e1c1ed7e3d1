import assert from "node:assert/strict";
import { ProtocolError, type ProtocolErrorCode } from "../protocol/errors.ts";
import { decodePayload, encodeFrame, type Frame, FrameDecoder } from "../protocol/frame.ts";
import { ca, cert, key } from "../tests/helpers/tls.ts";
import { ConnectionClosedError, QueueOverflowError, TransportError } from "./errors.ts";
import { type ByteChannel, FramedConnection } from "./framed_connection.ts";
import { dial, listen } from "./net.ts";
import { PartialFrameBudget } from "./partial_frame_budget.ts";
import { gatedChannel } from "../tests/helpers/gated_channel.ts";

// ------------------------------------------------------------------ helpers

/** A connected pair over loopback TCP or TLS: [dialling side, accepted side]. */
async function socketPair(tls = false): Promise<[Deno.Conn, Deno.Conn]> {
  const listener = listen({ host: "127.0.0.1", port: 0, ...(tls ? { tls: { cert, key } } : {}) });
  try {
    const port = (listener.addr as Deno.NetAddr).port;
    const accepted = listener.accept();
    const client = await dial({ port, ...(tls ? { tls: { caCerts: [ca] } } : {}) });
    return [client, await accepted];
  } finally {
    listener.close();
  }
}

async function framedPair(
  tls = false,
  options: ConstructorParameters<typeof FramedConnection>[1] = {},
): Promise<[FramedConnection, FramedConnection]> {
  const [a, b] = await socketPair(tls);
  return [new FramedConnection(a, options), new FramedConnection(b, options)];
}

/** Reads exactly `n` frames (or fewer if the stream ends first). */
async function take(conn: FramedConnection, n: number): Promise<Frame[]> {
  const frames: Frame[] = [];
  if (n === 0) return frames;
  for await (const frame of conn) {
    frames.push(frame);
    if (frames.length === n) break;
  }
  return frames;
}

/** Reads every frame until the stream ends. */
function readAll(conn: FramedConnection): Promise<Frame[]> {
  return Array.fromAsync(conn);
}

function body(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 131 + seed * 17 + (i >> 8)) & 0xff;
  return out;
}

function u32(n: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, n);
  return out;
}

function isProtocolError(code: ProtocolErrorCode): (err: unknown) => boolean {
  return (err: unknown) => {
    assert.ok(err instanceof ProtocolError, `expected ProtocolError ${code}, got ${err}`);
    assert.equal(err.code, code);
    return true;
  };
}

function isClosedError(err: unknown): boolean {
  assert.ok(err instanceof ConnectionClosedError, `expected ConnectionClosedError, got ${err}`);
  assert.ok(err instanceof TransportError);
  assert.equal(err.code, "closed");
  return true;
}

const tick = () => new Promise<void>((resolve) => setTimeout(resolve, 0));
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Wraps a channel, recording the size of every write call. */
function countingChannel(inner: ByteChannel): ByteChannel & { writes: number[] } {
  const writes: number[] = [];
  return {
    writes,
    read: (p) => inner.read(p),
    write: (p) => {
      writes.push(p.length);
      return inner.write(p);
    },
    close: () => inner.close(),
  };
}

// --------------------------------------------------------------- round trips

for (const tls of [false, true]) {
  const via = tls ? "TLS" : "TCP";

  Deno.test(`FramedConnection over ${via}: frames with bodies both ways`, async () => {
    const [a, b] = await framedPair(tls);
    const sent = [
      { header: { type: "ping", id: "1" }, body: new Uint8Array(0) },
      { header: { type: "file", name: "x", n: 1 }, body: body(1000, 1) },
      { header: { type: "say", text: "héllo 😀" }, body: new Uint8Array([0, 255]) },
      // Larger than the 64 KiB read buffer, so it spans several reads.
      { header: { type: "file", n: 2 }, body: body(200_000, 2) },
      { header: {}, body: new Uint8Array(0) },
    ];
    for (const f of sent) a.send(f.header, f.body);
    const got = await take(b, sent.length);
    assert.equal(got.length, sent.length);
    got.forEach((frame, i) => {
      assert.deepEqual(frame.header, sent[i].header);
      assert.deepEqual(frame.body, sent[i].body);
    });

    b.send({ type: "ok", re: "1" }, body(10, 3));
    const [reply] = await take(a, 1);
    assert.deepEqual(reply.header, { type: "ok", re: "1" });
    assert.deepEqual(reply.body, body(10, 3));

    assert.equal(b.stats.framesIn, sent.length);
    assert.equal(
      a.stats.bytesOut,
      sent.reduce((n, f) => n + encodeFrame(f.header, f.body).length, 0),
    );
    await a.close();
    assert.deepEqual(await readAll(b), []);
    await b.close();
  });

  Deno.test(`FramedConnection over ${via}: many frames arrive in order`, async () => {
    const [a, b] = await framedPair(tls);
    const count = 3000;
    for (let i = 0; i < count; i++) a.send({ type: "n", i }, body(i % 50, i));
    const closing = a.close();
    const got = await readAll(b);
    await closing;
    assert.equal(got.length, count);
    got.forEach((frame, i) => {
      assert.deepEqual(frame.header, { type: "n", i });
      assert.deepEqual(frame.body, body(i % 50, i));
    });
    await b.close();
  });
}

// ---------------------------------------------------------------- coalescing

Deno.test("frames queued in one job are coalesced into one write, delivered in order", async () => {
  const [rawA, rawB] = await socketPair();
  const counting = countingChannel(rawA);
  const a = new FramedConnection(counting);
  const b = new FramedConnection(rawB);

  const frames = Array.from({ length: 100 }, (_, i) => encodeFrame({ type: "n", i }));
  const total = frames.reduce((n, f) => n + f.length, 0);
  for (const f of frames) a.sendEncoded(f);
  assert.equal(counting.writes.length, 0, "the writer starts after the current job");
  assert.equal(a.queuedBytes, total);
  await a.flush();
  assert.deepEqual(counting.writes, [total], "one write of everything queued");
  assert.equal(a.queuedBytes, 0);
  assert.equal(a.stats.bytesOut, total);

  for (let i = 100; i < 150; i++) a.send({ type: "n", i });
  await a.flush();
  assert.equal(counting.writes.length, 2, "a second job, a second write");

  const got = await take(b, 150);
  assert.deepEqual(got.map((f) => f.header.i), Array.from({ length: 150 }, (_, i) => i));
  await a.close();
  await b.close();
});

Deno.test("a channel with writeMany gets the queued frames as they are, not copied into one", async () => {
  const [rawA, rawB] = await socketPair();
  const calls: Uint8Array[][] = [];
  const writes: number[] = [];
  const channel: ByteChannel = {
    read: (p) => rawA.read(p),
    write: (p) => {
      writes.push(p.length);
      return rawA.write(p);
    },
    close: () => rawA.close(),
    writeMany: async (pieces) => {
      calls.push([...pieces]);
      for (const piece of pieces) {
        for (let at = 0; at < piece.length;) at += await rawA.write(piece.subarray(at));
      }
    },
  };
  const a = new FramedConnection(channel);
  const b = new FramedConnection(rawB);
  const frames = Array.from({ length: 3 }, (_, i) => encodeFrame({ type: "n", i }, body(1000, i)));
  for (const f of frames) a.sendEncoded(f);
  await a.flush();
  assert.equal(calls.length, 1, "one writeMany of the three frames");
  assert.ok(calls[0].every((piece, i) => piece === frames[i]), "the very arrays queued");
  assert.deepEqual(writes, []);
  assert.equal(a.stats.bytesOut, frames.reduce((n, f) => n + f.length, 0));
  a.send({ type: "alone" });
  await a.flush();
  assert.equal(writes.length, 1, "a lone frame goes through write");
  const got = await take(b, 4);
  assert.deepEqual(got.map((f) => f.header.type), ["n", "n", "n", "alone"]);
  await a.close();
  await b.close();
});

Deno.test("frames queued during a write are coalesced into the next write", async () => {
  const channel = gatedChannel();
  const conn = new FramedConnection(channel);
  const first = encodeFrame({ type: "first" });
  conn.sendEncoded(first);
  await tick();
  assert.equal(channel.pending, 1, "the first write is in flight");
  const later = [
    encodeFrame({ type: "b" }),
    encodeFrame({ type: "c" }),
    encodeFrame({ type: "d" }),
  ];
  for (const f of later) conn.sendEncoded(f);
  channel.release(); // the first write completes
  await tick();
  assert.equal(channel.pending, 1, "the three queued frames went out as one write");
  channel.release();
  await conn.flush();
  assert.equal(channel.written.length, 2);
  assert.deepEqual(channel.written[0], first);
  const decoder = new FrameDecoder();
  const types = decoder.push(channel.written[1]).map((p) => decodePayload(p).header.type);
  assert.deepEqual(types, ["b", "c", "d"]);
  conn.abort();
});

Deno.test("whenWritten resolves once a frame is written, false when closed first", async () => {
  const channel = gatedChannel();
  const conn = new FramedConnection(channel);
  conn.send({ type: "first" });
  const firstEnd = conn.stats.bytesOut + conn.queuedBytes;
  const first = conn.whenWritten(firstEnd);
  await tick();
  conn.send({ type: "second" });
  const secondEnd = conn.stats.bytesOut + conn.queuedBytes;
  const second = conn.whenWritten(secondEnd);
  let settled = false;
  first.then(() => settled = true);
  await tick();
  assert.equal(settled, false, "not before the write completes");
  channel.release();
  assert.equal(await first, true);
  assert.equal(await conn.whenWritten(firstEnd), true, "at once when already written");
  conn.abort();
  assert.equal(await second, false, "closed before it was written");
  assert.equal(await conn.whenWritten(secondEnd), false);
});

Deno.test("whenWritten: frames dropped by closeWith are never counted written", async () => {
  const channel = gatedChannel();
  const conn = new FramedConnection(channel);
  conn.send({ type: "first" });
  const firstEnd = conn.stats.bytesOut + conn.queuedBytes;
  await tick();
  conn.send({ type: "dropped", text: "x" });
  const droppedEnd = conn.stats.bytesOut + conn.queuedBytes;
  const dropped = conn.whenWritten(droppedEnd);
  const closed = conn.closeWith({
    type: "notice",
    text: "a longer final frame than the dropped one",
  });
  assert.equal(await dropped, false);
  channel.release();
  assert.equal(await conn.whenWritten(firstEnd), true);
  await tick();
  channel.release();
  await conn.flush();
  assert.ok(conn.stats.bytesOut >= droppedEnd, "the final frame's bytes pass the dropped offset");
  assert.equal(await conn.whenWritten(droppedEnd), false, "yet the dropped frame was not written");
  conn.abort();
  await closed;
});

Deno.test("partial writes are continued until every byte is out", async () => {
  const written: Uint8Array[] = [];
  const channel: ByteChannel = {
    read: () => new Promise(() => {}),
    write: (p) => {
      const n = Math.min(3, p.length);
      written.push(p.slice(0, n));
      return Promise.resolve(n);
    },
    close: () => {},
  };
  const conn = new FramedConnection(channel);
  conn.send({ type: "a", text: "partial" }, body(50, 1));
  conn.send({ type: "b" });
  await conn.flush();
  const decoder = new FrameDecoder();
  const frames = written.flatMap((chunk) => decoder.push(chunk)).map(decodePayload);
  decoder.end();
  assert.deepEqual(frames.map((f) => f.header.type), ["a", "b"]);
  assert.deepEqual(frames[0].body, body(50, 1));
  assert.equal(conn.queuedBytes, 0);
  conn.abort();
});

// ------------------------------------------------------------ bounded queue

Deno.test("a stalled peer: the queue is bounded, overflow queues nothing, stall time grows", async () => {
  const stalled: ByteChannel & { closes: number } = {
    closes: 0,
    read: () => new Promise(() => {}),
    write: () => new Promise(() => {}), // never resolves
    close() {
      this.closes++;
    },
  };
  const conn = new FramedConnection(stalled, { maxQueueBytes: 100 });
  const forty = new Uint8Array(40);
  assert.equal(conn.writeStalledMs, 0);
  conn.sendEncoded(forty);
  conn.sendEncoded(forty);
  assert.equal(conn.queuedBytes, 80);
  assert.throws(() => conn.sendEncoded(forty), (err: unknown) => {
    assert.ok(err instanceof QueueOverflowError);
    assert.ok(err instanceof TransportError);
    assert.equal(err.code, "queue_overflow");
    assert.equal(err.queuedBytes, 80);
    return true;
  });
  assert.equal(conn.queuedBytes, 80, "the refused frame was not queued");
  conn.sendEncoded(new Uint8Array(20)); // exactly at the bound is fine
  assert.equal(conn.queuedBytes, 100);
  assert.throws(() => conn.sendEncoded(new Uint8Array(1)), QueueOverflowError);
  assert.throws(() => conn.send({ type: "ping", id: "1" }), QueueOverflowError);
  assert.equal(conn.queuedBytes, 100);

  // The writer is now blocked on the peer: the stall time is measured and grows.
  await sleep(5);
  const first = conn.writeStalledMs;
  assert.ok(first > 0, `stalled ${first} ms`);
  await sleep(25);
  const second = conn.writeStalledMs;
  assert.ok(second > first, `${second} > ${first}`);
  assert.ok(second >= 10, `stalled ${second} ms after sleeping 25 ms`);
  assert.equal(conn.queuedBytes, 100, "nothing was written");

  conn.abort();
  assert.equal(conn.queuedBytes, 0, "abort discards the queue");
  assert.equal(stalled.closes, 1);
  assert.equal(conn.closed, true);
  await conn.done;
});

Deno.test("a single frame larger than the queue bound is refused", () => {
  const conn = new FramedConnection(gatedChannel(), { maxQueueBytes: 64 });
  assert.throws(() => conn.send({ type: "big" }, new Uint8Array(100)), QueueOverflowError);
  assert.equal(conn.queuedBytes, 0);
  conn.abort();
});

// -------------------------------------------------------- closing, aborting

Deno.test("send after close, during close and after abort is ConnectionClosedError", async () => {
  const [a, b] = await framedPair();
  a.send({ type: "last" });
  const closing = a.close();
  assert.equal(a.closed, true, "closing counts as closed");
  assert.throws(() => a.send({ type: "during" }), isClosedError);
  await closing;
  assert.throws(() => a.send({ type: "after" }), isClosedError);
  assert.throws(() => a.sendEncoded(encodeFrame({ type: "after" })), isClosedError);
  await a.close(); // idempotent
  const got = await readAll(b);
  assert.deepEqual(got.map((f) => f.header.type), ["last"]);
  b.abort();
  assert.throws(() => b.send({ type: "x" }), isClosedError);
  b.abort(); // idempotent
});

Deno.test("close() writes everything queued before closing", async () => {
  const [a, b] = await framedPair();
  const count = 500;
  for (let i = 0; i < count; i++) a.send({ type: "n", i }, body(100, i));
  const reading = readAll(b);
  await a.close();
  assert.equal(a.queuedBytes, 0);
  await a.done;
  const got = await reading;
  assert.equal(got.length, count, "the peer received every queued frame");
  assert.deepEqual(got.map((f) => f.header.i), Array.from({ length: count }, (_, i) => i));
  assert.deepEqual(got[count - 1].body, body(100, count - 1));
  await b.close();
});

Deno.test("close() gives up on a stalled peer after its timeout", async () => {
  const channel = gatedChannel();
  const conn = new FramedConnection(channel);
  conn.send({ type: "stuck" });
  await conn.close(20);
  assert.equal(conn.closed, true);
  assert.equal(channel.closes, 1);
  assert.equal(conn.queuedBytes, 0);
});

Deno.test("abort() discards what is queued and closes the channel at once", async () => {
  const channel = gatedChannel();
  const conn = new FramedConnection(channel);
  conn.send({ type: "a" });
  await tick(); // the writer is blocked on "a"
  conn.send({ type: "b" });
  conn.send({ type: "c" });
  const reason = new Error("going away");
  conn.abort(reason);
  assert.equal(conn.error, reason);
  assert.equal(conn.queuedBytes, 0);
  assert.equal(channel.closes, 1);
  channel.release(); // the in-flight write of "a" completes
  await tick();
  await conn.done;
  assert.equal(channel.written.length, 1, "b and c were never written");
  assert.equal(decodePayload(channel.written[0].subarray(4)).header.type, "a");
  assert.equal(channel.pending, 0);
});

Deno.test("a failing write aborts the connection with ConnectionClosedError", async () => {
  let closes = 0;
  const conn = new FramedConnection({
    read: () => new Promise(() => {}),
    write: () => Promise.reject(new Error("EPIPE")),
    close: () => closes++,
  });
  conn.send({ type: "x" });
  await conn.done;
  assert.equal(conn.closed, true);
  assert.equal(closes, 1);
  assert.ok(isClosedError(conn.error));
  assert.equal(((conn.error as Error).cause as Error).message, "EPIPE");
  assert.throws(() => conn.send({ type: "y" }), isClosedError);
});

Deno.test("await using closes gracefully at the end of the scope", async () => {
  const [rawA, rawB] = await socketPair();
  const b = new FramedConnection(rawB);
  let escaped: FramedConnection;
  {
    await using a = new FramedConnection(rawA);
    escaped = a;
    a.send({ type: "scoped" }, body(5000, 9));
    assert.equal(a.closed, false);
  }
  assert.equal(escaped.closed, true);
  const got = await readAll(b);
  assert.deepEqual(got.map((f) => f.header.type), ["scoped"]);
  assert.deepEqual(got[0].body, body(5000, 9));
  await b.close();
});

// ------------------------------------------------------------------ reading

Deno.test("the iterator ends quietly on peer EOF", async () => {
  const [a, b] = await framedPair();
  a.send({ type: "only" });
  await a.close();
  const got = await readAll(b);
  assert.deepEqual(got.map((f) => f.header.type), ["only"]);
  assert.equal(b.error, undefined);
  await b.close();
});

Deno.test("the iterator ends quietly when the connection is closed locally", async () => {
  const [a, b] = await framedPair();
  const reading = readAll(b); // blocked in read
  await tick();
  await b.close();
  assert.deepEqual(await reading, []);
  assert.equal(b.error, undefined);
  await a.close();
});

Deno.test("a stream ending inside a frame throws truncated_frame", async () => {
  const cuts = [
    new Uint8Array([0, 0]), // inside the length prefix
    encodeFrame({ type: "cut" }, body(30, 1)).subarray(0, 20), // inside the payload
  ];
  for (const cut of cuts) {
    const [rawA, rawB] = await socketPair();
    const b = new FramedConnection(rawB);
    await rawA.write(concat(encodeFrame({ type: "whole" }), cut));
    rawA.close();
    const seen: string[] = [];
    await assert.rejects(async () => {
      for await (const frame of b) seen.push(frame.header.type as string);
    }, isProtocolError("truncated_frame"));
    assert.deepEqual(seen, ["whole"], "the whole frame before the cut was delivered");
    assert.ok(b.error instanceof ProtocolError);
    assert.equal((b.error as ProtocolError).code, "truncated_frame");
    b.abort();
  }
});

Deno.test("an oversized length prefix throws frame_too_large while the peer is still connected", async () => {
  const [rawA, rawB] = await socketPair();
  const b = new FramedConnection(rawB, { maxFrameSize: 64 });
  await rawA.write(encodeFrame({ type: "fine" }));
  const [first] = await take(b, 1);
  assert.deepEqual(first.header, { type: "fine" });
  // Only the four prefix bytes are sent: no payload, no EOF.
  await rawA.write(u32(65));
  await assert.rejects(readAll(b), isProtocolError("frame_too_large"));
  assert.equal((b.error as ProtocolError).code, "frame_too_large");
  b.abort();
  rawA.close();
});

Deno.test("a malformed payload throws its ProtocolError from the iterator", async () => {
  const [rawA, rawB] = await socketPair();
  const b = new FramedConnection(rawB);
  const notJson = new TextEncoder().encode("nope");
  await rawA.write(concat(u32(4 + notJson.length), u32(notJson.length), notJson));
  await assert.rejects(readAll(b), isProtocolError("bad_json"));
  b.abort();
  rawA.close();
});

Deno.test("batches() yields the frames of one read together", async () => {
  const [rawA, rawB] = await socketPair();
  const b = new FramedConnection(rawB);
  await rawA.write(concat(encodeFrame({ n: 1 }), encodeFrame({ n: 2 }), encodeFrame({ n: 3 })));
  const batches = b.batches();
  const first = await batches.next();
  assert.deepEqual(first.value?.map((f: Frame) => f.header.n), [1, 2, 3]);
  b.abort();
  rawA.close();
});

Deno.test("batches(): the frames before a malformed one are yielded, then its error", async () => {
  const [rawA, rawB] = await socketPair();
  const b = new FramedConnection(rawB);
  const notJson = new TextEncoder().encode("nope");
  await rawA.write(
    concat(encodeFrame({ n: 1 }), u32(4 + notJson.length), u32(notJson.length), notJson),
  );
  const batches = b.batches();
  assert.deepEqual((await batches.next()).value?.map((f: Frame) => f.header.n), [1]);
  await assert.rejects(batches.next(), isProtocolError("bad_json"));
  assert.equal((b.error as ProtocolError).code, "bad_json");
  b.abort();
  rawA.close();
});

Deno.test("maxFrameSize can be read and changed on a live connection", async () => {
  const [a, b] = await framedPair(false, { maxFrameSize: 1000 });
  assert.equal(b.maxFrameSize, 1000);
  a.send({ type: "x" }, new Uint8Array(500));
  assert.equal((await take(b, 1))[0].body.length, 500);
  b.maxFrameSize = 100;
  assert.equal(b.maxFrameSize, 100);
  assert.throws(() => b.maxFrameSize = 2, RangeError);
  assert.equal(b.maxFrameSize, 100);
  a.send({ type: "x" }, new Uint8Array(500));
  await assert.rejects(readAll(b), isProtocolError("frame_too_large"));
  b.abort();
  await a.close();
});

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

Deno.test("an unfinished frame: its age is known, its bytes held in the shared budget until it completes", async () => {
  const budget = new PartialFrameBudget(() => 1_500_000);
  const [client, server] = await framedPair(false, {
    partialFrames: budget,
    maxFrameSize: 4 * 1024 * 1024,
  });
  try {
    const frames = server.batches();
    const next = frames.next();
    const big = encodeFrame({ type: "big" }, new Uint8Array(1_000_000));
    assert.equal(server.partialFrameMs, 0);
    client.sendEncoded(big.subarray(0, 100));
    await until(() => budget.held === big.length - 4);
    assert.ok(server.partialFrameMs > 0);
    client.sendEncoded(big.subarray(100));
    const { value } = await next;
    assert.equal(value![0].header.type, "big");
    assert.equal(budget.held, 0);
    assert.equal(server.partialFrameMs, 0);
    // A frame the budget cannot hold ends the stream with server_busy.
    const huge = encodeFrame({ type: "huge" }, new Uint8Array(1_600_000));
    client.sendEncoded(huge.subarray(0, 100));
    await assert.rejects(frames.next(), (err: unknown) => {
      assert.ok(err instanceof ProtocolError);
      assert.equal(err.code, "server_busy");
      return true;
    });
    // Small frames are never counted.
    assert.equal(budget.tryReserve(1_500_000), true);
  } finally {
    client.abort();
    server.abort();
  }
});

async function until(check: () => boolean): Promise<void> {
  const deadline = Date.now() + 3000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

// ------------------------------------------------------------------ receive()

/** A receiver recording batches and its end; `hold` makes each batch wait for a release. */
function recorder(hold = false) {
  const batches: unknown[][] = [];
  const releases: (() => void)[] = [];
  let ended!: (error: unknown) => void;
  const end = new Promise<unknown>((resolve) => ended = resolve);
  let ends = 0;
  let arrived: () => void = () => {};
  return {
    batches,
    end,
    get ends() {
      return ends;
    },
    /** Resolves once `n` batches have arrived. */
    async batchesIn(n: number): Promise<void> {
      while (batches.length < n) await new Promise<void>((resolve) => arrived = resolve);
    },
    release(): void {
      releases.shift()?.();
    },
    receiveFrames(frames: Frame[]): Promise<void> | undefined {
      batches.push(frames.map((f) => f.header.n));
      arrived();
      return hold ? new Promise<void>((resolve) => releases.push(resolve)) : undefined;
    },
    receiveEnd(error: unknown): void {
      ends++;
      ended(error);
    },
  };
}

Deno.test("receive() hands over each read's frames together, then the end of the stream", async () => {
  const [rawA, rawB] = await socketPair();
  const b = new FramedConnection(rawB);
  const r = recorder();
  b.receive(r);
  await rawA.write(concat(encodeFrame({ n: 1 }), encodeFrame({ n: 2 })));
  await r.batchesIn(1);
  await rawA.write(encodeFrame({ n: 3 }));
  await r.batchesIn(2);
  rawA.close();
  assert.equal(await r.end, undefined);
  assert.deepEqual(r.batches, [[1, 2], [3]]);
  assert.equal(r.ends, 1);
  assert.equal(b.error, undefined);
  assert.throws(() => b.receive(recorder()), /already being read/);
  b.abort();
});

Deno.test("receive() reads on only once the promise of a batch settles", async () => {
  // A channel whose reads are counted and answered from a script.
  const chunks = [encodeFrame({ n: 1 }), encodeFrame({ n: 2 })];
  let reads = 0;
  const channel: ByteChannel = {
    read(p: Uint8Array): Promise<number | null> {
      reads++;
      const chunk = chunks.shift();
      if (chunk === undefined) return Promise.resolve(null);
      p.set(chunk);
      return Promise.resolve(chunk.length);
    },
    write: (p: Uint8Array) => Promise.resolve(p.length),
    close() {},
  };
  const b = new FramedConnection(channel);
  const r = recorder(true);
  b.receive(r);
  await r.batchesIn(1);
  await tick();
  assert.equal(reads, 1, "no read while the first batch is held");
  r.release();
  await r.batchesIn(2);
  await tick();
  assert.equal(reads, 2);
  r.release();
  assert.equal(await r.end, undefined);
  assert.deepEqual(r.batches, [[1], [2]]);
  assert.equal(reads, 3);
  b.abort();
});

Deno.test("receive() ends at once, quietly, when the connection is closed locally during a read", async () => {
  const [a, b] = await framedPair();
  const r = recorder();
  b.receive(r);
  await tick();
  // The peer does not close: the graceful close lingers, the reading has ended already.
  const closing = b.close(1000);
  assert.equal(await r.end, undefined);
  assert.equal(r.ends, 1);
  await closing;
  await a.close();
  await b.done;
  assert.equal(r.ends, 1);
});

Deno.test("receive(): the frames before a malformed one are handed over, then its error", async () => {
  const [rawA, rawB] = await socketPair();
  const b = new FramedConnection(rawB);
  const r = recorder();
  const notJson = new TextEncoder().encode("nope");
  await rawA.write(
    concat(encodeFrame({ n: 1 }), u32(4 + notJson.length), u32(notJson.length), notJson),
  );
  b.receive(r);
  const error = await r.end;
  assert.ok(isProtocolError("bad_json")(error));
  assert.deepEqual(r.batches, [[1]]);
  assert.equal((b.error as ProtocolError).code, "bad_json");
  b.abort();
  rawA.close();
});

Deno.test("receive(): what the receiver throws, or its promise rejects with, ends the reading", async () => {
  for (const how of ["throw", "reject"]) {
    const [rawA, rawB] = await socketPair();
    const b = new FramedConnection(rawB);
    const failure = new ProtocolError("bad_message", how);
    let ended!: (error: unknown) => void;
    const end = new Promise<unknown>((resolve) => ended = resolve);
    b.receive({
      receiveFrames() {
        if (how === "throw") throw failure;
        return Promise.reject(failure);
      },
      receiveEnd: ended,
    });
    await rawA.write(encodeFrame({ n: 1 }));
    assert.equal(await end, failure);
    assert.equal(b.error, failure);
    b.abort();
    rawA.close();
  }
});
