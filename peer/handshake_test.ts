import assert from "node:assert/strict";
import { decodeFrame, encodeFrame } from "../protocol/frame.ts";
import type { ByteChannel } from "../transport/framed_connection.ts";
import { PeerError } from "./errors.ts";
import { type HandshakeResult, MAX_HELLO_BYTES, performHandshake } from "./handshake.ts";
import { memoryChannelPair } from "./memory_channel.ts";
import { PEER_PROTOCOL_VERSION, PEER_SUITE } from "./messages.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

function isPeerError(code: string): (err: unknown) => boolean {
  return (err) => {
    assert.ok(err instanceof PeerError, `expected a PeerError, got ${err}`);
    assert.equal(err.code, code, err.message);
    return true;
  };
}

async function settle<T>(p: Promise<T>): Promise<T | PeerError> {
  try {
    return await p;
  } catch (err) {
    assert.ok(err instanceof PeerError, String(err));
    return err;
  }
}

/** Reads one whole plaintext frame from a raw channel (test side of a fake peer). */
async function readFrame(channel: ByteChannel): Promise<Record<string, unknown> | null> {
  const chunks: number[] = [];
  const buffer = new Uint8Array(MAX_HELLO_BYTES);
  while (true) {
    if (chunks.length >= 4) {
      const length = new DataView(new Uint8Array(chunks.slice(0, 4)).buffer).getUint32(0);
      if (chunks.length >= 4 + length) {
        return decodeFrame(new Uint8Array(chunks.slice(0, 4 + length))).header;
      }
    }
    const n = await channel.read(buffer);
    if (n === null) return null;
    chunks.push(...buffer.subarray(0, n));
  }
}

function lowOrderKey(): string {
  const bytes = new Uint8Array(32).fill(0xff);
  bytes[0] = 0xec;
  bytes[31] = 0x7f;
  return bytes.toBase64({ alphabet: "base64url", omitPadding: true });
}

function fakeHello(overrides: Record<string, unknown> = {}): Uint8Array {
  const key = crypto.getRandomValues(new Uint8Array(32)).toBase64({
    alphabet: "base64url",
    omitPadding: true,
  });
  return encodeFrame({
    type: "peer_hello",
    v: PEER_PROTOCOL_VERSION,
    role: "initiator",
    nick: "mallory",
    key,
    nonce: key,
    suite: PEER_SUITE,
    ...overrides,
  });
}

Deno.test("both sides agree on the SAS, learn each other's nick and talk", async () => {
  const [a, b] = memoryChannelPair();
  const [alice, bob] = await Promise.all([
    performHandshake(a, { role: "initiator", nick: "alice" }),
    performHandshake(b, { role: "responder", nick: "bob" }),
  ]);
  assert.equal(alice.remoteNick, "bob");
  assert.equal(bob.remoteNick, "alice");
  assert.equal(alice.sas, bob.sas);
  assert.match(alice.sas, /^\d{5}( \d{5}){4}$/);
  assert.deepEqual(alice.transcriptHash, bob.transcriptHash);
  assert.equal(alice.channel.recordsSent, 1n, "the key confirmation is record 0");
  await alice.channel.writeRecord(enc("hi bob"));
  await bob.channel.writeRecord(enc("hi alice"));
  assert.equal(dec((await bob.channel.readRecord())!), "hi bob");
  assert.equal(dec((await alice.channel.readRecord())!), "hi alice");
});

Deno.test("every handshake has fresh keys: two sessions give two SAS strings", async () => {
  const sas: string[] = [];
  for (let i = 0; i < 2; i++) {
    const [a, b] = memoryChannelPair();
    const [x] = await Promise.all([
      performHandshake(a, { role: "initiator", nick: "alice" }),
      performHandshake(b, { role: "responder", nick: "bob" }),
    ]);
    sas.push(x.sas);
  }
  assert.notEqual(sas[0], sas[1]);
});

Deno.test("different pre-shared secrets fail key confirmation on both sides", async () => {
  const [a, b] = memoryChannelPair();
  const [alice, bob] = await Promise.all([
    settle(performHandshake(a, { role: "initiator", nick: "alice", psk: enc("one") })),
    settle(performHandshake(b, { role: "responder", nick: "bob", psk: enc("two") })),
  ]);
  assert.ok(alice instanceof PeerError && alice.code === "handshake_failed", String(alice));
  assert.match(alice.message, /key confirmation failed/);
  assert.ok(bob instanceof PeerError && bob.code === "handshake_failed", String(bob));
});

Deno.test("the same pre-shared secret on both sides works", async () => {
  const [a, b] = memoryChannelPair();
  const [alice, bob] = await Promise.all([
    performHandshake(a, { role: "initiator", nick: "alice", psk: enc("same") }),
    performHandshake(b, { role: "responder", nick: "bob", psk: enc("same") }),
  ]);
  assert.equal(alice.sas, bob.sas);
});

Deno.test("a responder refuses another version with a peer_error the initiator can read", async () => {
  const [a, b] = memoryChannelPair();
  const responder = settle(performHandshake(b, { role: "responder", nick: "bob" }));
  await a.write(fakeHello({ v: PEER_PROTOCOL_VERSION + 1, extra: "future field" }));
  const reply = await readFrame(a);
  assert.equal(reply?.type, "peer_error");
  assert.equal(reply?.code, "version");
  assert.equal(reply?.v, PEER_PROTOCOL_VERSION);
  assert.equal(await readFrame(a), null, "the responder closed");
  const error = await responder;
  assert.ok(error instanceof PeerError && error.code === "version", String(error));
});

Deno.test("an initiator reports the responder's refusal with its code", async () => {
  const [a, b] = memoryChannelPair();
  const initiator = performHandshake(a, { role: "initiator", nick: "alice" });
  await readFrame(b);
  await b.write(encodeFrame({ type: "peer_error", code: "version", message: "v9 only\x1b[2J" }));
  b.close();
  await assert.rejects(initiator, (err) => {
    isPeerError("version")(err);
    assert.ok(!(err as Error).message.includes("\x1b"), "peer text is neutralised");
    return true;
  });
});

Deno.test("an initiator refuses a responder speaking another version", async () => {
  const [a, b] = memoryChannelPair();
  const initiator = performHandshake(a, { role: "initiator", nick: "alice" });
  await readFrame(b);
  await b.write(fakeHello({ v: 8, role: "responder" }));
  await assert.rejects(initiator, isPeerError("version"));
});

/**
 * Hellos of the peer protocol's earlier versions, each refused with the version error,
 * and what each lacks. 3 to 6 keep this version's handshake, records and suite.
 */
const EARLIER_VERSIONS = [
  // Version 6: a session with it would end at the first `peer_ping` (an unknown message),
  // or wait forever on a peer that vanished silently.
  { v: 6, suite: "x25519-hkdf-sha256-chacha20poly1305", lacks: "no keepalive" },
  // Version 5: no sender streams a file before the receiver's accept (no `peer_file_policy`).
  { v: 5, suite: "x25519-hkdf-sha256-chacha20poly1305", lacks: "no file before its accept" },
  // Version 4: every file hashed on both sides, its SHA-256 sent after the last byte.
  { v: 4, suite: "x25519-hkdf-sha256-chacha20poly1305", lacks: "files hashed on both sides" },
  // Version 3: files offered with their SHA-256 (hashed before the offer), no `peer_file_end`.
  { v: 3, suite: "x25519-hkdf-sha256-chacha20poly1305", lacks: "files hashed before the offer" },
  // Version 2: AES-256-GCM records.
  { v: 2, suite: "x25519-hkdf-sha256-aes256gcm", lacks: "AES-256-GCM" },
];

for (const { v, suite, lacks } of EARLIER_VERSIONS) {
  Deno.test(`a responder refuses a version ${v} initiator (${lacks}), saying which versions`, async () => {
    assert.equal(PEER_PROTOCOL_VERSION, 7);
    const [a, b] = memoryChannelPair();
    const responder = settle(performHandshake(b, { role: "responder", nick: "bob" }));
    await a.write(fakeHello({ v, suite }));
    const reply = await readFrame(a);
    assert.equal(reply?.type, "peer_error");
    assert.equal(reply?.code, "version");
    assert.equal(reply?.v, 7);
    assert.match(
      String(reply?.message),
      new RegExp(`version ${v}; this side speaks 7: run the same version`),
    );
    assert.equal(await readFrame(a), null, "the responder closed");
    const error = await responder;
    assert.ok(error instanceof PeerError && error.code === "version", String(error));
    assert.match(error.message, new RegExp(`version ${v}; this side speaks 7`));
  });

  Deno.test(`an initiator refuses a version ${v} responder (${lacks}), saying which versions`, async () => {
    const [a, b] = memoryChannelPair();
    const initiator = performHandshake(a, { role: "initiator", nick: "alice" });
    const hello = await readFrame(b);
    assert.equal(hello?.v, 7);
    assert.equal(hello?.suite, "x25519-hkdf-sha256-chacha20poly1305");
    await b.write(fakeHello({ v, suite, role: "responder" }));
    await assert.rejects(initiator, (err) => {
      isPeerError("version")(err);
      assert.match((err as Error).message, new RegExp(`version ${v}; this side speaks 7`));
      return true;
    });
  });
}

Deno.test("a version 7 hello with another suite is refused", async () => {
  const [a, b] = memoryChannelPair();
  const responder = settle(performHandshake(b, { role: "responder", nick: "bob" }));
  await a.write(fakeHello({ suite: "x25519-hkdf-sha256-aes256gcm" }));
  const reply = await readFrame(a);
  assert.equal(reply?.type, "peer_error");
  assert.equal(reply?.code, "handshake_failed");
  assert.match(String(reply?.message), /aes256gcm/);
  assert.ok(isPeerError("handshake_failed")(await responder));
});

Deno.test("garbage, oversized or malformed hellos fail with handshake_failed", async () => {
  const cases: Uint8Array[] = [
    enc("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
    (() => {
      const prefix = new Uint8Array(4);
      new DataView(prefix.buffer).setUint32(0, MAX_HELLO_BYTES + 1);
      return prefix;
    })(),
    encodeFrame({ type: "hello", v: 1, features: [] }),
    fakeHello({ key: "A".repeat(42) }),
    fakeHello({ role: "responder" }),
    fakeHello({ suite: "rot13" }),
    fakeHello({ nick: "bad nick!" }),
    fakeHello({ key: "A".repeat(43) }), // the all-zero, low-order X25519 point
    fakeHello({ key: lowOrderKey() }), // p - 1, a point of order 2
    new Uint8Array([0, 0, 0, 2, 0, 0]), // a payload too short for its header length
  ];
  for (const bytes of cases) {
    const [a, b] = memoryChannelPair();
    const responder = settle(performHandshake(b, { role: "responder", nick: "bob" }));
    await a.write(bytes);
    const error = await responder;
    assert.ok(error instanceof PeerError, `${dec(bytes)}: ${error}`);
    assert.equal(error.code, "handshake_failed", `${dec(bytes)}: ${error.message}`);
    const reply = await readFrame(a);
    assert.equal(reply?.type, "peer_error", dec(bytes));
    assert.equal(reply?.code, "handshake_failed");
  }
});

Deno.test("two initiators do not accept each other", async () => {
  const [a, b] = memoryChannelPair();
  const results = await Promise.all([
    settle(performHandshake(a, { role: "initiator", nick: "alice" })),
    settle(performHandshake(b, { role: "initiator", nick: "bob" })),
  ]);
  for (const result of results) {
    assert.ok(result instanceof PeerError && result.code === "handshake_failed", String(result));
  }
});

Deno.test("a silent peer makes the handshake time out", async () => {
  const [a] = memoryChannelPair();
  await assert.rejects(
    performHandshake(a, { role: "initiator", nick: "alice", timeoutMs: 50 }),
    isPeerError("timeout"),
  );
});

Deno.test("a peer closing mid-handshake fails with handshake_failed", async () => {
  const [a, b] = memoryChannelPair();
  const initiator = performHandshake(a, { role: "initiator", nick: "alice" });
  await readFrame(b);
  await b.write(fakeHello({ role: "responder" }).subarray(0, 20));
  b.close();
  await assert.rejects(initiator, isPeerError("handshake_failed"));
});

Deno.test("an invalid local nick is refused before anything is sent", async () => {
  const [a] = memoryChannelPair();
  await assert.rejects(
    performHandshake(a, { role: "initiator", nick: "no spaces" }),
    isPeerError("invalid_nick"),
  );
});

Deno.test("a modified hello fails key confirmation on both sides", async () => {
  const [a, relayA] = memoryChannelPair();
  const [relayB, b] = memoryChannelPair();
  // Relay everything, but change one character of the initiator's nonce on the way.
  const pump = async (from: ByteChannel, to: ByteChannel, edit: boolean) => {
    const buffer = new Uint8Array(8192);
    let first = edit;
    try {
      for (let n = await from.read(buffer); n !== null; n = await from.read(buffer)) {
        const bytes = buffer.slice(0, n);
        if (first) {
          const at = dec(bytes.subarray(4)).indexOf('"nonce":"') + 4 + 9; // the JSON is ASCII
          bytes[at] = bytes[at] === 0x41 ? 0x42 : 0x41; // "A" <-> "B": still valid base64url
          first = false;
        }
        await to.write(bytes);
      }
    } catch {
      // one side closed
    }
    to.close();
  };
  pump(relayA, relayB, true);
  pump(relayB, relayA, false);
  const [alice, bob] = await Promise.all([
    settle<HandshakeResult>(performHandshake(a, { role: "initiator", nick: "alice" })),
    settle<HandshakeResult>(performHandshake(b, { role: "responder", nick: "bob" })),
  ]);
  assert.ok(alice instanceof PeerError && alice.code === "handshake_failed", String(alice));
  assert.ok(bob instanceof PeerError && bob.code === "handshake_failed", String(bob));
});

Deno.test("helloTimeoutMs: a silent initiator fails the responder with timeout, sooner than the handshake bound", async () => {
  const [, responderEnd] = memoryChannelPair();
  await assert.rejects(
    performHandshake(responderEnd, {
      role: "responder",
      nick: "bob",
      timeoutMs: 60_000,
      helloTimeoutMs: 20,
    }),
    (err) => isPeerError("timeout")(err) && /no hello within 20 ms/.test((err as Error).message),
  );
});

Deno.test("onCodeAttempt: called once the hello is valid; throwing refuses with a peer_error", async () => {
  const [initiatorEnd, responderEnd] = memoryChannelPair();
  let attempts = 0;
  const responder = settle(performHandshake(responderEnd, {
    role: "responder",
    nick: "bob",
    code: "1-a-b",
    onCodeAttempt: () => {
      attempts++;
      throw new PeerError("too_many_attempts", "no more tries");
    },
  }));
  const initiator = settle(performHandshake(initiatorEnd, {
    role: "initiator",
    nick: "alice",
    code: "1-a-b",
  }));
  const [atResponder, atInitiator] = await Promise.all([responder, initiator]);
  assert.equal(attempts, 1);
  assert.ok(atResponder instanceof PeerError && atResponder.code === "too_many_attempts");
  assert.ok(atInitiator instanceof PeerError);
  assert.match(atInitiator.message, /too_many_attempts.*no more tries/);
});
