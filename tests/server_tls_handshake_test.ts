/**
 * TLS connections that never finish their handshake: closed at the handshake deadline,
 * their sockets released, and counted against the per-address cap until then.
 */

import assert from "node:assert/strict";
import type { ChatServer } from "../server/server.ts";
import { Probe, testServer } from "./helpers/harness.ts";
import { ca, cert, key } from "./helpers/tls.ts";

/** The first bytes of a TLS ClientHello record announcing 200 bytes, and no more. */
const HALF_CLIENT_HELLO = new Uint8Array([0x16, 0x03, 0x01, 0x00, 0xc8, 0x01, 0x00, 0x00]);

/** Resolves with what the server does with a raw connection: "eof" once it closes it. */
async function outcome(conn: Deno.TcpConn, ms: number): Promise<"eof" | "open"> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const stillOpen = new Promise<"open">((resolve) => timer = setTimeout(() => resolve("open"), ms));
  const read = (async () => {
    const buffer = new Uint8Array(1024);
    try {
      while ((await conn.read(buffer)) !== null) { /* an alert, say */ }
    } catch {
      // reset: closed too
    }
    return "eof" as const;
  })();
  try {
    return await Promise.race([read, stillOpen]);
  } finally {
    clearTimeout(timer);
  }
}

/** Dials with TLS, says hello and logs in; returns the probe and the login reply. */
async function tlsLogin(server: ChatServer, nick: string) {
  const probe = await Probe.dial(server, { caCerts: [ca] });
  await probe.hello();
  return { probe, reply: await probe.request("login", { nick, password: "password123" }) };
}

Deno.test("TLS: a handshake that never finishes is closed at its deadline, its address's slot freed", async () => {
  const server = await testServer({
    tls: { cert, key },
    tlsHandshakeTimeoutMs: 400,
    maxConnectionsPerIp: 2,
    metricsPort: 0,
  });
  const silent = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
  const half = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
  try {
    await half.write(HALF_CLIENT_HELLO);
    // Until the deadline both count against 127.0.0.1's two connections.
    const early = await Probe.dial(server, { caCerts: [ca] });
    const refused = await early.expect({ type: "error", code: "too_many_connections" });
    assert.match(String(refused.message), /too many connections from 127\.0\.0\.1/);
    early.close();
    // Then the server closes both: their reads end.
    const [a, b] = await Promise.all([outcome(silent, 5000), outcome(half, 5000)]);
    assert.deepEqual([a, b], ["eof", "eof"], "the stalled handshakes were not closed");
    // And the address may connect again.
    const { probe, reply } = await tlsLogin(server, "alice");
    assert.equal(reply.type, "ok", JSON.stringify(reply));
    await probe.ok("ping");
    probe.close();
    const metrics = await (await fetch(`http://127.0.0.1:${server.metricsAddr!.port}/metrics`))
      .text();
    assert.match(metrics, /^chat_tls_handshake_failures_total 2$/m);
  } finally {
    silent.close();
    half.close();
    await server.shutdown();
  }
});

Deno.test("TLS: clients that finish their handshake chat as before", async () => {
  const server = await testServer({ tls: { cert, key }, tlsHandshakeTimeoutMs: 400 });
  try {
    const alice = await tlsLogin(server, "alice");
    const bob = await tlsLogin(server, "bob");
    assert.equal(alice.reply.type, "ok");
    assert.equal(bob.reply.type, "ok");
    const text = "y".repeat(100_000);
    await alice.probe.ok("say", { room: "lobby", text: "over TLS" });
    await bob.probe.expect({ type: "msg", text: "over TLS" });
    // A large frame both ways (read and written in many pieces) crosses intact.
    const big = await alice.probe.request("unknown_but_large", { pad: text });
    assert.equal(big.code, "unknown_command");
    await alice.probe.ok("ping");
    alice.probe.close();
    bob.probe.close();
  } finally {
    await server.shutdown();
  }
});
