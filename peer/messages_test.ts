import assert from "node:assert/strict";
import { PeerError } from "./errors.ts";
import {
  parseHandshakeMessage,
  parsePeerMessage,
  peerSchemas,
  schemaValidations,
} from "./messages.ts";

const KEY = "A".repeat(43);

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof PeerError, String(err));
    return err.code;
  }
  throw new Error("expected a PeerError");
}

Deno.test("parsePeerMessage accepts text and bye", () => {
  assert.deepEqual(parsePeerMessage({ type: "peer_text", id: "m1", ts: 5, text: "hi" }), {
    type: "peer_text",
    id: "m1",
    ts: 5,
    text: "hi",
  });
  assert.deepEqual(parsePeerMessage({ type: "peer_bye" }), { type: "peer_bye" });
});

Deno.test("parsePeerMessage accepts the keepalive's ping and pong (peer protocol version 7)", () => {
  assert.deepEqual(parsePeerMessage({ type: "peer_ping" }), { type: "peer_ping" });
  assert.deepEqual(parsePeerMessage({ type: "peer_pong", extra: 1 }), { type: "peer_pong" });
});

Deno.test("parsePeerMessage refuses bad shapes, unknown and handshake types as bad_message", () => {
  assert.equal(code(() => parsePeerMessage({ type: "peer_text", id: "m1", ts: 5 })), "bad_message");
  assert.equal(
    code(() => parsePeerMessage({ type: "peer_text", id: "", ts: 5, text: "x" })),
    "bad_message",
  );
  assert.equal(
    code(() => parsePeerMessage({ type: "peer_text", id: "a", ts: 1, text: "x".repeat(4001) })),
    "bad_message",
  );
  assert.equal(code(() => parsePeerMessage({ type: "say" })), "bad_message");
  assert.equal(code(() => parsePeerMessage({ type: "toString" })), "bad_message");
  assert.equal(code(() => parsePeerMessage({})), "bad_message");
  assert.equal(code(() => parsePeerMessage({ type: "peer_confirm", mac: KEY })), "bad_message");
});

Deno.test("parseHandshakeMessage checks hello fields", () => {
  const hello = {
    type: "peer_hello",
    v: 3,
    role: "initiator",
    nick: "alice",
    key: KEY,
    nonce: KEY,
    suite: "x25519-hkdf-sha256-chacha20poly1305",
  };
  assert.equal(parseHandshakeMessage(hello).type, "peer_hello");
  assert.equal(code(() => parseHandshakeMessage({ ...hello, key: "short" })), "handshake_failed");
  assert.equal(code(() => parseHandshakeMessage({ ...hello, role: "boss" })), "handshake_failed");
  assert.equal(code(() => parseHandshakeMessage({ ...hello, key: KEY + "=" })), "handshake_failed");
  assert.equal(code(() => parseHandshakeMessage({ type: "peer_text" })), "handshake_failed");
});

Deno.test("file chunk headers (data, ack) and the policy are checked without a schema, exactly as their schemas check them", () => {
  const valid = (type: string) => [
    { type, fid: 1, offset: 0 },
    { type, fid: 7, offset: 1048064 },
    { type, fid: Number.MAX_SAFE_INTEGER, offset: Number.MAX_SAFE_INTEGER },
    { type, fid: 2, offset: 5, extra: "dropped", nested: { a: 1 } },
  ];
  const invalid = (type: string) => [
    { type, fid: 0, offset: 0 },
    { type, fid: -1, offset: 0 },
    { type, fid: 1.5, offset: 0 },
    { type, fid: "1", offset: 0 },
    { type, fid: 1 },
    { type, offset: 0 },
    { type, fid: 1, offset: -1 },
    { type, fid: 1, offset: 0.5 },
    { type, fid: 1, offset: null },
    { type, fid: 1, offset: 2 ** 53 },
    { type, fid: 2 ** 53, offset: 0 },
    { type, fid: 1, offset: Number.NaN },
    { type, fid: 1, offset: Infinity },
  ];
  for (const type of ["peer_file_data", "peer_file_ack"] as const) {
    const schema = peerSchemas[type];
    const before = schemaValidations();
    for (const header of valid(type)) {
      assert.deepEqual(parsePeerMessage(header), schema.parse(header), JSON.stringify(header));
    }
    // The schema.parse calls above are the test's own, not parsePeerMessage's.
    assert.equal(schemaValidations(), before, "no schema validation for a valid chunk header");
    for (const header of invalid(type)) {
      assert.equal(schema.safeParse(header).success, false, JSON.stringify(header));
      assert.equal(code(() => parsePeerMessage(header)), "bad_message", JSON.stringify(header));
    }
  }
  // The policy, parsed between a sender's offer and its first chunk, by hand too.
  const policy = peerSchemas.peer_file_policy;
  const policyBefore = schemaValidations();
  for (const header of [{ type: "peer_file_policy", accept: "all", extra: 1 }]) {
    assert.deepEqual(parsePeerMessage(header), policy.parse(header));
  }
  assert.equal(schemaValidations(), policyBefore, "no schema validation for a valid policy");
  for (const accept of ["ALL", "", null, undefined, 1, ["all"]]) {
    const header = { type: "peer_file_policy", accept };
    assert.equal(policy.safeParse(header).success, false, JSON.stringify(header));
    assert.equal(code(() => parsePeerMessage(header)), "bad_message", JSON.stringify(header));
  }
  // Other messages still go through their schemas.
  const before = schemaValidations();
  parsePeerMessage({ type: "peer_file_restart", fid: 1 });
  assert.equal(schemaValidations(), before + 1);
});

Deno.test("the offer, accept, end and done of a file transfer are checked without a schema, exactly as their schemas check them", () => {
  const KEY_HEX = "0123456789abcdef".repeat(4);
  const cases: Record<
    string,
    { valid: Record<string, unknown>[]; invalid: Record<string, unknown>[] }
  > = {
    peer_file_offer: {
      valid: [
        { fid: 1, name: "a", size: 0, key: KEY_HEX },
        { fid: 3, name: "../x\u001b[31m.txt", size: 2 ** 53 - 1, key: "f".repeat(64), extra: 1 },
        { fid: 2, name: "é".repeat(16 * 1024), size: 5, key: KEY_HEX },
      ],
      invalid: [
        { fid: 1, name: "", size: 0, key: KEY_HEX },
        { fid: 1, name: "x".repeat(16 * 1024 + 1), size: 0, key: KEY_HEX },
        { fid: 1, name: 5, size: 0, key: KEY_HEX },
        { fid: 1, size: 0, key: KEY_HEX },
        { fid: 0, name: "a", size: 0, key: KEY_HEX },
        { fid: 1, name: "a", size: -1, key: KEY_HEX },
        { fid: 1, name: "a", size: 1.5, key: KEY_HEX },
        { fid: 1, name: "a", size: "1", key: KEY_HEX },
        { fid: 1, name: "a", size: 0, key: KEY_HEX.toUpperCase() },
        { fid: 1, name: "a", size: 0, key: KEY_HEX.slice(1) },
        { fid: 1, name: "a", size: 0, key: KEY_HEX + "0" },
        { fid: 1, name: "a", size: 0, key: KEY_HEX.slice(1) + "g" },
        { fid: 1, name: "a", size: 0, key: KEY_HEX.slice(1) + "\n" },
        { fid: 1, name: "a", size: 0 },
      ],
    },
    peer_file_accept: {
      valid: [
        { fid: 1, offset: 0 },
        { fid: 4, offset: 1048064, prefix: KEY_HEX },
        { fid: 4, offset: 0, prefix: KEY_HEX, more: [1] },
      ],
      invalid: [
        { fid: 1, offset: -1 },
        { fid: 1, offset: 0.5 },
        { fid: 1 },
        { fid: 0, offset: 0 },
        { fid: 1, offset: 0, prefix: null },
        { fid: 1, offset: 0, prefix: "abc" },
        { fid: 1, offset: 0, prefix: KEY_HEX.toUpperCase() },
      ],
    },
    peer_file_end: {
      valid: [{ fid: 1 }, { fid: Number.MAX_SAFE_INTEGER, offset: 3 }, { fid: 2, early: true }],
      invalid: [
        {},
        { fid: 0 },
        { fid: "1" },
        { fid: 2 ** 53 },
        { fid: Infinity },
        { fid: 1, early: false },
        { fid: 1, early: "true" },
        { fid: 1, early: null },
      ],
    },
    peer_file_done: {
      valid: [{ fid: 1, ok: true }, { fid: 2, ok: false, sha256: "x" }],
      invalid: [{ fid: 1 }, { fid: 1, ok: "true" }, { fid: 1, ok: 1 }, { fid: -1, ok: true }],
    },
  };
  for (const [type, { valid, invalid }] of Object.entries(cases)) {
    const schema = peerSchemas[type as keyof typeof peerSchemas];
    const before = schemaValidations();
    for (const fields of valid) {
      const header = { type, ...fields };
      assert.deepEqual(parsePeerMessage(header), schema.parse(header), JSON.stringify(header));
    }
    assert.equal(schemaValidations(), before, `no schema validation for a valid ${type}`);
    for (const fields of invalid) {
      const header = { type, ...fields };
      assert.equal(schema.safeParse(header).success, false, JSON.stringify(header));
      assert.equal(code(() => parsePeerMessage(header)), "bad_message", JSON.stringify(header));
    }
  }
});
