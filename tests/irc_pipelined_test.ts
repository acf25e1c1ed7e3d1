/**
 * Messages to a channel are pipelined on the IRC listener (as a chat client's `say`
 * is): many PRIVMSGs in one write are stored and delivered in their order, echoed in
 * order, all of them before a QUIT that follows them ends the session.
 */

import assert from "node:assert/strict";
import { nextEvent } from "./helpers/chat_events.ts";
import { connectClient, testServer } from "./helpers/harness.ts";
import { ircPort, IrcProbe } from "./helpers/irc_probe.ts";

Deno.test("irc: 500 PRIVMSGs in one write, then QUIT: stored, delivered and echoed in order, none lost", async () => {
  const server = await testServer({ ircPort: 0 });
  try {
    await using bob = await connectClient(server, "bob");
    const events = bob.events[Symbol.asyncIterator]();
    await using irc = await IrcProbe.register(ircPort(server), "alice");
    await irc.send("CAP REQ :echo-message");
    await irc.expectCommand("CAP", "alice", "ACK");
    const n = 500;
    const lines = Array.from({ length: n }, (_, i) => `PRIVMSG #lobby :line ${i}`);
    await irc.send(...lines, "QUIT :done");
    for (let i = 0; i < n; i++) {
      const got = await nextEvent(events, (e) => e.type === "msg" && e.from === "alice");
      assert.equal(got.type === "msg" && got.text, `line ${i}`);
    }
    await irc.closed();
    const echoed = irc.raw.filter((l) => / PRIVMSG #lobby :line \d+$/.test(l))
      .map((l) => Number(l.slice(l.lastIndexOf(" ") + 1)));
    assert.deepEqual(echoed, echoed.slice().sort((a, b) => a - b), "echoes in order");
    const history = await bob.history({ room: "lobby", limit: 500 });
    const stored = history.messages.filter((m) => m.from === "alice").map((m) => m.text);
    assert.deepEqual(stored, lines.map((l) => l.slice(l.indexOf(":") + 1)));
  } finally {
    await server.shutdown();
  }
});
