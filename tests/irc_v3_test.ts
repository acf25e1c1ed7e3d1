/**
 * The IRC listener's IRCv3 features over real sockets (raw lines: the probe sends what a
 * client library would, and what none would): a truthful ISUPPORT and lines kept within
 * it, SASL PLAIN, `labeled-response`, `draft/chathistory`, away status with
 * `away-notify`, `account-tag` and `extended-join`, `cap-notify` negotiation.
 */

import assert from "node:assert/strict";
import type { ChatEvent } from "../client/chat_client.ts";
import { connectClient, Probe } from "./helpers/harness.ts";
import { ircPort, IrcProbe, ircServer } from "./helpers/irc_probe.ts";
import { nextEvent as nextEventWithin } from "./helpers/chat_events.ts";
import { pythonIrc, runIrcScript } from "./helpers/irc_python.ts";
import type { IrcMessage } from "../protocol/irc_line.ts";

const STEP_MS = 10_000;
const bytes = (text: string) => new TextEncoder().encode(text).length;

/** The next matching event within {@linkcode STEP_MS}. */
const nextEvent = (events: AsyncIterator<ChatEvent>, match: (event: ChatEvent) => boolean) =>
  nextEventWithin(events, match, STEP_MS);

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

/** The lines of batch `id` (tagged with it) up to its end, which is not returned. */
async function batchLines(irc: IrcProbe, id: string): Promise<IrcMessage[]> {
  const out: IrcMessage[] = [];
  while (true) {
    const m = await irc.expect((m) =>
      m.tags.batch === id || (m.command === "BATCH" && m.params[0] === `-${id}`)
    );
    if (m.command === "BATCH" && m.params[0] === `-${id}`) return out;
    out.push(m);
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

/** `AUTHENTICATE` lines carrying a PLAIN response, in chunks of 400 (and `+` after a full one). */
function plainLines(authzid: string, account: string, password: string): string[] {
  const raw = new TextEncoder().encode(`${authzid}\0${account}\0${password}`);
  const base64 = btoa(String.fromCharCode(...raw));
  const lines: string[] = [];
  for (let at = 0; at < base64.length; at += 400) {
    lines.push(`AUTHENTICATE ${base64.slice(at, at + 400)}`);
  }
  if (base64.length % 400 === 0) lines.push("AUTHENTICATE +");
  return lines;
}

Deno.test("irc v3: SASL PLAIN logs in to the chat accounts (registering as a chat login does), with 900/903 and 904-908", async () => {
  const server = await ircServer({ credentials: [{ nick: "alice", password: "password123" }] });
  try {
    await using irc = await IrcProbe.dial(ircPort(server));
    await irc.send("CAP LS 302");
    const ls = await irc.expectCommand("CAP", "*", "LS");
    assert.ok(ls.params[2].split(" ").includes("sasl=PLAIN"), ls.params[2]);
    // Before the capability: refused.
    await irc.send("AUTHENTICATE PLAIN");
    await irc.expectCommand("904", "*");
    await irc.send("CAP REQ :sasl");
    await irc.expectCommand("CAP", "*", "ACK", "sasl");
    await irc.send("AUTHENTICATE SCRAM-SHA-256");
    assert.equal((await irc.expectCommand("908", "*")).params[1], "PLAIN");
    await irc.expectCommand("904", "*");
    await irc.send("AUTHENTICATE PLAIN");
    await irc.expectCommand("AUTHENTICATE", "+");
    await irc.send("AUTHENTICATE *");
    await irc.expectCommand("906", "*");
    // Another account in authzid: refused.
    await irc.send("AUTHENTICATE PLAIN", ...plainLines("bob", "alice", "password123"));
    await irc.expectCommand("904", "*");
    await irc.send("AUTHENTICATE PLAIN", ...plainLines("", "alice", "password123"));
    await irc.expectCommand("AUTHENTICATE", "+");
    const loggedIn = await irc.expectCommand("900", "*");
    assert.deepEqual(loggedIn.params.slice(1, 3), ["alice!alice@chat", "alice"]);
    await irc.expectCommand("903", "*");
    await irc.send("AUTHENTICATE PLAIN");
    await irc.expectCommand("907", "*");
    // Registers as the account, whatever NICK said, with no PASS.
    await irc.send("NICK whoever", "USER a 0 * :A", "CAP END");
    await irc.expectCommand("001", "alice");
    await irc.expectCommand("JOIN", "#lobby");

    // A new nick registers through SASL (a response of exactly 400 bytes: then "+"), and a
    // chat client logs in to that account with the same password.
    const password = "p".repeat(295);
    await using zed = await IrcProbe.dial(ircPort(server));
    await zed.send("CAP REQ :sasl", "AUTHENTICATE PLAIN", ...plainLines("", "zed", password));
    await zed.expectCommand("903", "*");
    await zed.send("NICK zed", "USER z 0 * :Z", "CAP END");
    await zed.expectCommand("001", "zed");
    await using chat = await connectClient(server, "zed", { password });
    assert.equal(chat.nick, "zed");

    // Too long a response: 905.
    await using long = await IrcProbe.dial(ircPort(server));
    await long.send("CAP REQ :sasl", "AUTHENTICATE PLAIN");
    await long.expectCommand("AUTHENTICATE", "+");
    await long.send(...Array.from({ length: 5 }, () => `AUTHENTICATE ${"QUFB".repeat(100)}`));
    await long.expectCommand("905", "*");
  } finally {
    await server.shutdown();
  }
});

Deno.test("irc v3: wrong SASL passwords count as failed logins and lock the account as chat logins do", async () => {
  const server = await ircServer({ credentials: [{ nick: "carol", password: "password123" }] });
  try {
    const before = server.hub.metrics.counters.authFailures;
    await using irc = await IrcProbe.dial(ircPort(server));
    await irc.send("CAP REQ :sasl");
    await irc.expectCommand("CAP", "*", "ACK", "sasl");
    for (let i = 0; i < 3; i++) {
      await irc.send("AUTHENTICATE PLAIN", ...plainLines("", "carol", "wrong-password"));
      const fail = await irc.expectCommand("904", "*");
      if (i < 2) assert.match(fail.params[1], /wrong password/);
      else assert.match(fail.params[1], /blocked/);
    }
    // Locked for every way in from this address: SASL with the right password, a chat login.
    await irc.send("AUTHENTICATE PLAIN", ...plainLines("", "carol", "password123"));
    assert.match((await irc.expectCommand("904", "*")).params[1], /blocked/);
    await assert.rejects(() => connectClient(server, "carol"), /blocked/);
    assert.ok(server.hub.metrics.counters.authFailures >= before + 5);
  } finally {
    await server.shutdown();
  }
  const open = await ircServer({ auth: "none" });
  try {
    await using irc = await IrcProbe.dial(ircPort(open));
    await irc.send("CAP LS 302");
    const ls = await irc.expectCommand("CAP", "*", "LS");
    assert.ok(!ls.params[2].includes("sasl"), ls.params[2]);
    await irc.send("CAP REQ :sasl");
    await irc.expectCommand("CAP", "*", "NAK");
  } finally {
    await open.shutdown();
  }
});

Deno.test("irc v3: labeled-response: one reply labelled, none an ACK, several a labelled batch (nesting a history batch)", async () => {
  const server = await ircServer();
  try {
    await using kim = await connectClient(server, "kim");
    await kim.join("hist");
    await kim.say("hist", "old line");
    await using irc = await IrcProbe.register(ircPort(server), "leo");
    await irc.send("CAP REQ :labeled-response batch echo-message");
    await irc.expectCommand("CAP", "leo", "ACK");
    await irc.send("@label=p1 PING :one");
    assert.equal((await irc.expectCommand("PONG")).tags.label, "p1");
    // No reply at all: an ACK.
    await irc.send("@label=p2 PONG :x");
    const ack = await irc.expectCommand("ACK");
    assert.equal(ack.tags.label, "p2");
    // The echo of a message is its reply.
    await irc.send("@label=p3 PRIVMSG #lobby :labelled");
    const echo = await irc.expectCommand("PRIVMSG", "#lobby", "labelled");
    assert.equal(echo.tags.label, "p3");
    // An error is a reply too; WHOIS of nobody is two lines: a batch.
    await irc.send("@label=p4 WHOIS nobody");
    const start = await irc.expectCommand("BATCH");
    assert.equal(start.tags.label, "p4");
    assert.equal(start.params[1], "labeled-response");
    const id = start.params[0].slice(1);
    const inside = await batchLines(irc, id);
    assert.deepEqual(inside.map((m) => m.command), ["401", "318"]);
    // JOIN: its lines and the room's history batch nested in the labelled batch.
    await irc.send("@label=p5 JOIN #hist");
    const joinStart = await irc.expect((m) => m.command === "BATCH" && m.tags.label === "p5");
    const lines = await batchLines(irc, joinStart.params[0].slice(1));
    assert.deepEqual(lines.map((m) => m.command), ["JOIN", "353", "366", "BATCH", "BATCH"]);
    const history = lines[3];
    assert.equal(history.params[1], "chathistory");
    assert.equal(lines[4].params[0], `-${history.params[0].slice(1)}`);
    const old = await irc.expect((m) => m.tags.batch === history.params[0].slice(1));
    assert.equal(old.params[1], "old line");
    // Without a label: nothing changes.
    await irc.send("PING :two");
    const pong = await irc.expectCommand("PONG");
    assert.equal(pong.tags.label, undefined);
  } finally {
    await server.shutdown();
  }
});

Deno.test("irc v3: labeled-response: the replies of a labelled command that ends the connection come before the ERROR", async () => {
  const server = await ircServer({ credentials: [{ nick: "dave", password: "password123" }] });
  try {
    await using irc = await IrcProbe.dial(ircPort(server));
    await irc.send(
      "CAP REQ :labeled-response batch",
      "CAP END",
      "PASS wrong-password",
      "NICK dave",
      "@label=r2 USER dave 0 * :Dave",
    );
    const refused = await irc.expectCommand("464", "dave");
    assert.equal(refused.tags.label, "r2");
    await irc.expectCommand("ERROR");
    await irc.closed();
    const at = irc.raw.findIndex((line) => line.includes(" 464 "));
    assert.ok(at >= 0 && irc.raw[at + 1].startsWith("ERROR"), irc.raw.join("\n"));
  } finally {
    await server.shutdown();
  }
});

/** Sends a CHATHISTORY request; returns the texts of its batch and the batch's target. */
async function chathistory(
  irc: IrcProbe,
  request: string,
): Promise<{ target: string; texts: string[]; lines: IrcMessage[] }> {
  await irc.send(`CHATHISTORY ${request}`);
  const start = await irc.expect((m) =>
    (m.command === "BATCH" && m.params[1] === "chathistory") || m.command === "FAIL"
  );
  if (start.command === "FAIL") throw new Error(`FAIL ${start.params.join(" ")}`);
  const lines = await batchLines(irc, start.params[0].slice(1));
  return { target: start.params[2], texts: lines.map((m) => m.params[1]), lines };
}

Deno.test("irc v3: CHATHISTORY LATEST/BEFORE/AFTER/AROUND/BETWEEN/TARGETS by msgid and timestamp, rooms and DMs, blocks applied", async () => {
  const server = await ircServer();
  let clock = Date.parse("2026-12-01T00:00:00.000Z");
  server.hub.now = () => (clock += 1000);
  try {
    await using kim = await connectClient(server, "kim");
    await using mallory = await connectClient(server, "mallory");
    await using leoChat = await connectClient(server, "leo");
    await leoChat.block("mallory");
    await kim.join("hist");
    await mallory.join("hist");
    await leoChat.join("hist");
    const sent: { id: number; ts: number }[] = [];
    for (let i = 1; i <= 10; i++) {
      sent.push((await kim.say("hist", `m${i}`)).msg);
      await mallory.say("hist", `spam${i}`);
    }
    const dms = [(await kim.dm("leo", "dm1")).msg, (await leoChat.dm("kim", "dm2")).msg];
    const iso = (ts: number) => new Date(ts).toISOString();

    await using irc = await IrcProbe.register(ircPort(server), "leo");
    await irc.send("CAP REQ :batch draft/chathistory server-time message-tags");
    await irc.expectCommand("CAP", "leo", "ACK");
    const latest = await chathistory(irc, "LATEST #hist * 3");
    assert.equal(latest.target, "#hist");
    assert.deepEqual(latest.texts, ["m8", "m9", "m10"]);
    // Same ids and times as the chat protocol's.
    assert.deepEqual(latest.lines.map((m) => m.tags.msgid), sent.slice(7).map((m) => String(m.id)));
    assert.deepEqual(latest.lines.map((m) => m.tags.time), sent.slice(7).map((m) => iso(m.ts)));
    assert.equal(latest.lines[0].source, "kim!kim@chat");
    const m6 = sent[5];
    assert.deepEqual((await chathistory(irc, `BEFORE #hist msgid=${m6.id} 2`)).texts, ["m4", "m5"]);
    assert.deepEqual((await chathistory(irc, `AFTER #hist msgid=${m6.id} 2`)).texts, ["m7", "m8"]);
    assert.deepEqual(
      (await chathistory(irc, `AROUND #hist msgid=${m6.id} 3`)).texts,
      ["m5", "m6", "m7"],
    );
    assert.deepEqual(
      (await chathistory(irc, `LATEST #hist msgid=${sent[7].id} 5`)).texts,
      ["m9", "m10"],
    );
    assert.deepEqual(
      (await chathistory(irc, `BETWEEN #hist msgid=${sent[1].id} msgid=${m6.id} 2`)).texts,
      ["m3", "m4"],
    );
    assert.deepEqual(
      (await chathistory(irc, `BETWEEN #hist msgid=${m6.id} msgid=${sent[1].id} 2`)).texts,
      ["m4", "m5"],
    );
    // By time.
    assert.deepEqual(
      (await chathistory(irc, `BEFORE #hist timestamp=${iso(m6.ts)} 2`)).texts,
      ["m4", "m5"],
    );
    assert.deepEqual(
      (await chathistory(irc, `AFTER #hist timestamp=${iso(m6.ts)} 2`)).texts,
      ["m7", "m8"],
    );
    assert.deepEqual(
      (await chathistory(irc, `AROUND #hist timestamp=${iso(m6.ts)} 2`)).texts,
      ["m5", "m6"],
    );
    assert.deepEqual(
      (await chathistory(
        irc,
        `BETWEEN #hist timestamp=${iso(sent[7].ts)} timestamp=${iso(m6.ts)} 9`,
      ))
        .texts,
      ["m7"],
    );
    // A direct conversation, both ways, as sent.
    const dm = await chathistory(irc, "LATEST kim * 10");
    assert.deepEqual(dm.texts, ["dm1", "dm2"]);
    assert.deepEqual(dm.lines.map((m) => `${m.source} ${m.params[0]}`), [
      "kim!kim@chat leo",
      "leo!leo@chat kim",
    ]);
    assert.equal(dm.lines[1].tags.msgid, String(dms[1].id));
    // TARGETS: the rooms with a message in the window, oldest activity first.
    await irc.send(
      `CHATHISTORY TARGETS timestamp=${iso(sent[0].ts - 1)} timestamp=${iso(clock + 1000)} 10`,
    );
    const targets = await irc.expect((m) => m.command === "BATCH" && m.params[0].startsWith("+"));
    assert.equal(targets.params[1], "draft/chathistory-targets");
    const listed = await batchLines(irc, targets.params[0].slice(1));
    assert.deepEqual(listed.map((m) => m.params.slice(0, 2)), [
      ["TARGETS", "#hist"],
      ["TARGETS", "kim"],
    ]);
    assert.equal(listed[0].params[2], `timestamp=${iso(sent[9].ts)}`);
    assert.equal(listed[1].params[2], `timestamp=${iso(dms[1].ts)}`);
    // A window before the DMs: the room only.
    await irc.send(
      `CHATHISTORY TARGETS timestamp=${iso(sent[0].ts - 1)} timestamp=${iso(dms[0].ts)} 10`,
    );
    const early = await irc.expect((m) => m.command === "BATCH" && m.params[0].startsWith("+"));
    const room = await batchLines(irc, early.params[0].slice(1));
    assert.deepEqual(room.map((m) => m.params[1]), ["#hist"]);

    // Mistakes: standard replies.
    await irc.send(
      "CHATHISTORY LATEST #nowhere * 5",
      "CHATHISTORY BEFORE #hist yesterday 5",
      "CHATHISTORY LATEST #hist * 0",
      "CHATHISTORY SIDEWAYS #hist * 5",
      "CHATHISTORY LATEST nobody * 5",
    );
    for (
      const code of [
        "INVALID_TARGET",
        "INVALID_PARAMS",
        "INVALID_PARAMS",
        "INVALID_PARAMS",
        "INVALID_TARGET",
      ]
    ) {
      assert.equal((await irc.expectCommand("FAIL", "CHATHISTORY")).params[1], code);
    }
    // Not a member: its history is not for this client.
    await kim.join("secret");
    await kim.say("secret", "hush");
    await irc.send("CHATHISTORY LATEST #secret * 5");
    assert.equal((await irc.expectCommand("FAIL", "CHATHISTORY")).params[1], "INVALID_TARGET");
    assert.ok(!irc.raw.some((line) => line.includes("hush") || line.includes("spam")));
  } finally {
    await server.shutdown();
  }
});

Deno.test("irc v3: AWAY is a hub presence status: away-notify, RPL_AWAY, WHOIS, WHO, chat clients told, blocks applied; account-tag and extended-join", async () => {
  const server = await ircServer();
  try {
    await using carol = await connectClient(server, "carol");
    const carolEvents = carol.events[Symbol.asyncIterator]();
    await using dave = await connectClient(server, "dave");
    const daveEvents = dave.events[Symbol.asyncIterator]();
    await using alice = await IrcProbe.register(ircPort(server), "alice");
    await alice.send("CAP REQ :away-notify account-tag extended-join server-time");
    await alice.expectCommand("CAP", "alice", "ACK");
    await using bob = await IrcProbe.register(ircPort(server), "bob");
    await dave.block("bob");

    await bob.send("AWAY :gone fishing");
    await bob.expectCommand("306", "bob");
    const away = await alice.expectCommand("AWAY");
    assert.equal(away.source, "bob!bob@chat");
    assert.deepEqual(away.params, ["gone fishing"]);
    assert.equal(away.tags.account, "bob");
    const told = await nextEvent(
      carolEvents,
      (e) => e.type === "presence" && e.nick === "bob" && e.away !== undefined,
    );
    assert.equal(told.type === "presence" && told.away, "gone fishing");
    assert.equal(told.type === "presence" && told.online, true);

    await alice.send("PRIVMSG bob :are you there?");
    assert.deepEqual((await alice.expectCommand("301", "alice", "bob")).params[2], "gone fishing");
    await alice.send("WHOIS bob");
    await alice.expectCommand("311", "alice", "bob");
    assert.equal((await alice.expectCommand("301", "alice", "bob")).params[2], "gone fishing");
    await alice.expectCommand("318", "alice", "bob");
    await alice.send("WHO bob");
    assert.equal((await alice.expectCommand("352", "alice", "*", "bob")).params[6], "G");

    await bob.send("AWAY");
    await bob.expectCommand("305", "bob");
    const back = await alice.expectCommand("AWAY");
    assert.deepEqual([back.source, back.params], ["bob!bob@chat", []]);
    const backTold = await nextEvent(
      carolEvents,
      (e) => e.type === "presence" && e.nick === "bob" && e.away !== undefined,
    );
    assert.equal(backTold.type === "presence" && backTold.away, "");
    await alice.send("PRIVMSG bob :now?", "WHO bob", "PING :done");
    assert.equal((await alice.expectCommand("352", "alice", "*", "bob")).params[6], "H");
    await alice.expectCommand("PONG");
    assert.equal(alice.pending.filter((m) => m.command === "301").length, 0);

    // dave blocks bob: told of neither change. Events come in order: carol's line is after.
    const line = await carol.say("lobby", "tagged");
    const seen = await nextEvent(
      daveEvents,
      (e) =>
        (e.type === "presence" && e.nick === "bob" && e.away !== undefined) ||
        (e.type === "msg" && e.text === "tagged"),
    );
    assert.equal(seen.type, "msg");

    // account-tag on messages; extended-join on joins, its own included.
    const tagged = await alice.expectCommand("PRIVMSG", "#lobby", "tagged");
    assert.equal(tagged.tags.account, "carol");
    assert.equal(tagged.tags.time, new Date(line.msg.ts).toISOString());
    assert.equal((await bob.expectCommand("PRIVMSG", "#lobby", "tagged")).tags.account, undefined);
    await alice.send("JOIN #new");
    assert.deepEqual((await alice.expectCommand("JOIN", "#new")).params, [
      "#new",
      "alice",
      "alice",
    ]);
    await bob.send("AWAY :back soon", "JOIN #new");
    assert.deepEqual((await bob.expectCommand("JOIN", "#new")).params, ["#new"]);
    assert.deepEqual((await alice.expectCommand("AWAY")).params, ["back soon"]);
    const bobJoin = await alice.expectCommand("JOIN", "#new");
    assert.deepEqual(bobJoin.params, ["#new", "bob", "bob"]);
    assert.equal(bobJoin.tags.account, "bob");
    // Joining while away: the AWAY follows the JOIN.
    await alice.expectCommand("AWAY");
    const at = alice.raw.indexOf("@account=bob :bob!bob@chat JOIN #new bob bob");
    assert.ok(at >= 0, alice.raw.join("\n"));
    assert.equal(alice.raw[at + 1], "@account=bob :bob!bob@chat AWAY :back soon");
  } finally {
    await server.shutdown();
  }
});

Deno.test("irc v3: a chat client's away (the chat `away` request) reaches IRC users and other chat clients; ended with its last session", async () => {
  const server = await ircServer();
  try {
    await using erin = await connectClient(server, "erin");
    await using frank = await connectClient(server, "frank");
    const frankEvents = frank.events[Symbol.asyncIterator]();
    await using irc = await IrcProbe.register(ircPort(server), "gina");
    await irc.send("CAP REQ :away-notify");
    await irc.expectCommand("CAP", "gina", "ACK");
    assert.deepEqual(await erin.away("  in a meeting\nall day "), { away: "in a meeting all day" });
    assert.deepEqual((await irc.expectCommand("AWAY")).params, ["in a meeting all day"]);
    const told = await nextEvent(
      frankEvents,
      (e) => e.type === "presence" && e.nick === "erin" && e.away !== undefined,
    );
    assert.equal(told.type === "presence" && told.away, "in a meeting all day");
    await irc.send("PRIVMSG erin :ping");
    assert.equal(
      (await irc.expectCommand("301", "gina", "erin")).params[2],
      "in a meeting all day",
    );
    assert.deepEqual(await erin.away(), { away: "" });
    assert.deepEqual((await irc.expectCommand("AWAY")).params, []);
    // Away, then gone: back online later, not away any more.
    await erin.away("gone");
    await irc.expectCommand("AWAY");
    await erin.close();
    await using again = await connectClient(server, "erin");
    assert.equal(again.nick, "erin");
    await irc.send("WHOIS erin");
    await irc.expectCommand("311", "gina", "erin");
    const end = await irc.expect((m) => m.command === "318" || m.command === "301");
    assert.equal(end.command, "318");
  } finally {
    await server.shutdown();
  }
});

Deno.test("irc v3: away changes take from the message bucket (each is told to everyone), over IRC and the chat protocol", async () => {
  const server = await ircServer({
    rateMessagesPerSec: 0.1,
    rateMessagesBurst: 2,
    rateRequestsPerSec: 1000,
    rateBytesPerSec: 1_000_000,
  });
  try {
    await using irc = await IrcProbe.register(ircPort(server), "hank");
    await irc.send("AWAY :one", "AWAY", "AWAY :three");
    await irc.expectCommand("306", "hank");
    await irc.expectCommand("305", "hank");
    await irc.expectCommand("263", "hank", "AWAY");
    await using chat = await Probe.login(server, "ivy");
    await chat.ok("away", { text: "one" });
    await chat.ok("away", {});
    await chat.fails("away", { text: "three" }, "rate_limited");
  } finally {
    await server.shutdown();
  }
});

/** A Python that has the `irc` library (python3-irc), or null. */
const PYTHON_IRC = pythonIrc("irc_v3_test");

Deno.test({
  name:
    "irc v3: a real IRC library (python3-irc) logs in through SASL, goes away, sees another's away in WHOIS, reads CHATHISTORY",
  ignore: PYTHON_IRC === null,
  async fn() {
    const server = await ircServer({ credentials: [{ nick: "pyuser", password: "password123" }] });
    try {
      await using carol = await connectClient(server, "carol");
      const events = carol.events[Symbol.asyncIterator]();
      await carol.say("lobby", "history line 1");
      await carol.say("lobby", "history line 2");
      await using bob = await IrcProbe.register(ircPort(server), "bob");
      await bob.send("AWAY :busy");
      await bob.expectCommand("306", "bob");
      const args = ["127.0.0.1", String(ircPort(server)), "pyuser", "password123", "bob"];
      const { out, seen, has } = await runIrcScript(
        PYTHON_IRC!,
        "irc_v3_client.py",
        args,
        async () => {
          const away = await nextEvent(
            events,
            (e) => e.type === "presence" && e.nick === "pyuser" && e.away !== undefined,
          );
          assert.equal(away.type === "presence" && away.away, "fishing");
        },
      );
      assert.ok(has("903"), out);
      assert.ok(has("welcome"), out);
      assert.ok(seen.some((e) => e.event === "welcome" && e.target === "pyuser"), out);
      assert.ok(has("nowaway"), out);
      assert.ok(has("away", "busy"), out);
      assert.ok(has("pubmsg", "history line 1") && has("pubmsg", "history line 2"), out);
    } finally {
      await server.shutdown();
    }
  },
});

/** The capabilities of a `CAP ... LS` or `CAP ... LIST` reply (values cut off). */
const capNames = (m: IrcMessage) =>
  m.params[m.params.length - 1].split(" ").filter((c) => c !== "").map((c) => c.split("=")[0]);

Deno.test("irc v3: cap-notify is offered; CAP LS 302 enables it for good; an older client takes and drops it with CAP REQ", async () => {
  const server = await ircServer();
  try {
    // A 302 client: enabled by the LS itself, listed, not to be disabled (the whole REQ
    // refused), and a REQ for it acknowledged with nothing else changed.
    await using modern = await IrcProbe.dial(ircPort(server));
    await modern.send("CAP LS 302");
    const ls = await modern.expectCommand("CAP", "*", "LS");
    assert.ok(capNames(ls).includes("cap-notify"), ls.params[2]);
    await modern.send("CAP LIST");
    assert.deepEqual(capNames(await modern.expectCommand("CAP", "*", "LIST")), ["cap-notify"]);
    await modern.send("CAP REQ :batch -cap-notify");
    await modern.expectCommand("CAP", "*", "NAK", "batch -cap-notify");
    await modern.send("CAP REQ :cap-notify");
    await modern.expectCommand("CAP", "*", "ACK", "cap-notify");
    await modern.send("CAP LIST");
    assert.deepEqual(capNames(await modern.expectCommand("CAP", "*", "LIST")), ["cap-notify"]);
    await modern.send("PASS password123", "NICK modern", "USER m 0 * :M", "CAP END");
    await modern.expectCommand("001", "modern");
    await modern.send("CAP LIST");
    assert.deepEqual(capNames(await modern.expectCommand("CAP", "modern", "LIST")), [
      "cap-notify",
    ]);

    // A client without a version: offered, not enabled until asked, and may drop it.
    await using older = await IrcProbe.dial(ircPort(server));
    await older.send("CAP LS");
    const plain = await older.expectCommand("CAP", "*", "LS");
    assert.ok(capNames(plain).includes("cap-notify"), plain.params[2]);
    await older.send("CAP LIST");
    assert.deepEqual(capNames(await older.expectCommand("CAP", "*", "LIST")), []);
    await older.send("CAP REQ :cap-notify");
    await older.expectCommand("CAP", "*", "ACK", "cap-notify");
    await older.send("CAP LIST");
    assert.deepEqual(capNames(await older.expectCommand("CAP", "*", "LIST")), ["cap-notify"]);
    await older.send("CAP REQ :-cap-notify");
    await older.expectCommand("CAP", "*", "ACK", "-cap-notify");
    await older.send("CAP LIST");
    assert.deepEqual(capNames(await older.expectCommand("CAP", "*", "LIST")), []);
    // Asking for 302 later enables it, as from the start.
    await older.send("CAP LS 302");
    await older.expectCommand("CAP", "*", "LS");
    await older.send("CAP LIST");
    assert.deepEqual(capNames(await older.expectCommand("CAP", "*", "LIST")), ["cap-notify"]);
    await older.send("PASS password123", "NICK older", "USER o 0 * :O", "CAP END");
    await older.expectCommand("001", "older");
  } finally {
    await server.shutdown();
  }
});
