import assert from "node:assert/strict";
import { ca, cert, key, selfSignedCert, selfSignedKey } from "../tests/helpers/tls.ts";
import { certificateFingerprint } from "../cli/serve.ts";
import { FramedConnection } from "../transport/framed_connection.ts";
import {
  dialPinned,
  normalizeFingerprint,
  PinnedTlsError,
  probeCertificate,
} from "./pinned_tls.ts";

function tlsEchoServer(
  tls: { cert: string; key: string } = { cert, key },
): { port: number; done: Promise<void>; close(): void } {
  const listener = Deno.listenTls({ hostname: "127.0.0.1", port: 0, ...tls });
  const done = (async () => {
    for await (const conn of listener) {
      const framed = new FramedConnection(conn);
      (async () => {
        try {
          for await (const frame of framed) framed.send({ ...frame.header, echoed: true });
        } catch {
          // a refused client hangs up mid-handshake
        } finally {
          framed.abort();
        }
      })();
    }
  })().catch(() => {});
  return { port: (listener.addr as Deno.NetAddr).port, done, close: () => listener.close() };
}

Deno.test("normalizeFingerprint accepts hex with or without colons, any case", () => {
  const upper = Array.from({ length: 32 }, (_, i) => i.toString(16).padStart(2, "0")).join(":")
    .toUpperCase();
  assert.equal(normalizeFingerprint(upper.toLowerCase()), upper);
  assert.equal(normalizeFingerprint(upper.replaceAll(":", "")), upper);
  assert.throws(() => normalizeFingerprint("AB:CD"), PinnedTlsError);
  assert.throws(() => normalizeFingerprint("zz".repeat(32)), PinnedTlsError);
});

Deno.test("dialPinned accepts the pinned certificate and carries frames both ways", async () => {
  const server = tlsEchoServer();
  try {
    const fingerprint = (await certificateFingerprint(cert))!;
    const channel = await dialPinned({ host: "127.0.0.1", port: server.port, fingerprint });
    const framed = new FramedConnection(channel);
    framed.send({ type: "ping", id: "1", pad: "x".repeat(100_000) });
    const frames = framed[Symbol.asyncIterator]();
    const reply = await frames.next();
    assert.equal(reply.done, false);
    assert.equal(reply.value!.header.echoed, true);
    assert.equal((reply.value!.header.pad as string).length, 100_000);
    framed.abort();
  } finally {
    server.close();
    await server.done;
  }
});

Deno.test("dialPinned refuses any other certificate, even a CA-valid one", async () => {
  const server = tlsEchoServer();
  try {
    const other = (await certificateFingerprint(ca))!; // not the server's certificate
    await assert.rejects(
      dialPinned({ host: "127.0.0.1", port: server.port, fingerprint: other }),
      (err: unknown) => {
        assert.ok(err instanceof PinnedTlsError);
        assert.equal(err.code, "fingerprint_mismatch");
        assert.match(err.message, /not the trusted/);
        assert.equal(err.presented, normalizeFingerprint(err.presented ?? ""));
        assert.notEqual(err.presented, other);
        return true;
      },
    );
  } finally {
    server.close();
    await server.done;
  }
});

Deno.test("probeCertificate shows the certificate a server presents, trusted or not", async () => {
  const server = tlsEchoServer({ cert: selfSignedCert, key: selfSignedKey });
  try {
    const seen = await probeCertificate({ host: "127.0.0.1", port: server.port });
    assert.equal(seen.fingerprint, await certificateFingerprint(selfSignedCert));
    assert.equal(seen.subject, "localhost");
    assert.equal(seen.issuer, "localhost");
    assert.match(seen.untrustedBecause ?? "", /SELF_SIGNED/);
    // The fingerprint it shows is the one a pinned dial then accepts.
    const channel = await dialPinned({
      host: "127.0.0.1",
      port: server.port,
      fingerprint: seen.fingerprint,
    });
    channel.close();
  } finally {
    server.close();
    await server.done;
  }
});

Deno.test("probeCertificate of a port without TLS fails with tls_failed", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const accepting = (async () => {
    for await (const conn of listener) conn.close(); // not TLS: hangs up at once
  })().catch(() => {});
  try {
    await assert.rejects(probeCertificate({ host: "127.0.0.1", port }), (err: unknown) => {
      assert.ok(err instanceof PinnedTlsError);
      assert.equal(err.code, "tls_failed");
      return true;
    });
  } finally {
    listener.close();
    await accepting;
  }
});
