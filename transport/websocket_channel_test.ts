import assert from "node:assert/strict";
import { OutboundQueue } from "./outbound_queue.ts";
import { WebSocketChannel } from "./websocket_channel.ts";

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

Deno.test("WebSocketChannel: what is queued while a message goes out joins the next message", async () => {
  const pair = await socketPair();
  try {
    const out = new OutboundQueue(pair.channel, {
      onWriteFailed: (err) => assert.fail(String(err)),
    });
    out.push(new Uint8Array([0]));
    // Pushes from later jobs of the same turn (as a fan-out's deliveries, one job per
    // incoming message): the first write is out, the next must carry them all.
    for (let i = 1; i <= 10; i++) {
      await Promise.resolve();
      out.push(new Uint8Array([i]));
    }
    await out.flush();
    await until(() => pair.messages.reduce((n, m) => n + m.length, 0) === 11, "11 bytes");
    assert.deepEqual(pair.messages.map((m) => [...m]), [[0], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]]);
  } finally {
    await pair.close();
  }
});

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
