/**
 * The browser client's server side, without a browser: the page is served with its
 * security headers, a WebSocket from the page's own origin speaks the TCP protocol's
 * frames to the same hub as a terminal client, a foreign origin is refused, and the
 * connection caps count WebSockets.
 */

import assert from "node:assert/strict";
import { decodePayload, encodeFrame, FrameDecoder } from "../protocol/frame.ts";
import { clientHello, SERVER_FEATURES } from "../protocol/hello.ts";
import type { ChatServer } from "../server/server.ts";
import { CONTENT_SECURITY_POLICY } from "../server/web_server.ts";
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
