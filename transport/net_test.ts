import assert from "node:assert/strict";
import { ca, cert, key } from "../tests/helpers/tls.ts";
import { dial, DialError, listen, tuneAccepted } from "./net.ts";

async function exchange(a: Deno.Conn, b: Deno.Conn): Promise<void> {
  await a.write(new Uint8Array([1, 2, 3]));
  const buf = new Uint8Array(8);
  assert.equal(await b.read(buf), 3);
  assert.deepEqual(buf.subarray(0, 3), new Uint8Array([1, 2, 3]));
  await b.write(new Uint8Array([4]));
  assert.equal(await a.read(buf), 1);
  assert.equal(buf[0], 4);
}

Deno.test("listen and dial over TCP on an ephemeral loopback port", async () => {
  const listener = listen({ host: "127.0.0.1", port: 0 });
  const addr = listener.addr as Deno.NetAddr;
  assert.equal(addr.hostname, "127.0.0.1");
  assert.ok(addr.port > 0);
  const accepted = listener.accept();
  const client = await dial({ port: addr.port }); // host defaults to 127.0.0.1
  const server = await accepted;
  tuneAccepted(server);
  assert.equal((client.remoteAddr as Deno.NetAddr).port, addr.port);
  await exchange(client, server);
  await exchange(server, client);
  client.close();
  server.close();
  listener.close();
});

Deno.test("listen and dial over TLS with the test CA, by IP and by name", async () => {
  const listener = listen({ host: "127.0.0.1", port: 0, tls: { cert, key } });
  const port = (listener.addr as Deno.NetAddr).port;
  for (const tls of [{ caCerts: [ca] }, { caCerts: [ca], serverName: "localhost" }]) {
    const accepted = listener.accept();
    const client = await dial({ port, tls });
    const server = await accepted;
    tuneAccepted(server); // a TLS connection is tuned where possible, never an error
    await exchange(client, server);
    client.close();
    server.close();
  }
  listener.close();
});

Deno.test("dial over TLS refuses a certificate it cannot verify", async () => {
  const listener = listen({ host: "127.0.0.1", port: 0, tls: { cert, key } });
  const port = (listener.addr as Deno.NetAddr).port;
  const cases = [
    { tls: true as const, why: /UnknownIssuer|certificate/i }, // system roots only
    { tls: { caCerts: [ca], serverName: "example.com" }, why: /NotValidForName|certificate/i },
  ];
  for (const { tls, why } of cases) {
    const accepted = listener.accept();
    await assert.rejects(dial({ port, tls }), (err: unknown) => {
      assert.ok(err instanceof Error);
      assert.match(err.message, why);
      return true;
    });
    const server = await accepted;
    // The server side sees the failed handshake as an error on first use.
    await assert.rejects(server.read(new Uint8Array(1)));
    server.close();
  }
  listener.close();
});

Deno.test("dial to a closed port is refused", async () => {
  const listener = listen({ host: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  await assert.rejects(dial({ port }), (err: unknown) => {
    assert.ok(err instanceof DialError);
    assert.equal(err.code, "connect_failed");
    assert.ok(err.cause instanceof Deno.errors.ConnectionRefused);
    return true;
  });
});

Deno.test("dial over TLS to a server that does not speak TLS fails with not_tls", async () => {
  const listener = listen({ host: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const answering = (async () => {
    const conn = await listener.accept();
    await conn.read(new Uint8Array(1024)); // the TLS client hello
    await conn.write(new Uint8Array([0, 0, 0, 8, 0, 0, 0, 2, 123, 125, 0, 0])); // a frame
    conn.close();
  })();
  await assert.rejects(dial({ port, tls: { caCerts: [ca] } }), (err: unknown) => {
    assert.ok(err instanceof DialError);
    assert.equal(err.code, "not_tls", err.message);
    return true;
  });
  await answering;
  listener.close();
});

Deno.test({
  name: "a refused TLS dial leaks no socket",
  ignore: Deno.build.os !== "linux", // counts open descriptors in /proc/self/fd
  async fn() {
    const openFds = () => Array.from(Deno.readDirSync("/proc/self/fd")).length;
    const listener = listen({ host: "127.0.0.1", port: 0, tls: { cert, key } });
    const port = (listener.addr as Deno.NetAddr).port;
    const before = openFds();
    // 20 refused dials: a leak would keep 20 sockets open. Other activity in this
    // process (the runtime, the test runner) may move the count by a few.
    for (let i = 0; i < 20; i++) {
      const accepted = listener.accept();
      await assert.rejects(dial({ port, tls: true }));
      const server = await accepted;
      await assert.rejects(server.read(new Uint8Array(1)));
      server.close();
    }
    const grown = openFds() - before;
    assert.ok(grown < 10, `${grown} descriptors more after 20 refused dials`);
    listener.close();
  },
});
