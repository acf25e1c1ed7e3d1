/**
 * A server whose disk really fills up (issue 13, item 6): on Linux, the server runs on a
 * small tmpfs mounted in a private mount namespace (`unshare -rm`), and the test fills it.
 * Requests that must store something are refused with `storage_full` (not `internal`),
 * the server restarts on the full disk and serves what it holds, every message it
 * acknowledged is still there, and it stores again once space is freed.
 *
 * Skipped where `unshare` cannot make a mount namespace (other systems, containers
 * without the privilege).
 */

import assert from "node:assert/strict";
import { Probe, type Received } from "./helpers/harness.ts";
import type { ChatServer } from "../server/server.ts";
import { lineReader } from "../tools/lines.ts";

const HELPER = new URL("./helpers/full_disk_server.ts", import.meta.url).pathname;

/** Whether this machine lets the test mount a tmpfs in a mount namespace of its own. */
function canMountTmpfs(): boolean {
  if (Deno.build.os !== "linux") return false;
  const dir = Deno.makeTempDirSync();
  try {
    const script = 'mount -t tmpfs -o size=1m tmpfs "$1"';
    return new Deno.Command("unshare", {
      args: ["-rm", "sh", "-c", script, "sh", dir],
      stderr: "null",
      stdout: "null",
    }).outputSync().success;
  } catch {
    return false;
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

/** The helper server in its namespace, driven line by line. */
class FullDiskServer implements AsyncDisposable {
  readonly #child: Deno.ChildProcess;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #next: () => Promise<string | null>;

  constructor(dir: string) {
    // The tmpfs is mounted over `dir` in the child's own mount namespace only.
    const script = 'mount -t tmpfs -o size=6m tmpfs "$1" && exec "$2" run -A "$3" "$1"';
    this.#child = new Deno.Command("unshare", {
      args: ["-rm", "sh", "-c", script, "sh", dir, Deno.execPath(), HELPER],
      stdin: "piped",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    this.#writer = this.#child.stdin.getWriter();
    this.#next = lineReader(this.#child.stdout);
  }

  /** The next JSON line the helper prints. */
  async answer(): Promise<Record<string, unknown>> {
    const line = await this.#next();
    assert.ok(line !== null, "the full-disk server exited");
    return JSON.parse(line);
  }

  async command(line: string): Promise<Record<string, unknown>> {
    await this.#writer.write(new TextEncoder().encode(`${line}\n`));
    return await this.answer();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.#writer.close().catch(() => {});
    await this.#child.status;
  }
}

function target(port: number): ChatServer {
  return { addr: { port } } as ChatServer;
}

/** Every lobby message `probe` can sync from the start. */
async function lobbyTexts(probe: Probe): Promise<string[]> {
  const texts: string[] = [];
  let after = 0;
  for (;;) {
    const page = await probe.ok("sync", { after, limit: 500 });
    const messages = page.messages as { id: number; room?: string; text: string }[];
    for (const m of messages) if (m.room !== undefined) texts.push(m.text);
    if (messages.length > 0) after = messages[messages.length - 1].id;
    if (!page.more) return texts;
  }
}

Deno.test({
  name: "full disk: storage_full, not internal; restarts and serves; nothing acknowledged lost",
  ignore: !canMountTmpfs(),
  fn: async () => {
    const dir = await Deno.makeTempDir();
    try {
      await using helper = new FullDiskServer(dir);
      const first = await helper.answer();
      assert.equal(typeof first.port, "number", JSON.stringify(first));
      const acknowledged: string[] = [];
      {
        await using alice = await Probe.login(target(first.port as number), "alice");
        await using _bob = await Probe.login(target(first.port as number), "bob");
        await alice.ok("say", { room: "lobby", text: "before the disk fills" });
        acknowledged.push("before the disk fills");

        const filled = await helper.command("fill");
        assert.ok((filled.full as number) > 0, JSON.stringify(filled));
        // Messages go on while the database has room, then are refused clearly.
        let refused: Received | undefined;
        for (let i = 0; i < 2000 && refused === undefined; i++) {
          const text = `${i} `.padEnd(3900, "x");
          const reply = await alice.request("say", { room: "lobby", text });
          if (reply.type === "ok") acknowledged.push(text);
          else refused = reply;
        }
        assert.ok(refused !== undefined, "the disk never filled");
        assert.equal(refused.code, "storage_full", JSON.stringify(refused));
        await alice.fails(
          "file_offer",
          { to: "bob", name: "a.bin", size: 1000, sha256: "a".repeat(64) },
          "storage_full",
        );
      }

      // It starts on the full disk and serves what it holds.
      const again = await helper.command("restart");
      assert.equal(typeof again.port, "number", JSON.stringify(again));
      const server = target(again.port as number);
      {
        await using bob = await Probe.login(server, "bob");
        assert.deepEqual(await lobbyTexts(bob), acknowledged);
        const refused = await bob.request("say", { room: "lobby", text: "still full" });
        assert.equal(refused.code, "storage_full", JSON.stringify(refused));

        // Space comes back: messages are stored again, without a restart.
        await helper.command("free");
        await bob.ok("say", { room: "lobby", text: "space again" });
        acknowledged.push("space again");
      }
      const last = await helper.command("restart");
      await using carol = await Probe.login(target(last.port as number), "carol");
      assert.deepEqual(await lobbyTexts(carol), acknowledged);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
