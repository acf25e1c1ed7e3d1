/**
 * Running out of file descriptors: the server keeps accepting after EMFILE, and
 * `chat serve` fits its connection cap to the descriptor limit. Both run the server in a
 * child process under `prlimit --nofile`.
 */

import assert from "node:assert/strict";
import type { ChatServer } from "../server/server.ts";
import { delay, Probe } from "./helpers/harness.ts";
import { withTempDir } from "./helpers/files.ts";
import { HAS_PRLIMIT, type LimitedProcess, spawnLimited } from "./helpers/limited_process.ts";

/** Enough for the runtime, the database and a few dozen connections, not for the flood. */
const NOFILE = 64;
const FLOOD = 120;

/** What the harness's probes need of a server: its port. */
function at(port: number): ChatServer {
  return { addr: { transport: "tcp", hostname: "127.0.0.1", port } } as unknown as ChatServer;
}

/** Opens `count` TCP connections that say nothing (they wait in the backlog if need be). */
async function flood(port: number, count: number): Promise<Deno.TcpConn[]> {
  const conns: Deno.TcpConn[] = [];
  for (let i = 0; i < count; i++) conns.push(await Deno.connect({ hostname: "127.0.0.1", port }));
  return conns;
}

/** Logs in, trying again while the server is still full, for up to `ms`. */
async function loginEventually(port: number, nick: string, ms = 10_000): Promise<Probe> {
  const deadline = Date.now() + ms;
  while (true) {
    const probe = await Probe.dial(at(port));
    try {
      await probe.hello();
      const reply = await probe.request("login", { nick, password: "password123" });
      assert.equal(reply.type, "ok", JSON.stringify(reply));
      return probe;
    } catch (err) {
      await probe[Symbol.asyncDispose]();
      // Refused: told so, or (many refusals at once) closed without a word.
      const full = probe.ended || probe.received.some((m) => m.code === "too_many_connections");
      if (!full || Date.now() > deadline) throw err;
      await delay(50);
    }
  }
}

/** The good client's side of every scenario: it keeps working, and logins work after. */
async function survives(server: LimitedProcess, port: number, during: RegExp): Promise<void> {
  await using alice = await Probe.login(at(port), "alice");
  const conns = await flood(port, FLOOD);
  try {
    await server.waitFor("stderr", during);
    await alice.ok("ping");
    await alice.ok("say", { room: "lobby", text: "still here" });
  } finally {
    for (const conn of conns) conn.close();
  }
  // Once the flood is gone (the server sees each end), new clients get in again.
  await using bob = await loginEventually(port, "bob");
  await bob.ok("ping");
  assert.equal(server.exited, false, "the server exited");
}

Deno.test({
  name: "descriptors: the accept loop survives EMFILE, backs off and resumes",
  ignore: !HAS_PRLIMIT,
  fn: () =>
    withTempDir(async (dir) => {
      await using server = spawnLimited(NOFILE, "tests/helpers/server_process.ts", [dir], {
        CHAT_TEST_LOG: "warning",
      });
      const port = JSON.parse(await server.waitFor("stdout", /^\{"port"/)).port as number;
      // Before the fix this logged "accept loop failed" and the server drained and exited.
      await survives(server, port, /accept.* failed: .*open files/);
      const status = await server.stop();
      assert.equal(status.code, 0);
    }),
});

Deno.test({
  name: "descriptors: chat serve lowers --max-connections to what the limit holds",
  ignore: !HAS_PRLIMIT,
  fn: () =>
    withTempDir(async (dir) => {
      await using server = spawnLimited(NOFILE + 64, "main.ts", [
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--data",
        dir,
        "--max-connections-per-ip",
        "0",
      ]);
      const warning = await server.waitFor("stderr", /file descriptors are free/);
      assert.match(warning, /--max-connections 10000 lowered to \d+/);
      const port = Number(
        (await server.waitFor("stdout", /listening on 127\.0\.0\.1:\d+/)).match(/:(\d+)/)![1],
      );
      await survives(server, port, /refusing a connection from .*the server is full/);
      assert.equal(
        server.lines.stderr.find((line) => /accepting a connection failed/.test(line)),
        undefined,
        "the cap should leave descriptors to accept and refuse with",
      );
      const status = await server.stop();
      assert.equal(status.code, 0);
    }),
});

Deno.test({
  name: "descriptors: chat serve refuses to start when the limit leaves no room",
  ignore: !HAS_PRLIMIT,
  fn: () =>
    withTempDir(async (dir) => {
      await using server = spawnLimited(40, "main.ts", [
        "serve",
        "--port",
        "0",
        "--data",
        dir,
      ]);
      await server.waitFor("stderr", /too few to serve connections; raise it/);
      const status = await server.child.status;
      assert.equal(status.code, 1);
    }),
});
