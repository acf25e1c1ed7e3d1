/**
 * A real IRC client on the IRC listener (`--irc-port`): Debian's WeeChat without a
 * terminal (`weechat-headless`), with a scratch home, driven through its fifo plugin,
 * talks with a chat-protocol client in `#lobby`, both ways; what it received is read
 * from its logger's file of the channel. Skips itself when weechat-headless is missing.
 */

import assert from "node:assert/strict";
import { nextEvent } from "./helpers/chat_events.ts";
import { connectClient, testServer } from "./helpers/harness.ts";

/** Each wait (a file, an event) lasts at most this long: generous for a loaded machine. */
const STEP_MS = 30_000;

function hasWeechat(): boolean {
  try {
    return new Deno.Command("weechat-headless", {
      args: ["--version"],
      stdout: "null",
      stderr: "null",
    }).outputSync().success;
  } catch {
    return false;
  }
}

const WEECHAT = hasWeechat();
if (!WEECHAT) {
  console.warn(
    "irc_weechat_test: weechat-headless not found (apt-get install -y weechat-headless): the WeeChat test is skipped",
  );
}

/** The text of every WeeChat log file under `dir` whose name matches `name`, joined. */
async function readLogs(dir: string, name: RegExp): Promise<string> {
  let text = "";
  const walk = async (at: string): Promise<void> => {
    for await (const entry of Deno.readDir(at)) {
      const path = `${at}/${entry.name}`;
      if (entry.isDirectory) await walk(path);
      else if (name.test(entry.name)) text += await Deno.readTextFile(path).catch(() => "");
    }
  };
  await walk(dir).catch(() => {});
  return text;
}

/**
 * Polls WeeChat's logs until `match` holds (the logger writes at once: its flush delay is
 * set to 0). The files are written by WeeChat as it goes: there is no event to wait on.
 */
async function waitLog(
  dir: string,
  name: RegExp,
  match: (text: string) => boolean,
  what: string,
): Promise<string> {
  const deadline = Date.now() + STEP_MS;
  while (Date.now() < deadline) {
    const text = await readLogs(dir, name);
    if (match(text)) return text;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const all = await readLogs(dir, /\.(weechatlog|log)$/);
  throw new Error(`WeeChat's logs never showed ${what}; its logs:\n${all.slice(-4000)}`);
}

Deno.test({
  name:
    "irc: WeeChat (weechat-headless, driven by its fifo) joins #lobby and talks with a chat client, both ways",
  ignore: !WEECHAT,
  async fn() {
    const server = await testServer({ ircPort: 0 });
    const home = await Deno.makeTempDir({ prefix: "chat-weechat-" });
    let child: Deno.ChildProcess | null = null;
    try {
      assert.ok(server.ircAddr !== null, "the IRC listener is off");
      await using bob = await connectClient(server, "bob");
      const events = bob.events[Symbol.asyncIterator]();
      const token = crypto.randomUUID().slice(0, 8);
      const fifo = `${home}/fifo`;
      const port = server.ircAddr.port;
      // One server, "chat"; WeeChat 3.8 calls its TLS switch "ssl" (4.0: "tls", on by
      // default): both are turned off, one of them is unknown and says so harmlessly.
      const commands = [
        `/set fifo.file.path ${fifo}`,
        "/set logger.file.flush_delay 0",
        `/server add chat 127.0.0.1/${port}`,
        "/set irc.server.chat.ssl off",
        "/set irc.server.chat.tls off",
        "/set irc.server.chat.password password123",
        "/set irc.server.chat.nicks weeuser",
        "/set irc.server.chat.username weeuser",
        "/set irc.server.chat.realname weeuser",
        "/connect chat",
      ].join(";");
      child = new Deno.Command("weechat-headless", {
        args: [
          "--dir",
          home,
          "--no-script",
          "--plugins",
          "irc,logger,fifo",
          "--run-command",
          commands,
        ],
        env: { HOME: home },
        stdin: "null",
        stdout: "null",
        stderr: "null",
      }).spawn();

      // Registered and in #lobby (everyone starts there): WeeChat's log of the channel
      // has its own join.
      const lobbyLog = /lobby.*\.weechatlog$/;
      await waitLog(home, lobbyLog, (t) => t.includes("weeuser"), "weeuser in #lobby");

      // Chat -> WeeChat: the line lands in WeeChat's log of #lobby, from bob.
      const fromChat = `hello from chat ${token}`;
      await bob.say("lobby", fromChat);
      const log = await waitLog(
        home,
        lobbyLog,
        (t) => t.includes(fromChat),
        `bob's line "${fromChat}"`,
      );
      const line = log.split("\n").find((l) => l.includes(fromChat))!;
      assert.match(line, new RegExp(`\\tbob\\t${fromChat}$`), line);

      // WeeChat -> chat: text written to the #lobby buffer through the fifo is said there.
      const fromWeechat = `hello from weechat ${token}`;
      await Deno.writeTextFile(fifo, `irc.chat.#lobby *${fromWeechat}\n`);
      const said = await nextEvent(
        events,
        (e) => e.type === "msg" && e.from === "weeuser" && e.room === "lobby",
        STEP_MS,
      ).catch(async (err) => {
        throw new Error(`${err}; WeeChat's logs:\n${await readLogs(home, /\.weechatlog$/)}`);
      });
      assert.equal(said.type === "msg" && said.text, fromWeechat);
    } finally {
      if (child !== null) {
        try {
          child.kill("SIGTERM");
        } catch {
          // already gone
        }
        await child.status;
      }
      await server.shutdown();
      await Deno.remove(home, { recursive: true }).catch(() => {});
    }
  },
});
