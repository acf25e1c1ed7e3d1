/**
 * An IRC client across a server restart on the same data folder: it reconnects,
 * is put back in its rooms, and sees in the join's history batch what was said while it
 * was away (with the stored ids); a direct message sent while it was offline arrives at
 * registration. Real sockets, the SQLite store.
 */

import assert from "node:assert/strict";
import { nextEvent } from "./helpers/chat_events.ts";
import type { IrcMessage } from "../protocol/irc_line.ts";
import { connectClient, testServer } from "./helpers/harness.ts";
import { ircPort, IrcProbe } from "./helpers/irc_probe.ts";

/** Registers with the batch, server-time and message-tags capabilities. */
async function registerWithHistory(port: number, nick: string): Promise<IrcProbe> {
  const irc = await IrcProbe.dial(port);
  await irc.send(
    "CAP LS 302",
    "CAP REQ :batch server-time message-tags",
    "PASS password123",
    `NICK ${nick}`,
    `USER ${nick} 0 * :${nick}`,
    "CAP END",
  );
  await irc.expectCommand("001", nick);
  return irc;
}

/** The PRIVMSG lines of the next `chathistory` batch of `channel`, in order. */
async function historyBatch(irc: IrcProbe, channel: string): Promise<IrcMessage[]> {
  const start = await irc.expect((m) =>
    m.command === "BATCH" && m.params[1] === "chathistory" && m.params[2] === channel
  );
  const id = start.params[0].slice(1);
  const lines: IrcMessage[] = [];
  while (true) {
    const m = await irc.expect((m) =>
      (m.command === "PRIVMSG" && m.tags.batch === id) ||
      (m.command === "BATCH" && m.params[0] === `-${id}`)
    );
    if (m.command === "BATCH") return lines;
    lines.push(m);
  }
}

Deno.test("irc: after a server restart on the same data folder, an IRC client rejoins, gets what was said while it was away, and its held DMs", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "chat-irc-restart-" });
  let server = await testServer({ dataDir, ircPort: 0, drainWindowMs: 0 });
  try {
    // Before: an IRC client and a chat client in #talk, a line each way.
    const before = await registerWithHistory(ircPort(server), "alice");
    try {
      await before.send("JOIN #talk");
      await before.expectCommand("366", "alice", "#talk");
      await using bob = await connectClient(server, "bob");
      const events = bob.events[Symbol.asyncIterator]();
      await bob.join("talk");
      await bob.say("talk", "before the restart");
      await before.expect((m) => m.command === "PRIVMSG" && m.params[1] === "before the restart");
      await before.send("PRIVMSG #talk :from irc before the restart");
      await nextEvent(events, (e) => e.type === "msg" && e.from === "alice");
    } finally {
      await before[Symbol.asyncDispose]();
    }
    await server.shutdown();

    // Restarted on the same folder; while alice is away, bob talks in #talk and to her.
    server = await testServer({ dataDir, ircPort: 0, drainWindowMs: 0 });
    await using bob = await connectClient(server, "bob");
    const events = bob.events[Symbol.asyncIterator]();
    const away = (await bob.say("talk", "said while alice was away")).msg;
    await bob.dm("alice", "a direct message while you were away");

    // alice reconnects: back in #talk, with its history; then the held DM.
    await using after = await registerWithHistory(ircPort(server), "alice");
    await after.expect((m) =>
      m.command === "JOIN" && m.params[0] === "#talk" && m.source === "alice!alice@chat"
    );
    const history = await historyBatch(after, "#talk");
    const texts = history.map((m) => m.params[1]);
    assert.deepEqual(texts.slice(-3), [
      "before the restart",
      "from irc before the restart",
      "said while alice was away",
    ]);
    const last = history.at(-1)!;
    assert.equal(last.source, "bob!bob@chat");
    assert.equal(last.tags.msgid, String(away.id), "the stored id");
    assert.equal(last.tags.time, new Date(away.ts).toISOString());
    const held = await after.expect((m) =>
      m.command === "PRIVMSG" && m.params[0] === "alice" &&
      m.params[1] === "a direct message while you were away"
    );
    assert.equal(held.source, "bob!bob@chat");
    assert.ok(held.tags.time !== undefined, "a held DM carries its time");

    // And live again, both ways.
    await bob.say("talk", "after the restart");
    await after.expect((m) => m.command === "PRIVMSG" && m.params[1] === "after the restart");
    await after.send("PRIVMSG #talk :back from irc");
    const said = await nextEvent(
      events,
      (e) => e.type === "msg" && e.from === "alice" && e.room === "talk",
    );
    assert.equal(said.type === "msg" && said.text, "back from irc");
  } finally {
    await server.shutdown();
    await Deno.remove(dataDir, { recursive: true }).catch(() => {});
  }
});
