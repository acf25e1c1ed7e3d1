import assert from "node:assert/strict";
import { LoadWebSocket, LoadWebSocketError } from "./load_websocket.ts";

/** A WebSocket server on a free port that hands its sockets to `onSocket`. */
function serveWebSockets(onSocket: (socket: WebSocket) => void) {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (request) => {
    if (new URL(request.url).pathname !== "/ws") return new Response("no", { status: 404 });
    const { socket, response } = Deno.upgradeWebSocket(request);
    onSocket(socket);
    return response;
  });
  return server;
}

function deadline<T>(promise: Promise<T>, what: string, ms = 20_000): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

Deno.test("load WebSocket: each binary message is handed on whole, writes arrive as binary messages", async () => {
  const received: Uint8Array[] = [];
  let serverGot: (bytes: Uint8Array) => void = () => {};
  const fromClient = new Promise<Uint8Array>((resolve) => serverGot = resolve);
  const server = serveWebSockets((socket) => {
    socket.binaryType = "arraybuffer";
    socket.onopen = () => {
      socket.send(new Uint8Array([1, 2, 3]));
      socket.send(new Uint8Array(100_000).fill(7));
    };
    socket.onmessage = (event) => serverGot(new Uint8Array(event.data as ArrayBuffer));
  });
  try {
    let gotBoth: () => void = () => {};
    const both = new Promise<void>((resolve) => gotBoth = resolve);
    // The server speaks at once: the first message must not be missed.
    const client = await LoadWebSocket.open("127.0.0.1", server.addr.port, (bytes) => {
      received.push(bytes);
      if (received.length === 2) gotBoth();
    });
    await deadline(both, "two messages");
    assert.deepEqual([...received[0]], [1, 2, 3]);
    assert.equal(received[1].length, 100_000);
    assert.ok(received[1].every((b) => b === 7));
    assert.equal(await client.write(new Uint8Array([9, 8])), 2);
    assert.deepEqual([...await deadline(fromClient, "the client's message")], [9, 8]);
    client.close();
    await deadline(client.ended, "the close");
    await assert.rejects(() => client.write(new Uint8Array([1])), LoadWebSocketError);
  } finally {
    await server.shutdown();
  }
});

Deno.test("load WebSocket: a text message (not the protocol) closes the socket", async () => {
  const server = serveWebSockets((socket) => {
    socket.onopen = () => socket.send("hello");
  });
  try {
    let data = 0;
    const client = await LoadWebSocket.open("127.0.0.1", server.addr.port, () => data++);
    await deadline(client.ended, "the close");
    assert.equal(data, 0);
  } finally {
    await server.shutdown();
  }
});

Deno.test("load WebSocket: a refused upgrade rejects the open", async () => {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => new Response("no", { status: 403 }),
  );
  try {
    await assert.rejects(
      () => LoadWebSocket.open("127.0.0.1", server.addr.port, () => {}),
      (err) => err instanceof LoadWebSocketError && err.code === "refused",
    );
  } finally {
    await server.shutdown();
  }
});
