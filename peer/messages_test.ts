import assert from "node:assert/strict";
import { PeerError } from "./errors.ts";
import { parseHandshakeMessage, parsePeerMessage } from "./messages.ts";

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
