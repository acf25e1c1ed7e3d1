/**
 * A real IRC client on the IRC listener (`--irc-port`): Debian's irssi, in a tmux pane of
 * the test's own, with a scratch home (no user configuration read or written), talks with
 * a chat-protocol client in `#lobby`, both ways. Skips itself when irssi or tmux is missing.
 */

import assert from "node:assert/strict";
import { nextEvent } from "./helpers/chat_events.ts";
import { connectClient, testServer } from "./helpers/harness.ts";
import { q, TMUX, Tmux } from "./helpers/tmux.ts";
import { ConnectProcess } from "./helpers/connect_process.ts";

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

/** irssi started in `tmux` as `nick`, registered with PASS on the server's IRC port. */
async function startIrssi(tmux: Tmux, home: string, port: number, nick: string): Promise<void> {
  const irssiHome = `${home}/.irssi`;
  await Deno.mkdir(irssiHome);
  await Deno.writeTextFile(`${irssiHome}/config`, irssiConfig(nick));
  const command = [
    "env",
    `HOME=${home}`,
    "irssi",
    `--home=${irssiHome}`,
    "-n",
    nick,
    "-c",
    "127.0.0.1",
    "-p",
    String(port),
    "-w",
    "password123",
  ].map(q).join(" ");
  await tmux.start("irssi", command, { columns: 160, rows: 40, keepPane: true });
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

      await startIrssi(tmux, home, server.ircAddr.port, "irsuser");

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

Deno.test({
  name:
    "irc: irssi logs in, joins a room, sees its history and talks with `chat connect` users, both ways",
  ignore: !TMUX || !IRSSI,
  async fn() {
    const server = await testServer({ ircPort: 0 });
    const home = await Deno.makeTempDir({ prefix: "chat-irssi-" });
    const tmux = new Tmux();
    const token = crypto.randomUUID().slice(0, 8);
    // carol, a terminal user (`chat connect --json --follow`), says a line in #team
    // before the IRC user is there, then follows the room.
    const carol = new ConnectProcess(
      server.addr.port,
      ["--nick", "carol", "--json", "--follow"],
      `/join team\nbefore you came ${token}\n`,
    );
    try {
      assert.ok(server.ircAddr !== null, "the IRC listener is off");
      const said = await carol.waitFor(
        (l) => l.type === "reply" && l.request === "say",
        "carol's line in team stored",
      );
      assert.equal(said.room, "team");

      await startIrssi(tmux, home, server.ircAddr.port, "ivan");
      await tmux.waitScreen(
        "irssi",
        (rows) => rows.some((row) => row.includes("Welcome to chat, ivan")),
        "irssi's registration (001)",
        false,
        STEP_MS,
      );

      // The room's history shows in irssi's #team window once it joins.
      await tmux.type("irssi", "/join #team");
      await tmux.press("irssi", "Enter");
      await tmux.waitScreen(
        "irssi",
        (rows) =>
          rows.some((row) => row.startsWith("[#team]")) &&
          rows.some((row) =>
            /<[ @+]?carol> /.test(row) && row.endsWith(`before you came ${token}`)
          ),
        "#team's window with carol's earlier line (the history on join)",
        false,
        STEP_MS,
      );

      // irssi -> the terminal user.
      await tmux.type("irssi", `hello carol ${token}`);
      await tmux.press("irssi", "Enter");
      const heard = await carol.waitFor(
        (l) => l.type === "msg" && l.from === "ivan" && l.room === "team",
        "ivan's line at carol's terminal",
      );
      assert.equal(heard.text, `hello carol ${token}`);
      assert.equal(typeof heard.id, "number");

      // A terminal user -> irssi: carol again, from a second `chat connect`.
      const again = new ConnectProcess(
        server.addr.port,
        ["--nick", "carol", "--json"],
        `/join team\nhello ivan ${token}\n`,
      );
      assert.equal(await again.finish(), 0, again.stderr);
      await tmux.waitScreen(
        "irssi",
        (rows) =>
          rows.some((row) => /<[ @+]?carol> /.test(row) && row.endsWith(`hello ivan ${token}`)),
        "carol's live line in irssi's #team window",
        false,
        STEP_MS,
      );
    } finally {
      carol.child.kill("SIGTERM");
      await carol.finish().catch(() => {});
      await tmux.kill();
      await server.shutdown();
      await Deno.remove(home, { recursive: true }).catch(() => {});
    }
  },
});
