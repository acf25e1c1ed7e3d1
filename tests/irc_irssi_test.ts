/**
 * A real IRC client on the IRC listener (`--irc-port`): Debian's irssi, in a tmux pane of
 * the test's own, with a scratch home (no user configuration read or written), talks with
 * a chat-protocol client in `#lobby`, both ways. Skips itself when irssi or tmux is missing.
 */

import assert from "node:assert/strict";
import { nextEvent } from "./helpers/chat_events.ts";
import { connectClient, testServer } from "./helpers/harness.ts";
import { q, TMUX, Tmux } from "./helpers/tmux.ts";

/** Each wait (the screen, an event) lasts at most this long: generous for a loaded machine. */
const STEP_MS = 30_000;

function hasIrssi(): boolean {
  try {
    return new Deno.Command("irssi", { args: ["--version"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}

const IRSSI = hasIrssi();
if (!IRSSI) {
  console.warn(
    "irc_irssi_test: irssi not found (apt-get install -y irssi): the irssi test is skipped",
  );
}

/**
 * irssi's configuration: who it is; no paste detection (text typed with `send-keys`
 * arrives at once and must not be held as a paste); and no client-side flood queue
 * (irssi spaces its commands 2.2 s apart once it sent 5 in a row, as it does on joining).
 */
function irssiConfig(nick: string): string {
  return `settings = {
  core = {
    real_name = "${nick}";
    user_name = "${nick}";
    nick = "${nick}";
  };
  "irc/core" = { cmd_queue_speed = "0msec"; };
  "fe-text" = { paste_detect_time = "0"; };
};
`;
}

Deno.test({
  name: "irc: irssi (in tmux) joins #lobby and talks with a chat client, both ways",
  ignore: !TMUX || !IRSSI,
  async fn() {
    const server = await testServer({ ircPort: 0 });
    const home = await Deno.makeTempDir({ prefix: "chat-irssi-" });
    const tmux = new Tmux();
    try {
      assert.ok(server.ircAddr !== null, "the IRC listener is off");
      await using bob = await connectClient(server, "bob");
      const events = bob.events[Symbol.asyncIterator]();
      const token = crypto.randomUUID().slice(0, 8);

      const irssiHome = `${home}/.irssi`;
      await Deno.mkdir(irssiHome);
      await Deno.writeTextFile(`${irssiHome}/config`, irssiConfig("irsuser"));
      const command = [
        "env",
        `HOME=${home}`,
        "irssi",
        `--home=${irssiHome}`,
        "-n",
        "irsuser",
        "-c",
        "127.0.0.1",
        "-p",
        String(server.ircAddr.port),
        "-w",
        "password123",
      ].map(q).join(" ");
      await tmux.start("irssi", command, { columns: 120, rows: 40, keepPane: true });

      // Registered: the server's 001 shows in irssi's status window, and the server put
      // irssi in #lobby (everyone starts there): irssi opened window 2 for it, whose
      // activity the status bar shows. Only then is #lobby known to irssi, so that
      // `/join #lobby` switches to its window.
      await tmux.waitScreen(
        "irssi",
        (rows) =>
          rows.some((row) => row.includes("Welcome to chat, irsuser")) &&
          rows.some((row) => /\[Act: [0-9,]*\b2\b/.test(row)),
        "irssi's registration (001) and its #lobby window (Act: 2)",
        false,
        STEP_MS,
      );

      // The irssi user types /join #lobby: irssi's current window becomes #lobby.
      await tmux.type("irssi", "/join #lobby");
      await tmux.press("irssi", "Enter");
      await tmux.waitScreen(
        "irssi",
        (rows) => rows.some((row) => row.startsWith("[#lobby]")),
        "the #lobby window's prompt",
        false,
        STEP_MS,
      );

      // Chat -> irssi.
      const fromChat = `hello from chat ${token}`;
      await bob.say("lobby", fromChat);
      await tmux.waitScreen(
        "irssi",
        (rows) => rows.some((row) => /<[ @+]?bob> /.test(row) && row.endsWith(fromChat)),
        "bob's line in irssi's #lobby window",
        false,
        STEP_MS,
      );

      // irssi -> chat.
      const fromIrssi = `hello from irssi ${token}`;
      await tmux.type("irssi", fromIrssi);
      await tmux.press("irssi", "Enter");
      const said = await nextEvent(
        events,
        (e) => e.type === "msg" && e.from === "irsuser" && e.room === "lobby",
        STEP_MS,
      ).catch(async (err) => {
        const screen = await tmux.screen("irssi").catch(() => []);
        throw new Error(`${err}; irssi's window:\n${screen.join("\n")}`);
      });
      assert.equal(said.type === "msg" && said.text, fromIrssi);
    } finally {
      await tmux.kill();
      await server.shutdown();
      await Deno.remove(home, { recursive: true }).catch(() => {});
    }
  },
});
