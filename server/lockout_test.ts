import assert from "node:assert/strict";
import { Lockout } from "./lockout.ts";

Deno.test("lockout (account): three failures from anywhere lock every address", () => {
  const lockout = new Lockout(60_000, "account");
  lockout.succeed("alice", "10.0.0.1");
  assert.equal(lockout.fail("alice", "10.0.0.9", 0), false);
  assert.equal(lockout.fail("alice", "10.0.0.9", 0), false);
  assert.equal(lockout.fail("alice", "10.0.0.9", 0), true);
  assert.equal(lockout.remainingMs("alice", "10.0.0.1", 1000), 59_000);
});

Deno.test("lockout (address): a stranger locks their address and new ones, not the owner's", () => {
  const lockout = new Lockout(60_000, "address");
  lockout.succeed("alice", "10.0.0.1");
  lockout.fail("alice", "10.0.0.9", 0);
  lockout.fail("alice", "10.0.0.9", 0);
  assert.equal(lockout.fail("alice", "10.0.0.9", 0), true);
  assert.equal(lockout.remainingMs("alice", "10.0.0.9", 0), 60_000);
  assert.equal(lockout.remainingMs("alice", "10.0.0.5", 0), 60_000);
  assert.equal(lockout.remainingMs("alice", "10.0.0.1", 0), 0);
  assert.equal(lockout.remainingMs("alice", "10.0.0.9", 60_000), 0, "expires");
});

Deno.test("lockout (address): failures spread over addresses lock unknown addresses", () => {
  const lockout = new Lockout(60_000, "address");
  lockout.fail("bob", "10.0.0.2", 0);
  lockout.fail("bob", "10.0.0.3", 0);
  assert.equal(lockout.fail("bob", "10.0.0.4", 0), true);
  assert.equal(lockout.remainingMs("bob", "10.0.0.2", 0), 60_000);
  lockout.succeed("bob", "10.0.0.7");
  assert.equal(lockout.remainingMs("bob", "10.0.0.2", 0), 0, "a success starts over");
});
