/**
 * `chat connect` in a real pseudo-terminal: tmux runs the client, the test types with
 * `send-keys` and reads the screen with `capture-pane` (and every byte the client wrote
 * with `pipe-pane`).
 *
 * Alice trusts the self-signed server on first use at the prompt, types her password
 * without echo, completes a command and a nick with Tab, then types a line long enough to
 * wrap over three rows and moves the cursor into it. Messages arrive meanwhile, one of them
 * full of escape sequences: they print above her input, neutralised, and her line stays
 * intact on screen and in the editor (what she types next lands where the cursor was, and
 * what is sent is exactly what she typed). The bell rings for the mention and the direct
 * message only; the prompt follows `/query`; Up and Down recall her input. Two more clients
 * run with `--no-color` and `NO_COLOR`: no colour reaches their terminals.
 *
 * Skipped, with a message, when tmux is not installed.
 */

import assert from "node:assert/strict";
import { ChatClient, type ChatEvent } from "../client/chat_client.ts";
import { certificateFingerprint } from "../cli/serve.ts";
import type { ChatServer } from "../server/server.ts";
import { testServer } from "./helpers/harness.ts";
import { PASSWORD } from "./helpers/connect_process.ts";
import { helpText } from "../client/commands.ts";
import { reservePorts } from "./helpers/ports.ts";
import { DEFAULT_SERVER_CONFIG } from "../server/config.ts";
import { selfSignedCert, selfSignedKey } from "./helpers/tls.ts";
import { q, TMUX, Tmux, WAIT_MS, waitFile } from "./helpers/tmux.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const ROOT = new URL("../", import.meta.url).pathname;
const COLUMNS = 60;
const ROWS = 50;

/** Collects a client's events, and waits for one. */
function recorder(client: ChatClient) {
  const events: ChatEvent[] = [];
  const done = (async () => {
    for await (const event of client.events) events.push(event);
  })();
  return {
    done,
    async waitFor(test: (event: ChatEvent) => boolean, what: string): Promise<ChatEvent> {
      const deadline = Date.now() + WAIT_MS;
      while (Date.now() < deadline) {
        const found = events.find(test);
        if (found !== undefined) return found;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      throw new Error(`timed out waiting for ${what}: ${JSON.stringify(events)}`);
    },
  };
}

/**
 * The rows `text` takes from column 0 of a terminal `COLUMNS` wide (ASCII only), without
 * trailing spaces, as `capture-pane` shows them.
 */
function rowsOf(text: string): string[] {
  const rows: string[] = [];
  for (let at = 0; at < text.length; at += COLUMNS) {
    rows.push(text.slice(at, at + COLUMNS).trimEnd());
  }
  return rows;
}

/**
 * The shell command line of a `chat connect` pane: from the repository, with `env`'s
 * settings, then `args`; with `showExit`, the exit status printed at the end.
 */
function connectLine(env: string, args: string, showExit = false): string {
  return `cd ${q(ROOT)} && env ${env} ${q(Deno.execPath())} run -A ${q(MAIN)} connect ${args}` +
    (showExit ? `; echo "[exit $?]"` : "");
}

// deno-lint-ignore no-control-regex
const SGR = /\x1b\[[0-9;]*m/;

Deno.test({
  name: "interactive: messages arrive above a wrapped line being typed, which stays intact",
  ignore: !TMUX,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "chat_tty_" });
    const tmux = new Tmux();
    let server: ChatServer | null = null;
    let bob: ChatClient | null = null;
    let bobEvents: ReturnType<typeof recorder> | null = null;
    try {
      server = await testServer({ tls: { cert: selfSignedCert, key: selfSignedKey } });
      const port = server.addr.port;
      const fingerprint = (await certificateFingerprint(selfSignedCert))!;
      const deno = Deno.execPath();

      // Each pane waits for its go-file, so that pipe-pane records from the first byte, and
      // prints the exit status at the end (tmux's own #{pane_dead_status} is racy).
      const pane = (name: string, env: string, args: string) =>
        `while [ ! -e ${q(`${dir}/go-${name}`)} ]; do sleep 0.02; done; ` +
        `cd ${q(ROOT)} && env ${env} ${q(deno)} run -A ${q(MAIN)} connect ` +
        `--port ${port} ${args}; echo "[exit $?]"`;
      const home = (name: string) => `XDG_CONFIG_HOME=${q(`${dir}/${name}`)}`;
      const pinned = `--trust-fingerprint ${fingerprint}`;
      await tmux.start(
        "alice",
        pane("alice", `-u NO_COLOR -u CHAT_PASSWORD ${home("alice")}`, "--nick alice --tls"),
        { columns: COLUMNS, rows: ROWS, keepPane: true },
      );
      await tmux.run(
        "new-window",
        "-d",
        "-t",
        "t",
        "-n",
        "carol",
        pane(
          "carol",
          `-u NO_COLOR ${home("carol")} CHAT_PASSWORD=${PASSWORD}`,
          `--nick carol ${pinned} --no-color`,
        ),
      );
      await tmux.run(
        "new-window",
        "-d",
        "-t",
        "t",
        "-n",
        "dave",
        pane(
          "dave",
          `NO_COLOR=1 ${home("dave")} CHAT_PASSWORD=${PASSWORD}`,
          `--nick dave ${pinned}`,
        ),
      );
      for (const name of ["alice", "carol", "dave"]) {
        await tmux.run("pipe-pane", "-t", `t:${name}`, "-o", `cat >> ${q(`${dir}/${name}.raw`)}`);
        await Deno.writeTextFile(`${dir}/go-${name}`, "");
      }
      const raw = (name: string) => Deno.readTextFile(`${dir}/${name}.raw`);

      // Trust on first use: the fingerprint is shown and a "yes" remembers it.
      const knownFile = `${dir}/alice/chat/known_servers`;
      const trust = await tmux.waitScreen(
        "alice",
        (rows) => rows.some((row) => row.includes("(yes/no)")),
        "the trust question",
      );
      assert.ok(trust.includes(`  SHA-256 fingerprint: ${fingerprint}`), trust.join("\n"));
      assert.ok(
        trust.at(-1)!.startsWith(`Trust this certificate and remember it in ${knownFile}?`),
        trust.join("\n"),
      );
      await tmux.type("alice", "yes");
      await tmux.press("alice", "Enter");

      // The password prompt echoes nothing. alice has no account yet: the client says so and
      // asks for the new one twice, again when the two differ (issue 14: 9).
      const answer = async (prompt: string, text: string) => {
        await tmux.waitScreen("alice", (rows) => rows.at(-1) === prompt, prompt);
        await tmux.type("alice", text);
        await tmux.press("alice", "Enter");
      };
      await answer("password for alice:", PASSWORD);
      const creating = await tmux.waitScreen(
        "alice",
        (rows) => rows.at(-1) === "choose a password for alice:",
        "the new account's password",
      );
      assert.ok(
        creating.some((row) => /^\* alice has no account on .*: creating it/.test(row)),
        creating.join("\n"),
      );
      await tmux.type("alice", PASSWORD);
      await tmux.press("alice", "Enter");
      await answer("type it again:", "not the same");
      await tmux.waitScreen(
        "alice",
        (rows) =>
          rows.some((row) => row.startsWith("the two passwords differ: try again (2 left)")),
        "the mismatch",
      );
      await answer("choose a password for alice:", PASSWORD);
      await answer("type it again:", PASSWORD);
      const ready = await tmux.waitScreen(
        "alice",
        (rows) => rows.at(-1) === "#lobby>",
        "alice's prompt",
      );
      assert.ok(!ready.join("\n").includes(PASSWORD), "the password is never shown");
      assert.match(await Deno.readTextFile(knownFile), new RegExp(`:${port} ${fingerprint}$`, "m"));
      for (const name of ["carol", "dave"]) {
        await tmux.waitScreen(name, (rows) => rows.at(-1) === "#lobby>", `${name}'s prompt`);
      }

      bob = await ChatClient.connect({
        port,
        nick: "bob",
        password: PASSWORD,
        tls: { fingerprint },
        reconnect: false,
      });
      bobEvents = recorder(bob);
      await tmux.waitScreen(
        "alice",
        (rows) => rows.some((row) => / \* bob is online$/.test(row)),
        "bob's arrival",
      );

      // Tab completes a command, then a nick.
      await tmux.type("alice", "/jo");
      await tmux.press("alice", "Tab");
      await tmux.waitScreen("alice", (rows) => rows.at(-1) === "#lobby> /join", "/join completed");
      await tmux.press("alice", "C-u");
      await tmux.type("alice", "/msg b");
      await tmux.press("alice", "Tab");
      await tmux.waitScreen("alice", (rows) => rows.at(-1) === "#lobby> /msg bob", "bob completed");
      await tmux.press("alice", "C-u");
      await tmux.waitScreen("alice", (rows) => rows.at(-1) === "#lobby>", "an empty line");

      // A line wrapping over three rows, the cursor moved back into its second row.
      const line = "The quick brown fox jumps over the lazy dog, twice: " +
        "the quick brown fox jumps over the lazy dog. And then it rests";
      const back = 40;
      await tmux.type("alice", line);
      await tmux.press("alice", ...Array(back).fill("Left"));
      const typing = rowsOf(`#lobby> ${line}`);
      assert.equal(typing.length, 3);
      await tmux.waitScreen(
        "alice",
        (rows) => rows.slice(-3).join("\n") === typing.join("\n"),
        "the typed line",
        false,
      );

      // Messages arrive: a plain one, one full of escape sequences, a mention, a DM.
      const evil = "evil \x1b]0;pwned\x07\x1b]8;;http://x.test\x07link\x1b]8;;\x07 " +
        "\x1b[2J\x1b[H\x1b[41mRED\x1b[0m \x1b[1A\r\x1b[Kfake\nline \u202eabc\b\x07end";
      await bob.say("lobby", "hello room");
      await bob.say("lobby", evil);
      await bob.say("lobby", "alice: lunch?");
      const dm = await bob.dm("alice", "psst");
      const everything = await tmux.waitScreen(
        "alice",
        (rows) => rows.some((row) => row.endsWith(" *bob* psst")),
        "the direct message",
        false,
      );
      // The input is still there, whole, on the bottom three rows, and only there.
      assert.deepEqual(everything.slice(-3), typing, everything.join("\n"));
      assert.ok(
        !everything.slice(0, -3).some((row) => row.includes("quick")),
        everything.join("\n"),
      );
      const shown = everything.filter((row) => /^\d\d:\d\d \[lobby\] <bob> /.test(row));
      assert.deepEqual(shown.map((row) => row.slice(6)), [
        "[lobby] <bob> hello room",
        "[lobby] <bob> evil link RED ␍fake␊line abc␈␇end",
        "[lobby] <bob> alice: lunch?",
      ]);
      assert.ok(!everything.join("\n").includes("pwned"));
      assert.notEqual(
        (await tmux.run("display", "-p", "-t", "t:alice", "#{pane_title}")).trim(),
        "pwned",
      );

      // Typing goes on where the cursor was; what is sent is exactly what was typed.
      await tmux.type("alice", "[quick!] ");
      const edited = line.slice(0, line.length - back) + "[quick!] " + line.slice(-back);
      await tmux.waitScreen(
        "alice",
        (rows) => rows.slice(-3).join("\n") === rowsOf(`#lobby> ${edited}`).join("\n"),
        "the edited line",
        false,
      );
      await tmux.press("alice", "Enter");
      const mine = await bobEvents.waitFor(
        (e) => e.type === "msg" && e.from === "alice",
        "alice's long line at bob",
      );
      assert.equal((mine as { text: string }).text, edited);
      // Alice saw the direct message: bob gets a read receipt.
      const receipt = await bobEvents.waitFor((e) => e.type === "receipt", "the read receipt");
      assert.deepEqual(
        { id: (receipt as { id: number }).id, status: (receipt as { status: string }).status },
        { id: dm.msg.id, status: "read" },
      );

      // The bell rang for the mention and the direct message, nothing else; no escape
      // sequence of bob's reached the terminal; nicks are coloured.
      const aliceRaw = await raw("alice");
      assert.equal(aliceRaw.split("\x07").length - 1, 2, JSON.stringify(aliceRaw));
      for (
        const sequence of [
          "\x1b]0;",
          "\x1b]8;",
          "\x1b[2J",
          "\x1b[H",
          "\x1b[41m",
          "\x1b[Kfake",
          "\u202e",
          "\b",
        ]
      ) {
        assert.ok(!aliceRaw.includes(sequence), `${JSON.stringify(sequence)} got through`);
      }
      // deno-lint-ignore no-control-regex
      assert.match(aliceRaw, /<\x1b\[(3[1-6]|9[1-6])mbob\x1b\[39m> hello room/);
      // The mention that rang the bell stands out (bold, reversed).
      // deno-lint-ignore no-control-regex
      assert.match(aliceRaw, /> \x1b\[1;7malice: lunch\?\x1b\[22;27m/);

      // The prompt shows the conversation; Up and Down walk the input history.
      await tmux.type("alice", "/query bob");
      await tmux.press("alice", "Enter");
      await tmux.waitScreen("alice", (rows) => rows.at(-1) === "@bob>", "the @bob prompt");
      await tmux.press("alice", "Up");
      await tmux.waitScreen("alice", (rows) => rows.at(-1) === "@bob> /query bob", "history 1");
      await tmux.press("alice", "Up");
      await tmux.waitScreen("alice", (rows) => rows.at(-1) === `@bob> ${edited}`, "history 2");
      await tmux.press("alice", "Down");
      await tmux.waitScreen("alice", (rows) => rows.at(-1) === "@bob> /query bob", "history 3");
      await tmux.press("alice", "C-u");
      await tmux.type("alice", "/quit");
      await tmux.press("alice", "Enter");
      const end = await tmux.waitScreen(
        "alice",
        (rows) => rows.some((row) => row.startsWith("[exit ")),
        "alice's exit",
      );
      assert.ok(end.includes("[exit 0]"), end.join("\n"));

      // --no-color and NO_COLOR: not one colour sequence, the same lines.
      for (const name of ["carol", "dave"]) {
        const text = await waitFile(
          `${dir}/${name}.raw`,
          (t) => t.includes("<bob> alice: lunch?"),
          `bob's messages at ${name}`,
        );
        assert.ok(!SGR.test(text), `${name}: ${JSON.stringify(text)}`);
        assert.ok(text.includes("<bob> evil link RED ␍fake␊line abc␈␇end"), name);
      }
    } finally {
      await bob?.close();
      await bobEvents?.done;
      await tmux.kill();
      await server?.shutdown();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "interactive: a line typed while the server is away shows as pending, then is sent",
  ignore: !TMUX,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "chat_tty_" });
    const tmux = new Tmux();
    // Reserved against the other test files, so that the restart below can have it again.
    using reserved = reservePorts();
    const port = reserved.port;
    let server: ChatServer | null = await testServer({ port, dataDir: `${dir}/data` });
    let bob: ChatClient | null = null;
    try {
      await tmux.start(
        "alice",
        connectLine(
          `NO_COLOR=1 XDG_CONFIG_HOME=${q(`${dir}/alice`)} CHAT_PASSWORD=${PASSWORD}`,
          `--port ${port} --nick alice`,
          true,
        ),
        { columns: COLUMNS, rows: ROWS, keepPane: true },
      );
      await tmux.waitScreen("alice", (rows) => rows.at(-1) === "#lobby>", "alice's prompt");

      await server.shutdown();
      server = null;
      await tmux.waitScreen(
        "alice",
        (rows) => rows.some((row) => row.includes("reconnecting in")),
        "alice losing the server",
      );
      await tmux.type("alice", "typed while away");
      await tmux.press("alice", "Enter");
      // The prompt counts the line as soon as it is typed; the line itself is printed when
      // the client's "held" event comes through its event queue, a moment later: wait for both.
      const pendingLine =
        /^\d\d:\d\d \[lobby\] <alice> typed while away \(pending: sent once reconnected\)$/;
      await tmux.waitScreen(
        "alice",
        (rows) =>
          rows.at(-1) === "[1 pending] #lobby>" && rows.some((row) => pendingLine.test(row)),
        "the pending line, and the pending count in the prompt",
      );

      server = await testServer({ port, dataDir: `${dir}/data` });
      bob = await ChatClient.connect({ port, nick: "bob", password: PASSWORD, reconnect: false });
      const bobEvents = recorder(bob);
      await bob.join("lobby");
      const sent = await tmux.waitScreen(
        "alice",
        (rows) =>
          rows.at(-1) === "#lobby>" &&
          rows.some((row) => /^\d\d:\d\d \[lobby\] <alice> typed while away$/.test(row)),
        "the line sent once reconnected",
      );
      // Reconnecting is normal: marked `*`, not `!`.
      assert.ok(
        sent.some((row) => /^\d\d:\d\d \* reconnected to 127\.0\.0\.1:\d+$/.test(row)),
        sent.join("\n"),
      );
      const got = await bob.history({ room: "lobby" });
      assert.deepEqual(got.messages.map((m) => m.text), ["typed while away"]);
      await bob.close();
      await bobEvents.done;
      bob = null;
    } finally {
      await bob?.close();
      await tmux.kill();
      await server?.shutdown();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "interactive: lines pasted over the rate limit show as pending, then all go, in order",
  ignore: !TMUX,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "chat_tty_" });
    const tmux = new Tmux();
    // The server's default flood limits: bursts of 10 messages, then 5 a second.
    const server = await testServer({
      rateMessagesPerSec: DEFAULT_SERVER_CONFIG.rateMessagesPerSec,
      rateMessagesBurst: DEFAULT_SERVER_CONFIG.rateMessagesBurst,
      rateRequestsPerSec: DEFAULT_SERVER_CONFIG.rateRequestsPerSec,
      rateRequestsBurst: DEFAULT_SERVER_CONFIG.rateRequestsBurst,
    });
    try {
      await tmux.start(
        "alice",
        connectLine(
          `NO_COLOR=1 XDG_CONFIG_HOME=${q(`${dir}/alice`)} CHAT_PASSWORD=${PASSWORD}`,
          `--port ${server.addr.port} --nick alice`,
          true,
        ),
        { columns: COLUMNS, rows: ROWS, keepPane: true },
      );
      await tmux.waitScreen("alice", (rows) => rows.at(-1) === "#lobby>", "alice's prompt");
      const lines = Array.from({ length: 14 }, (_, i) => `paste ${i + 1}`);
      await tmux.type("alice", lines.join("\r") + "\r");
      const pending = await tmux.waitScreen(
        "alice",
        (rows) =>
          rows.some((row) => /<alice> paste \d+ \(pending: sent as the server's rate/.test(row)),
        "a pending line",
      );
      assert.ok(!pending.some((row) => row.includes("slow down")), pending.join("\n"));
      const done = await tmux.waitScreen(
        "alice",
        (rows) => rows.at(-1) === "#lobby>" && rows.some((row) => /<alice> paste 14$/.test(row)),
        "every line sent",
      );
      const sent = done.filter((row) => /<alice> paste \d+$/.test(row)).map((row) =>
        row.replace(/^.*<alice> /, "")
      );
      assert.deepEqual(sent, lines, done.join("\n"));
      const stored = await server.hub.store.history({ room: "lobby", limit: 50 });
      assert.deepEqual(stored.map((m) => m.text), lines);
    } finally {
      await tmux.kill();
      await server.shutdown();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "interactive: a message padded to the terminal's width cannot draw a status line",
  ignore: !TMUX,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "chat_tty_" });
    const tmux = new Tmux();
    let server: ChatServer | null = null;
    let eve: ChatClient | null = null;
    try {
      server = await testServer();
      const port = server.addr.port;
      await tmux.start(
        "alice",
        connectLine(
          `-u NO_COLOR XDG_CONFIG_HOME=${q(dir)} CHAT_PASSWORD=${PASSWORD}`,
          `--port ${port} --nick alice --no-color`,
        ),
        { columns: COLUMNS, rows: ROWS },
      );
      await tmux.waitScreen("alice", (rows) => rows.at(-1) === "#lobby>", "alice's prompt");
      eve = await ChatClient.connect({ port, nick: "eve", password: PASSWORD, reconnect: false });
      // `HH:MM [lobby] <eve> ` is 20 columns: the padding ends the row, and the fake
      // status line would start the next one at the left edge.
      const fake = "12:34 ! server: session expired, type /login PASSWORD";
      await eve.say("lobby", " ".repeat(COLUMNS - 20) + fake);
      const rows = await tmux.waitScreen(
        "alice",
        (rows) => rows.some((row) => row.includes("session expired")),
        "eve's message",
        false,
      );
      assert.ok(
        !rows.some((row) => /^\d\d:\d\d ! /.test(row)),
        `a fake status line:\n${rows.join("\n")}`,
      );
      const continued = rows.find((row) => row.includes("session expired"))!;
      assert.match(continued, /^ +12:34 ! server:/, rows.join("\n"));

      // /help is wrapped to the terminal, at word boundaries under its summary column.
      await tmux.type("alice", "/help");
      await tmux.press("alice", "Enter");
      const expected = helpText(COLUMNS).split("\n").slice(-8);
      const help = await tmux.waitScreen(
        "alice",
        (rows) => rows.some((row) => row.trimEnd() === expected.at(-1)),
        "the end of /help",
        false,
      );
      const trimmed = help.map((row) => row.trimEnd());
      const at = trimmed.indexOf(expected[0]);
      assert.deepEqual(trimmed.slice(at, at + expected.length), expected, help.join("\n"));
    } finally {
      await eve?.close();
      await tmux.kill();
      await server?.shutdown();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "interactive: a wrong password typed at the prompt is asked for again",
  ignore: !TMUX,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "chat_tty_" });
    const tmux = new Tmux();
    let server: ChatServer | null = null;
    try {
      server = await testServer();
      const port = server.addr.port;
      // alice's account exists, with PASSWORD.
      const first = await ChatClient.connect({
        port,
        nick: "alice",
        password: PASSWORD,
        reconnect: false,
      });
      await first.close();
      await tmux.start(
        "alice",
        connectLine(
          `-u NO_COLOR -u CHAT_PASSWORD XDG_CONFIG_HOME=${q(dir)}`,
          `--port ${port} --nick alice --no-color`,
          true,
        ),
        { columns: COLUMNS, rows: ROWS, keepPane: true },
      );
      const asked = (n: number) => (rows: string[]) =>
        rows.filter((row) => row.startsWith("password for alice:")).length === n;
      await tmux.waitScreen("alice", asked(1), "the password prompt");
      await tmux.type("alice", "not-the-password");
      await tmux.press("alice", "Enter");
      const again = await tmux.waitScreen("alice", asked(2), "the prompt again");
      assert.ok(
        again.some((row) => /wrong password for alice .*: try again \(2 left\)/.test(row)),
        again.join("\n"),
      );
      assert.ok(!again.some((row) => row.startsWith("[exit")), again.join("\n"));
      await tmux.type("alice", PASSWORD);
      await tmux.press("alice", "Enter");
      await tmux.waitScreen("alice", (rows) => rows.at(-1) === "#lobby>", "alice's prompt");
      await tmux.type("alice", "/quit");
      await tmux.press("alice", "Enter");
      const end = await tmux.waitScreen(
        "alice",
        (rows) => rows.some((row) => row.startsWith("[exit ")),
        "alice's exit",
      );
      assert.ok(end.includes("[exit 0]"), end.join("\n"));
    } finally {
      await tmux.kill();
      await server?.shutdown();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "interactive: /away marks the prompt; back, it says what was missed",
  ignore: !TMUX,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "chat_tty_" });
    const tmux = new Tmux();
    let server: ChatServer | null = null;
    let bob: ChatClient | null = null;
    try {
      server = await testServer();
      const port = server.addr.port;
      await tmux.start(
        "alice",
        connectLine(
          `-u NO_COLOR XDG_CONFIG_HOME=${q(dir)} CHAT_PASSWORD=${PASSWORD}`,
          `--port ${port} --nick alice --no-color`,
        ),
        { columns: COLUMNS, rows: ROWS },
      );
      await tmux.waitScreen("alice", (rows) => rows.at(-1) === "#lobby>", "alice's prompt");
      await tmux.type("alice", "/away lunch");
      await tmux.press("alice", "Enter");
      await tmux.waitScreen("alice", (rows) => rows.at(-1) === "[away] #lobby>", "the mark");
      bob = await ChatClient.connect({ port, nick: "bob", password: PASSWORD, reconnect: false });
      await bob.dm("alice", "are you there?");
      await tmux.waitScreen(
        "alice",
        (rows) => rows.some((row) => row.endsWith("*bob* are you there?")),
        "bob's message",
      );
      await tmux.type("alice", "/back");
      await tmux.press("alice", "Enter");
      const rows = await tmux.waitScreen(
        "alice",
        (rows) => rows.at(-1) === "#lobby>",
        "back",
      );
      assert.ok(
        rows.includes("* back: while away, 1 direct message (bob)"),
        rows.join("\n"),
      );
    } finally {
      await bob?.close();
      await tmux.kill();
      await server?.shutdown();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "interactive: at login the current room shows its recent lines (issue 14: 13)",
  ignore: !TMUX,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "chat_tty_" });
    const tmux = new Tmux();
    const server = await testServer();
    const port = server.addr.port;
    try {
      // Alice is a member of the lobby already (from her first login): no join is needed.
      await (await ChatClient.connect({
        port,
        nick: "alice",
        password: PASSWORD,
        reconnect: false,
      }))
        .close();
      const bob = await ChatClient.connect({
        port,
        nick: "bob",
        password: PASSWORD,
        reconnect: false,
      });
      await bob.say("lobby", "said while alice was away");
      await bob.close();
      await tmux.start(
        "alice",
        connectLine(
          `NO_COLOR=1 XDG_CONFIG_HOME=${q(`${dir}/alice`)} CHAT_PASSWORD=${PASSWORD}`,
          `--port ${port} --nick alice`,
          true,
        ),
        { columns: COLUMNS, rows: ROWS, keepPane: true },
      );
      const rows = await tmux.waitScreen(
        "alice",
        (rows) => rows.some((row) => row.includes("<bob> said while alice was away")),
        "the lobby's recent line",
      );
      assert.ok(rows.some((row) => row.startsWith("* joined lobby")), rows.join("\n"));
    } finally {
      await tmux.kill();
      await server.shutdown();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "interactive: a line in another room is counted in the prompt, /window shows it",
  ignore: !TMUX,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "chat_tty_" });
    const tmux = new Tmux();
    const server = await testServer();
    const port = server.addr.port;
    let bob: ChatClient | null = null;
    try {
      await tmux.start(
        "alice",
        connectLine(
          `NO_COLOR=1 XDG_CONFIG_HOME=${q(dir)} CHAT_PASSWORD=${PASSWORD}`,
          `--port ${port} --nick alice`,
        ),
        { columns: COLUMNS, rows: ROWS },
      );
      await tmux.waitScreen("alice", (rows) => rows.at(-1) === "#lobby>", "alice's prompt");
      await tmux.type("alice", "/join dev");
      await tmux.press("alice", "Enter");
      await tmux.waitScreen(
        "alice",
        (rows) => rows.at(-1) === "#dev>" && rows.some((row) => row.startsWith("* joined dev")),
        "alice in dev",
      );
      bob = await ChatClient.connect({ port, nick: "bob", password: PASSWORD, reconnect: false });
      await bob.join("lobby");
      await bob.join("dev");
      await bob.say("lobby", "said in the lobby");
      // Said after the lobby's line: once it shows, the lobby's line has arrived.
      await bob.say("dev", "said in dev");
      const counted = await tmux.waitScreen(
        "alice",
        (rows) =>
          rows.at(-1) === "[#lobby 1] #dev>" &&
          rows.some((row) => row.endsWith("<bob> said in dev")),
        "the lobby's unread count",
      );
      assert.ok(
        !counted.some((row) => row.includes("said in the lobby")),
        counted.join("\n"),
      );

      await tmux.type("alice", "/window lobby");
      await tmux.press("alice", "Enter");
      const shown = await tmux.waitScreen(
        "alice",
        (rows) =>
          rows.at(-1) === "#lobby>" && rows.some((row) => row.includes("said in the lobby")),
        "the lobby's view",
      );
      const separator = shown.indexOf("---- #lobby (1 unread) ----");
      assert.ok(separator >= 0, shown.join("\n"));
      assert.ok(
        shown.slice(separator + 1).some((row) =>
          /^\d\d:\d\d \[lobby\] <bob> said in the lobby$/.test(row)
        ),
        shown.join("\n"),
      );

      // Alt+2 switches to the second view (the lobby is the first: joined at login).
      await tmux.press("alice", "M-2");
      await tmux.waitScreen(
        "alice",
        (rows) => rows.at(-1) === "#dev>" && rows.includes("---- #dev ----"),
        "dev's view after Alt+2",
      );
    } finally {
      await bob?.close();
      await tmux.kill();
      await server.shutdown();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
