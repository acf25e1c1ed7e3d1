/**
 * Chat logic across the nodes of a cluster (issue 15): two or three servers in one
 * process over real sockets, on real engines: one PostgreSQL database shared by the
 * nodes, each node with its own NATS connection, broker and cluster bus
 * (tests/helpers/cluster.ts); raw protocol clients on different nodes. Skipped when
 * PostgreSQL or nats-server is not installed.
 */

import assert from "node:assert/strict";
import { Probe, type Received } from "./helpers/harness.ts";
import { startCluster, startClusterEngines, waitFor } from "./helpers/cluster.ts";

/** This file's PostgreSQL and nats-server; null when one is not installed (reason printed). */
const engines = await startClusterEngines();

/** Nicks of a list of `{nick}` items. */
function nicks(items: unknown): string[] {
  return (items as { nick: string }[]).map((item) => item.nick);
}

/** Presence notices about `nick` that `probe` has received and not taken. */
function presenceOf(probe: Probe, nick: string): Received[] {
  return probe.received.filter((m) => m.type === "presence" && m.nick === nick);
}

Deno.test({
  name: "cluster: who, whoelse, whoelse since, broadcast counts and hide are global",
  ignore: engines === null,
}, async () => {
  await using cluster = await startCluster(2);
  const [a, b] = cluster.nodes;
  await using ann = await Probe.login(a, "ann");
  await using bob = await Probe.login(b, "bob");
  await using cat = await Probe.login(b, "cat");
  await cat.ok("block", { nick: "ann" });
  await cluster.known("ann", "bob", "cat");
  assert.deepEqual((await ann.ok("who")).users, ["ann", "bob"]);
  assert.deepEqual((await ann.ok("whoelse")).users, ["bob"]);
  assert.deepEqual((await bob.ok("who")).users, ["ann", "bob", "cat"]);
  const reply = await ann.ok("broadcast", { text: "hear ye" });
  assert.equal(reply.reached, 1);
  assert.equal(reply.blocked, 1);
  await bob.expect({ type: "broadcast", text: "hear ye" });
  await bob.ok("hide");
  await ann.expect({ type: "presence", nick: "bob", online: false });
  // bob's login was announced before his hide (one node, in order): those notices are
  // taken, so that the online notice awaited below is the reveal's, not his login's.
  for (const m of presenceOf(ann, "bob")) ann.received.splice(ann.received.indexOf(m), 1);
  assert.deepEqual((await ann.ok("who")).users, ["ann"]);
  assert.deepEqual((await ann.ok("whoelse", { since: 3600 })).users, []);
  assert.deepEqual((await ann.ok("members", { room: "lobby" })).members, [
    { nick: "ann", online: true },
    { nick: "bob", online: false },
    { nick: "cat", online: false },
  ]);
  await bob.ok("reveal");
  await ann.expect({ type: "presence", nick: "bob", online: true });
  assert.deepEqual((await ann.ok("whoelse", { since: 3600 })).users, ["bob"]);
});

Deno.test({
  name: "cluster: presence is online once with sessions on two nodes, offline at the last logout",
  ignore: engines === null,
}, async () => {
  await using cluster = await startCluster(2);
  const [a, b] = cluster.nodes;
  await using bob = await Probe.login(a, "bob");
  await using annA = await Probe.login(a, "ann");
  await bob.expect({ type: "presence", nick: "ann", online: true });
  await using annB = await Probe.login(b, "ann");
  await annA.expect({ type: "notice", code: "session_login" });
  // A later login is a fence: any notice about ann's second session came before it.
  await using dan = await Probe.login(b, "dan");
  await bob.expect({ type: "presence", nick: "dan", online: true });
  assert.deepEqual(presenceOf(bob, "ann"), [], "ann announced twice");
  annA.close();
  await waitFor(() => a.hub.online("ann") === undefined, "ann's session on A ended");
  await using _eve = await Probe.login(b, "eve");
  await bob.expect({ type: "presence", nick: "eve", online: true });
  assert.deepEqual(presenceOf(bob, "ann"), [], "ann offline while online on B");
  assert.deepEqual((await bob.ok("who")).users, ["ann", "bob", "dan", "eve"]);
  annB.close();
  await bob.expect({ type: "presence", nick: "ann", online: false });
  await dan.expect({ type: "presence", nick: "ann", online: false });
  assert.deepEqual((await bob.ok("who")).users, ["bob", "dan", "eve"]);
});

Deno.test({
  name: "cluster: a silent node's sessions go offline everywhere within the heartbeat TTL",
  ignore: engines === null,
}, async () => {
  await using cluster = await startCluster(2, { clusterHeartbeatMs: 200 });
  const [a, b] = cluster.nodes;
  await using bob = await Probe.login(a, "bob");
  await using _ann = await Probe.login(b, "ann");
  await bob.expect({ type: "presence", nick: "ann", online: true });
  assert.deepEqual((await bob.ok("who")).users, ["ann", "bob"]);
  // B stops beating (its process hung or lost its engine) without logging anyone out.
  await cluster.buses[1].close();
  await bob.expect({ type: "presence", nick: "ann", online: false }, 15_000);
  assert.deepEqual((await bob.ok("who")).users, ["bob"]);
});

Deno.test({
  name: "cluster: a starting node learns who is online on the others",
  ignore: engines === null,
}, async () => {
  await using cluster = await startCluster(1);
  await using ann = await Probe.login(cluster.nodes[0], "ann");
  const late = await cluster.addNode();
  await using bob = await Probe.login(late, "bob");
  // It asks the others for their lists as it starts; they answer over NATS.
  await cluster.known("ann");
  assert.deepEqual((await bob.ok("who")).users, ["ann", "bob"]);
  await ann.expect({ type: "presence", nick: "bob", online: true });
});

Deno.test({
  name:
    "cluster: a DM to a user on another node is delivered there, marked once, receipts everywhere",
  ignore: engines === null,
}, async () => {
  await using cluster = await startCluster(2);
  const [a, b] = cluster.nodes;
  await using annA = await Probe.login(a, "ann");
  await using annB = await Probe.login(b, "ann");
  const bob = await Probe.login(b, "bob");
  await annA.expect({ type: "presence", nick: "bob", online: true });
  const reply = await annA.ok("dm", { id: "a1", to: "bob", text: "hi bob" });
  assert.equal(reply.delivered, true);
  const id = (reply.msg as { id: number }).id;
  await bob.expect({ type: "dm", text: "hi bob" });
  await annB.expect({ type: "dm", text: "hi bob" });
  await bob.ok("read", { ids: [id] });
  await annA.expect({ type: "receipt", id, status: "read", by: "bob" });
  await annB.expect({ type: "receipt", id, status: "read", by: "bob" });
  // Marked delivered: a new session of bob on A has nothing pending.
  await using bobA = await Probe.dial(a);
  await bobA.hello();
  assert.equal((await bobA.ok("login", { nick: "bob", password: "password123" })).pending, 0);
  bob.close();
  bobA.close();
  await annA.expect({ type: "presence", nick: "bob", online: false });
  await annB.expect({ type: "presence", nick: "bob", online: false });
  // Offline: held in the store, delivered by whichever node bob comes back to.
  const held = await annB.ok("dm", { id: "b1", to: "bob", text: "while you were out" });
  assert.equal(held.delivered, false);
  const heldId = (held.msg as { id: number }).id;
  await using back = await Probe.dial(a);
  await back.hello();
  assert.equal((await back.ok("login", { nick: "bob", password: "password123" })).pending, 1);
  await back.expect({ type: "dm", text: "while you were out" });
  await annA.expect({ type: "receipt", id: heldId, status: "delivered", by: "bob" });
  await annB.expect({ type: "receipt", id: heldId, status: "delivered", by: "bob" });
});

Deno.test({
  name: "cluster: membership, topics, blocks and contacts changed on one node hold on the others",
  ignore: engines === null,
}, async () => {
  await using cluster = await startCluster(2);
  const [a, b] = cluster.nodes;
  await using annA = await Probe.login(a, "ann");
  await using annB = await Probe.login(b, "ann");
  await using bob = await Probe.login(b, "bob");
  await using cat = await Probe.login(a, "cat");
  (await Probe.login(a, "dan")).close();
  await waitFor(() => a.hub.online("dan") === undefined, "dan logged out");
  // Membership: ann joins on A; her session on B hears the room at once.
  await annA.ok("join", { room: "books" });
  await bob.ok("join", { room: "books" });
  await bob.ok("say", { room: "books", text: "reading" });
  await annA.expect({ type: "msg", room: "books", text: "reading" });
  await annB.expect({ type: "msg", room: "books", text: "reading" });
  assert.deepEqual(nicks((await cat.ok("members", { room: "books" })).members), ["ann", "bob"]);
  // Topic set on B, read on A.
  await bob.ok("topic", { room: "books", topic: "novels" });
  const topic = await cat.ok("topic", { room: "books" });
  assert.equal(topic.topic, "novels");
  assert.equal(topic.by, "bob");
  // Leaving on B: A's cache no longer counts ann a member.
  await annB.ok("leave", { room: "books" });
  await annA.fails("say", { id: "a9", room: "books", text: "still here?" }, "not_member");
  // A block made on A filters on B.
  await annA.ok("block", { nick: "cat" });
  await cat.ok("say", { room: "lobby", text: "meow" });
  await bob.ok("say", { room: "lobby", text: "woof" });
  await annB.expect({ type: "msg", text: "woof" });
  assert.equal(annB.received.find((m) => m.text === "meow"), undefined, "blocked cat heard on B");
  // Contacts added on A: the contact's login on B is told to the watcher on A.
  await cat.ok("contact_add", { nick: "dan" });
  await using _dan = await Probe.login(b, "dan");
  await cat.expect({ type: "contact", nick: "dan", online: true });
  assert.deepEqual((await cat.ok("contacts")).contacts, [{ nick: "dan", online: true }]);
});

Deno.test({
  name: "cluster: a join answers once the other nodes have applied it",
  ignore: engines === null,
}, async () => {
  await using cluster = await startCluster(2);
  const [a, b] = cluster.nodes;
  await using annA = await Probe.login(a, "ann");
  await using annB = await Probe.login(b, "ann");
  await using bob = await Probe.login(b, "bob");
  await bob.ok("join", { room: "books" });
  // A subscribes ann's session there to the room only when the hold is released.
  const held = cluster.brokers[0].hold();
  let answered = false;
  const join = annB.ok("join", { room: "books" }).then(() => answered = true);
  await held.asked;
  // Said on B after B handled the join, heard on A over NATS: an answer given without
  // waiting for A would have been sent to ann on B before this.
  await bob.ok("say", { room: "lobby", text: "fence" });
  await annA.expect({ type: "msg", text: "fence" });
  await annB.expect({ type: "msg", text: "fence" });
  assert.equal(answered, false, "the join answered before A applied it");
  held.release();
  await join;
  // Once answered, ann's session on A hears the room.
  await bob.ok("say", { room: "books", text: "chapter one" });
  await annA.expect({ type: "msg", room: "books", text: "chapter one" });
});

Deno.test({
  name: "cluster: session ids are unique across nodes; a sender's other sessions get its messages",
  ignore: engines === null,
}, async () => {
  await using cluster = await startCluster(2);
  const [a, b] = cluster.nodes;
  await using annA = await Probe.login(a, "ann");
  await using annB = await Probe.login(b, "ann");
  const ids = [a, b].flatMap((node) => [...node.hub.online("ann")!.sessions].map((s) => s.id));
  assert.equal(new Set(ids).size, 2);
  assert.ok(ids[0].startsWith(`${cluster.buses[0].nodeId}:`), ids[0]);
  assert.ok(ids[1].startsWith(`${cluster.buses[1].nodeId}:`), ids[1]);
  await annA.ok("say", { id: "a1", room: "lobby", text: "from A" });
  await annB.expect({ type: "msg", text: "from A" });
  await annB.ok("say", { id: "b1", room: "lobby", text: "from B" });
  await annA.expect({ type: "msg", text: "from B" });
  assert.equal(annA.received.find((m) => m.text === "from A"), undefined, "echoed to its sender");
});

Deno.test({
  name: "cluster: a login reads its catch-up point only once its subscriptions are confirmed",
  ignore: engines === null,
}, async () => {
  await using cluster = await startCluster(2);
  const [a, b] = cluster.nodes;
  (await Probe.login(b, "bob")).close();
  await waitFor(() => b.hub.online("bob") === undefined, "bob logged out");
  await using ann = await Probe.login(a, "ann");
  const held = cluster.brokers[1].hold();
  await using bob = await Probe.dial(b);
  await bob.hello();
  const login = bob.request("login", { nick: "bob", password: "password123" });
  await held.asked;
  // Stored and published while bob's subscriptions are not confirmed yet.
  const said = await ann.ok("say", { id: "a1", room: "lobby", text: "in between" });
  const id = (said.msg as { id: number }).id;
  held.release();
  const reply = await login;
  assert.equal(reply.type, "ok");
  // Either the catch-up point covers it (bob syncs it) or it arrives live: never lost.
  if ((reply.lastId as number) < id) await bob.expect({ type: "msg", id });
});

Deno.test({
  name: "cluster: lockout, the failed-login throttle and registration limits hold across nodes",
  ignore: engines === null,
}, async () => {
  await using cluster = await startCluster(2, {
    loginFailuresPerMinutePerIp: 4,
    registrationsPerMinutePerIp: 2,
  });
  const [a, b] = cluster.nodes;
  (await Probe.login(a, "ann")).close();
  (await Probe.login(b, "cat")).close();
  await using onA = await Probe.dial(a);
  await onA.hello();
  await using onB = await Probe.dial(b);
  await onB.hello();
  // Two registrations from this address (one per node) spend its budget on both.
  await onA.fails("login", { nick: "dan", password: "password123" }, "rate_limited");
  await onA.fails("login", { nick: "ann", password: "wrong-one" }, "wrong_password");
  await onA.fails("login", { nick: "ann", password: "wrong-two" }, "wrong_password");
  await onB.fails("login", { nick: "ann", password: "wrong-three" }, "locked");
  await onA.fails("login", { nick: "ann", password: "password123" }, "locked");
  // A fourth failure from this address, on A, spends its budget on B too.
  await onA.fails("login", { nick: "cat", password: "wrong-four" }, "wrong_password");
  await onB.fails("login", { nick: "cat", password: "password123" }, "rate_limited");
});

Deno.test({
  name: "cluster: --auth none nick reservations hold across nodes",
  ignore: engines === null,
}, async () => {
  await using cluster = await startCluster(2, { auth: "none" });
  const [a, b] = cluster.nodes;
  await using ann = await Probe.dial(a);
  await ann.hello();
  await ann.ok("login", { nick: "ann" });
  await cluster.known("ann");
  await using other = await Probe.dial(b);
  await other.hello();
  await other.fails("login", { nick: "ann" }, "nick_in_use");
});

Deno.test({
  name: "cluster: a private session between users on different nodes is brokered and relayed",
  ignore: engines === null,
}, async () => {
  await using cluster = await startCluster(2);
  const [a, b] = cluster.nodes;
  await using alice = await Probe.login(a, "alice");
  await using bob = await Probe.login(b, "bob");
  await cluster.known("alice", "bob");
  const sid = "cluster-private-1";
  await alice.ok("private_start", { nick: "bob", sid, port: 40001 });
  await bob.expect({ type: "private_request", sid, from: "alice" });
  const accepted = await bob.ok("private_accept", { nick: "alice" });
  assert.equal(accepted.sid, sid);
  assert.equal(accepted.port, 40001);
  await alice.expect({ type: "private_ready", sid, nick: "bob" });
  // Bob cannot reach alice's listener: the records go through the servers.
  await bob.ok("private_relay", { sid });
  await alice.expect({ type: "private_relay", sid, nick: "bob" });
  const there = new Uint8Array([1, 2, 3, 250]);
  const back = new Uint8Array([9, 8, 7]);
  alice.send({ type: "relay", id: "a1", sid }, there);
  assert.deepEqual((await bob.expect({ type: "relay", sid })).frameBody, there);
  bob.send({ type: "relay", id: "b1", sid }, back);
  assert.deepEqual((await alice.expect({ type: "relay", sid })).frameBody, back);
  await bob.ok("private_stop", { nick: "alice" });
  await alice.expect({ type: "private_ended", sid, nick: "bob", reason: "stopped" });
  // Started the other way round, declined from the requester's side of the cluster.
  const sid2 = "cluster-private-2";
  await bob.ok("private_start", { nick: "alice", sid: sid2, port: 40002 });
  await alice.expect({ type: "private_request", sid: sid2, from: "bob" });
  await alice.ok("private_decline", { nick: "bob" });
  await bob.expect({ type: "private_ended", sid: sid2, nick: "alice", reason: "declined" });
  // A side that logs out ends it for the other, across nodes.
  const sid3 = "cluster-private-3";
  await alice.ok("private_start", { nick: "bob", sid: sid3, port: 40003 });
  await bob.expect({ type: "private_request", sid: sid3 });
  await bob.ok("private_accept", { nick: "alice" });
  bob.close();
  await alice.expect({ type: "private_ended", sid: sid3, nick: "bob", reason: "offline" });
});

Deno.test({
  name: "cluster: a private session with a user on a node taken for dead ends",
  ignore: engines === null,
}, async () => {
  await using cluster = await startCluster(2, { clusterHeartbeatMs: 200 });
  const [a, b] = cluster.nodes;
  await using alice = await Probe.login(a, "alice");
  await using bob = await Probe.login(b, "bob");
  await cluster.known("alice", "bob");
  const sid = "cluster-private-dead";
  await alice.ok("private_start", { nick: "bob", sid, port: 40004 });
  await bob.expect({ type: "private_request", sid });
  await bob.ok("private_accept", { nick: "alice" });
  await alice.expect({ type: "private_ready", sid });
  await cluster.buses[1].close();
  await alice.expect({ type: "private_ended", sid, nick: "bob", reason: "offline" }, 15_000);
});
