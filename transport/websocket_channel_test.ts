import assert from "node:assert/strict";
import { concatBytes } from "../protocol/bytes.ts";
import { setImmediate } from "node:timers";
import { MAX_MESSAGE_BYTES, WebSocketChannel } from "./websocket_channel.ts";
import { OutboundQueue } from "./outbound_queue.ts";

/**
 * A real WebSocket pair on 127.0.0.1: the server's side as a channel, the client's
 * messages recorded as they arrive.
 */
async function socketPair() {
  const accepted = Promise.withResolvers<WebSocket>();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (request) => {
    const { socket, response } = Deno.upgradeWebSocket(request);
    accepted.resolve(socket);
    return response;
  });
  const client = new WebSocket(`ws://127.0.0.1:${server.addr.port}/`);
  client.binaryType = "arraybuffer";
  const messages: Uint8Array[] = [];
  client.onmessage = (event) => messages.push(new Uint8Array(event.data as ArrayBuffer));
  await new Promise((resolve, reject) => {
    client.onopen = resolve;
    client.onerror = reject;
  });
  const channel = new WebSocketChannel(await accepted.promise);
  const closed = new Promise((resolve) => client.onclose = resolve);
  return {
    channel,
    client,
    messages,
    async close() {
      channel.close();
      await closed;
      await server.shutdown();
    },
  };
}

async function until(done: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

Deno.test("WebSocketChannel: a write's buffer may be reused once it resolves", async () => {
  const pair = await socketPair();
  try {
    const buffer = new Uint8Array(64 * 1024).fill(1);
    await pair.channel.write(buffer);
    buffer.fill(2);
    await pair.channel.write(buffer.subarray(0, 3));
    await until(() => pair.messages.length === 2, "two messages");
    assert.ok(pair.messages[0].every((b) => b === 1));
    assert.deepEqual([...pair.messages[1]], [2, 2, 2]);
  } finally {
    await pair.close();
  }
});

Deno.test("WebSocketChannel: what the outbound queue writes at once goes as messages of at most 64 KiB, whole frames in order, a larger frame alone", async () => {
  const pair = await socketPair();
  try {
    const queue = new OutboundQueue(pair.channel, {
      onWriteFailed: (err) => assert.fail(`${err}`),
    });
    // Frames of different sizes, each filled with its own number: 400 small ones, one
    // past the message bound, then 20 more small ones, all queued in one job.
    const frames: Uint8Array[] = [];
    for (let i = 0; i < 421; i++) {
      const size = i === 400 ? MAX_MESSAGE_BYTES + 1000 : 700 + (i % 7) * 100;
      // Views into larger buffers, as queued frames can be: only the view is sent.
      const buffer = new Uint8Array(size + 16).fill(255);
      frames.push(buffer.subarray(8, 8 + size).fill(i % 251));
    }
    for (const frame of frames) queue.push(frame);
    const total = frames.reduce((n, f) => n + f.length, 0);
    await queue.flush();
    await until(
      () => pair.messages.reduce((n, m) => n + m.length, 0) >= total,
      "every byte",
    );
    // The stream is the frames, in order.
    assert.deepEqual(concatBytes(pair.messages), concatBytes(frames));
    // Each message is whole frames: its end falls on a frame's end.
    const ends = new Set<number>();
    let end = 0;
    for (const frame of frames) ends.add(end += frame.length);
    let at = 0;
    for (const message of pair.messages) {
      at += message.length;
      assert.ok(ends.has(at), `a message ends inside a frame, at byte ${at}`);
      assert.ok(
        message.length <= MAX_MESSAGE_BYTES || message.length === frames[400].length,
        `a message of ${message.length} bytes`,
      );
    }
    // Packed: far fewer messages than frames.
    assert.ok(pair.messages.length <= Math.ceil(total / MAX_MESSAGE_BYTES) + 2);
  } finally {
    await pair.close();
  }
});

Deno.test("WebSocketChannel: reads of a large message's bytes let the event loop turn between them, as socket reads do", async () => {
  // Without a turn, a reader handles a whole message of megabytes in one job, and the
  // writes it causes (sent by the runtime on the event loop) wait for all of it.
  const pair = await socketPair();
  try {
    const size = 1024 * 1024;
    const readSize = 64 * 1024;
    pair.client.send(new Uint8Array(size).fill(7));
    const buffer = new Uint8Array(readSize);
    let got = await pair.channel.read(buffer);
    assert.ok(got !== null && got > 0);
    // A task of the event loop's next turn, queued before any other read.
    let turned = false;
    setImmediate(() => turned = true);
    let readsBeforeTurn = 0;
    let reads = 1;
    while (got < size) {
      const n = await pair.channel.read(buffer);
      assert.ok(n !== null, "the socket ended early");
      assert.ok(buffer.subarray(0, n).every((b) => b === 7));
      got += n;
      reads++;
      if (!turned) readsBeforeTurn++;
    }
    assert.ok(reads >= size / readSize, `${reads} reads`);
    assert.equal(readsBeforeTurn, 0, `${readsBeforeTurn} of ${reads} reads before a turn`);
  } finally {
    await pair.close();
  }
});
