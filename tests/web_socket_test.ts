/**
 * The browser client's server side, without a browser: the page is served with its
 * security headers, a WebSocket from the page's own origin speaks the TCP protocol's
 * frames to the same hub as a terminal client, a foreign origin is refused, and the
 * connection caps count WebSockets, and a WebSocket that stops reading is cut off as a
 * slow consumer.
 */

import assert from "node:assert/strict";
import { decodePayload, encodeFrame, FrameDecoder } from "../protocol/frame.ts";
import { clientHello, SERVER_FEATURES } from "../protocol/hello.ts";
import type { ChatServer } from "../server/server.ts";
import { nextEvent } from "./helpers/chat_events.ts";
import { CONTENT_SECURITY_POLICY } from "../server/web_server.ts";
import { MAX_MESSAGE_BYTES } from "../transport/websocket_channel.ts";
import { connectClient, testServer, until } from "./helpers/harness.ts";
import { ca, cert, key } from "./helpers/tls.ts";

/** A WebSocket speaking frames, as the page does. */
class WebProbe {
  readonly socket: WebSocket;
  readonly received: Record<string, unknown>[] = [];
  readonly #decoder = new FrameDecoder();
  closed = false;
  opened: Promise<boolean>;

  constructor(url: string, origin: string | null) {
    // Deno's WebSocket takes headers (a browser sets Origin itself).
    const init = origin === null ? {} : { headers: { origin } };
    this.socket = new (WebSocket as unknown as new (url: string, init: object) => WebSocket)(
      url,
      init,
    );
    this.socket.binaryType = "arraybuffer";
    this.opened = new Promise((resolve) => {
      this.socket.onopen = () => resolve(true);
      this.socket.onerror = () => resolve(false);
    });
    this.socket.onmessage = (event) => {
      for (const payload of this.#decoder.push(new Uint8Array(event.data as ArrayBuffer))) {
        this.received.push(decodePayload(payload).header);
      }
    };
    this.socket.onclose = () => this.closed = true;
  }

  send(header: object): void {
    this.socket.send(encodeFrame(header));
  }

  find(match: (h: Record<string, unknown>) => boolean, what: string) {
    return until(() => this.received.find(match), what, 15_000);
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    const done = new Promise<void>((resolve) =>
      this.socket.addEventListener("close", () => resolve())
    );
    this.socket.close();
    return done;
  }
}

function webUrl(server: ChatServer, path = "/"): string {
  return `http://127.0.0.1:${server.webAddr!.port}${path}`;
}

function wsUrl(server: ChatServer): string {
  return `ws://127.0.0.1:${server.webAddr!.port}/ws`;
}

Deno.test("web: the page is served with a strict Content-Security-Policy", async () => {
  const server = await testServer({ webPort: 0 });
  try {
    const page = await fetch(webUrl(server));
    assert.equal(page.status, 200);
    assert.equal(page.headers.get("content-security-policy"), CONTENT_SECURITY_POLICY);
    assert.match(page.headers.get("content-type")!, /text\/html/);
    const html = await page.text();
    assert.doesNotMatch(html, /<script>|<script [^>]*>[^<]/, "no inline script");
    const missing = await fetch(webUrl(server, "/nothing-here"));
    assert.equal(missing.status, 404);
    await missing.body?.cancel();
  } finally {
    await server.shutdown();
  }
});

Deno.test("web: a WebSocket user and a terminal user talk through the same hub", async () => {
  const server = await testServer({ webPort: 0 });
  const bob = await connectClient(server, "bob");
  const web = new WebProbe(wsUrl(server), `http://127.0.0.1:${server.webAddr!.port}`);
  try {
    assert.equal(await web.opened, true);
    web.send(clientHello(SERVER_FEATURES, "test-web"));
    await web.find((h) => h.type === "hello", "the server's hello");
    web.send({ type: "login", id: "1", nick: "alice", password: "password123", ack: true });
    await web.find((h) => h.type === "ok" && h.re === "1", "the login reply");
    const events = bob.events[Symbol.asyncIterator]();
    web.send({ type: "say", id: "2", room: "lobby", text: "hello from the web" });
    await web.find((h) => h.type === "ok" && h.re === "2", "the say reply");
    while (true) {
      const { value } = await events.next();
      if (value?.type === "msg" && value.text === "hello from the web") break;
    }
    await bob.dm("alice", "hello from the terminal");
    const dm = await web.find((h) => h.type === "dm", "bob's direct message");
    assert.equal(dm.text, "hello from the terminal");
    assert.equal(dm.from, "bob");
  } finally {
    await web.close();
    await bob.close();
    await server.shutdown();
  }
});

Deno.test("web: a WebSocket from another origin, or without one, is refused", async () => {
  const server = await testServer({ webPort: 0 });
  try {
    for (const origin of ["http://evil.example", null]) {
      const web = new WebProbe(wsUrl(server), origin);
      assert.equal(await web.opened, false, `origin ${origin} must be refused`);
      await until(() => web.closed || undefined, "the refused socket's close", 15_000);
    }
    assert.equal(server.hub.sessionCount, 0);
  } finally {
    await server.shutdown();
  }
});

Deno.test("web: WebSockets count against the connections per IP address", async () => {
  const server = await testServer({ webPort: 0, maxConnectionsPerIp: 1 });
  const origin = `http://127.0.0.1:${server.webAddr!.port}`;
  const first = new WebProbe(wsUrl(server), origin);
  let second: WebProbe | null = null;
  try {
    assert.equal(await first.opened, true);
    first.send(clientHello(SERVER_FEATURES, "test-web"));
    await first.find((h) => h.type === "hello", "the first socket's hello");
    second = new WebProbe(wsUrl(server), origin);
    const refused = await second.find((h) => h.type === "error", "the refusal");
    assert.equal(refused.code, "too_many_connections");
    await until(() => second!.closed || undefined, "the refused socket's close", 15_000);
  } finally {
    await first.close();
    await second?.close();
    await server.shutdown();
  }
});

Deno.test("web: with TLS the page is served over HTTPS with the server's certificate", async () => {
  const server = await testServer({ webPort: 0, tls: { cert, key } });
  const client = Deno.createHttpClient({ caCerts: [ca] });
  try {
    const page = await fetch(`https://127.0.0.1:${server.webAddr!.port}/`, { client });
    assert.equal(page.status, 200);
    assert.match(await page.text(), /<title>chat<\/title>/);
    await assert.rejects(() => fetch(`http://127.0.0.1:${server.webAddr!.port}/`));
  } finally {
    client.close();
    await server.shutdown();
  }
});

/**
 * A WebSocket spoken by hand over TCP, so that it can stop reading (a WebSocket object
 * reads on whatever its page does): the upgrade, then masked binary messages out.
 */
async function rawWebSocket(server: ChatServer): Promise<Deno.TcpConn> {
  const port = server.webAddr!.port;
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(new TextEncoder().encode(
    `GET /ws HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\n` +
      `Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n` +
      `Sec-WebSocket-Version: 13\r\nOrigin: http://127.0.0.1:${port}\r\n\r\n`,
  ));
  // Only the response's head, byte by byte: what follows it is left unread.
  let head = "";
  const byte = new Uint8Array(1);
  while (!head.endsWith("\r\n\r\n")) {
    if (await conn.read(byte) === null) throw new Error(`the upgrade ended early: ${head}`);
    head += String.fromCharCode(byte[0]);
  }
  assert.match(head, /^HTTP\/1\.1 101/);
  return conn;
}

/** One binary message from a client: masked (with a zero mask, so the bytes stay). */
function clientMessage(payload: Uint8Array): Uint8Array {
  assert.ok(payload.length < 65536);
  const head = payload.length < 126
    ? [0x82, 0x80 | payload.length]
    : [0x82, 0x80 | 126, payload.length >> 8, payload.length & 0xff];
  const out = new Uint8Array(head.length + 4 + payload.length);
  out.set(head);
  out.set(payload, head.length + 4);
  return out;
}

Deno.test("web: a WebSocket that stops reading is cut off as a slow consumer while the others keep chatting", async () => {
  // alice (TCP), bob and the sloth (WebSockets): every slot of 127.0.0.1.
  const server = await testServer({
    webPort: 0,
    maxQueueBytes: 256 * 1024,
    maxConnectionsPerIp: 3,
  });
  const origin = `http://127.0.0.1:${server.webAddr!.port}`;
  const bob = new WebProbe(wsUrl(server), origin);
  let sloth: Deno.TcpConn | null = null;
  try {
    await using alice = await connectClient(server, "alice");
    const events = alice.events[Symbol.asyncIterator]();
    assert.equal(await bob.opened, true);
    bob.send(clientHello(SERVER_FEATURES, "test-web"));
    bob.send({ type: "login", id: "1", nick: "bob", password: "password123" });
    await bob.find((h) => h.type === "ok" && h.re === "1", "bob's login");
    // Logs in, then never reads again.
    sloth = await rawWebSocket(server);
    await sloth.write(clientMessage(encodeFrame(clientHello(SERVER_FEATURES, "test-web"))));
    await sloth.write(
      clientMessage(
        encodeFrame({ type: "login", id: "1", nick: "sloth", password: "password123" }),
      ),
    );
    await nextEvent(events, (e) => e.type === "presence" && e.nick === "sloth" && e.online);
    const text = "z".repeat(3900);
    let cutOff = false;
    // Waited for over the whole loop below: a deadline for the loop, generous under load.
    const offline = nextEvent(
      events,
      (e) => e.type === "presence" && e.nick === "sloth" && !e.online,
      180_000,
    ).then(() => cutOff = true, (err) => {
      cutOff = true;
      throw err;
    });
    offline.catch(() => {});
    for (let i = 0; i < 4000 && !cutOff; i++) {
      await alice.say("lobby", `${i}-${text}`);
      await bob.find((h) => h.type === "msg" && h.text === `${i}-${text}`, `message ${i}`);
      bob.received.length = 0;
    }
    await offline;
    assert.ok(server.hub.metrics.counters.slowConsumerCutoffs >= 1);
    await alice.say("lobby", "after the cut");
    await bob.find(
      (h) => h.type === "msg" && h.text === "after the cut",
      "a message after the cut",
    );
    await until(
      () => server.connectionCount === 2 ? true : undefined,
      "the sloth's connection ended",
      30_000,
    );
    // Deno's WebSocket close waits for the writes in progress, so the runtime holds the
    // sloth's TCP connection until it reads or goes: until then it keeps its address's
    // slot (a stranger cannot pile up stalled sockets past the per-address cap).
    const refused = await connectClient(server, "carol").then(
      async (carol) => {
        await carol.close();
        return false;
      },
      () => true,
    );
    assert.ok(refused, "a fourth connection from 127.0.0.1 while the sloth's socket lingers");
    sloth.close();
    sloth = null;
    const deadline = Date.now() + 15_000;
    for (;;) {
      const carol = await connectClient(server, "carol").catch(() => null);
      if (carol !== null) {
        await carol.close();
        break;
      }
      assert.ok(
        Date.now() < deadline,
        "no connection from 127.0.0.1 once the sloth's socket is gone",
      );
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  } finally {
    sloth?.close();
    await bob.close();
    await server.shutdown();
  }
});

/**
 * The server-to-client messages of a WebSocket spoken by hand, read from `conn`: each
 * message's size, and the frames their payloads carry (decoded as the page does), until
 * `done` says so.
 */
async function readMessages(
  conn: Deno.TcpConn,
  done: (frames: Record<string, unknown>[]) => boolean,
): Promise<{ sizes: number[]; frames: Record<string, unknown>[] }> {
  const sizes: number[] = [];
  const frames: Record<string, unknown>[] = [];
  const decoder = new FrameDecoder({ maxFrameSize: 64 * 1024 * 1024 });
  let pending = new Uint8Array(0);
  const buffer = new Uint8Array(256 * 1024);
  while (!done(frames)) {
    const n = await conn.read(buffer);
    if (n === null) throw new Error("the server closed the WebSocket");
    const data = new Uint8Array(pending.length + n);
    data.set(pending);
    data.set(buffer.subarray(0, n), pending.length);
    let o = 0;
    while (o + 2 <= data.length) {
      // Server frames: FIN, binary, not masked; 7-bit, 16-bit or 64-bit lengths.
      assert.equal(data[o], 0x82, `a message that is not one binary frame: ${data[o]}`);
      let size = data[o + 1];
      let head = 2;
      if (size === 126) [size, head] = [(data[o + 2] << 8) | data[o + 3], 4];
      else if (size === 127) {
        size = 0;
        for (let i = 2; i < 10; i++) size = size * 256 + data[o + i];
        head = 10;
      }
      if (o + head + size > data.length) break;
      sizes.push(size);
      for (const payload of decoder.push(data.slice(o + head, o + head + size))) {
        frames.push(decodePayload(payload).header);
      }
      o += head + size;
    }
    pending = data.slice(o);
  }
  return { sizes, frames };
}

Deno.test("web: what piles up for a WebSocket that reads late comes as messages of at most 64 KiB, every frame whole and in order", async () => {
  // Nobody is cut off here: the queue holds everything, the write deadline is long.
  const server = await testServer({
    webPort: 0,
    maxQueueBytes: 64 * 1024 * 1024,
    writeTimeoutMs: 300_000,
  });
  let late: Deno.TcpConn | null = null;
  try {
    await using alice = await connectClient(server, "alice");
    const events = alice.events[Symbol.asyncIterator]();
    late = await rawWebSocket(server);
    await late.write(clientMessage(encodeFrame(clientHello(SERVER_FEATURES, "test-web"))));
    await late.write(
      clientMessage(encodeFrame({ type: "login", id: "1", nick: "late", password: "password123" })),
    );
    await nextEvent(events, (e) => e.type === "presence" && e.nick === "late" && e.online);
    // About 12 MB while it reads nothing: more than the kernel's buffers and the
    // runtime's (256 KiB) hold, so most of it waits in the server's outbound queue.
    const texts = Array.from({ length: 3000 }, (_, i) => `${i}:${"w".repeat(3900)}`);
    for (let i = 0; i < texts.length; i += 100) {
      await Promise.all(texts.slice(i, i + 100).map((text) => alice.say("lobby", text)));
    }
    const last = texts.at(-1);
    const { sizes, frames } = await readMessages(
      late,
      (got) => got.at(-1)?.type === "msg" && got.at(-1)?.text === last,
    );
    const got = frames.filter((h) => h.type === "msg").map((h) => h.text);
    assert.deepEqual(got, texts);
    const largest = Math.max(...sizes);
    assert.ok(largest <= MAX_MESSAGE_BYTES, `a WebSocket message of ${largest} bytes`);
    assert.ok(sizes.length < frames.length, `${sizes.length} messages for ${frames.length} frames`);
  } finally {
    late?.close();
    await server.shutdown();
  }
});
