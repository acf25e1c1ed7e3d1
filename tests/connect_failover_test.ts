/**
 * `chat connect` given a server list (`--host`, `CHAT_HOST`): it connects to an address
 * that accepts and says which, fails over to the next when its server stops, and refuses
 * a malformed list with a usage error. Two real servers share one store (see
 * `helpers/two_servers.ts`); `chat connect` runs as a child process.
 */

import assert from "node:assert/strict";
import { ChatClient } from "../client/chat_client.ts";
import { ConnectProcess, PASSWORD } from "./helpers/connect_process.ts";
import { downPort, twoServers } from "./helpers/two_servers.ts";

Deno.test("CHAT_HOST with the first address down: connects to the second and says so", async () => {
  const servers = await twoServers();
  const down = downPort();
  const two = servers.two.addr.port;
  try {
    const bot = new ConnectProcess(
      null,
      ["--nick", "bot", "--json", "--no-randomize"],
      "hello from the second\n",
      { env: { CHAT_HOST: `127.0.0.1:${down},127.0.0.1:${two}` } },
    );
    assert.equal(await bot.finish(), 0, bot.stderr);
    assert.deepEqual(bot.json[0], { type: "connected", server: `127.0.0.1:${two}` });
    assert.ok(
      bot.json.some((l) => l.request === "say" && l.text === "hello from the second"),
      bot.stdout,
    );
    // Human output: the address on stderr, with the other diagnostics.
    const human = new ConnectProcess(
      null,
      ["--nick", "human", "--host", `127.0.0.1:${down},127.0.0.1:${two}`, "--no-randomize"],
      "",
    );
    assert.equal(await human.finish(), 0, human.stderr);
    assert.match(human.stderr, new RegExp(`^\\* connected to 127\\.0\\.0\\.1:${two}$`, "m"));
  } finally {
    await servers.stop();
  }
});

Deno.test({
  name: "--follow with --host P1,P2: P1 stops, the bot reconnects to P2 by itself and reads on",
  ignore: Deno.build.os === "windows", // signals
  async fn() {
    const servers = await twoServers();
    const one = servers.one.addr.port;
    const two = servers.two.addr.port;
    let alice: ChatClient | null = null;
    const bot = new ConnectProcess(
      null,
      [
        "--nick",
        "bot",
        "--json",
        "--follow",
        "--no-randomize",
        "--host",
        `127.0.0.1:${one},127.0.0.1:${two}`,
      ],
      "/join lobby\n",
    );
    try {
      await bot.waitFor(
        (l) => l.type === "connected" && l.server === `127.0.0.1:${one}`,
        "the first connection, to P1",
      );
      await bot.waitFor((l) => l.type === "reply" && l.request === "join", "the bot's join");
      await servers.one.shutdown();
      await bot.waitFor(
        (l) => l.type === "reconnected" && l.server === `127.0.0.1:${two}`,
        "the reconnection to P2",
      );
      alice = await ChatClient.connect({
        port: two,
        nick: "alice",
        password: PASSWORD,
        reconnect: false,
      });
      await alice.join("lobby");
      await alice.say("lobby", "after the switch");
      await bot.waitFor((l) => l.text === "after the switch", "a message sent on P2");
      bot.child.kill("SIGTERM");
      assert.equal(await bot.finish(), 0, bot.stderr);
    } finally {
      await alice?.close();
      try {
        bot.child.kill("SIGKILL");
      } catch {
        // exited
      }
      await bot.finish().catch(() => {});
      await servers.stop();
    }
  },
});

Deno.test("a malformed --host list is a usage error naming the entry: exit 2", async () => {
  const cases: [string, RegExp][] = [
    ["127.0.0.1:1,,127.0.0.1:2", /--host \(or CHAT_HOST\): entry 2 of .* is empty/],
    [
      "127.0.0.1:1,127.0.0.1:99999",
      /entry 2 \("127\.0\.0\.1:99999"\): the port must be a number from 1 to 65535/,
    ],
  ];
  for (const [host, message] of cases) {
    const run = new ConnectProcess(null, ["--nick", "bot", "--host", host], "");
    assert.equal(await run.finish(), 2, run.stderr);
    assert.match(run.stderr, message);
  }
});
