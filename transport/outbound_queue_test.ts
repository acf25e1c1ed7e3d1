import assert from "node:assert/strict";
import { QueueOverflowError } from "./errors.ts";
import { LineConnection } from "./line_connection.ts";
import { dial, listen } from "./net.ts";
import { type ByteChannel, LARGE_PIECE_BYTES, OutboundQueue } from "./outbound_queue.ts";
import { MAX_WRITE_BUFFER, writeBuffers } from "./write_buffers.ts";
import { gatedChannel } from "../tests/helpers/gated_channel.ts";

const tick = () => new Promise<void>((resolve) => setTimeout(resolve, 0));
const text = (s: string) => new TextEncoder().encode(s);

function queueOn(channel: ByteChannel, maxQueueBytes = 1024) {
  const failures: unknown[] = [];
  const out = new OutboundQueue(channel, { maxQueueBytes, onWriteFailed: (e) => failures.push(e) });
  return { out, failures };
}

Deno.test("OutboundQueue: what one job queues leaves in one write; later pushes join the next", async () => {
  const channel = gatedChannel();
  const { out } = queueOn(channel);
  out.push(text("a\r\n"));
  out.push(text("b\r\n"));
  await tick();
  out.push(text("c\r\n")); // during the first write
  out.push(text("d\r\n"));
  channel.release();
  await tick();
  channel.release();
  await out.flush();
  assert.deepEqual(channel.written.map((b) => new TextDecoder().decode(b)), [
    "a\r\nb\r\n",
    "c\r\nd\r\n",
  ]);
  assert.equal(out.bytesOut, 12);
  assert.equal(out.queuedBytes, 0);
});

Deno.test("OutboundQueue: large pieces are written where they lie, small ones around them still join", async () => {
  const written: Uint8Array[] = [];
  const channel: ByteChannel = {
    read: () => new Promise<number | null>(() => {}),
    write: (p: Uint8Array) => {
      written.push(p);
      return Promise.resolve(p.length);
    },
    close: () => {},
  };
  const big = new Uint8Array(LARGE_PIECE_BYTES).fill(7);
  const bigger = new Uint8Array(LARGE_PIECE_BYTES * 2).fill(8);
  const { out } = queueOn(channel, 1024 * 1024);
  out.push(text("a"));
  out.push(text("b"));
  out.push(big);
  out.push(bigger);
  out.push(text("c"));
  await out.flush();
  // The file data's own arrays reach the channel: not copied into a new buffer.
  assert.equal(written.length, 4);
  assert.equal(new TextDecoder().decode(written[0]), "ab");
  assert.equal(written[1], big);
  assert.equal(written[2], bigger);
  assert.equal(new TextDecoder().decode(written[3]), "c");
  assert.equal(out.bytesOut, 3 + big.length + bigger.length);
  assert.equal(out.queuedBytes, 0);
});

Deno.test("OutboundQueue: bounded in bytes; an overflow queues nothing", () => {
  const { out } = queueOn(gatedChannel(), 10);
  out.push(new Uint8Array(6));
  assert.throws(() => out.push(new Uint8Array(5)), QueueOverflowError);
  assert.equal(out.queuedBytes, 6);
  out.push(new Uint8Array(4));
  assert.equal(out.queuedBytes, 10);
  out.stop();
  assert.equal(out.queuedBytes, 0);
});

Deno.test("OutboundQueue: replaceWith drops what is unwritten, past the bound; dropped offsets stay unwritten", async () => {
  const channel = gatedChannel();
  const { out } = queueOn(channel, 12);
  out.push(text("one\r\n"));
  await tick(); // "one" is being written
  out.push(text("two\r\n"));
  const twoEnd = out.bytesOut + out.queuedBytes;
  const two = out.whenWritten(twoEnd);
  out.replaceWith(text("ERROR :slow reader\r\n")); // longer than the bound
  assert.equal(await two, false);
  channel.release();
  await tick();
  channel.release();
  await out.flush();
  assert.deepEqual(channel.written.map((b) => new TextDecoder().decode(b)), [
    "one\r\n",
    "ERROR :slow reader\r\n",
  ]);
  assert.ok(out.bytesOut > twoEnd);
  assert.equal(await out.whenWritten(twoEnd), false, "its offset was passed by other bytes");
});

Deno.test("OutboundQueue: stalledPast counts sweeps without progress, resets on progress", async () => {
  const channel = gatedChannel();
  const { out } = queueOn(channel);
  assert.equal(out.stalledPast(100, 250), false, "nothing written: no stall");
  out.push(text("x\r\n"));
  await tick();
  assert.equal(out.stalledPast(100, 250), false, "100 ms");
  assert.equal(out.stalledPast(100, 250), false, "200 ms");
  channel.release(); // progress
  await out.flush();
  out.push(text("y\r\n"));
  await tick();
  assert.equal(out.stalledPast(100, 250), false, "progress since the last sweep");
  assert.equal(out.stalledPast(100, 250), false, "100 ms");
  assert.equal(out.stalledPast(100, 250), false, "200 ms");
  assert.equal(out.stalledPast(100, 250), true, "300 ms > 250 ms");
  out.stop();
});

Deno.test("OutboundQueue: stop settles every wait; a failed write is reported once", async () => {
  const channel = gatedChannel();
  const { out, failures } = queueOn(channel);
  out.push(text("x\r\n"));
  const written = out.whenWritten(3);
  const flushed = out.flush();
  out.stop();
  assert.equal(await written, false);
  await flushed;
  assert.equal(failures.length, 0);

  const broken: ByteChannel = {
    read: () => new Promise(() => {}),
    write: () => Promise.reject(new Error("broken pipe")),
    close: () => {},
  };
  const second = queueOn(broken);
  second.out.push(text("x\r\n"));
  await second.out.flush();
  assert.equal(second.failures.length, 1);
});

Deno.test("LineConnection over TCP: a cut-off replaces the backlog with its last line, then closes cleanly", async () => {
  const listener = listen({ host: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const accepted = listener.accept();
  const client = await dial({ port });
  const server = new LineConnection(await accepted, { maxQueueBytes: 1 << 20 });
  listener.close();
  // A backlog the client does not read yet, then the cut-off.
  for (let i = 0; i < 100; i++) server.send(text(`PRIVMSG #a :${"x".repeat(500)}\r\n`));
  const closed = server.closeWith(text("ERROR :Closing link: reading too slowly\r\n"), 5000);
  const chunks: Uint8Array[] = [];
  const buffer = new Uint8Array(64 * 1024);
  for (;;) {
    const n = await client.read(buffer);
    if (n === null) break;
    chunks.push(buffer.slice(0, n));
  }
  client.close();
  await closed;
  const got = new TextDecoder().decode(
    chunks.reduce((a, b) => new Uint8Array([...a, ...b]), new Uint8Array()),
  );
  assert.ok(got.endsWith("ERROR :Closing link: reading too slowly\r\n"), got.slice(-80));
  for (const line of got.split("\r\n").slice(0, -2)) assert.match(line, /^PRIVMSG #a :x+$/);
  assert.ok(server.closed);
});

Deno.test("OutboundQueue: coalesced writes reuse a pooled buffer once written, never one still being written", async () => {
  writeBuffers.clear();
  // A channel that keeps the very arrays it is handed until the write settles.
  const inFlight: Uint8Array[] = [];
  const seen: { bytes: string; buffer: ArrayBufferLike }[] = [];
  let release: (() => void)[] = [];
  const channel: ByteChannel = {
    read: () => new Promise(() => {}),
    write: (p) =>
      new Promise((resolve) => {
        inFlight.push(p);
        release.push(() => {
          seen.push({ bytes: new TextDecoder().decode(p), buffer: p.buffer });
          inFlight.splice(inFlight.indexOf(p), 1);
          resolve(p.length);
        });
      }),
    close: () => {},
  };
  const releaseAll = () => {
    const wake = release;
    release = [];
    for (const w of wake) w();
  };
  const a = queueOn(channel).out;
  const b = queueOn(channel).out;
  a.push(text("a1"));
  a.push(text("a2"));
  b.push(text("b1"));
  b.push(text("b2"));
  await tick();
  assert.equal(inFlight.length, 2);
  assert.notEqual(inFlight[0].buffer, inFlight[1].buffer, "two writes in flight, two buffers");
  a.push(text("a3"));
  a.push(text("a4"));
  releaseAll(); // both written: their buffers go back to the pool
  await tick();
  assert.equal(inFlight.length, 1);
  assert.equal(new TextDecoder().decode(inFlight[0]), "a3a4");
  const reused = inFlight[0].buffer;
  assert.ok(seen.some((w) => w.buffer === reused), "a written write's buffer carries the next");
  releaseAll();
  await a.flush();
  await b.flush();
  assert.deepEqual(seen.map((w) => w.bytes), ["a1a2", "b1b2", "a3a4"]);
});

Deno.test("OutboundQueue: pushCopy copies at once, keeps order with push, and shares one pooled buffer until written", async () => {
  writeBuffers.clear();
  const channel = gatedChannel();
  const { out } = queueOn(channel, 1 << 20);
  const scratch = text("r1");
  out.pushCopy(scratch);
  scratch.set(text("XX")); // the caller reuses its bytes at once
  out.pushCopy(text("r2"));
  out.push(text("|shared|"));
  out.pushCopy(text("r3"));
  assert.equal(out.queuedBytes, 14);
  await tick();
  channel.release();
  await tick();
  assert.equal(writeBuffers.pooledBytes > 0, true, "the write's buffers went back to the pool");
  out.pushCopy(text("r4")); // alone: written from its pooled buffer as it is
  await tick();
  channel.release();
  await out.flush();
  assert.deepEqual(channel.written.map((b) => new TextDecoder().decode(b)), [
    "r1r2|shared|r3",
    "r4",
  ]);
  assert.equal(out.queuedBytes, 0);
  assert.equal(out.bytesOut, 16);
});

Deno.test("OutboundQueue: copies dropped by replaceWith or stop are never written; large copies go whole", async () => {
  writeBuffers.clear();
  const channel = gatedChannel();
  const { out } = queueOn(channel, 64);
  out.pushCopy(text("one|"));
  await tick(); // "one|" is being written
  out.pushCopy(text("two|"));
  out.replaceWith(text("last"));
  assert.equal(out.queuedBytes, 8);
  channel.release();
  await tick();
  channel.release();
  await out.flush();
  assert.deepEqual(channel.written.map((b) => new TextDecoder().decode(b)), ["one|", "last"]);

  const big = new Uint8Array(300 * 1024).fill(7);
  const second = queueOn(channel, 1 << 20).out;
  second.pushCopy(big);
  big.fill(0);
  second.pushCopy(text("x"));
  await tick();
  channel.release();
  await tick(); // a large piece is written where it lies, the small one after it
  channel.release();
  await second.flush();
  const written = channel.written.at(-2)!;
  assert.equal(written.length, 300 * 1024);
  assert.ok(written.every((b) => b === 7));
  assert.deepEqual(channel.written.at(-1), text("x"));
  const third = queueOn(channel, 1 << 20).out;
  third.pushCopy(text("gone"));
  third.stop();
  assert.equal(third.queuedBytes, 0);
});

Deno.test("OutboundQueue: a backlog of small pieces past the largest pooled buffer leaves in pooled buffers, in order", async () => {
  writeBuffers.clear();
  const written: Uint8Array[] = [];
  const pooled: boolean[] = [];
  const channel: ByteChannel = {
    read: () => new Promise<number | null>(() => {}),
    write: (p: Uint8Array) => {
      // A pooled buffer is MAX_WRITE_BUFFER long at most; a fresh array for the whole
      // backlog (fresh memory faulted in at every write) is longer.
      pooled.push(p.buffer.byteLength <= MAX_WRITE_BUFFER);
      written.push(p.slice());
      return Promise.resolve(p.length);
    },
    close: () => {},
  };
  const piece = 8 * 1024;
  const count = (3 * MAX_WRITE_BUFFER) / piece + 5; // 3 buffers and a bit, queued in one job
  const { out } = queueOn(channel, 4 * MAX_WRITE_BUFFER);
  for (let i = 0; i < count; i++) out.push(new Uint8Array(piece).fill(i % 251));
  await out.flush();
  assert.deepEqual(pooled, [true, true, true, true], `writes of ${written.map((w) => w.length)}`);
  const all = new Uint8Array(count * piece);
  let at = 0;
  for (const w of written) {
    all.set(w, at);
    at += w.length;
  }
  assert.equal(at, count * piece);
  for (let i = 0; i < count; i++) assert.equal(all[i * piece + piece - 1], i % 251, `piece ${i}`);
  assert.equal(out.bytesOut, count * piece);
  assert.equal(out.queuedBytes, 0);
});
