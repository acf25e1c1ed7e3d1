import assert from "node:assert/strict";
import { ProtocolError, type ProtocolErrorCode } from "./errors.ts";
import { decodeFrame, encodeFrame } from "./frame.ts";
import { MIN_FILE_DATA_FRAME_BYTES } from "./file_chunks.ts";
import {
  type ClientMessageMap,
  clientSchemas,
  fastClientParsers,
  fastServerParsers,
  LARGE_FILE_CHUNK_BYTES,
  MAX_FILE_READ_BYTES,
  parseClientMessage,
  parseServerMessage,
  PROTOCOL_VERSION,
  requestIdOf,
  type ServerMessageMap,
  serverSchemas,
} from "./messages.ts";

type Header = Record<string, unknown>;

const SID = "c2lkLW9mLWEtcHJpdmF0ZS1zZXNzaW9u";
const SHA = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

/** One valid sample of every client message; the type forces one per schema key. */
const CLIENT_SAMPLES: { [K in keyof ClientMessageMap]: ClientMessageMap[K] } = {
  hello: { type: "hello", v: PROTOCOL_VERSION, features: ["rooms", "dm"], agent: "chat/test" },
  login: { type: "login", id: "c1", nick: "alice", password: "correct horse" },
  logout: { type: "logout", id: "c2" },
  ping: { type: "ping", id: "c3" },
  join: { type: "join", id: "c4", room: "lobby" },
  leave: { type: "leave", id: "c5", room: "lobby" },
  rooms: { type: "rooms", id: "c6" },
  members: { type: "members", id: "c7", room: "lobby" },
  topic: { type: "topic", id: "c8", room: "lobby", topic: "welcome" },
  say: { type: "say", id: "c9", room: "lobby", text: "hello ü😀" },
  dm: { type: "dm", id: "c10", to: "bob", text: "psst" },
  broadcast: { type: "broadcast", id: "c11", text: "all hands" },
  who: { type: "who", id: "c12" },
  whoelse: { type: "whoelse", id: "c13", since: 3600 },
  hide: { type: "hide", id: "c14" },
  reveal: { type: "reveal", id: "c15" },
  block: { type: "block", id: "c16", nick: "mallory" },
  unblock: { type: "unblock", id: "c17", nick: "mallory" },
  blocks: { type: "blocks", id: "c18" },
  contact_add: { type: "contact_add", id: "c19", nick: "bob" },
  contact_remove: { type: "contact_remove", id: "c20", nick: "bob" },
  contacts: { type: "contacts", id: "c21" },
  history: { type: "history", id: "c22", room: "lobby", before: 100, limit: 50 },
  sync: { type: "sync", id: "c23", after: 0, limit: 500 },
  read: { type: "read", id: "c24", ids: [1, 2, 3] },
  delivered: { type: "delivered", id: "c24b", ids: [4, 5] },
  private_start: { type: "private_start", id: "c25", nick: "bob", sid: SID, port: 40123 },
  private_accept: { type: "private_accept", id: "c26", nick: "alice" },
  private_decline: { type: "private_decline", id: "c27", nick: "alice" },
  private_stop: { type: "private_stop", id: "c28", nick: "bob" },
  private_relay: { type: "private_relay", id: "c29", sid: SID },
  relay: { type: "relay", id: "c30", sid: SID },
  file_offer: {
    type: "file_offer",
    id: "c31",
    to: "bob",
    name: "a.txt",
    size: 3,
    key: SHA,
    file: 7,
  },
  file_chunk: { type: "file_chunk", id: "c32", file: 1, offset: 0, sha256: SHA },
  file_list: { type: "file_list", id: "c33" },
  file_accept: { type: "file_accept", id: "c34", file: 1 },
  file_decline: { type: "file_decline", id: "c35", file: 1 },
  file_read: { type: "file_read", id: "c36", file: 1, offset: 0, length: 65536 },
  file_done: { type: "file_done", id: "c37", file: 1 },
  file_cancel: { type: "file_cancel", id: "c38", file: 1 },
  token_issue: { type: "token_issue", id: "c39" },
  token_revoke: { type: "token_revoke", id: "c40", all: true },
  away: { type: "away", id: "c41", text: "lunch" },
};

/** One valid sample of every server message; the type forces one per schema key. */
const SERVER_SAMPLES: { [K in keyof ServerMessageMap]: ServerMessageMap[K] } = {
  hello: {
    type: "hello",
    v: PROTOCOL_VERSION,
    features: ["rooms"],
    server: "chat/test",
    maxFrame: 1 << 20,
  },
  ok: { type: "ok", re: "c1" },
  error: { type: "error", re: "c2", code: "rate_limited", message: "slow down", retryAfter: 1.5 },
  msg: { type: "msg", room: "lobby", id: 7, ts: 1700000000000, from: "alice", text: "hi" },
  dm: { type: "dm", to: "bob", id: 8, ts: 1700000000001, from: "alice", text: "psst" },
  broadcast: { type: "broadcast", ts: 1700000000002, from: "admin", text: "all hands" },
  presence: { type: "presence", nick: "bob", online: true, ts: 1700000000003 },
  member: { type: "member", room: "lobby", nick: "bob", joined: false },
  topic: { type: "topic", room: "lobby", topic: "welcome", by: "alice", ts: 1700000000004 },
  receipt: { type: "receipt", id: 8, status: "read", by: "bob", ts: 1700000000005 },
  contact: { type: "contact", nick: "bob", online: false },
  notice: { type: "notice", code: "idle_timeout", text: "bye" },
  private_request: { type: "private_request", sid: SID, from: "alice" },
  private_ready: { type: "private_ready", sid: SID, nick: "bob", host: "192.0.2.7" },
  private_relay: { type: "private_relay", sid: SID, nick: "bob" },
  private_ended: { type: "private_ended", sid: SID, nick: "bob", reason: "declined" },
  relay: { type: "relay", sid: SID },
  file_offer: {
    type: "file_offer",
    file: 1,
    from: "alice",
    to: "bob",
    name: "a.txt",
    size: 3,
    key: SHA,
    ts: 1700000000006,
  },
  file_accepted: { type: "file_accepted", file: 1, by: "bob", name: "a.txt" },
  file_declined: { type: "file_declined", file: 1, by: "bob", name: "a.txt" },
  file_completed: { type: "file_completed", file: 1, by: "bob", name: "a.txt" },
  file_cancelled: { type: "file_cancelled", file: 1, by: "bob", name: "a.txt", reason: "expired" },
  file_data: { type: "file_data", file: 1, offset: 65536 },
};

const SIDES = [
  { name: "client", parse: parseClientMessage, schemas: clientSchemas, samples: CLIENT_SAMPLES },
  { name: "server", parse: parseServerMessage, schemas: serverSchemas, samples: SERVER_SAMPLES },
] as const;

function isProtocolError(code: ProtocolErrorCode, what = ""): (err: unknown) => boolean {
  return (err: unknown) => {
    assert.ok(err instanceof ProtocolError, `${what}: expected ProtocolError ${code}, got ${err}`);
    assert.equal(err.code, code, `${what}: expected ${code}, got ${err.code}: ${err.message}`);
    return true;
  };
}

/** Through the wire and back, so that the samples are what a peer would really send. */
function viaWire(message: object): Header {
  return decodeFrame(encodeFrame(message)).header;
}

/** Whether a schema field accepts `undefined` (is optional). */
function isOptional(schemas: object, type: string, field: string): boolean {
  const schema = (schemas as Record<
    string,
    { shape: Record<string, { safeParse(v: unknown): { success: boolean } }> }
  >)[type];
  return schema.shape[field].safeParse(undefined).success;
}

for (const side of SIDES) {
  Deno.test(`${side.name}: every message type has a sample, and every sample parses`, () => {
    const types = Object.keys(side.schemas);
    assert.ok(types.length > 5);
    for (const type of types) {
      const sample = (side.samples as Record<string, Header>)[type];
      assert.ok(sample, `no ${side.name} sample for "${type}": add one to this test`);
      assert.equal(sample.type, type);
      assert.deepEqual(side.parse(viaWire(sample)), sample, `${side.name} "${type}"`);
    }
    assert.deepEqual(Object.keys(side.samples).sort(), [...types].sort(), "no stray samples");
  });

  Deno.test(`${side.name}: an unknown type is unknown_type, not fatal`, () => {
    const names = ["nope", "", "HELLO", "__proto__", "constructor", "toString", "hasOwnProperty"];
    for (const type of names) {
      assert.throws(
        () => side.parse({ type, id: "1" }),
        isProtocolError("unknown_type", `type ${JSON.stringify(type)}`),
      );
    }
    // Via the wire, where JSON.parse makes "__proto__" an own key.
    assert.throws(
      () => side.parse(viaWire(JSON.parse('{"type":"__proto__","__proto__":{"type":"ping"}}'))),
      isProtocolError("unknown_type"),
    );
    assert.throws(
      () => side.parse({ type: "nope" }),
      (err: unknown) => err instanceof ProtocolError && err.fatal === false,
    );
  });

  Deno.test(`${side.name}: a missing or non-string type is bad_message`, () => {
    const headers: Header[] = [
      {},
      { type: 1 },
      { type: null },
      { type: true },
      { type: ["ping"] },
      { type: { toString: "ping" } },
      { id: "1", room: "lobby", text: "typeless" },
    ];
    for (const header of headers) {
      assert.throws(
        () => side.parse(header),
        isProtocolError("bad_message", JSON.stringify(header)),
      );
    }
  });

  Deno.test(`${side.name}: every field of every type refuses an ill-typed value`, () => {
    let checked = 0;
    for (const [type, sample] of Object.entries(side.samples as Record<string, Header>)) {
      for (const field of Object.keys(sample)) {
        if (field === "type") continue;
        for (const wrong of [{ nested: true }, null]) {
          const header = { ...sample, [field]: wrong };
          assert.throws(
            () => side.parse(header),
            isProtocolError("bad_message", `${type}.${field} = ${JSON.stringify(wrong)}`),
          );
        }
        checked++;
      }
    }
    assert.ok(checked > 20);
  });

  Deno.test(`${side.name}: every required field of every type is required`, () => {
    let required = 0;
    for (const [type, sample] of Object.entries(side.samples as Record<string, Header>)) {
      for (const field of Object.keys(sample)) {
        if (field === "type") continue;
        const header = { ...sample };
        delete header[field];
        if (isOptional(side.schemas, type, field)) {
          assert.doesNotThrow(() => side.parse(header), `${type} without optional ${field}`);
        } else {
          assert.throws(
            () => side.parse(header),
            isProtocolError("bad_message", `${type} without ${field}`),
          );
          required++;
        }
      }
    }
    assert.ok(required > 20);
  });
}

Deno.test("client requests all need an id of 1 to 64 characters", () => {
  for (const [type, sample] of Object.entries(CLIENT_SAMPLES as Record<string, Header>)) {
    if (type === "hello") continue;
    for (const id of ["", "x".repeat(65), 1]) {
      assert.throws(
        () => parseClientMessage({ ...sample, id }),
        isProtocolError("bad_message", `${type} id ${JSON.stringify(id)}`),
      );
    }
    assert.equal(parseClientMessage({ ...sample, id: "x".repeat(64) }).type, type);
  }
});

Deno.test("field constraints beyond the type are enforced", () => {
  const bad: Header[] = [
    { type: "hello", v: 1.5, features: [] },
    { type: "hello", v: 1, features: Array.from({ length: 65 }, (_, i) => `f${i}`) },
    { type: "hello", v: 1, features: ["x".repeat(257)] },
    { type: "login", id: "1", nick: "x".repeat(257) },
    { type: "login", id: "1", nick: "a", password: "x".repeat(1025) },
    { type: "whoelse", id: "1", since: -1 },
    { type: "whoelse", id: "1", since: 2e9 },
    { type: "history", id: "1", limit: 0 },
    { type: "history", id: "1", limit: 501 },
    { type: "history", id: "1", limit: 5.5 },
    { type: "history", id: "1", before: -1 },
    { type: "sync", id: "1", after: 1.5 },
    { type: "read", id: "1", ids: [] },
    { type: "read", id: "1", ids: Array.from({ length: 1001 }, (_, i) => i) },
    { type: "read", id: "1", ids: [1, -2] },
    { type: "topic", id: "1", room: "r", topic: "x".repeat(1025) },
    { type: "say", id: "1", room: "lobby", text: 5 },
    { type: "file_offer", id: "1", to: "bob", name: "a", size: 1, key: SHA, file: 0 },
    { type: "file_offer", id: "1", to: "bob", name: "a", size: 1, key: SHA, file: 1.5 },
  ];
  for (const header of bad) {
    assert.throws(
      () => parseClientMessage(header),
      isProtocolError("bad_message", JSON.stringify(header).slice(0, 80)),
    );
  }
  const badServer: Header[] = [
    { ...SERVER_SAMPLES.receipt, status: "seen" },
    { ...SERVER_SAMPLES.presence, online: "yes" },
    { ...SERVER_SAMPLES.hello, maxFrame: 0 },
    { ...SERVER_SAMPLES.error, retryAfter: -1 },
    { ...SERVER_SAMPLES.msg, id: 1.5 },
  ];
  for (const header of badServer) {
    assert.throws(
      () => parseServerMessage(header),
      isProtocolError("bad_message", JSON.stringify(header).slice(0, 80)),
    );
  }
});

Deno.test("optional fields may be left out", () => {
  const minimal: Header[] = [
    { type: "hello", v: 1, features: [] },
    { type: "login", id: "1", nick: "alice" },
    { type: "topic", id: "1", room: "lobby" },
    { type: "whoelse", id: "1" },
    { type: "history", id: "1" },
    { type: "sync", id: "1", after: 5 },
  ];
  for (const header of minimal) assert.deepEqual(parseClientMessage(header), header);
  const error = { type: "error", code: "internal", message: "oops" };
  assert.deepEqual(parseServerMessage(error), error);
});

Deno.test("a bad_message names the type and the field", () => {
  try {
    parseClientMessage({ type: "say", id: "1", text: "no room" });
    assert.fail("accepted a say without room");
  } catch (err) {
    assert.ok(err instanceof ProtocolError);
    assert.equal(err.code, "bad_message");
    assert.match(err.message, /say/);
    assert.match(err.message, /room/);
  }
});

Deno.test("a huge unknown type name is clipped in the error message", () => {
  try {
    parseClientMessage({ type: "x".repeat(100_000) });
    assert.fail("accepted an unknown type");
  } catch (err) {
    assert.ok(err instanceof ProtocolError);
    assert.equal(err.code, "unknown_type");
    assert.ok(err.message.length < 200, `message of ${err.message.length} characters`);
  }
});

Deno.test("the sides do not accept each other's types", () => {
  assert.throws(
    () => parseClientMessage({ ...SERVER_SAMPLES.msg }),
    isProtocolError("unknown_type"),
  );
  assert.throws(
    () => parseServerMessage({ ...CLIENT_SAMPLES.say }),
    isProtocolError("unknown_type"),
  );
  // A type both sides know is checked against the right side's schema.
  assert.throws(() => parseServerMessage({ ...CLIENT_SAMPLES.dm }), isProtocolError("bad_message"));
});

Deno.test("unknown fields are dropped, except in ok replies which carry their data", () => {
  const say = parseClientMessage({ ...CLIENT_SAMPLES.say, extra: 1 });
  assert.equal("extra" in say, false);
  const ok = parseServerMessage({ type: "ok", re: "1", nick: "alice", rooms: ["lobby"] });
  assert.deepEqual(ok, { type: "ok", re: "1", nick: "alice", rooms: ["lobby"] });
});

Deno.test("requestIdOf returns only plausible request ids", () => {
  assert.equal(requestIdOf({ id: "abc" }), "abc");
  assert.equal(requestIdOf({ id: "x".repeat(64) }), "x".repeat(64));
  assert.equal(requestIdOf({ id: "x".repeat(65) }), undefined);
  assert.equal(requestIdOf({ id: "" }), undefined);
  assert.equal(requestIdOf({ id: 5 }), undefined);
  assert.equal(requestIdOf({}), undefined);
});

Deno.test("ProtocolError: code, name, cause, and fatal only for stream-level failures", () => {
  const fatal: Record<ProtocolErrorCode, boolean> = {
    frame_too_large: true,
    bad_frame: true,
    truncated_frame: true,
    bad_utf8: true,
    bad_json: true,
    unsupported_version: true,
    server_busy: true,
    unknown_type: false,
    bad_message: false,
  };
  for (const [code, expected] of Object.entries(fatal) as [ProtocolErrorCode, boolean][]) {
    const cause = new Error("root");
    const err = new ProtocolError(code, `m ${code}`, { cause });
    assert.ok(err instanceof Error);
    assert.equal(err.name, "ProtocolError");
    assert.equal(err.code, code);
    assert.equal(err.message, `m ${code}`);
    assert.equal(err.cause, cause);
    assert.equal(err.fatal, expected, code);
  }
});

Deno.test("the fast checks of say and dm give exactly what their schemas give, and defer every refusal", () => {
  const values: unknown[] = [
    undefined,
    null,
    0,
    1,
    true,
    "",
    "x",
    "a".repeat(64),
    "a".repeat(65),
    "é".repeat(256),
    "b".repeat(257),
    "😀".repeat(128), // 256 UTF-16 units
    "😀".repeat(129),
    [],
    {},
    ["x"],
  ];
  let compared = 0;
  let fastTaken = 0;
  let deferred = 0;
  for (
    const [type, fields] of [["say", ["id", "room", "text"]], ["dm", ["id", "to", "text"]]] as const
  ) {
    const fast = fastClientParsers[type];
    const schema = clientSchemas[type];
    for (const a of values) {
      for (const b of values) {
        for (const c of values) {
          for (const extra of [{}, { extra: 1, type: type }, JSON.parse('{"__proto__":{"x":1}}')]) {
            const header: Record<string, unknown> = { ...extra, type };
            const given = [a, b, c];
            fields.forEach((field, i) => {
              if (given[i] !== undefined) header[field] = given[i];
            });
            const expected = schema.safeParse(header);
            const got = fast(header);
            // Beyond the bound in UTF-16 units the schema counts code points: the fast
            // check defers (null) rather than count them.
            if (got !== null) {
              assert.ok(expected.success, `fast ${type} took ${JSON.stringify(header)}`);
              assert.equal(JSON.stringify(got), JSON.stringify(expected.data));
              assert.deepEqual(Object.keys(got), Object.keys(expected.data));
              fastTaken++;
            } else if (expected.success) {
              const long = String(header.room ?? header.to);
              assert.ok(long.length > 256, `fast ${type} deferred ${JSON.stringify(header)}`);
              deferred++;
            }
            // Through the parser: the same result, or the schema's error.
            if (expected.success) {
              assert.deepEqual(parseClientMessage(header), expected.data);
            } else assert.throws(() => parseClientMessage(header), ProtocolError);
            compared++;
          }
        }
      }
    }
  }
  assert.ok(compared > 20_000);
  assert.ok(fastTaken > 0 && deferred > 0, `${fastTaken} taken, ${deferred} deferred`);
});

Deno.test("the fast checks of file_chunk, file_read and file_data give exactly what their schemas give, and defer every refusal", () => {
  const ids: unknown[] = [undefined, "", "x", "a".repeat(64), "a".repeat(65), "😀".repeat(33), 1];
  const numbers: unknown[] = [
    undefined,
    null,
    0,
    -0,
    1,
    -1,
    1.5,
    Number.MAX_SAFE_INTEGER,
    Number.MAX_SAFE_INTEGER + 1,
    NaN,
    Infinity,
    "1",
    true,
    MAX_FILE_READ_BYTES,
    MAX_FILE_READ_BYTES + 1,
  ];
  const digests: unknown[] = [undefined, "a".repeat(64), "A".repeat(64), "0".repeat(63), 5, null];
  const frames: unknown[] = [
    undefined,
    null,
    0,
    1,
    1.5,
    "1",
    MIN_FILE_DATA_FRAME_BYTES - 1,
    MIN_FILE_DATA_FRAME_BYTES,
    LARGE_FILE_CHUNK_BYTES,
    LARGE_FILE_CHUNK_BYTES + 1,
  ];
  const cases: [string, Record<string, readonly unknown[]>][] = [
    ["file_chunk", { id: ids, file: numbers, offset: numbers, sha256: digests }],
    ["file_read", { id: ids, file: numbers, offset: numbers, length: numbers, frame: frames }],
    ["file_data", { file: numbers, offset: numbers }],
  ];
  let compared = 0;
  let fastTaken = 0;
  for (const [type, fields] of cases) {
    const client = type !== "file_data";
    const fast = (client ? fastClientParsers : fastServerParsers)[type];
    const schema = (client ? clientSchemas : serverSchemas)[
      type as "file_chunk" & keyof typeof serverSchemas
    ] as { safeParse(v: unknown): { success: boolean; data?: unknown } };
    const parse = client ? parseClientMessage : parseServerMessage;
    // Every combination of the fields' values (a field given undefined is left out).
    let headers: Record<string, unknown>[] = [{ type }, { type, extra: 1 }];
    for (const [field, values] of Object.entries(fields)) {
      headers = headers.flatMap((h) =>
        values.map((v) => (v === undefined ? { ...h } : { ...h, [field]: v }))
      );
    }
    for (const header of headers) {
      const expected = schema.safeParse(header);
      const got = fast(header);
      if (got !== null) {
        assert.ok(expected.success, `fast ${type} took ${JSON.stringify(header)}`);
        assert.deepEqual(got, expected.data);
        assert.deepEqual(Object.keys(got), Object.keys(expected.data as object));
        fastTaken++;
      } else if (expected.success) {
        // Beyond 64 UTF-16 units the schema counts code points: the fast check defers.
        assert.ok(String(header.id).length > 64, `fast ${type} deferred ${JSON.stringify(header)}`);
      }
      if (expected.success) assert.deepEqual(parse(header), expected.data);
      else assert.throws(() => parse(header), ProtocolError);
      compared++;
    }
  }
  assert.ok(compared > 20_000 && fastTaken > 400, `${compared} compared, ${fastTaken} taken`);
});

Deno.test("the fast check of ok gives exactly what its schema gives, and defers every refusal", () => {
  const res: unknown[] = [undefined, "", "r", "a".repeat(64), "a".repeat(65), "😀".repeat(33), 5];
  const rests: Record<string, unknown>[] = [
    {},
    { file: 1, offset: 2, complete: false },
    { re: "moved" },
    JSON.parse('{"__proto__":{"x":1}}'),
  ];
  let taken = 0;
  let compared = 0;
  for (const re of res) {
    for (const rest of rests) {
      for (const order of ["type-re", "re-type", "rest-first"]) {
        const head = order === "re-type" ? { re, type: "ok" } : { type: "ok", re };
        const header: Record<string, unknown> = order === "rest-first"
          ? { ...rest, ...head }
          : { ...head, ...rest };
        if (re === undefined) delete header.re;
        const expected = serverSchemas.ok.safeParse(header);
        const got = fastServerParsers.ok(header);
        if (got !== null) {
          assert.ok(expected.success, `fast ok took ${JSON.stringify(header)}`);
          assert.deepEqual(got, expected.data);
          assert.deepEqual(Object.keys(got), Object.keys(expected.data));
          assert.notEqual(got, header);
          taken++;
        }
        if (expected.success) assert.deepEqual(parseServerMessage(header), expected.data);
        else assert.throws(() => parseServerMessage(header), ProtocolError);
        compared++;
      }
    }
  }
  assert.ok(taken >= 6 && compared === 84, `${taken} taken of ${compared}`);
});
