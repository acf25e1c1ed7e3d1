import assert from "node:assert/strict";
import { ChatError } from "../client/chat_error.ts";
import { KnownServers } from "../client/known_servers.ts";
import { certificateFingerprint } from "./serve.ts";
import { cert, key, selfSignedCert, selfSignedKey } from "../tests/helpers/tls.ts";
import {
  connectTrusting,
  connectTrustingAll,
  type TlsChoice,
  TrustError,
  type TrustListSetup,
  type TrustSetup,
} from "./connect_trust.ts";

/** A TLS listener that completes handshakes and hangs up. */
function tlsServer(tls: { cert: string; key: string }) {
  const listener = Deno.listenTls({ hostname: "127.0.0.1", port: 0, ...tls });
  const done = (async () => {
    for await (const conn of listener) {
      conn.handshake().catch(() => {}).finally(() => conn.close());
    }
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    async close() {
      listener.close();
      await done;
    },
  };
}

/** A trust setup around a fresh known-servers file; records questions and warnings. */
async function setupFor(port: number, answer: string | null, extra: Partial<TrustSetup> = {}) {
  const dir = await Deno.makeTempDir();
  const asked: string[] = [];
  const warned: string[] = [];
  const choices: TlsChoice[] = [];
  const setup: TrustSetup = {
    host: "127.0.0.1",
    port,
    known: new KnownServers(`${dir}/known_servers`),
    interactive: answer !== null,
    ask: (question) => {
      asked.push(question);
      return Promise.resolve(answer ?? "");
    },
    warn: (text) => warned.push(text),
    ...extra,
  };
  const connect = (tls: TlsChoice) => {
    choices.push(tls);
    return Promise.resolve("connected");
  };
  return { dir, setup, asked, warned, choices, connect };
}

Deno.test("first use: a yes pins and remembers the certificate; a no refuses", async () => {
  const server = tlsServer({ cert: selfSignedCert, key: selfSignedKey });
  const fingerprint = (await certificateFingerprint(selfSignedCert))!;
  const yes = await setupFor(server.port, "yes");
  const no = await setupFor(server.port, "n");
  try {
    assert.equal(await connectTrusting(yes.setup, yes.connect), "connected");
    assert.deepEqual(yes.choices, [{ fingerprint }]);
    assert.equal(yes.asked.length, 1);
    assert.match(yes.asked[0]!, /^Trust this certificate and remember it in .*known_servers\?/);
    assert.match(yes.warned[0]!, new RegExp(`SHA-256 fingerprint: ${fingerprint}`));
    assert.match(yes.warned[1]!, /is trusted from now on; remembered in/);
    assert.equal(
      (await yes.setup.known!.lookup("127.0.0.1", server.port))?.fingerprint,
      fingerprint,
    );

    await assert.rejects(connectTrusting(no.setup, no.connect), (err: unknown) => {
      assert.ok(err instanceof TrustError);
      assert.equal(err.code, "not_trusted");
      return true;
    });
    assert.deepEqual(no.choices, [], "nothing was sent to the server");
    assert.equal(await no.setup.known!.lookup("127.0.0.1", server.port), undefined);
  } finally {
    await server.close();
    for (const s of [yes, no]) await Deno.remove(s.dir, { recursive: true });
  }
});

Deno.test("first use in a script: refused with the fingerprint to pass", async () => {
  const server = tlsServer({ cert: selfSignedCert, key: selfSignedKey });
  const fingerprint = (await certificateFingerprint(selfSignedCert))!;
  const script = await setupFor(server.port, null);
  try {
    await assert.rejects(connectTrusting(script.setup, script.connect), (err: unknown) => {
      assert.ok(err instanceof TrustError);
      assert.equal(err.code, "certificate_untrusted");
      assert.ok(err.message.includes(`--trust-fingerprint ${fingerprint}`), err.message);
      return true;
    });
    assert.deepEqual(script.asked, []);
    assert.deepEqual(script.choices, []);
  } finally {
    await server.close();
    await Deno.remove(script.dir, { recursive: true });
  }
});

Deno.test("a known server: pinned quietly; another certificate is refused before connecting", async () => {
  const server = tlsServer({ cert, key });
  const known = (await certificateFingerprint(cert))!;
  const other = (await certificateFingerprint(selfSignedCert))!;
  const same = await setupFor(server.port, "yes");
  const changed = await setupFor(server.port, "yes");
  try {
    await same.setup.known!.remember("127.0.0.1", server.port, known);
    assert.equal(await connectTrusting(same.setup, same.connect), "connected");
    assert.deepEqual(same.choices, [{ fingerprint: known }]);
    assert.deepEqual([same.asked, same.warned], [[], []]);

    await changed.setup.known!.remember("127.0.0.1", server.port, other);
    await assert.rejects(connectTrusting(changed.setup, changed.connect), (err: unknown) => {
      assert.ok(err instanceof TrustError);
      assert.equal(err.code, "certificate_changed");
      return true;
    });
    assert.deepEqual(changed.choices, [], "refused before the login");
    assert.deepEqual(changed.asked, [], "a changed certificate is not a question");
    assert.match(changed.warned[0]!, /WARNING: THE CERTIFICATE OF 127\.0\.0\.1:\d+ HAS CHANGED!/);
    assert.ok(changed.warned[0]!.includes(`SHA-256 ${known}`));
    assert.ok(changed.warned[0]!.includes(`SHA-256 ${other}`));
    assert.equal(
      (await changed.setup.known!.lookup("127.0.0.1", server.port))?.fingerprint,
      other,
      "the remembered certificate is kept",
    );
  } finally {
    await server.close();
    for (const s of [same, changed]) await Deno.remove(s.dir, { recursive: true });
  }
});

Deno.test("--ca and --trust-fingerprint decide without asking", async () => {
  const server = tlsServer({ cert, key });
  const ca = await setupFor(server.port, null, { caCerts: ["PEM"] });
  const flag = await setupFor(server.port, null, { fingerprint: "AB" });
  try {
    await connectTrusting(ca.setup, ca.connect);
    assert.deepEqual(ca.choices, [{ caCerts: ["PEM"] }]);
    assert.deepEqual(await ca.setup.known!.entries(), [], "a CA-verified server is not pinned");
    const fingerprint = (await certificateFingerprint(cert))!;
    flag.setup.fingerprint = fingerprint;
    await connectTrusting(flag.setup, flag.connect);
    assert.deepEqual(flag.choices, [{ fingerprint }]);
    assert.equal(
      (await flag.setup.known!.lookup("127.0.0.1", server.port))?.fingerprint,
      fingerprint,
    );
  } finally {
    await server.close();
    for (const s of [ca, flag]) await Deno.remove(s.dir, { recursive: true });
  }
});

Deno.test("a server that cannot be reached is left to the connection attempts", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const down = await setupFor(port, "yes");
  try {
    const failure = new Error("cannot connect", {
      cause: new ChatError("connect_failed", "refused"),
    });
    await assert.rejects(
      connectTrusting(down.setup, (tls) => {
        down.choices.push(tls);
        return Promise.reject(failure);
      }),
      (err: unknown) => err === failure,
    );
    assert.deepEqual(down.choices, [true], "the system's CAs, with the usual retries");
    assert.deepEqual(down.asked, []);
  } finally {
    await Deno.remove(down.dir, { recursive: true });
  }
});

Deno.test("a server list: each address pinned on its own; one certificate asked about once", async () => {
  const a = tlsServer({ cert, key });
  const b = tlsServer({ cert: selfSignedCert, key: selfSignedKey });
  const c = tlsServer({ cert: selfSignedCert, key: selfSignedKey });
  const down = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const d = (down.addr as Deno.NetAddr).port;
  down.close();
  const fa = (await certificateFingerprint(cert))!;
  const fb = (await certificateFingerprint(selfSignedCert))!;
  const at = (port: number) => ({ host: "127.0.0.1", port });
  const servers = [at(a.port), at(b.port), at(c.port), at(d)];
  const list = async (answer: string | null, extra: Partial<TrustListSetup> = {}) => {
    const one = await setupFor(0, answer);
    const { host: _h, port: _p, ...rest } = one.setup;
    const choices: TlsChoice[][] = [];
    const setup: TrustListSetup = { ...rest, servers, ...extra };
    const connect = (tls: TlsChoice[]) => {
      choices.push(tls);
      return Promise.resolve("connected");
    };
    return { ...one, setup, choices, connect };
  };
  const pinned = await list("yes");
  const changed = await list("yes");
  const flag = await list(null, { fingerprint: fb });
  try {
    // A is known; B and C present one certificate nobody vouches for; D is down.
    await pinned.setup.known!.remember("127.0.0.1", a.port, fa);
    assert.equal(
      await connectTrustingAll(pinned.setup, pinned.connect, () => at(b.port)),
      "connected",
    );
    assert.deepEqual(pinned.choices, [[{ fingerprint: fa }, { fingerprint: fb }, {
      fingerprint: fb,
    }, true]]);
    assert.equal(pinned.asked.length, 1, "the same certificate is asked about once");
    assert.ok(pinned.warned[0]!.includes(`127.0.0.1:${b.port}`), pinned.warned[0]);
    const expected: [number, string | undefined][] = [
      [a.port, fa],
      [b.port, fb],
      [c.port, fb],
      [d, undefined],
    ];
    for (const [port, fingerprint] of expected) {
      assert.equal(
        (await pinned.setup.known!.lookup("127.0.0.1", port))?.fingerprint,
        fingerprint,
        `port ${port}`,
      );
    }

    // A's remembered certificate is not the one it presents: refused, naming A.
    await changed.setup.known!.remember("127.0.0.1", a.port, fb);
    await assert.rejects(
      connectTrustingAll(changed.setup, changed.connect, () => at(a.port)),
      (err: unknown) => err instanceof TrustError && err.code === "certificate_changed",
    );
    assert.deepEqual(changed.choices, [], "refused before the login");
    assert.match(changed.warned[0]!, new RegExp(`CERTIFICATE OF 127\\.0\\.0\\.1:${a.port} HAS`));

    // --trust-fingerprint pins every address; it is remembered for the one connected to.
    await connectTrustingAll(flag.setup, flag.connect, () => at(c.port));
    assert.deepEqual(flag.choices, [servers.map(() => ({ fingerprint: fb }))]);
    assert.equal((await flag.setup.known!.lookup("127.0.0.1", c.port))?.fingerprint, fb);
    assert.equal(await flag.setup.known!.lookup("127.0.0.1", b.port), undefined);
  } finally {
    for (const server of [a, b, c]) await server.close();
    for (const s of [pinned, changed, flag]) await Deno.remove(s.dir, { recursive: true });
  }
});
