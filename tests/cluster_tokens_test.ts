/**
 * Session tokens across the nodes of a cluster, on real engines (one PostgreSQL database
 * shared by the nodes, NATS between them; tests/helpers/cluster.ts): a token issued on
 * one node logs in on another, "log out everywhere" ends the account's sessions on every
 * node, and wrong tokens on different nodes add up to one lockout. Skipped when
 * PostgreSQL or nats-server is not installed.
 */

import assert from "node:assert/strict";
import { Probe } from "./helpers/harness.ts";
import { startCluster, startClusterEngines } from "./helpers/cluster.ts";

/** This file's PostgreSQL and nats-server; null when one is not installed (reason printed). */
const engines = await startClusterEngines();

const WAIT_MS = 20_000;

async function dialed(node: Parameters<typeof Probe.dial>[0]): Promise<Probe> {
  const probe = await Probe.dial(node);
  await probe.hello();
  return probe;
}

Deno.test({
  name:
    "cluster tokens: issued on one node, used on another; log out everywhere ends sessions on every node",
  ignore: engines === null,
}, async () => {
  await using cluster = await startCluster(2);
  const [a, b] = cluster.nodes;
  await using annA = await Probe.login(a, "ann");
  const token = String((await annA.ok("token_issue")).token);
  await using annB = await dialed(b);
  assert.equal((await annB.ok("login", { nick: "ann", token })).nick, "ann");
  await using bob = await Probe.login(b, "bob");
  const bobs = String((await bob.ok("token_issue")).token);

  assert.equal((await annA.ok("token_revoke", { all: true })).revoked, 1);
  await annB.expect({ type: "notice", code: "logged_out" }, WAIT_MS);
  await annB.closed(WAIT_MS);
  await annA.ok("ping");
  await bob.ok("ping");
  await using again = await dialed(b);
  await again.fails("login", { nick: "ann", token }, "bad_token");
  await again.ok("login", { nick: "bob", token: bobs });
});

Deno.test({
  name: "cluster tokens: wrong tokens on two nodes add up to one lockout",
  ignore: engines === null,
}, async () => {
  await using cluster = await startCluster(2, { blockDurationSec: 60 });
  const [a, b] = cluster.nodes;
  await using ann = await Probe.login(a, "ann");
  const token = String((await ann.ok("token_issue")).token);
  await using onA = await dialed(a);
  await using onB = await dialed(b);
  await onA.fails("login", { nick: "ann", token: "guess-1" }, "bad_token");
  await onB.fails("login", { nick: "ann", token: "guess-2" }, "bad_token");
  await onA.fails("login", { nick: "ann", token: "guess-3" }, "locked");
  await onB.fails("login", { nick: "ann", token }, "locked");
});
