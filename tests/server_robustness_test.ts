import assert from "node:assert/strict";
import { ca, cert, key } from "./helpers/tls.ts";
import { delay, Probe, withServer } from "./helpers/harness.ts";
import { FramedConnection } from "../transport/framed_connection.ts";
import { plainIp } from "../server/server.ts";

function rawFrame(payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + payload.length);
  new DataView(out.buffer).setUint32(0, payload.length);
  out.set(payload, 4);
  return out;
}

function headerPayload(json: string | Uint8Array): Uint8Array {
  const bytes = typeof json === "string" ? new TextEncoder().encode(json) : json;
  const out = new Uint8Array(4 + bytes.length);
  new DataView(out.buffer).setUint32(0, bytes.length);
  out.set(bytes, 4);
  return out;
}

Deno.test("robustness: malformed frames get an error frame with the code, then the close", async () => {
  await withServer(async (server) => {
    await using bystander = await Probe.login(server, "bystander");
    const cases: [string, Uint8Array][] = [
      ["bad_json", rawFrame(headerPayload("{not json"))],
      ["bad_json", rawFrame(headerPayload("[1,2,3]"))],
      ["bad_utf8", rawFrame(headerPayload(new Uint8Array([0x7b, 0xff, 0xfe, 0x7d])))],
      ["bad_frame", rawFrame(new Uint8Array([0, 0, 0, 99, 1, 2]))],
      ["bad_frame", rawFrame(new Uint8Array([1]))],
      ["frame_too_large", new Uint8Array([0xff, 0xff, 0xff, 0xff, 1, 2, 3])],
    ];
    for (const [code, bytes] of cases) {
      await using probe = await Probe.login(server, `victim${code.length}${bytes.length}`);
      probe.sendRaw(bytes);
      const error = await probe.expect({ type: "error" });
      assert.equal(error.code, code, JSON.stringify(error));
      await probe.closed();
    }
    // The server keeps serving the others.
    await bystander.ok("say", { room: "lobby", text: "still here" });
  });
});

Deno.test("robustness: frames over --max-frame are refused from the length alone", async () => {
  await withServer(async (server) => {
    await using probe = await Probe.login(server, "big");
    probe.send({ type: "say", id: "x", room: "lobby", text: "y".repeat(5000) });
    const error = await probe.expect({ type: "error" });
    assert.equal(error.code, "frame_too_large");
    await probe.closed();
    // Before login the limit is tighter still (64 KiB), whatever --max-frame says.
  }, { maxFrameSize: 4096 });
});

Deno.test("robustness: unknown commands and bad fields get an error; the connection stays", async () => {
  await withServer(async (server) => {
    await using probe = await Probe.login(server, "curious");
    const unknown = await probe.request("teleport", { to: "mars" });
    assert.equal(unknown.type, "error");
    assert.equal(unknown.code, "unknown_command");
    assert.match(String(unknown.message), /teleport/);
    const bad = await probe.request("say", { room: 42, text: null });
    assert.equal(bad.code, "bad_message");
    probe.send({ type: 7 });
    assert.equal((await probe.expect({ type: "error" })).code, "bad_message");
    probe.send({ type: "hello", v: 1, features: [] });
    assert.equal((await probe.expect({ type: "error" })).code, "bad_message");
    await probe.ok("ping");
    assert.equal(probe.ended, false);
  });
});

Deno.test("robustness: random garbage never stops the server", async () => {
  await withServer(async (server) => {
    await using alice = await Probe.login(server, "alice");
    let seed = 12345;
    const next = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff);
    for (let i = 0; i < 20; i++) {
      await using probe = await Probe.dial(server);
      const bytes = new Uint8Array(1 + (next() % 300));
      for (let j = 0; j < bytes.length; j++) bytes[j] = next() & 0xff;
      probe.sendRaw(bytes);
      await delay(5);
    }
    await alice.ok("say", { room: "lobby", text: "fine" });
  });
});

Deno.test("robustness: a vanished client is a logout; presence goes out", async () => {
  await withServer(async (server) => {
    await using alice = await Probe.login(server, "alice");
    const bob = await Probe.login(server, "bob");
    bob.close();
    await alice.expect({ type: "presence", nick: "bob", online: false });
    assert.deepEqual((await alice.ok("who")).users, ["alice"]);
  });
});

Deno.test("robustness: a connection that never logs in is closed at the deadline", async () => {
  await withServer(async (server) => {
    await using silent = await Probe.dial(server);
    await using halfway = await Probe.dial(server);
    await halfway.hello();
    await silent.closed(3000);
    await halfway.closed(3000);
    const error = halfway.received.find((m) => m.type === "error");
    assert.equal(error?.code, "not_logged_in");
  }, { loginTimeoutMs: 500 });
});

Deno.test("robustness: a client that stops reading is cut off while others keep chatting", async () => {
  await withServer(async (server) => {
    await using alice = await Probe.login(server, "alice");
    await using bob = await Probe.login(server, "bob");
    // A raw client that logs in and then never reads again.
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
    const hello = { type: "hello", v: 1, features: [] };
    const login = { type: "login", id: "1", nick: "sloth", password: "password123" };
    for (const header of [hello, login]) {
      await conn.write(rawFrame(headerPayload(JSON.stringify(header))));
    }
    await alice.expect({ type: "presence", nick: "sloth", online: true });
    const text = "z".repeat(3900);
    let cutOff = false;
    for (let i = 0; i < 2000 && !cutOff; i++) {
      await alice.ok("say", { room: "lobby", text: `${i} ${text}` });
      await bob.expect({ type: "msg", from: "alice" });
      if (i % 20 === 0) {
        cutOff = alice.received.some((m) =>
          m.type === "presence" && m.nick === "sloth" && !m.online
        );
      }
    }
    await alice.expect({ type: "presence", nick: "sloth", online: false }, 5000);
    // The sloth's last frame, once it reads again, says why it was cut off.
    const framed = new FramedConnection(conn, { maxFrameSize: 16 * 1024 * 1024 });
    let last: Record<string, unknown> | undefined;
    for await (const frame of framed) last = frame.header;
    assert.equal(last?.type, "notice");
    assert.equal(last?.code, "slow_consumer");
    await alice.ok("say", { room: "lobby", text: "after the cut" });
    await bob.expect({ type: "msg", text: "after the cut" });
  }, { maxQueueBytes: 256 * 1024 });
});

Deno.test("TLS: the server serves TLS and clients verify it against the CA", async () => {
  await withServer(async (server) => {
    assert.equal(server.tls, true);
    await using alice = await Probe.dial(server, { caCerts: [ca] });
    await alice.hello();
    await alice.ok("login", { nick: "alice", password: "password123" });
    await using bob = await Probe.dial(server, { caCerts: [ca] });
    await bob.hello();
    await bob.ok("login", { nick: "bob", password: "password123" });
    await alice.ok("dm", { to: "bob", text: "over TLS" });
    await bob.expect({ type: "dm", text: "over TLS" });
    // A client that does not trust the certificate fails the handshake; the server goes on.
    await assert.rejects(Probe.dial(server, { caCerts: [] }));
    await alice.ok("ping");
  }, { tls: { cert, key } });
});

Deno.test("addresses: IPv4-mapped IPv6 client addresses are written as plain IPv4", () => {
  assert.equal(plainIp("::ffff:192.0.2.7"), "192.0.2.7");
  assert.equal(plainIp("::FFFF:10.0.0.1"), "10.0.0.1");
  assert.equal(plainIp("2001:db8::1"), "2001:db8::1");
  assert.equal(plainIp("127.0.0.1"), "127.0.0.1");
});
