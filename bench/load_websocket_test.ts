import assert from "node:assert/strict";
import {
  clientFrame,
  LoadWebSocket,
  LoadWebSocketError,
  WsFrameDecoder,
} from "./load_websocket.ts";
import { decodePayload, encodeFrame, FrameDecoder } from "../protocol/frame.ts";
import { clientHello, SERVER_FEATURES } from "../protocol/hello.ts";
import { connectClient, testServer } from "../tests/helpers/harness.ts";

/** A WebSocket server on a free port that hands its sockets to `onSocket`. */
function serveWebSockets(onSocket: (socket: WebSocket) => void) {
  return Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (request) => {
    if (new URL(request.url).pathname !== "/ws") return new Response("no", { status: 404 });
    const { socket, response } = Deno.upgradeWebSocket(request);
    onSocket(socket);
    return response;
  });
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

/** A server frame (unmasked). */
function serverFrame(op: number, payload: Uint8Array, fin = true): Uint8Array {
  const n = payload.length;
  const h = n < 126 ? 2 : n < 65536 ? 4 : 10;
  const out = new Uint8Array(h + n);
  out[0] = (fin ? 0x80 : 0) | op;
  if (n < 126) out[1] = n;
  else if (n < 65536) {
    out[1] = 126;
    out[2] = n >>> 8;
    out[3] = n & 0xff;
  } else {
    out[1] = 127;
    new DataView(out.buffer).setBigUint64(2, BigInt(n));
  }
  out.set(payload, h);
  return out;
}

function bytes(n: number, seed: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);
}

Deno.test("WebSocket frame decoder: binary payloads in order, whatever the read boundaries; pings and closes reported", () => {
  const a = bytes(5, 1);
  const b = bytes(300, 2); // 16-bit length
  const c = bytes(70_000, 3); // 64-bit length
  const stream = [
    serverFrame(2, a),
    serverFrame(9, new Uint8Array([1, 2])), // ping
    serverFrame(2, b, false),
    serverFrame(0, c), // continuation of the binary message
    serverFrame(8, new Uint8Array([0x03, 0xe8])),
  ];
  const all = new Uint8Array(stream.reduce((n, f) => n + f.length, 0));
  let o = 0;
  for (const f of stream) {
    all.set(f, o);
    o += f.length;
  }
  const expected = [...a, ...b, ...c];
  for (const cut of [1, 2, 3, 7, 9, 310, 4096, all.length]) {
    const got: number[] = [];
    const pings: number[][] = [];
    const closes: string[] = [];
    const d = new WsFrameDecoder((x) => got.push(...x), {
      ping: (p) => pings.push([...p]),
      close: (reason) => closes.push(reason),
    });
    for (let i = 0; i < all.length; i += cut) d.push(all.slice(i, i + cut));
    assert.equal(got.length, expected.length, `reads of ${cut}`);
    assert.deepEqual(got, expected, `reads of ${cut}`);
    assert.deepEqual(pings, [[1, 2]]);
    assert.deepEqual(closes, ["close"]);
  }
});

Deno.test("WebSocket frame decoder: a text message ends the socket, a masked server frame is refused", () => {
  const closes: string[] = [];
  const d = new WsFrameDecoder(() => assert.fail("no data"), {
    ping() {},
    close: (reason) => closes.push(reason),
  });
  d.push(serverFrame(1, new TextEncoder().encode("hi")));
  assert.deepEqual(closes, ["text"]);
  const masked = new WsFrameDecoder(() => {}, { ping() {}, close() {} });
  assert.throws(
    () => masked.push(clientFrame(2, new Uint8Array([1]))),
    (err) => err instanceof LoadWebSocketError && err.code === "protocol",
  );
});

Deno.test("load WebSocket against Deno's server: messages' bytes arrive from the first on, writes arrive as binary messages", async () => {
  const first = bytes(3, 5);
  const big = bytes(100_000, 6);
  const expected = [...first, ...big];
  let serverGot: (bytes: Uint8Array) => void = () => {};
  const fromClient = new Promise<Uint8Array>((resolve) => serverGot = resolve);
  const server = serveWebSockets((socket) => {
    socket.binaryType = "arraybuffer";
    socket.onopen = () => {
      // The server speaks at once: the first message must not be missed.
      socket.send(first);
      socket.send(big);
    };
    socket.onmessage = (event) => serverGot(new Uint8Array(event.data as ArrayBuffer));
  });
  try {
    const received: number[] = [];
    let gotAll: () => void = () => {};
    const all = new Promise<void>((resolve) => gotAll = resolve);
    const client = await LoadWebSocket.open("127.0.0.1", server.addr.port, (b) => {
      received.push(...b);
      if (received.length >= expected.length) gotAll();
    });
    await deadline(all, "both messages");
    assert.deepEqual(received, expected);
    const sent = bytes(70_000, 7);
    assert.equal(await client.write(sent), sent.length);
    assert.deepEqual(await deadline(fromClient, "the client's message"), sent);
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

Deno.test("load WebSocket against the chat server: a burst packed many frames to a message, read in small pieces, decodes complete and in order", async () => {
  const server = await testServer({ webPort: 0 });
  const alice = await connectClient(server, "alice");
  let client: LoadWebSocket | null = null;
  try {
    const decoder = new FrameDecoder();
    const headers: Record<string, unknown>[] = [];
    let wake: () => void = () => {};
    // Reads of 1,000 bytes: messages and frames both split over reads.
    client = await LoadWebSocket.open("127.0.0.1", server.webAddr!.port, (b) => {
      for (const payload of decoder.push(b.slice())) headers.push(decodePayload(payload).header);
      wake();
    }, 1000);
    const until = async (done: () => boolean, what: string) => {
      while (!done()) await deadline(new Promise<void>((resolve) => wake = resolve), what);
    };
    await client.write(encodeFrame(clientHello(SERVER_FEATURES, "test-load")));
    await client.write(encodeFrame({ type: "login", id: "1", nick: "bob", password: "pw-bob-1" }));
    await until(() => headers.some((h) => h.type === "ok" && h.re === "1"), "bob's login");
    const texts = Array.from({ length: 400 }, (_, i) => `${i}:${"b".repeat(580)}`);
    await Promise.all(texts.map((text) => alice.say("lobby", text)));
    const messages = () => headers.filter((h) => h.type === "msg").map((h) => h.text);
    await until(() => messages().length >= texts.length, "the burst");
    assert.deepEqual(messages(), texts);
  } finally {
    client?.close();
    await alice.close();
    await server.shutdown();
  }
});
