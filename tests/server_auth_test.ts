import assert from "node:assert/strict";
import { MemoryStore } from "../server/memory_store.ts";
import { delay, Probe, testServer } from "./helpers/harness.ts";
import { helloFrom } from "./helpers/local_address.ts";

Deno.test("hello: an incompatible version gets unsupported_version, then the close", async () => {
  await using server = await serverScope();
  await using probe = await Probe.dial(server.s);
  probe.send({ type: "hello", v: 99, features: [] });
  const error = await probe.expect({ type: "error" });
  assert.equal(error.code, "unsupported_version");
  assert.match(String(error.message), /99/);
  await probe.closed();
});

Deno.test("hello: a first frame that is not hello is refused and closed", async () => {
  await using server = await serverScope();
  await using probe = await Probe.dial(server.s);
  probe.send({ type: "login", id: "1", nick: "alice", password: "password123" });
  const error = await probe.expect({ type: "error" });
  assert.equal(error.code, "bad_message");
  await probe.closed();
});

Deno.test("login: requests before login are refused with not_logged_in", async () => {
  await using server = await serverScope();
  await using probe = await Probe.dial(server.s);
  await probe.hello();
  await probe.fails("join", { room: "x" }, "not_logged_in");
  await probe.fails("rooms", {}, "not_logged_in");
});

Deno.test("login: first login registers, later logins verify, a second login is refused", async () => {
  await using server = await serverScope();
  await using probe = await Probe.dial(server.s);
  await probe.hello();
  const reply = await probe.ok("login", { nick: "Alice", password: "correct horse" });
  assert.equal(reply.nick, "Alice");
  assert.deepEqual(reply.rooms, ["lobby"]);
  await probe.fails("login", { nick: "Alice", password: "correct horse" }, "already_logged_in");

  await using again = await Probe.dial(server.s);
  await again.hello();
  await again.fails("login", { nick: "alice", password: "wrong" }, "wrong_password");
  const ok = await again.ok("login", { nick: "ALICE", password: "correct horse" });
  assert.equal(ok.nick, "Alice", "nicks are case-insensitive and keep their registered case");
});

Deno.test("login: register false logs in to an existing account only; an unknown nick is no_account", async () => {
  await using server = await serverScope();
  await using probe = await Probe.dial(server.s);
  await probe.hello();
  const refused = await probe.fails(
    "login",
    { nick: "newbie", password: "password123", register: false },
    "no_account",
  );
  assert.match(String(refused.message), /newbie/);
  assert.equal(await server.s.hub.store.getAccount("newbie"), null, "nothing was registered");
  await probe.ok("login", { nick: "newbie", password: "password123" });

  await using again = await Probe.dial(server.s);
  await again.hello();
  await again.fails(
    "login",
    { nick: "newbie", password: "wrong-one", register: false },
    "wrong_password",
  );
  await again.ok("login", { nick: "newbie", password: "password123", register: false });
});

Deno.test("login: bad nicks and short passwords are refused with a reason", async () => {
  await using server = await serverScope();
  await using probe = await Probe.dial(server.s);
  await probe.hello();
  for (const nick of ["", "has space", "x".repeat(33), "é", "a/b", "<script>"]) {
    const error = await probe.fails("login", { nick, password: "password123" }, "bad_name");
    assert.ok(String(error.message).length > 10);
  }
  const short = await probe.fails("login", { nick: "bob", password: "short" }, "bad_password");
  assert.match(String(short.message), /8/);
  await probe.fails("login", { nick: "bob" }, "bad_password");
  await probe.ok("login", { nick: "b_o-b.2", password: "password123" });
});

Deno.test("login: --lockout account: 3 wrong passwords lock the nick from every address until it expires", async () => {
  await using server = await serverScope({ blockDurationSec: 1, lockoutScope: "account" });
  (await Probe.login(server.s, "carol", "the-password")).close();
  await using a = await Probe.dial(server.s);
  await a.hello();
  await a.fails("login", { nick: "carol", password: "nope1" }, "wrong_password");
  await a.fails("login", { nick: "carol", password: "nope2" }, "wrong_password");
  const locked = await a.fails("login", { nick: "carol", password: "nope3" }, "locked");
  assert.equal(locked.retryAfter, 1);
  // Locked from another connection too, even with the right password.
  await using b = await Probe.dial(server.s);
  await b.hello();
  const still = await b.fails("login", { nick: "carol", password: "the-password" }, "locked");
  assert.ok(Number(still.retryAfter) >= 1);
  assert.match(String(still.message), /try again in \d+ s/);
  await delay(1100);
  await b.ok("login", { nick: "carol", password: "the-password" });
});

Deno.test("login: a success resets the count of wrong passwords", async () => {
  await using server = await serverScope();
  (await Probe.login(server.s, "dave", "the-password")).close();
  await using a = await Probe.dial(server.s);
  await a.hello();
  await a.fails("login", { nick: "dave", password: "x1" }, "wrong_password");
  await a.fails("login", { nick: "dave", password: "x2" }, "wrong_password");
  await a.ok("login", { nick: "dave", password: "the-password" });
  await using b = await Probe.dial(server.s);
  await b.hello();
  await b.fails("login", { nick: "dave", password: "x3" }, "wrong_password");
  await b.fails("login", { nick: "dave", password: "x4" }, "wrong_password");
  await b.ok("login", { nick: "dave", password: "the-password" });
});

Deno.test("login: --credentials accounts are imported hashed and verified", async () => {
  await using server = await serverScope({
    credentials: [{ nick: "yoda", password: "wise" }, { nick: "hans", password: "falcon" }],
  });
  await using probe = await Probe.dial(server.s);
  await probe.hello();
  await probe.fails("login", { nick: "yoda", password: "falcon" }, "wrong_password");
  await probe.ok("login", { nick: "yoda", password: "wise" });
});

Deno.test("auth none: nick-only, a nick is held while one of its sessions is online", async () => {
  await using server = await serverScope({ auth: "none" });
  await using a = await Probe.dial(server.s);
  await a.hello();
  await a.ok("login", { nick: "zoe" });
  await using b = await Probe.dial(server.s);
  await b.hello();
  await b.fails("login", { nick: "ZOE" }, "nick_in_use");
  a.close();
  await delay(100);
  await b.ok("login", { nick: "zoe" });
});

Deno.test("idle timeout: no command for the timeout logs the session out with a notice", async () => {
  await using server = await serverScope({ idleTimeoutSec: 1 });
  await using idle = await Probe.login(server.s, "sleepy");
  await using busy = await Probe.login(server.s, "busy");
  // `busy` keeps sending commands; what `idle` receives does not count as activity.
  for (let i = 0; i < 6; i++) {
    await busy.ok("say", { room: "lobby", text: `tick ${i}` });
    await delay(250);
  }
  const notice = await idle.expect({ type: "notice", code: "idle_timeout" });
  assert.match(String(notice.text), /1 s/);
  await idle.closed();
  assert.equal(busy.ended, false);
  await busy.expect({ type: "presence", nick: "sleepy", online: false });
});

interface Scope extends AsyncDisposable {
  s: Awaited<ReturnType<typeof testServer>>;
}

async function serverScope(overrides: Parameters<typeof testServer>[0] = {}): Promise<Scope> {
  const s = await testServer(overrides);
  return { s, [Symbol.asyncDispose]: () => s.shutdown() };
}

Deno.test("lockout: a stranger's wrong passwords do not lock the owner out of an address they used", async () => {
  await using server = await serverScope({ blockDurationSec: 60 });
  // The owner registers from 127.0.0.1.
  (await Probe.login(server.s, "owner", "the-password")).close();
  // A stranger on 127.0.0.2 guesses three times: that address is locked...
  await using stranger = await helloFrom(server.s, "127.0.0.2");
  await stranger.fails("login", { nick: "owner", password: "guess-1" }, "wrong_password");
  await stranger.fails("login", { nick: "owner", password: "guess-2" }, "wrong_password");
  await stranger.fails("login", { nick: "owner", password: "guess-3" }, "locked");
  await stranger.fails("login", { nick: "owner", password: "the-password" }, "locked");
  // ...and so is any address that never logged in as owner (a guesser with many addresses).
  await using fresh = await helloFrom(server.s, "127.0.0.3");
  await fresh.fails("login", { nick: "owner", password: "the-password" }, "locked");
  // The owner, from the address they logged in from before, gets in.
  await using owner = await Probe.dial(server.s);
  await owner.hello();
  await owner.ok("login", { nick: "owner", password: "the-password" });
});

Deno.test("lockout: wrong passwords from the owner's own address still lock that address", async () => {
  await using server = await serverScope({ blockDurationSec: 60 });
  (await Probe.login(server.s, "erin", "the-password")).close();
  await using a = await Probe.dial(server.s);
  await a.hello();
  await a.fails("login", { nick: "erin", password: "nope-1" }, "wrong_password");
  await a.fails("login", { nick: "erin", password: "nope-2" }, "wrong_password");
  await a.fails("login", { nick: "erin", password: "nope-3" }, "locked");
  await a.fails("login", { nick: "erin", password: "the-password" }, "locked");
});

Deno.test("auth none: a nick that has a password is refused", async () => {
  await using server = await serverScope({
    auth: "none",
    credentials: [{ nick: "secured", password: "the-password" }],
  });
  await using a = await Probe.dial(server.s);
  await a.hello();
  const refused = await a.fails("login", { nick: "secured" }, "bad_password");
  assert.match(String(refused.message), /has a password/);
  await a.ok("login", { nick: "casual" });
});

Deno.test("password mode: an account made without a password is not claimed by the first comer", async () => {
  const store = new MemoryStore();
  const open = await testServer({ auth: "none" }, { store });
  const checked = await testServer({ auth: "password" }, { store });
  try {
    (await (async () => {
      const a = await Probe.dial(open);
      await a.hello();
      await a.ok("login", { nick: "casual" });
      return a;
    })()).close();
    await using b = await Probe.dial(checked);
    await b.hello();
    const unclaimed = await b.fails(
      "login",
      { nick: "casual", password: "first-comer" },
      "bad_password",
    );
    assert.match(String(unclaimed.message), /without a password/);
  } finally {
    await open.shutdown();
    await checked.shutdown();
  }
});
