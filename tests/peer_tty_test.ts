/**
 * `chat peer` in a real pseudo-terminal (tmux, as `connect_tty_test.ts` drives
 * `chat connect`): the same line editor. Alice dials bob (a listener in the test), gets an
 * `@bob>` prompt, completes a command and bob's nick with Tab, types a line long enough to
 * wrap and moves the cursor into it; bob's messages (one full of escape sequences) print
 * above it, neutralised, with the bell, and her line stays intact. What she sends is
 * exactly what she typed, shown once, with its time and her nick; Up recalls it.
 *
 * Skipped, with a message, when tmux is not installed.
 */

import assert from "node:assert/strict";
import type { PeerEvent, PeerSession } from "../peer/session.ts";
import { listening } from "./helpers/peer_listener.ts";
import { q, TMUX, Tmux, WAIT_MS } from "./helpers/tmux.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const ROOT = new URL("../", import.meta.url).pathname;
const COLUMNS = 60;
const ROWS = 40;

/** The rows `text` takes from column 0 (ASCII only), as `capture-pane` shows them. */
function rowsOf(text: string): string[] {
  const rows: string[] = [];
  for (let at = 0; at < text.length; at += COLUMNS) {
    rows.push(text.slice(at, at + COLUMNS).trimEnd());
  }
  return rows;
}

/** Collects a session's events, and waits for one. */
function recorder(session: PeerSession) {
  const events: PeerEvent[] = [];
  const done = (async () => {
    for await (const event of session) events.push(event);
  })().catch(() => {});
  return {
    done,
    async waitFor(test: (event: PeerEvent) => boolean, what: string): Promise<PeerEvent> {
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

Deno.test({
  name: "chat peer in a terminal: a prompt, messages above the line being typed, history",
  ignore: !TMUX,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "chat_peer_tty_" });
    const tmux = new Tmux();
    let bob: PeerSession | null = null;
    const listener = await listening("bob");
    try {
      const command = `while [ ! -e ${q(`${dir}/go`)} ]; do sleep 0.02; done; ` +
        `cd ${q(ROOT)} && env -u NO_COLOR ${q(Deno.execPath())} run -A ${q(MAIN)} peer ` +
        `--connect 127.0.0.1:${listener.port} --nick alice; echo "[exit $?]"`;
      await tmux.start("alice", command, { columns: COLUMNS, rows: ROWS, keepPane: true });
      const rawFile = `${dir}/alice.raw`;
      await tmux.run("pipe-pane", "-t", "t:alice", "-o", `cat >> ${q(rawFile)}`);
      await Deno.writeTextFile(`${dir}/go`, "");

      bob = await listener.session;
      const events = recorder(bob);
      const ready = await tmux.waitScreen("alice", (rows) => rows.at(-1) === "@bob>", "the prompt");
      assert.ok(ready.some((row) => row.startsWith("Compare with your peer: ")), ready.join("\n"));

      // Tab completes a command, then bob's nick.
      await tmux.type("alice", "/se");
      await tmux.press("alice", "Tab");
      await tmux.waitScreen("alice", (rows) => rows.at(-1) === "@bob> /send", "/send completed");
      await tmux.press("alice", "C-u");
      await tmux.type("alice", "hi @b");
      await tmux.press("alice", "Tab");
      await tmux.waitScreen("alice", (rows) => rows.at(-1) === "@bob> hi @bob", "bob completed");
      await tmux.press("alice", "C-u");
      await tmux.waitScreen("alice", (rows) => rows.at(-1) === "@bob>", "an empty line");

      // A line wrapping over three rows, the cursor moved back into it.
      const line = "The quick brown fox jumps over the lazy dog, twice: " +
        "the quick brown fox jumps over the lazy dog. And then it rests a bit";
      const back = 40;
      await tmux.type("alice", line);
      await tmux.press("alice", ...Array(back).fill("Left"));
      const typing = rowsOf(`@bob> ${line}`);
      assert.equal(typing.length, 3);
      await tmux.waitScreen(
        "alice",
        (rows) => rows.slice(-3).join("\n") === typing.join("\n"),
        "the typed line",
        false,
      );

      // Bob's messages arrive above it, one full of escape sequences.
      const evil =
        "evil \x1b]0;pwned\x07\x1b[2J\x1b[H\x1b[41mRED\x1b[0m \x1b[1A\r\x1b[Kfake\b\x07end";
      await bob.sendText("hello alice");
      await bob.sendText(evil);
      const shown = await tmux.waitScreen(
        "alice",
        (rows) => rows.some((row) => row.endsWith("<bob> evil RED ␍fake␈␇end")),
        "bob's messages",
        false,
      );
      assert.deepEqual(shown.slice(-3), typing, shown.join("\n"));
      const bobRows = shown.filter((row) => /^\d\d:\d\d <bob> /.test(row));
      assert.deepEqual(bobRows.map((row) => row.slice(6)), [
        "<bob> hello alice",
        "<bob> evil RED ␍fake␈␇end",
      ]);

      // Typing goes on where the cursor was; what is sent is exactly what was typed, and it
      // shows once, with its time and nick.
      await tmux.type("alice", "[quick!] ");
      const edited = line.slice(0, line.length - back) + "[quick!] " + line.slice(-back);
      await tmux.press("alice", "Enter");
      const sent = await events.waitFor((e) => e.type === "text", "alice's line at bob");
      assert.equal(sent.type === "text" && sent.text, edited);
      const after = await tmux.waitScreen(
        "alice",
        (rows) => rows.some((row) => /^\d\d:\d\d <alice> The quick/.test(row)),
        "alice's own line",
      );
      assert.equal(after.at(-1), "@bob>", after.join("\n"));
      assert.equal(after.filter((row) => row.includes("The quick")).length, 1, after.join("\n"));
      assert.ok(
        after.some((row) => /^\d\d:\d\d <alice> /.test(row) && row.endsWith(edited)),
        JSON.stringify(after),
      );

      // Up recalls it (no ^[[A), /help answers locally, /quit says goodbye.
      await tmux.press("alice", "Up");
      await tmux.waitScreen(
        "alice",
        (rows) => rows.join("").endsWith(`@bob> ${edited}`),
        "the line recalled",
      );
      await tmux.press("alice", "C-u");
      await tmux.type("alice", "/help");
      await tmux.press("alice", "Enter");
      await tmux.waitScreen(
        "alice",
        (rows) => rows.some((row) => row.startsWith("  /send PATH")),
        "the help",
      );
      await tmux.type("alice", "/quit");
      await tmux.press("alice", "Enter");
      const end = await tmux.waitScreen(
        "alice",
        (rows) => rows.some((row) => row.startsWith("[exit ")),
        "alice's exit",
      );
      assert.ok(end.includes("[exit 0]"), end.join("\n"));
      await events.waitFor((e) => e.type === "left", "alice's goodbye");
      assert.ok(!end.join("\n").includes("^[["), end.join("\n"));

      // The bell rang once per message of bob's; none of bob's sequences got through.
      const raw = await Deno.readTextFile(rawFile);
      assert.equal(raw.split("\x07").length - 1, 2, JSON.stringify(raw));
      for (const sequence of ["\x1b]0;", "\x1b[2J", "\x1b[H", "\x1b[41m", "\x1b[Kfake", "\b"]) {
        assert.ok(!raw.includes(sequence), `${JSON.stringify(sequence)} got through`);
      }
      assert.ok(!raw.includes("pwned\x07"));
    } finally {
      listener.stop.abort();
      await bob?.close().catch(() => {});
      await tmux.kill();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
