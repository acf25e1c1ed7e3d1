/**
 * The IRC listener's IRCv3 features over real sockets (raw lines: the probe sends what a
 * client library would, and what none would): a truthful ISUPPORT and lines kept within
 * it, SASL PLAIN, `labeled-response`, `draft/chathistory`, away status with
 * `away-notify`, `account-tag` and `extended-join`.
 */

import assert from "node:assert/strict";
import type { ChatEvent } from "../client/chat_client.ts";
import type { ChatServer } from "../server/server.ts";
import { connectClient, testServer } from "./helpers/harness.ts";
import { IrcProbe } from "./helpers/irc_probe.ts";
import type { IrcMessage } from "../protocol/irc_line.ts";

const STEP_MS = 10_000;
const bytes = (text: string) => new TextEncoder().encode(text).length;

function ircServer(overrides: Parameters<typeof testServer>[0] = {}): Promise<ChatServer> {
  return testServer({ ircPort: 0, ...overrides });
}

function ircPort(server: ChatServer): number {
  assert.ok(server.ircAddr !== null, "the IRC listener is off");
  return server.ircAddr.port;
}

async function nextEvent(
  events: AsyncIterator<ChatEvent>,
  match: (event: ChatEvent) => boolean,
): Promise<ChatEvent> {
  const deadline = Date.now() + STEP_MS;
  while (true) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const next = await Promise.race([
      events.next(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error("timed out waiting for an event")),
          deadline - Date.now(),
        );
      }),
    ]).finally(() => clearTimeout(timer));
    assert.ok(!next.done, "events ended");
    if (match(next.value)) return next.value;
  }
}

/** The line without its tags part. */
function untagged(line: string): string {
  return line.startsWith("@") ? line.slice(line.indexOf(" ") + 1) : line;
}

/** Takes lines up to (and including) the first one matching `last`. */
async function takeUntil(
  irc: IrcProbe,
  last: (m: IrcMessage) => boolean,
): Promise<IrcMessage[]> {
  const out: IrcMessage[] = [];
  while (true) {
    const m = await irc.expect(() => true);
    out.push(m);
    if (last(m)) return out;
  }
}

Deno.test("irc v3: ISUPPORT tells the limits; a line at LINELEN is taken, one byte more gets 417; long texts and topics reach IRC within it", async () => {
  const server = await ircServer();
  try {
    await using bob = await connectClient(server, "bob");
    const events = bob.events[Symbol.asyncIterator]();
    await using irc = await IrcProbe.register(ircPort(server), "alice");
    const isupport = (await takeUntil(irc, (m) => m.command === "422"))
      .filter((m) => m.command === "005");
    const tokens = isupport.flatMap((m) => m.params.slice(1, -1));
    for (const m of isupport) assert.ok(m.params.length - 2 <= 13, `too many tokens: ${m.params}`);
    for (
      const token of [
        "NICKLEN=32",
        "CHANNELLEN=33",
        "TOPICLEN=300",
        "LINELEN=512",
        "CHANTYPES=#",
        "UTF8ONLY",
        "CHATHISTORY=100",
        "MSGREFTYPES=msgid,timestamp",
      ]
    ) {
      assert.ok(tokens.includes(token), `005 lacks ${token}: ${tokens}`);
    }

    // Exactly LINELEN bytes with CR LF: taken whole.
    const head = "PRIVMSG #lobby :";
    const fits = "a".repeat(512 - 2 - bytes(head));
    await irc.send(head + fits);
    const said = await nextEvent(events, (e) => e.type === "msg" && e.from === "alice");
    assert.equal(said.type === "msg" && said.text, fits);
    // One byte more: refused, nothing sent.
    await irc.send(head + fits + "b", "PRIVMSG #lobby :after");
    await irc.expectCommand("417", "alice");
    const next = await nextEvent(events, (e) => e.type === "msg" && e.from === "alice");
    assert.equal(next.type === "msg" && next.text, "after");

    // A chat text of many lines' worth and a topic of 600 bytes: every line within LINELEN.
    const long = "\u00e9t\u00e9 ".repeat(900).trim();
    await bob.say("lobby", long);
    const parts: string[] = [];
    while (parts.join(" ") !== long) {
      parts.push((await irc.expectCommand("PRIVMSG", "#lobby")).params[1]);
      assert.ok(parts.length < 40, "too many parts");
    }
    const topic = "\u00e9".repeat(300);
    await bob.topic("lobby", topic);
    const changed = await irc.expectCommand("TOPIC", "#lobby");
    assert.ok(topic.startsWith(changed.params[1]) && changed.params[1].length > 100);
    await irc.send("TOPIC #lobby");
    const shown = await irc.expectCommand("332", "alice", "#lobby");
    assert.ok(topic.startsWith(shown.params[2]) && shown.params[2].length > 100);
    for (const line of irc.raw) assert.ok(bytes(untagged(line)) <= 510, `over LINELEN: ${line}`);
  } finally {
    await server.shutdown();
  }
});
