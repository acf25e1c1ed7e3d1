import assert from "node:assert/strict";
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
