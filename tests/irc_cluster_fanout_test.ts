/**
 * A room's messages reaching IRC clients on every node of a cluster (PostgreSQL + NATS,
 * tests/helpers/cluster.ts): on the node that published them, from the broker's
 * publications; on the other, from the publications read from NATS (their frames, each
 * decoded once on the node). Neither has the IRC fan-out decode a frame again.
 * Skipped when PostgreSQL or nats-server is not installed.
 */

import assert from "node:assert/strict";
import { Probe } from "./helpers/harness.ts";
import { startCluster, startClusterEngines } from "./helpers/cluster.ts";
import { ircPort, IrcProbe } from "./helpers/irc_probe.ts";
import { ircFanout } from "../server/irc_fanout.ts";

/** This file's PostgreSQL and nats-server; null when one is not installed (reason printed). */
const engines = await startClusterEngines();

Deno.test({
  name:
    "irc cluster: a room's messages reach IRC clients on both nodes from the publications, no frame decoded again",
  ignore: engines === null,
}, async () => {
  await using cluster = await startCluster(2, { ircPort: 0 });
  const [a, b] = cluster.nodes;
  await using ann = await Probe.login(a, "ann");
  await ann.ok("join", { room: "fan" });
  // bob and carol on node b (carol with tags), dave on node a where ann says them.
  const irc = async (node: typeof a, nick: string, caps: string[] = []) => {
    const probe = await IrcProbe.dial(ircPort(node));
    const cap = caps.length > 0 ? [`CAP REQ :${caps.join(" ")}`, "CAP END"] : [];
    await probe.send(...cap, "PASS password123", `NICK ${nick}`, `USER ${nick} 0 * :${nick}`);
    await probe.expectCommand("001", nick);
    await probe.send("JOIN #fan");
    await probe.expectCommand("366", nick, "#fan");
    return probe;
  };
  await using bob = await irc(b, "bob");
  await using carol = await irc(b, "carol", ["message-tags"]);
  await using dave = await irc(a, "dave");
  await cluster.known("ann", "bob", "carol", "dave");

  const decodes = ircFanout.decodes;
  const texts = ["one", "two", "three"];
  const ids: string[] = [];
  for (const text of texts) {
    const reply = await ann.ok("say", { room: "fan", text });
    ids.push(String((reply.msg as { id: number }).id));
  }
  for (const probe of [bob, carol, dave]) {
    for (const text of texts) {
      const m = await probe.expect((m) => m.command === "PRIVMSG" && m.params[1] === text);
      assert.equal(m.source, "ann!ann@chat");
      assert.equal(m.params[0], "#fan");
      if (probe === carol) assert.equal(m.tags.msgid, ids[texts.indexOf(text)]);
      else assert.equal(m.tags.msgid, undefined);
    }
  }
  assert.equal(ircFanout.decodes, decodes, "no frame decoded by the IRC fan-out");
});
