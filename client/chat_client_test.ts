import assert from "node:assert/strict";
import { encodeFrameWithBody } from "../protocol/frame.ts";
import { FramedConnection } from "../transport/framed_connection.ts";
import { EventQueue } from "./event_queue.ts";
import { ChatClient, type ChatClientOptions, type ChatEvent } from "./chat_client.ts";
import { ChatError } from "./chat_error.ts";

// ---------------------------------------------------------------------------
// A fake server: a listener on 127.0.0.1:0 whose connections the test scripts frame
// by frame, so that every reply, event and drop happens exactly when the test says.

type Header = Record<string, unknown>;
const STEP_TIMEOUT_MS = 5000;

class FakeConn {
  readonly framed: FramedConnection;
  readonly #frames = new EventQueue<Header>();
  readonly reader: Promise<void>;

  constructor(conn: Deno.Conn) {
    const framed = new FramedConnection(conn);
    this.framed = framed;
    this.reader = (async () => {
      try {
        for await (const frame of framed) this.#frames.push(frame.header);
      } catch {
        // a test that drops the connection ends here
      } finally {
        this.#frames.end();
        framed.abort(); // the client has ended its side: so do we, like a real server
      }
    })();
  }

  /** The next frame the client sent; fails unless it is of `type`. */
  async expect(type: string): Promise<Header> {
    const next = await withTimeout(this.#frames.next(), `a "${type}" frame`);
    assert.ok(!next.done, `connection ended while waiting for "${type}"`);
    assert.equal(next.value.type, type, `expected "${type}", got ${JSON.stringify(next.value)}`);
    return next.value;
  }

  /** Resolves once the client has closed its side. */
  async ended(): Promise<void> {
    while (true) {
      const next = await withTimeout(this.#frames.next(), "the end of the connection");
      if (next.done) return;
    }
  }

  send(header: Header): void {
    this.framed.send(header);
  }

  ok(re: unknown, data: Header = {}): void {
    this.send({ type: "ok", re, ...data });
  }

  /** Answers hello and login; `login` overrides the login reply data. */
  async handshake(login: Header = {}): Promise<Header> {
    const hello = await this.expect("hello");
    assert.equal(hello.v, 1);
    this.send({ type: "hello", v: 1, features: ["rooms"], server: "fake", maxFrame: 1 << 20 });
    const request = await this.expect("login");
    this.ok(request.id, { nick: request.nick, rooms: ["lobby"], pending: 0, lastId: 0, ...login });
    return request;
  }

  drop(): void {
    this.framed.abort();
  }
}

class FakeServer implements AsyncDisposable {
  readonly listener: Deno.Listener;
  readonly #conns = new EventQueue<FakeConn>();
  readonly #all: FakeConn[] = [];
  readonly #accepting: Promise<void>;

  constructor() {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.listener = listener;
    this.#accepting = (async () => {
      try {
        for await (const conn of listener) {
          const fake = new FakeConn(conn);
          this.#all.push(fake);
          this.#conns.push(fake);
        }
      } catch {
        // listener closed
      }
    })();
  }

  get port(): number {
    return (this.listener.addr as Deno.NetAddr).port;
  }

  /** Connections accepted so far. */
  get accepted(): number {
    return this.#all.length;
  }

  async next(): Promise<FakeConn> {
    const next = await withTimeout(this.#conns.next(), "a connection");
    assert.ok(!next.done);
    return next.value;
  }

  stopListening(): void {
    try {
      this.listener.close();
    } catch {
      // closed already
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.stopListening();
    await this.#accepting;
    for (const conn of this.#all) conn.drop();
    await Promise.all(this.#all.map((c) => c.reader));
  }
}

function withTimeout<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), STEP_TIMEOUT_MS);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Connects a client to the fake server while the fake answers the handshake. */
async function connected(
  server: FakeServer,
  options: Partial<ChatClientOptions> = {},
  login: Header = {},
): Promise<{ client: ChatClient; conn: FakeConn }> {
  const connecting = ChatClient.connect({
    port: server.port,
    nick: "alice",
    password: "password123",
    reconnect: { initialDelayMs: 5, maxDelayMs: 20, jitter: 0 },
    ...options,
  });
  const conn = await server.next();
  await conn.handshake(login);
  return { client: await connecting, conn };
}

/** Reads events until one matches `until` (included). */
async function eventsUntil(
  events: AsyncIterator<ChatEvent>,
  until: (e: ChatEvent) => boolean,
): Promise<ChatEvent[]> {
  const out: ChatEvent[] = [];
  while (true) {
    const next = await withTimeout(events.next(), "an event");
    assert.ok(!next.done, `events ended; got ${JSON.stringify(out)}`);
    out.push(next.value);
    if (until(next.value)) return out;
  }
}

const msg = (id: number, from: string, text: string, room = "lobby") => ({
  type: "msg",
  room,
  id,
  ts: 1_700_000_000_000 + id,
  from,
  text,
});
const dm = (id: number, from: string, to: string, text: string) => ({
  type: "dm",
  to,
  id,
  ts: 1_700_000_000_000 + id,
  from,
  text,
});

// ---------------------------------------------------------------------------

Deno.test("connect sends hello then login with nick and password", async () => {
  await using server = new FakeServer();
  const connecting = ChatClient.connect({
    port: server.port,
    nick: "alice",
    password: "password123",
    agent: "test/1",
  });
  const conn = await server.next();
  const hello = await conn.expect("hello");
  assert.equal(hello.agent, "test/1");
  assert.ok(Array.isArray(hello.features));
  conn.send({ type: "hello", v: 1, features: [], server: "fake", maxFrame: 1 << 20 });
  const login = await conn.expect("login");
  assert.equal(login.nick, "alice");
  assert.equal(login.password, "password123");
  assert.equal(typeof login.id, "string");
  conn.ok(login.id, { nick: "Alice", rooms: ["lobby", "rust"], pending: 0, lastId: 10 });
  const client = await connecting;
  assert.equal(client.nick, "Alice");
  assert.deepEqual(client.joinedRooms, ["lobby", "rust"]);
  assert.equal(client.lastMessageId, 10);
  assert.equal(client.state, "ready");
  await client.close();
  await conn.ended();
});

Deno.test("replies are matched to requests by id, in whatever order they come", async () => {
  await using server = new FakeServer();
  const { client, conn } = await connected(server);
  const who = client.who();
  const ping = client.ping();
  const members = client.members("lobby");
  const r1 = await conn.expect("who");
  const r2 = await conn.expect("ping");
  const r3 = await conn.expect("members");
  assert.equal(r3.room, "lobby");
  assert.equal(new Set([r1.id, r2.id, r3.id]).size, 3);
  conn.ok(r3.id, { room: "lobby", members: [{ nick: "bob", online: true }] });
  conn.ok(r2.id, { ts: 42 });
  conn.ok(r1.id, { users: ["alice", "bob"] });
  assert.deepEqual(await who, { users: ["alice", "bob"] });
  assert.deepEqual(await ping, { ts: 42 });
  assert.deepEqual(await members, { room: "lobby", members: [{ nick: "bob", online: true }] });
  assert.equal(client.pendingRequests, 0);
  await client.close();
});

Deno.test("server errors reject with ChatError carrying the code and retryAfter", async () => {
  await using server = new FakeServer();
  // Without pacing, a refusal for the rate is the caller's to handle.
  const { client, conn } = await connected(server, { pace: false });
  const sending = client.dm("nobody", "hi");
  const request = await conn.expect("dm");
  assert.equal(request.to, "nobody");
  conn.send({
    type: "error",
    re: request.id,
    code: "unknown_user",
    message: "no user named nobody",
  });
  await assert.rejects(sending, (err: unknown) => {
    assert.ok(err instanceof ChatError);
    assert.equal(err.code, "unknown_user");
    assert.equal(err.message, "no user named nobody");
    return true;
  });
  const limited = client.say("lobby", "again");
  const say = await conn.expect("say");
  conn.send({
    type: "error",
    re: say.id,
    code: "rate_limited",
    message: "slow down",
    retryAfter: 3,
  });
  await assert.rejects(limited, (err: unknown) => {
    assert.ok(err instanceof ChatError);
    assert.equal(err.code, "rate_limited");
    assert.equal(err.retryAfter, 3);
    return true;
  });
  await client.close();
});

Deno.test("requests are validated before sending; login cannot be sent by hand", async () => {
  await using server = new FakeServer();
  const { client, conn } = await connected(server);
  await assert.rejects(client.read([]), { name: "ChatError", code: "bad_request" });
  await assert.rejects(client.history({ room: "lobby", limit: 0 }), { code: "bad_request" });
  await assert.rejects(
    client.request("login" as "ping", {}),
    { code: "bad_request" },
  );
  // An encoded request must be the request it claims to be, with its own id.
  const chunk = { type: "file_chunk", id: "c1", file: 1, offset: 0 };
  const { frame } = encodeFrameWithBody(chunk, 4);
  await assert.rejects(
    client.request("file_chunk", { file: 1, offset: 4 }, { id: "c1", frame }),
    { code: "bad_request" },
  );
  await assert.rejects(
    client.request("file_chunk", { file: 1, offset: 0 }, { frame }),
    { code: "bad_request" },
  );
  // Nothing of that reached the server: the next frame is the ping.
  const pinging = client.ping();
  const ping = await conn.expect("ping");
  conn.ok(ping.id, { ts: 1 });
  await pinging;
  await client.close();
});

Deno.test("login failures reject connect with the server's code and are not retried", async () => {
  await using server = new FakeServer();
  for (
    const [code, retryAfter] of [["wrong_password", undefined], ["locked", 42], [
      "bad_password",
      undefined,
    ]] as const
  ) {
    const connecting = ChatClient.connect({
      port: server.port,
      nick: "alice",
      password: "nope",
      reconnect: { initialDelayMs: 5, jitter: 0 },
    });
    const conn = await server.next();
    await conn.expect("hello");
    conn.send({ type: "hello", v: 1, features: [], server: "fake", maxFrame: 1 << 20 });
    const login = await conn.expect("login");
    conn.send({
      type: "error",
      re: login.id,
      code,
      message: `refused: ${code}`,
      ...(retryAfter !== undefined ? { retryAfter } : {}),
    });
    await assert.rejects(connecting, (err: unknown) => {
      assert.ok(err instanceof ChatError);
      assert.equal(err.code, code);
      assert.equal(err.retryAfter, retryAfter);
      return true;
    });
    await conn.ended();
  }
  assert.equal(server.accepted, 3);
});

Deno.test("an unsupported version in the server's hello rejects connect", async () => {
  await using server = new FakeServer();
  const connecting = ChatClient.connect({ port: server.port, nick: "alice" });
  const conn = await server.next();
  await conn.expect("hello");
  conn.send({ type: "error", code: "unsupported_version", message: "version 1 is not supported" });
  await assert.rejects(connecting, { code: "unsupported_version" });
});

Deno.test("a server that never answers times out; a closed port is connect_failed", async () => {
  await using server = new FakeServer();
  const connecting = ChatClient.connect({
    port: server.port,
    nick: "alice",
    connectTimeoutMs: 150,
  });
  const conn = await server.next();
  await conn.expect("hello");
  await assert.rejects(connecting, { code: "timeout" });
  await conn.ended();
  server.stopListening();
  await assert.rejects(
    ChatClient.connect({ port: server.port, nick: "alice" }),
    (err: unknown) => {
      assert.ok(err instanceof ChatError);
      assert.equal(err.code, "connect_failed");
      assert.match(err.message, new RegExp(`127\\.0\\.0\\.1:${server.port}`));
      return true;
    },
  );
});

Deno.test("something that is not the chat protocol is a protocol_error", async () => {
  await using server = new FakeServer();
  const connecting = ChatClient.connect({ port: server.port, nick: "alice" });
  const conn = await server.next();
  await conn.expect("hello");
  conn.framed.sendEncoded(new TextEncoder().encode("HTTP/1.1 400 Bad Request\r\n\r\n"));
  await assert.rejects(connecting, { code: "protocol_error" });
});

Deno.test("events come out in order; a message id is emitted once", async () => {
  await using server = new FakeServer();
  const { client, conn } = await connected(server);
  const events = client.events[Symbol.asyncIterator]();
  conn.send(msg(1, "bob", "hi"));
  conn.send({ type: "presence", nick: "carol", online: true, ts: 5 });
  conn.send(msg(1, "bob", "hi"));
  conn.send(dm(2, "bob", "alice", "psst"));
  conn.send({ type: "receipt", id: 2, status: "read", by: "bob", ts: 6 });
  conn.send({ type: "notice", code: "info", text: "hello there" });
  const got = await eventsUntil(events, (e) => e.type === "notice");
  assert.deepEqual(got.map((e) => e.type), ["msg", "presence", "dm", "receipt", "notice"]);
  assert.deepEqual(got[0], msg(1, "bob", "hi"));
  assert.equal(client.lastMessageId, 2);
  await client.close();
  const rest = await eventsUntil(events, (e) => e.type === "closed");
  assert.deepEqual(rest, [{ type: "closed" }]);
  assert.equal((await events.next()).done, true);
});

Deno.test("close() rejects pending requests with closed and ends the events", async () => {
  await using server = new FakeServer();
  const { client, conn } = await connected(server);
  const seen: ChatEvent[] = [];
  const reading = (async () => {
    for await (const event of client.events) seen.push(event);
  })();
  const pending = client.who();
  const rejected = assert.rejects(pending, { code: "closed" });
  await conn.expect("who");
  await client.close();
  await rejected;
  await reading;
  assert.deepEqual(seen, [{ type: "closed" }]);
  await assert.rejects(client.ping(), { code: "closed" });
  await conn.ended();
  assert.equal(client.closed, true);
});

Deno.test("a malformed server frame closes the client with protocol_error, no reconnect", async () => {
  await using server = new FakeServer();
  const { client, conn } = await connected(server);
  const events = client.events[Symbol.asyncIterator]();
  const pending = client.who();
  await conn.expect("who");
  conn.send({ type: "msg", room: "lobby", id: "not a number", ts: 1, from: "bob", text: "x" });
  const got = await eventsUntil(events, (e) => e.type === "closed");
  const closed = got.at(-1)!;
  assert.equal(closed.type, "closed");
  assert.equal((closed as { code?: string }).code, "protocol_error");
  assert.match((closed as { reason?: string }).reason!, /malformed/);
  await assert.rejects(pending, (err: unknown) => err instanceof ChatError);
  await conn.ended();
  assert.equal(server.accepted, 1);
});

Deno.test("a malformed ok reply is a protocol error too", async () => {
  await using server = new FakeServer();
  const { client, conn } = await connected(server);
  const sending = client.say("lobby", "hi");
  const say = await conn.expect("say");
  conn.ok(say.id, { msg: { id: 1 } });
  await assert.rejects(sending, (err: unknown) => err instanceof ChatError);
  await client.done;
  assert.equal(client.closed, true);
});

Deno.test("reconnect: resync after the highest id, emit missed once, resend with the same id", async () => {
  await using server = new FakeServer();
  const { client, conn: first } = await connected(server, {}, { lastId: 5 });
  const events = client.events[Symbol.asyncIterator]();

  // A message arrives and is seen: the catch-up must start after it.
  first.send(msg(6, "bob", "before the drop"));
  await eventsUntil(events, (e) => e.type === "msg");
  assert.equal(client.lastMessageId, 6);

  // A say goes out; the connection drops before its ack.
  const saying = client.say("lobby", "hello?");
  const say = await first.expect("say");
  const broadcasting = client.broadcast("everyone!");
  await first.expect("broadcast");
  first.drop();

  const dropped = await eventsUntil(events, (e) => e.type === "reconnecting");
  assert.equal(dropped[0].type, "disconnected");
  assert.deepEqual(dropped[1], { type: "reconnecting", attempt: 1, delayMs: 5 });
  // A broadcast in flight is never resent blindly.
  await assert.rejects(broadcasting, { code: "connection_lost" });
  // Issued while disconnected: queued, sent after the resend.
  const whoing = client.who();

  const second = await server.next();
  const login = await second.handshake({ lastId: 99 });
  assert.equal(login.nick, "alice");
  assert.equal(login.password, "password123");
  // A live event during the catch-up comes after the missed messages.
  second.send(msg(10, "carol", "live"));
  second.send(dm(9, "bob", "alice", "while away")); // also in the catch-up: once only

  const sync1 = await second.expect("sync");
  assert.equal(sync1.after, 6);
  second.ok(sync1.id, {
    messages: [msg(6, "bob", "before the drop"), msg(7, "carol", "missed 1")],
    more: true,
  });
  const sync2 = await second.expect("sync");
  assert.equal(sync2.after, 7);
  second.ok(sync2.id, {
    // 8 is our own say, stored before the drop: it comes back as the resend's ack.
    messages: [msg(8, "alice", "hello?"), dm(9, "bob", "alice", "while away")],
    more: false,
  });

  const resent = await second.expect("say");
  assert.equal(resent.id, say.id);
  assert.equal(resent.text, "hello?");
  const who = await second.expect("who");
  second.ok(resent.id, { msg: msg(8, "alice", "hello?"), duplicate: true });
  second.ok(who.id, { users: ["alice"] });

  const ack = await saying;
  assert.equal(ack.duplicate, true);
  assert.equal(ack.msg.id, 8);
  assert.deepEqual(await whoing, { users: ["alice"] });

  const after = await eventsUntil(events, (e) => e.type === "msg" && e.id === 10);
  assert.deepEqual(
    after.map((e) => e.type === "msg" || e.type === "dm" ? `${e.type}:${e.id}` : e.type),
    // The who made while disconnected was announced as held.
    ["held", "reconnected", "msg:7", "dm:9", "msg:10"],
  );
  assert.equal(client.lastMessageId, 10);

  // Nothing else was queued: the next event is the close.
  await client.close();
  assert.deepEqual((await events.next()).value, { type: "closed" });
  assert.equal(server.accepted, 2);
});

Deno.test("reconnect: backoff grows, then a fatal login error ends the client", async () => {
  await using server = new FakeServer();
  const { client, conn: first } = await connected(server, {
    reconnect: { initialDelayMs: 5, maxDelayMs: 1000, jitter: 0 },
  });
  const events = client.events[Symbol.asyncIterator]();
  const pending = client.ping();
  await first.expect("ping");
  first.drop();
  // Attempt 1: the server hangs up during the handshake; attempt 2 is refused for good.
  const second = await server.next();
  await second.expect("hello");
  second.drop();
  const third = await server.next();
  await third.expect("hello");
  third.send({ type: "hello", v: 1, features: [], server: "fake", maxFrame: 1 << 20 });
  const login = await third.expect("login");
  third.send({ type: "error", re: login.id, code: "wrong_password", message: "wrong password" });

  const got = await eventsUntil(events, (e) => e.type === "closed");
  assert.deepEqual(got.filter((e) => e.type === "reconnecting"), [
    { type: "reconnecting", attempt: 1, delayMs: 5 },
    { type: "reconnecting", attempt: 2, delayMs: 10 },
  ]);
  assert.deepEqual(got.at(-1), {
    type: "closed",
    reason: "wrong password",
    code: "wrong_password",
  });
  await assert.rejects(pending, { code: "disconnected" });
  assert.equal((await events.next()).done, true);
  await third.ended();
  // Give a retry (were there one) many times its 20 ms backoff to show up: none does.
  await new Promise((resolve) => setTimeout(resolve, 200));
  assert.equal(server.accepted, 3);
});

Deno.test("reconnect: gives up after maxAttempts when the server is gone", async () => {
  await using server = new FakeServer();
  const { client, conn } = await connected(server, {
    reconnect: { initialDelayMs: 5, maxDelayMs: 5, maxAttempts: 2, jitter: 0 },
  });
  const events = client.events[Symbol.asyncIterator]();
  server.stopListening();
  const queued = client.ping();
  await conn.expect("ping");
  conn.drop();
  const got = await eventsUntil(events, (e) => e.type === "closed");
  assert.deepEqual(got.map((e) => e.type), [
    "disconnected",
    "reconnecting",
    "reconnecting",
    "closed",
  ]);
  const closed = got.at(-1) as { code?: string; reason?: string };
  assert.equal(closed.code, "disconnected");
  assert.match(closed.reason!, /gave up reconnecting after 2 attempts: cannot connect/);
  await assert.rejects(queued, { code: "disconnected" });
});

Deno.test("reconnect: false turns a drop into the end", async () => {
  await using server = new FakeServer();
  const { client, conn } = await connected(server, { reconnect: false });
  const events = client.events[Symbol.asyncIterator]();
  const pending = client.who();
  await conn.expect("who");
  conn.drop();
  const got = await eventsUntil(events, (e) => e.type === "closed");
  assert.deepEqual(got.map((e) => e.type), ["disconnected", "closed"]);
  assert.equal((got[1] as { code?: string }).code, "disconnected");
  await assert.rejects(pending, { code: "disconnected" });
  assert.equal(server.accepted, 1);
});

Deno.test("an idle_timeout notice ends the session without reconnecting", async () => {
  await using server = new FakeServer();
  const { client, conn } = await connected(server);
  const events = client.events[Symbol.asyncIterator]();
  conn.send({ type: "notice", code: "idle_timeout", text: "logged out after 60 s" });
  await conn.framed.close();
  const got = await eventsUntil(events, (e) => e.type === "closed");
  assert.deepEqual(got, [
    { type: "notice", code: "idle_timeout", text: "logged out after 60 s" },
    { type: "closed", reason: "logged out after 60 s", code: "idle_timeout" },
  ]);
  assert.equal(server.accepted, 1);
});

Deno.test("logout waits for the ok, then closes without reconnecting", async () => {
  await using server = new FakeServer();
  const { client, conn } = await connected(server);
  const events = client.events[Symbol.asyncIterator]();
  const leaving = client.logout();
  const logout = await conn.expect("logout");
  conn.ok(logout.id);
  await conn.framed.close();
  assert.deepEqual(await leaving, {});
  const got = await eventsUntil(events, (e) => e.type === "closed");
  assert.deepEqual(got, [{ type: "closed", reason: "logged out" }]);
  assert.equal(server.accepted, 1);
});

Deno.test("resent block/leave whose first attempt was applied resolve normally", async () => {
  await using server = new FakeServer();
  const { client, conn: first } = await connected(server, {}, { rooms: ["lobby", "rust"] });
  const blocking = client.block("mallory");
  const leaving = client.leave("rust");
  const unblocking = client.unblock("bob");
  await first.expect("block");
  await first.expect("leave");
  await first.expect("unblock");
  first.drop();
  const second = await server.next();
  await second.handshake({ rooms: ["lobby"] });
  const sync = await second.expect("sync");
  second.ok(sync.id, { messages: [], more: false });
  const block = await second.expect("block");
  const leave = await second.expect("leave");
  const unblock = await second.expect("unblock");
  second.send({ type: "error", re: block.id, code: "already_blocked", message: "already" });
  second.send({ type: "error", re: leave.id, code: "not_member", message: "not in rust" });
  // Not the "already done" code of unblock: a real refusal.
  second.send({ type: "error", re: unblock.id, code: "unknown_user", message: "no bob" });
  assert.deepEqual(await blocking, { nick: "mallory" });
  assert.deepEqual(await leaving, { room: "rust" });
  await assert.rejects(unblocking, { code: "unknown_user" });
  assert.deepEqual(client.joinedRooms, ["lobby"]);
  await client.close();
});

Deno.test("joined history is never re-emitted by a catch-up", async () => {
  await using server = new FakeServer();
  const { client, conn: first } = await connected(server, {}, { lastId: 3 });
  const events = client.events[Symbol.asyncIterator]();
  const joining = client.join("rust");
  const join = await first.expect("join");
  first.ok(join.id, {
    room: "rust",
    topic: "",
    members: ["alice"],
    history: [msg(4, "bob", "old", "rust")],
  });
  await joining;
  assert.equal(client.lastMessageId, 3);
  first.drop();
  const second = await server.next();
  await second.handshake({ rooms: ["lobby", "rust"] });
  const sync = await second.expect("sync");
  assert.equal(sync.after, 3);
  second.ok(sync.id, {
    messages: [msg(4, "bob", "old", "rust"), msg(5, "bob", "new", "rust")],
    more: false,
  });
  const got = await eventsUntil(events, (e) => e.type === "msg");
  assert.deepEqual(got.map((e) => e.type), ["disconnected", "reconnecting", "reconnected", "msg"]);
  assert.equal((got[3] as { id: number }).id, 5);
  assert.deepEqual(client.joinedRooms, ["lobby", "rust"]);
  await client.close();
});

Deno.test("requests larger than the server's maxFrame are refused locally", async () => {
  await using server = new FakeServer();
  const connecting = ChatClient.connect({ port: server.port, nick: "alice" });
  const conn = await server.next();
  await conn.expect("hello");
  conn.send({ type: "hello", v: 1, features: [], server: "fake", maxFrame: 200 });
  const login = await conn.expect("login");
  conn.ok(login.id, { nick: "alice", rooms: [], pending: 0, lastId: 0 });
  const client = await connecting;
  await assert.rejects(client.say("lobby", "x".repeat(500)), { code: "frame_too_large" });
  await client.close();
});

Deno.test("ChatError has a stable code and is an Error", () => {
  const err = new ChatError("locked", "try later", { retryAfter: 60 });
  assert.ok(err instanceof Error);
  assert.equal(err.name, "ChatError");
  assert.equal(err.code, "locked");
  assert.equal(err.retryAfter, 60);
  assert.equal(new ChatError("closed", "x").retryAfter, undefined);
});

Deno.test("pacing: a request refused for the rate is held, then sent again in order", async () => {
  await using server = new FakeServer();
  const { client, conn } = await connected(server, { pace: { window: 2 } });
  const held: ChatEvent[] = [];
  client.onEvent((e) => {
    if (e.type === "held") held.push(e);
  });
  const one = client.say("lobby", "one");
  const two = client.say("lobby", "two");
  const three = client.say("lobby", "three");
  const r1 = await conn.expect("say");
  const r2 = await conn.expect("say");
  // The window holds the third back until a reply comes.
  conn.send({ type: "error", re: r1.id, code: "rate_limited", message: "slow", retryAfter: 0.05 });
  conn.send({ type: "error", re: r2.id, code: "rate_limited", message: "slow", retryAfter: 0.05 });
  // After the wait, one at a time, in the order they were made, with their own ids.
  const again1 = await conn.expect("say");
  assert.deepEqual([again1.id, again1.text], [r1.id, "one"]);
  assert.ok(held.length >= 2, JSON.stringify(held));
  assert.deepEqual(held.slice(0, 2).map((e) => e.type === "held" && [e.reason, e.text]), [
    ["rate_limited", "one"],
    ["rate_limited", "two"],
  ]);
  assert.equal(client.heldRequests, 2);
  const msg = (id: number, text: string) => ({
    msg: { type: "msg", room: "lobby", id, ts: 1, from: "alice", text },
    duplicate: false,
  });
  conn.ok(again1.id, msg(1, "one"));
  const again2 = await conn.expect("say");
  assert.equal(again2.text, "two");
  conn.ok(again2.id, msg(2, "two"));
  const first3 = await conn.expect("say");
  assert.equal(first3.text, "three");
  conn.ok(first3.id, msg(3, "three"));
  assert.deepEqual(
    (await Promise.all([one, two, three])).map((r) => r.msg.text),
    ["one", "two", "three"],
  );
  assert.equal(client.heldRequests, 0);
  await client.close();
});

Deno.test("pacing: a request made while disconnected is announced as held", async () => {
  await using server = new FakeServer();
  const { client, conn } = await connected(server);
  const events = client.events[Symbol.asyncIterator]();
  conn.drop();
  await eventsUntil(events, (e) => e.type === "disconnected");
  const sending = client.dm("bob", "later");
  const held = await eventsUntil(events, (e) => e.type === "held");
  assert.deepEqual(held.at(-1), {
    type: "held",
    id: (held.at(-1) as { id: string }).id,
    request: "dm",
    reason: "offline",
    to: "bob",
    text: "later",
  });
  assert.equal(client.heldRequests, 1);
  const again = await server.next();
  await again.handshake();
  const sync = await again.expect("sync");
  again.ok(sync.id, { messages: [], more: false });
  const dm = await again.expect("dm");
  again.ok(dm.id, {
    msg: { type: "dm", to: "bob", id: 5, ts: 1, from: "alice", text: "later" },
    duplicate: false,
    delivered: true,
  });
  assert.equal((await sending).msg.text, "later");
  await client.close();
});
