/**
 * Session tokens ("remember me") over a real socket: issued after a login, a login with
 * one instead of the password, revoked one at a time or all at once ("log out
 * everywhere", which ends the account's other sessions), expired, revoked by a password
 * change, counted against the lockout like wrong passwords, kept across a restart
 * (SQLite), and stored hashed. See server/session_tokens.ts.
 */

import assert from "node:assert/strict";
import { tokenHash } from "../server/session_tokens.ts";
import { connectClient, Probe, testServer } from "./helpers/harness.ts";
import { helloFrom } from "./helpers/local_address.ts";

const WAIT_MS = 20_000;

async function serverScope(overrides: Parameters<typeof testServer>[0] = {}) {
  const s = await testServer(overrides);
  return { s, [Symbol.asyncDispose]: () => s.shutdown() };
}

/** A new connection that said hello (not logged in). */
async function dialed(server: Awaited<ReturnType<typeof testServer>>): Promise<Probe> {
  const probe = await Probe.dial(server);
  await probe.hello();
  return probe;
}

Deno.test("tokens: a token issued after a login logs in instead of the password; the store keeps its SHA-256 only", async () => {
  await using server = await serverScope();
  await using alice = await Probe.login(server.s, "Alice");
  const issued = await alice.ok("token_issue");
  const token = String(issued.token);
  assert.match(token, /^[A-Za-z0-9_-]{43}$/, "32 random bytes, base64url");
  const ttlMs = server.s.hub.config.tokenTtlSec * 1000;
  assert.ok(
    Math.abs(Number(issued.expires) - (Date.now() + ttlMs)) < 60_000,
    "expires in --token-ttl",
  );
  const stored = await server.s.hub.store.getToken(await tokenHash(token));
  assert.equal(stored?.accountKey, "alice");
  assert.equal(await server.s.hub.store.getToken(token), null, "the token itself is not a key");
  // Another token each time.
  assert.notEqual((await alice.ok("token_issue")).token, token);

  await using again = await dialed(server.s);
  const reply = await again.ok("login", { nick: "alice", token });
  assert.equal(reply.nick, "Alice");
  assert.deepEqual(reply.rooms, ["lobby"]);
  await again.ok("say", { room: "lobby", text: "logged in with a token" });
});

Deno.test("tokens: a wrong token, or one of another account, is bad_token and never registers", async () => {
  await using server = await serverScope();
  await using bob = await Probe.login(server.s, "bob");
  const bobs = String((await bob.ok("token_issue")).token);
  (await Probe.login(server.s, "alice")).close();
  await using probe = await dialed(server.s);
  await probe.fails("login", { nick: "alice", token: bobs }, "bad_token");
  await probe.fails("login", { nick: "alice", token: "x".repeat(43) }, "bad_token");
  await probe.fails("login", { nick: "newcomer", token: bobs }, "bad_token");
  assert.equal(await server.s.hub.store.getAccount("newcomer"), null, "nothing registered");
  await probe.ok("login", { nick: "bob", token: bobs });
});

Deno.test("tokens: wrong tokens count against the lockout like wrong passwords", async () => {
  await using server = await serverScope({ blockDurationSec: 60 });
  await using owner = await Probe.login(server.s, "owner", "the-password");
  const token = String((await owner.ok("token_issue")).token);
  await using guesser = await helloFrom(server.s, "127.0.0.2");
  await guesser.fails("login", { nick: "owner", token: "guess-1" }, "bad_token");
  await guesser.fails("login", { nick: "owner", password: "guess-2" }, "wrong_password");
  const locked = await guesser.fails("login", { nick: "owner", token: "guess-3" }, "locked");
  assert.equal(locked.retryAfter, 60);
  // Locked for that address: even the right token is refused there...
  await guesser.fails("login", { nick: "owner", token }, "locked");
  // ...but not for the owner's address.
  await using mine = await dialed(server.s);
  await mine.ok("login", { nick: "owner", token });
});

Deno.test("tokens: token_revoke revokes one token of this account, not another's", async () => {
  await using server = await serverScope();
  await using alice = await Probe.login(server.s, "alice");
  const first = String((await alice.ok("token_issue")).token);
  const second = String((await alice.ok("token_issue")).token);
  await using bob = await Probe.login(server.s, "bob");
  const bobs = String((await bob.ok("token_issue")).token);
  assert.equal((await alice.ok("token_revoke", { token: bobs })).revoked, 0);
  assert.equal((await alice.ok("token_revoke", { token: first })).revoked, 1);
  assert.equal((await alice.ok("token_revoke", { token: first })).revoked, 0);
  await alice.fails("token_revoke", {}, "bad_message");
  await using probe = await dialed(server.s);
  await probe.fails("login", { nick: "alice", token: first }, "bad_token");
  await probe.ok("login", { nick: "alice", token: second });
  await using other = await dialed(server.s);
  await other.ok("login", { nick: "bob", token: bobs });
});

Deno.test("tokens: log out everywhere revokes every token and ends the account's other sessions", async () => {
  await using server = await serverScope();
  await using phone = await Probe.login(server.s, "alice");
  const phoneToken = String((await phone.ok("token_issue")).token);
  await using laptop = await Probe.login(server.s, "alice");
  const laptopToken = String((await laptop.ok("token_issue")).token);
  await using bob = await Probe.login(server.s, "bob");
  const bobs = String((await bob.ok("token_issue")).token);

  const reply = await laptop.ok("token_revoke", { all: true });
  assert.equal(reply.revoked, 2);
  const notice = await phone.expect({ type: "notice", code: "logged_out" }, WAIT_MS);
  assert.match(String(notice.text), /everywhere/);
  await phone.closed(WAIT_MS);
  // The session that asked stays; bob's session and token are untouched.
  await laptop.ok("ping");
  await bob.ok("ping");
  await using probe = await dialed(server.s);
  await probe.fails("login", { nick: "alice", token: phoneToken }, "bad_token");
  await probe.fails("login", { nick: "alice", token: laptopToken }, "bad_token");
  await probe.ok("login", { nick: "bob", token: bobs });
});

Deno.test("tokens: an expired token is bad_token", async () => {
  await using server = await serverScope({ tokenTtlSec: 3600 });
  await using alice = await Probe.login(server.s, "alice");
  const token = String((await alice.ok("token_issue")).token);
  const hub = server.s.hub;
  const start = Date.now();
  hub.now = () => start + 3600 * 1000 + 1000;
  await using probe = await dialed(server.s);
  await probe.fails("login", { nick: "alice", token }, "bad_token");
  hub.now = Date.now;
  await probe.ok("login", { nick: "alice", token });
});

Deno.test("tokens: token_issue {ttl} gives a token that expires per that ttl, at most --token-ttl", async () => {
  await using server = await serverScope({ tokenTtlSec: 3600 });
  await using alice = await Probe.login(server.s, "alice");
  const start = Date.now();
  const short = await alice.ok("token_issue", { ttl: 60 });
  const token = String(short.token);
  assert.ok(Number(short.expires) <= Date.now() + 60_000, "expires within its ttl");
  const capped = await alice.ok("token_issue", { ttl: 10 * 3600 });
  assert.ok(Number(capped.expires) <= Date.now() + 3600_000, "cut to --token-ttl");
  await alice.fails("token_issue", { ttl: 0 }, "bad_message");
  const hub = server.s.hub;
  hub.now = () => start + 61_000;
  await using probe = await dialed(server.s);
  await probe.fails("login", { nick: "alice", token }, "bad_token");
  hub.now = Date.now;
  await probe.ok("login", { nick: "alice", token });
});

Deno.test("tokens: a new password (credentials import) revokes the account's tokens", async () => {
  await using server = await serverScope();
  await using alice = await Probe.login(server.s, "alice");
  const token = String((await alice.ok("token_issue")).token);
  await server.s.hub.importCredentials([{ nick: "alice", password: "a-new-password" }]);
  await using probe = await dialed(server.s);
  await probe.fails("login", { nick: "alice", token }, "bad_token");
  await probe.ok("login", { nick: "alice", password: "a-new-password" });
});

Deno.test("tokens: a token still logs in after a restart (SQLite)", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "chat-tokens-" });
  try {
    let token: string;
    {
      await using server = await serverScope({ dataDir });
      await using alice = await Probe.login(server.s, "alice");
      token = String((await alice.ok("token_issue")).token);
    }
    await using server = await serverScope({ dataDir });
    await using probe = await dialed(server.s);
    await probe.ok("login", { nick: "alice", token });
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("tokens: the terminal client's log out everywhere (/logout everywhere) ends the page's session and token", async () => {
  await using server = await serverScope();
  await using page = await Probe.login(server.s, "alice");
  const token = String((await page.ok("token_issue")).token);
  const terminal = await connectClient(server.s, "alice");
  try {
    assert.deepEqual(await terminal.logOutEverywhere(), { revoked: 1 });
    await page.expect({ type: "notice", code: "logged_out" }, WAIT_MS);
    await page.closed(WAIT_MS);
    await using probe = await dialed(server.s);
    await probe.fails("login", { nick: "alice", token }, "bad_token");
  } finally {
    await terminal.close();
  }
});

Deno.test("tokens: a token issued under --auth none does not open the passwordless account in password mode", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "chat-tokens-" });
  try {
    let token: string;
    {
      await using server = await serverScope({ dataDir, auth: "none" });
      await using casual = await dialed(server.s);
      await casual.ok("login", { nick: "casual" });
      token = String((await casual.ok("token_issue")).token);
    }
    await using server = await serverScope({ dataDir });
    await using probe = await dialed(server.s);
    await probe.fails("login", { nick: "casual", token }, "bad_password");
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});
