import assert from "node:assert/strict";
import { ProtocolError } from "./errors.ts";
import { answerHello, checkServerHello, clientHello, SERVER_FEATURES } from "./hello.ts";
import { parseClientMessage, parseServerMessage, PROTOCOL_VERSION } from "./messages.ts";

const SERVER = { features: SERVER_FEATURES, server: "chat/test", maxFrame: 65536 };

function isUnsupportedVersion(err: unknown): boolean {
  assert.ok(err instanceof ProtocolError, `expected ProtocolError, got ${err}`);
  assert.equal(err.code, "unsupported_version");
  assert.equal(err.fatal, true);
  return true;
}

Deno.test("clientHello builds a valid hello with a copy of the features", () => {
  const features = ["rooms", "dm"];
  const hello = clientHello(features, "chat/0.1.0");
  assert.deepEqual(hello, {
    type: "hello",
    v: PROTOCOL_VERSION,
    features: ["rooms", "dm"],
    agent: "chat/0.1.0",
  });
  features.push("later");
  assert.deepEqual(hello.features, ["rooms", "dm"]);
  assert.deepEqual(parseClientMessage(hello), hello);

  const anonymous = clientHello([]);
  assert.equal("agent" in anonymous, false);
  assert.deepEqual(parseClientMessage(anonymous), anonymous);
});

Deno.test("answerHello with the same version replies with the shared features", () => {
  const reply = answerHello(clientHello(["dm", "rooms", "telepathy"]), SERVER);
  assert.deepEqual(reply, {
    type: "hello",
    v: PROTOCOL_VERSION,
    features: ["rooms", "dm"], // the server's order, only what both know
    server: "chat/test",
    maxFrame: 65536,
  });
  assert.deepEqual(parseServerMessage(reply), reply);
});

Deno.test("answerHello passes the server's queue bound on when given", () => {
  const reply = answerHello(clientHello(["rooms"]), { ...SERVER, maxQueue: 4 << 20 });
  assert.equal(reply.maxQueue, 4 << 20);
  assert.deepEqual(parseServerMessage(reply), reply);
  assert.equal("maxQueue" in answerHello(clientHello(["rooms"]), SERVER), false);
});

Deno.test("answerHello: all, or none, of the features", () => {
  assert.deepEqual(answerHello(clientHello(SERVER_FEATURES), SERVER).features, [
    ...SERVER_FEATURES,
  ]);
  assert.deepEqual(answerHello(clientHello([]), SERVER).features, []);
  assert.deepEqual(answerHello(clientHello(["x", "y"]), SERVER).features, []);
  assert.deepEqual(
    answerHello(clientHello(["rooms"]), { ...SERVER, features: [] }).features,
    [],
  );
});

Deno.test("answerHello refuses another version with unsupported_version", () => {
  for (const v of [0, PROTOCOL_VERSION + 1, -1, 1000]) {
    const hello = { ...clientHello(["rooms"]), v };
    assert.throws(() => answerHello(hello, SERVER), isUnsupportedVersion, `version ${v}`);
  }
  // The message says both versions, so that whoever reads it knows what to upgrade.
  assert.throws(
    () => answerHello({ ...clientHello([]), v: 99 }, SERVER),
    (err: unknown) =>
      err instanceof ProtocolError && /\b99\b/.test(err.message) &&
      new RegExp(`\\b${PROTOCOL_VERSION}\\b`).test(err.message),
  );
});

Deno.test("checkServerHello accepts the same version and refuses another", () => {
  const reply = answerHello(clientHello(["rooms"]), SERVER);
  assert.equal(checkServerHello(reply), reply);
  for (const v of [0, PROTOCOL_VERSION + 1]) {
    assert.throws(() => checkServerHello({ ...reply, v }), isUnsupportedVersion, `version ${v}`);
  }
});

Deno.test("SERVER_FEATURES are valid hello features without duplicates", () => {
  assert.equal(new Set(SERVER_FEATURES).size, SERVER_FEATURES.length);
  assert.doesNotThrow(() => parseClientMessage(clientHello(SERVER_FEATURES)));
});
