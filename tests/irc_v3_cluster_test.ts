/**
 * IRCv3 features of the IRC listener across the nodes of a cluster (PostgreSQL + NATS,
 * tests/helpers/cluster.ts): SASL onto an account made on another node, CHATHISTORY of
 * messages stored through another node, and an away status set on one node seen on the
 * other (the presence replica and the NATS fan-out). Skipped when PostgreSQL or
 * nats-server is not installed.
 */

import assert from "node:assert/strict";
import { Probe } from "./helpers/harness.ts";
import { startCluster, startClusterEngines, waitFor } from "./helpers/cluster.ts";
import { IrcProbe } from "./helpers/irc_probe.ts";
import type { ChatServer } from "../server/server.ts";
import type { IrcMessage } from "../protocol/irc_line.ts";

/** This file's PostgreSQL and nats-server; null when one is not installed (reason printed). */
const engines = await startClusterEngines();

function ircPort(server: ChatServer): number {
  assert.ok(server.ircAddr !== null, "the IRC listener is off");
  return server.ircAddr.port;
}

Deno.test({
  name: "irc v3 cluster: SASL, CHATHISTORY and AWAY across two nodes",
  ignore: engines === null,
}, async () => {
  await using cluster = await startCluster(2, { ircPort: 0 });
  const [a, b] = cluster.nodes;
  await using ann = await Probe.login(a, "ann");
  await ann.ok("join", { room: "hist" });
  const ids: number[] = [];
  for (let i = 1; i <= 3; i++) {
    const reply = await ann.ok("say", { room: "hist", text: `line ${i}` });
    ids.push((reply.msg as { id: number }).id);
  }

  // bob registers on node a; logs in through SASL on node b.
  await (await Probe.login(a, "bob"))[Symbol.asyncDispose]();
  await using bob = await IrcProbe.dial(ircPort(b));
  const plain = btoa("\0bob\0password123");
  await bob.send(
    "CAP REQ :sasl batch message-tags away-notify",
    "AUTHENTICATE PLAIN",
    `AUTHENTICATE ${plain}`,
  );
  await bob.expectCommand("903", "*");
  await bob.send("NICK bob", "USER bob 0 * :Bob", "CAP END", "JOIN #hist");
  await bob.expectCommand("001", "bob");
  await bob.expectCommand("366", "bob", "#hist");

  // The JOIN's history batch, then CHATHISTORY: stored through node a, read on node b.
  const batch = async () => {
    const start = await bob.expect((m) => m.command === "BATCH" && m.params[1] === "chathistory");
    const id = start.params[0].slice(1);
    const lines: IrcMessage[] = [];
    while (true) {
      const m = await bob.expect((m) =>
        m.tags.batch === id || (m.command === "BATCH" && m.params[0] === `-${id}`)
      );
      if (m.command === "BATCH") return lines;
      lines.push(m);
    }
  };
  assert.deepEqual((await batch()).map((m) => m.params[1]), ["line 1", "line 2", "line 3"]);
  await bob.send(`CHATHISTORY BEFORE #hist msgid=${ids[2]} 10`);
  const before = await batch();
  assert.deepEqual(before.map((m) => m.params[1]), ["line 1", "line 2"]);
  assert.deepEqual(before.map((m) => m.tags.msgid), ids.slice(0, 2).map(String));

  // ann goes away on node a: bob, on node b, is told and sees it in WHOIS and on a PRIVMSG.
  await cluster.known("ann", "bob");
  await ann.ok("away", { text: "lunch" });
  const away = await bob.expectCommand("AWAY");
  assert.equal(away.source, "ann!ann@chat");
  assert.deepEqual(away.params, ["lunch"]);
  await waitFor(() => b.hub.awayOf("ann") === "lunch", "node b knows ann is away");
  await bob.send("WHOIS ann", "PRIVMSG ann :hello?");
  await bob.expectCommand("311", "bob", "ann");
  assert.equal((await bob.expectCommand("301", "bob", "ann")).params[2], "lunch");
  await bob.expectCommand("318", "bob", "ann");
  assert.equal((await bob.expectCommand("301", "bob", "ann")).params[2], "lunch");
  await ann.expect({ type: "dm", text: "hello?" });
  await ann.ok("away", {});
  assert.deepEqual((await bob.expectCommand("AWAY")).params, []);
  await waitFor(() => b.hub.awayOf("ann") === null, "node b knows ann is back");

  // Away through node a, back through a session on node b: back on every node.
  await using annB = await Probe.login(b, "ann");
  await ann.ok("away", { text: "out" });
  assert.deepEqual((await bob.expectCommand("AWAY")).params, ["out"]);
  await waitFor(() => b.hub.awayOf("ann") === "out", "node b knows ann is out");
  await annB.ok("away", {});
  assert.deepEqual((await bob.expectCommand("AWAY")).params, []);
  await waitFor(
    () => a.hub.awayOf("ann") === null && b.hub.awayOf("ann") === null,
    "both nodes know ann is back",
  );
});
