/**
 * A bot's read loop (`chat connect --follow --json`, stdin empty) through two server
 * restarts on the same SQLite data folder and port, one graceful (SIGTERM) and one a
 * crash (SIGKILL): what another client sent while the bot was away arrives exactly
 * once after the reconnect, and nothing is lost or shown twice.
 *
 * The bot reaches the server through a gate the test can hold shut, so that the
 * messages are sent while it is certainly not connected (not merely probably).
 */

import assert from "node:assert/strict";
import { ChatClient } from "../client/chat_client.ts";
import { ConnectProcess, type Json, PASSWORD } from "./helpers/connect_process.ts";
import { reservePorts } from "./helpers/ports.ts";
import { type Spawned, spawnScript } from "./helpers/process.ts";

const SERVER = new URL("./helpers/server_process.ts", import.meta.url);

/** A TCP forwarder on 127.0.0.1 that can hold new connections until released. */
class Gate {
  readonly port: number;
  readonly #listener: Deno.Listener;
  readonly #target: number;
  #open: Promise<void> = Promise.resolve();
  #release: () => void = () => {};
  readonly #tasks = new Set<Promise<void>>();
  readonly #conns = new Set<Deno.Conn>();
  readonly #accepting: Promise<void>;

  constructor(target: number) {
    this.#target = target;
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.#listener = listener;
    this.port = (listener.addr as Deno.NetAddr).port;
    this.#accepting = (async () => {
      try {
        for await (const inbound of listener) {
          const task = this.#forward(inbound);
          this.#tasks.add(task);
          task.finally(() => this.#tasks.delete(task));
        }
      } catch {
        // closed
      }
    })();
  }

  /** Connections accepted from now on wait (their bytes buffered) until {@linkcode release}. */
  hold(): void {
    this.#open = new Promise((resolve) => this.#release = resolve);
  }

  /** Lets waiting and new connections through to the target. */
  release(): void {
    this.#release();
  }

  async #forward(inbound: Deno.Conn): Promise<void> {
    this.#conns.add(inbound);
    await this.#open;
    let outbound: Deno.Conn;
    try {
      outbound = await Deno.connect({ hostname: "127.0.0.1", port: this.#target });
    } catch {
      this.#drop(inbound);
      return;
    }
    this.#conns.add(outbound);
    const pipe = async (from: Deno.Conn, to: Deno.Conn) => {
      try {
        await from.readable.pipeTo(to.writable, { preventClose: true });
      } catch {
        // reset
      }
      this.#drop(from);
      this.#drop(to);
    };
    await Promise.all([pipe(inbound, outbound), pipe(outbound, inbound)]);
  }

  #drop(conn: Deno.Conn): void {
    if (!this.#conns.delete(conn)) return;
    try {
      conn.close();
    } catch {
      // already closed
    }
  }

  async close(): Promise<void> {
    this.#listener.close();
    this.release();
    for (const conn of [...this.#conns]) this.#drop(conn);
    await this.#accepting;
    await Promise.all([...this.#tasks]);
  }
}

/** Starts the server process on `port` (0: any) with its data in `dataDir`. */
function startServer(dataDir: string, port: number): Promise<Spawned<{ port: number }>> {
  return spawnScript<{ port: number }>(SERVER, [dataDir, String(port)]);
}

async function stopServer(server: Spawned<unknown>, signal: "SIGTERM" | "SIGKILL"): Promise<void> {
  try {
    server.child.kill(signal);
  } catch {
    // already gone
  }
  await server.child.status;
}

async function bobOn(port: number): Promise<ChatClient> {
  const bob = await ChatClient.connect({ port, nick: "bob", password: PASSWORD, reconnect: false });
  await bob.join("lobby");
  return bob;
}

Deno.test({
  name: "--follow --json rides out server restarts: what was sent meanwhile arrives once",
  ignore: Deno.build.os === "windows", // signals
  async fn() {
    const dataDir = await Deno.makeTempDir({ prefix: "chat_reconnect_" });
    // Reserved against the other test files, so that the restarts below can have it again.
    using reserved = reservePorts();
    const port = reserved.port;
    let server = await startServer(dataDir, port);
    const gate = new Gate(port);
    let bot: ConnectProcess | null = null;
    let bob: ChatClient | null = null;
    const sent: { id: number; text: string }[] = [];
    const say = async (text: string) => {
      sent.push({ id: (await bob!.say("lobby", text)).msg.id, text });
    };
    const texts = (lines: Json[]) =>
      lines.filter((l) => l.type === "msg" || l.type === "dm").map((l) => l.text);
    try {
      bob = await bobOn(port);
      bot = new ConnectProcess(gate.port, ["--nick", "bot", "--json", "--follow"], "/who\n");
      await bot.waitFor((l) => l.type === "reply" && l.request === "who", "the bot's /who");
      await say("before");
      await bot.waitFor((l) => l.text === "before", "the first message");

      for (const [round, signal] of [[1, "SIGTERM"], [2, "SIGKILL"]] as const) {
        // The bot loses the server and may not reach the new one until the gate opens.
        gate.hold();
        await bob.close();
        await stopServer(server, signal);
        await bot.waitFor(
          () => bot!.json.filter((l) => l.type === "disconnected").length === round,
          `the bot losing the server (round ${round})`,
        );
        server = await startServer(dataDir, port);
        bob = await bobOn(port);
        await say(`missed ${round}a`);
        await say(`missed ${round}b`);
        const dm = await bob.dm("bot", `psst ${round}`);
        assert.equal(dm.delivered, false, "the bot is not connected");
        sent.push({ id: dm.msg.id, text: `psst ${round}` });
        gate.release();
        await bot.waitFor(
          (l) => l.text === `psst ${round}`,
          `the missed messages (round ${round})`,
        );
        await say(`live ${round}`);
        await bot.waitFor((l) => l.text === `live ${round}`, `a live message (round ${round})`);
      }

      bot.child.kill("SIGTERM");
      assert.equal(await bot.finish(), 0, bot.stderr);
      const received = bot.json.filter((l) => l.type === "msg" || l.type === "dm");
      assert.deepEqual(
        received.map((l) => [l.id, l.text]),
        sent.map((m) => [m.id, m.text]),
        `each message once, in order: ${JSON.stringify(texts(bot.json))}`,
      );
      assert.equal(bot.json.filter((l) => l.type === "reconnected").length, 2);
      assert.ok(bot.json.some((l) => l.type === "notice" && l.code === "shutdown"));
    } finally {
      await bob?.close();
      if (bot !== null) {
        try {
          bot.child.kill("SIGKILL");
        } catch {
          // exited already
        }
        await bot.finish().catch(() => {});
      }
      await gate.close();
      await stopServer(server, "SIGTERM");
      await Deno.remove(dataDir, { recursive: true });
    }
  },
});
