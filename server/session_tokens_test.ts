import assert from "node:assert/strict";
import { LocalClusterNetwork } from "./cluster_bus.ts";
import type { OnlineAccount, Session, SessionPort } from "./hub.ts";
import { MemoryStore } from "./memory_store.ts";
import { newSessionToken, SessionTokens, TOKEN_BYTES, tokenHash } from "./session_tokens.ts";

Deno.test("newSessionToken: 32 random bytes in base64url, different each time", () => {
  const tokens = new Set(Array.from({ length: 100 }, () => newSessionToken()));
  assert.equal(tokens.size, 100);
  for (const token of tokens) {
    assert.match(token, /^[A-Za-z0-9_-]+$/);
    assert.equal(token.length, Math.ceil(TOKEN_BYTES * 4 / 3));
  }
});

Deno.test("tokenHash: SHA-256 in lowercase hex", async () => {
  assert.equal(
    await tokenHash("abc"),
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
  );
});

/** An online account with sessions whose ends are recorded. */
function account(key: string, ids: string[], ended: string[]): OnlineAccount {
  const sessions: Session[] = [];
  for (const id of ids) {
    const port = { remote: "127.0.0.1:1", end: () => ended.push(id) } as unknown as SessionPort;
    sessions.push({ id, ended: false, port } as unknown as Session);
  }
  return {
    key,
    nick: key,
    sessions,
    blocks: new Set(),
    rooms: new Set(),
    hidden: false,
    away: null,
  };
}

Deno.test("SessionTokens: issue, check with expiry, revoke one; the store keeps only hashes", async () => {
  const store = new MemoryStore();
  let now = 1_000_000;
  const tokens = new SessionTokens({
    store,
    bus: new LocalClusterNetwork().bus("a"),
    ttlSec: 60,
    online: () => undefined,
    now: () => now,
  });
  const { token, expires } = await tokens.issue("alice");
  assert.equal(expires, now + 60_000);
  assert.equal(await store.getToken(token), null);
  assert.equal((await store.getToken(await tokenHash(token)))?.accountKey, "alice");
  assert.equal(await tokens.accountOf(token), "alice");
  assert.equal(await tokens.accountOf(newSessionToken()), null);
  now += 60_000;
  assert.equal(await tokens.accountOf(token), null, "expired at its expiry");
  now -= 1;
  assert.equal(await tokens.revoke("bob", token), false, "not bob's");
  assert.equal(await tokens.revoke("alice", token), true);
  assert.equal(await tokens.accountOf(token), null);
});

Deno.test("SessionTokens: a token asked with a shorter ttl expires per it; a longer one is cut to the server's", async () => {
  let now = 1_000_000;
  const tokens = new SessionTokens({
    store: new MemoryStore(),
    bus: new LocalClusterNetwork().bus("a"),
    ttlSec: 3600,
    online: () => undefined,
    now: () => now,
  });
  const short = await tokens.issue("alice", 60);
  assert.equal(short.expires, now + 60_000);
  const capped = await tokens.issue("alice", 7200);
  assert.equal(capped.expires, now + 3_600_000, "at most the server's ttl");
  now += 60_000;
  assert.equal(await tokens.accountOf(short.token), null, "the short one expired");
  assert.equal(await tokens.accountOf(capped.token), "alice");
});

Deno.test("SessionTokens: revokeAll ends the account's other sessions on every node", async () => {
  const network = new LocalClusterNetwork();
  const store = new MemoryStore();
  const ended: string[] = [];
  const onA = account("alice", ["a:s1", "a:s2"], ended);
  const onB = account("alice", ["b:s1"], ended);
  const bobOnB = account("bob", ["b:s2"], ended);
  const nodeA = new SessionTokens({
    store,
    bus: network.bus("a"),
    ttlSec: 60,
    online: (key) => key === "alice" ? onA : undefined,
    now: Date.now,
  });
  const nodeB = new SessionTokens({
    store,
    bus: network.bus("b"),
    ttlSec: 60,
    online: (key) => key === "alice" ? onB : key === "bob" ? bobOnB : undefined,
    now: Date.now,
  });
  await nodeA.start();
  await nodeB.start();
  await nodeA.issue("alice");
  await nodeB.issue("alice");
  const bobs = await nodeB.issue("bob");
  assert.equal(await nodeA.revokeAll("alice", "a:s1"), 2);
  assert.deepEqual(ended.sort(), ["a:s2", "b:s1"]);
  assert.equal(await nodeA.accountOf(bobs.token), "bob");
  nodeA.close();
  nodeB.close();
});
