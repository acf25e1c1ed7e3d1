/**
 * The server's defences, over the IRC listener, with real sockets and the server's
 * default rules where the test is about them: a flood of 10,000 PRIVMSGs, the
 * per-address connection cap (chat and IRC connections counted together, another
 * address unaffected), the registration deadline, over-long lines and tags, binary
 * garbage, and a client that stops reading — while the others keep being served.
 */

import assert from "node:assert/strict";
import * as net from "node:net";
import type { ChatEvent } from "../client/chat_client.ts";
import { nextEvent } from "./helpers/chat_events.ts";
import { DEFAULT_SERVER_CONFIG } from "../server/config.ts";
import { connectClient, testServer } from "./helpers/harness.ts";
import { ircPort, IrcProbe } from "./helpers/irc_probe.ts";

const STEP_MS = 20_000;

/** Both ways between an IRC client and a chat client in #lobby: the server still serves. */
async function stillServing(
  irc: IrcProbe,
  nick: string,
  chat: Awaited<ReturnType<typeof connectClient>>,
  events: AsyncIterator<ChatEvent>,
  token: string,
): Promise<void> {
  await chat.say("lobby", `from chat ${token}`);
  await irc.expect((m) => m.command === "PRIVMSG" && m.params[1] === `from chat ${token}`);
  await irc.send(`PRIVMSG #lobby :from irc ${token}`);
  await nextEvent(
    events,
    (e) => e.type === "msg" && e.from === nick && e.text === `from irc ${token}`,
  );
}

Deno.test("irc defences: 10,000 PRIVMSGs at once, under the default flood rules, are throttled and the flooder cut off; the others are served throughout", async () => {
  const { rateMessagesPerSec, rateMessagesBurst, floodStrikes } = DEFAULT_SERVER_CONFIG;
  const server = await testServer({
    ircPort: 0,
    rateMessagesPerSec,
    rateMessagesBurst,
    rateRequestsPerSec: DEFAULT_SERVER_CONFIG.rateRequestsPerSec,
    rateRequestsBurst: DEFAULT_SERVER_CONFIG.rateRequestsBurst,
    rateBytesPerSec: DEFAULT_SERVER_CONFIG.rateBytesPerSec,
    rateBytesBurst: DEFAULT_SERVER_CONFIG.rateBytesBurst,
    floodStrikes,
  });
  try {
    await using carol = await connectClient(server, "carol");
    const events = carol.events[Symbol.asyncIterator]();
    await using dave = await IrcProbe.register(ircPort(server), "dave");
    await using flooder = await IrcProbe.register(ircPort(server), "mallory");
    const started = performance.now();
    const lines = Array.from({ length: 10_000 }, (_, i) => `PRIVMSG #lobby :flood ${i}`);
    // Cut off while it still writes: a reset is the expected end of that write.
    const flooding = flooder.send(...lines).catch(() => {});
    // Served during the flood.
    await stillServing(dave, "dave", carol, events, "during");
    await flooder.expectCommand("263", "mallory", "PRIVMSG");
    const error = await flooder.expectCommand("ERROR");
    assert.match(error.params[0], /Excess flood/);
    await flooder.closed();
    await flooding;
    const seconds = (performance.now() - started) / 1000;
    // Served after it; and every line of the flooder that got through came before this.
    await stillServing(dave, "dave", carol, events, "after");
    const through = dave.raw.filter((l) => / PRIVMSG #lobby :flood \d+$/.test(l)).length;
    // The chat protocol's rule: a burst, then the rate.
    const allowed = rateMessagesBurst + Math.ceil(rateMessagesPerSec * seconds) + 1;
    assert.ok(through >= 1 && through <= allowed, `${through} of 10,000 got through (${allowed})`);
    const refused = flooder.raw.filter((l) => / 263 mallory PRIVMSG /.test(l)).length;
    assert.ok(refused >= 1 && refused <= floodStrikes + 1, `${refused} refusals`);
  } finally {
    await server.shutdown();
  }
});

/** An IRC registration from another loopback address (node:net can choose it). */
function registerFrom(from: string, port: number, nick: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: "127.0.0.1", port, localAddress: from });
    let text = "";
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no welcome from ${from}: ${text}`));
    }, STEP_MS);
    socket.on(
      "connect",
      () => socket.write(`PASS password123\r\nNICK ${nick}\r\nUSER ${nick} 0 * :x\r\n`),
    );
    socket.on("data", (chunk: Uint8Array) => {
      text += new TextDecoder().decode(chunk);
      if (/ 001 /.test(text) || /^ERROR/m.test(text)) {
        clearTimeout(timer);
        socket.destroy();
        resolve(text);
      }
    });
    socket.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

Deno.test("irc defences: the per-address cap counts chat and IRC connections together; another address and a freed slot are served", async () => {
  const server = await testServer({ ircPort: 0, maxConnectionsPerIp: 3 });
  try {
    await using chat = await connectClient(server, "erin");
    await using one = await IrcProbe.register(ircPort(server), "frank");
    const two = await IrcProbe.register(ircPort(server), "grace");
    // The fourth from 127.0.0.1, on either port, is refused with the reason.
    await using four = await IrcProbe.dial(ircPort(server));
    assert.match((await four.expectCommand("ERROR")).params[0], /too many connections/);
    await four.closed();
    // From 127.0.0.2: its own count.
    const welcome = await registerFrom("127.0.0.2", ircPort(server), "heidi");
    assert.match(welcome, / 001 heidi /);
    // A slot freed is a slot again.
    await two.send("QUIT :bye");
    await two.closed();
    await two[Symbol.asyncDispose]();
    const deadline = Date.now() + STEP_MS;
    let again: IrcProbe | null = null;
    // The server counts the connection gone once it has closed its side: retried until then.
    while (again === null) {
      const probe = await IrcProbe.dial(ircPort(server));
      await probe.send("PASS password123", "NICK ivan", "USER ivan 0 * :x");
      const first = await probe.expect((m) => m.command === "001" || m.command === "ERROR");
      if (first.command === "001") again = probe;
      else {
        await probe[Symbol.asyncDispose]();
        assert.ok(Date.now() < deadline, "the freed slot was never given back");
      }
    }
    await again[Symbol.asyncDispose]();
    assert.ok(!one.ended);
    await chat.say("lobby", "still here");
  } finally {
    await server.shutdown();
  }
});

Deno.test("irc defences: the registration deadline closes a client that sends nothing, or only USER", async () => {
  const server = await testServer({ ircPort: 0, loginTimeoutMs: 1500 });
  try {
    await using mute = await IrcProbe.dial(ircPort(server));
    await using userOnly = await IrcProbe.dial(ircPort(server));
    await userOnly.send("USER half 0 * :half");
    await using fine = await IrcProbe.register(ircPort(server), "judy");
    for (const probe of [mute, userOnly]) {
      assert.match((await probe.expectCommand("ERROR")).params[0], /within 1.5 s/);
      await probe.closed();
    }
    await fine.send("PING alive");
    await fine.expectCommand("PONG");
    assert.ok(!fine.ended);
  } finally {
    await server.shutdown();
  }
});

Deno.test("irc defences: over-long lines and tags get 417 and are skipped; a megabyte without a line end is never held; the connection stays usable", async () => {
  const server = await testServer({ ircPort: 0 });
  try {
    await using chat = await connectClient(server, "kim");
    const events = chat.events[Symbol.asyncIterator]();
    await using irc = await IrcProbe.register(ircPort(server), "leo");
    // Tags over 8191 bytes, with a short message.
    await irc.send(`@+x=${"t".repeat(9000)} PRIVMSG #lobby :tagged`);
    await irc.expectCommand("417", "leo");
    // A line of 8,192 bytes (over the 512 of LINELEN, and over 8191).
    await irc.send("PRIVMSG #lobby :" + "x".repeat(8192 - 16));
    await irc.expectCommand("417", "leo");
    // A megabyte without a line end, in pieces, then its end: one 417, then the next line.
    const piece = new TextEncoder().encode("y".repeat(64 * 1024));
    await irc.sendRaw(new TextEncoder().encode("PRIVMSG #lobby :"));
    for (let i = 0; i < 16; i++) await irc.sendRaw(piece);
    await irc.send("", "PING after-the-megabyte");
    await irc.expectCommand("417", "leo");
    assert.equal((await irc.expectCommand("PONG")).params[1], "after-the-megabyte");
    assert.equal(irc.raw.filter((l) => / 417 /.test(l)).length, 3, irc.raw.join("\n"));
    // None of them reached the room; the next line does.
    await irc.send("PRIVMSG #lobby :a line of a normal length");
    const said = await nextEvent(events, (e) => e.type === "msg" && e.from === "leo");
    assert.equal(said.type === "msg" && said.text, "a line of a normal length");
  } finally {
    await server.shutdown();
  }
});

Deno.test("irc defences: every byte value, a TLS hello and NULs on the IRC port never crash the server", async () => {
  const server = await testServer({ ircPort: 0 });
  try {
    const all = Uint8Array.from({ length: 256 * 8 }, (_, i) => i % 256);
    // A TLS ClientHello's first bytes, as a client configured for TLS would send.
    const tlsHello = Uint8Array.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03]);
    for (const bytes of [all, tlsHello, new Uint8Array(4096)]) {
      await using probe = await IrcProbe.dial(ircPort(server));
      await probe.sendRaw(bytes).catch(() => {});
      await probe.send("PING x").catch(() => {});
    }
    await using registered = await IrcProbe.register(ircPort(server), "mia");
    await registered.sendRaw(all).catch(() => {});
    await using fresh = await IrcProbe.register(ircPort(server), "ned");
    await using chat = await connectClient(server, "olga");
    await chat.say("lobby", "served");
    await fresh.expect((m) => m.command === "PRIVMSG" && m.params[1] === "served");
  } finally {
    await server.shutdown();
  }
});

Deno.test("irc defences: an IRC client that stops reading is cut off as a slow consumer while the others keep chatting", async () => {
  const server = await testServer({ ircPort: 0, maxQueueBytes: 256 * 1024 });
  try {
    await using alice = await connectClient(server, "alice");
    const events = alice.events[Symbol.asyncIterator]();
    await using bob = await IrcProbe.register(ircPort(server), "bob");
    // Registers, then never reads again.
    const sloth = await Deno.connect({ hostname: "127.0.0.1", port: ircPort(server) });
    await sloth.write(
      new TextEncoder().encode("PASS password123\r\nNICK sloth\r\nUSER sloth 0 * :s\r\n"),
    );
    await nextEvent(events, (e) => e.type === "presence" && e.nick === "sloth" && e.online);
    const text = "z".repeat(3900);
    let cutOff = false;
    // Waited for over the whole loop below: a deadline for the loop, generous under load.
    const offline = nextEvent(
      events,
      (e) => e.type === "presence" && e.nick === "sloth" && !e.online,
      180_000,
    ).then(() => cutOff = true, (err) => {
      cutOff = true;
      throw err;
    });
    offline.catch(() => {});
    for (let i = 0; i < 4000 && !cutOff; i++) {
      // No space: IRC splits a long text at spaces first; its first line starts "<i>-".
      await alice.say("lobby", `${i}-${text}`);
      await bob.expect((m) => m.command === "PRIVMSG" && m.params[1].startsWith(`${i}-`));
      bob.pending.length = 0;
      bob.raw.length = 0;
    }
    await offline;
    assert.ok(server.hub.metrics.counters.slowConsumerCutoffs >= 1);
    // Its last line, once it reads again, says why.
    const chunks: Uint8Array[] = [];
    const buffer = new Uint8Array(1 << 20);
    for (let n = await sloth.read(buffer); n !== null; n = await sloth.read(buffer)) {
      chunks.push(buffer.slice(0, n));
    }
    sloth.close();
    const tail = new TextDecoder().decode(chunks.at(-1) ?? new Uint8Array()).trimEnd();
    assert.match(
      tail.slice(tail.lastIndexOf("\n") + 1),
      /^ERROR :Closing link: reading too slowly/,
    );
    await alice.say("lobby", "after the cut");
    await bob.expect((m) => m.command === "PRIVMSG" && m.params[1] === "after the cut");
  } finally {
    await server.shutdown();
  }
});
