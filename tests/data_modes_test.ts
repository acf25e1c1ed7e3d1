/**
 * The data folder is private (issue 13, item 8): a new one is created 0700 with its
 * databases and held files 0600 whatever the umask allows, and a folder left readable by
 * others is tightened when `chat serve` starts, which says so in its log.
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import type { ChatServer } from "../server/server.ts";
import { Probe, testServer } from "./helpers/harness.ts";
import { withTempDir } from "./helpers/files.ts";
import { spawnChat } from "./helpers/process.ts";
import { lineReader } from "../tools/lines.ts";

const POSIX = Deno.build.os !== "windows";

async function modeOf(path: string): Promise<string> {
  return `0${((await Deno.stat(path)).mode! & 0o777).toString(8)}`;
}

/** Alice sends bob a small file, uploaded in full and held for him. */
async function holdFile(server: ChatServer): Promise<number> {
  await using alice = await Probe.login(server, "alice");
  await using _bob = await Probe.login(server, "bob");
  const content = new TextEncoder().encode("secret bytes");
  const offer = await alice.ok("file_offer", {
    to: "bob",
    name: "secret.txt",
    size: content.length,
    sha256: createHash("sha256").update(content).digest("hex"),
  });
  const file = offer.file as number;
  alice.send({ type: "file_chunk", id: "c1", file, offset: 0 }, content);
  const reply = await alice.expect((m) => m.re === "c1");
  assert.equal(reply.complete, true, JSON.stringify(reply));
  return file;
}

/** Every path of the data folder that must be private, with its expected mode. */
function privatePaths(data: string, file: number): [string, string][] {
  return [
    [data, "0700"],
    [join(data, "chat.db"), "0600"],
    [join(data, "files"), "0700"],
    [join(data, "files", "files.db"), "0600"],
    [join(data, "files", `${file}.file`), "0600"],
  ];
}

Deno.test({
  name: "data folder: a new one is 0700, chat.db, its WAL and SHM and held files 0600",
  ignore: !POSIX,
  fn: async () => {
    await withTempDir(async (dir) => {
      const data = join(dir, "data");
      const server = await testServer({ dataDir: data });
      try {
        const file = await holdFile(server);
        const paths = privatePaths(data, file);
        // While the server runs, SQLite's -wal and -shm files exist too.
        for (const extra of ["chat.db-wal", "chat.db-shm"]) {
          paths.push([join(data, extra), "0600"]);
        }
        for (const [path, mode] of paths) assert.equal(await modeOf(path), mode, path);
      } finally {
        await server.shutdown();
      }
    });
  },
});

Deno.test({
  name: "data folder: chat serve tightens a 0755/0644 one at start and logs it",
  ignore: !POSIX,
  fn: async () => {
    await withTempDir(async (dir) => {
      const data = join(dir, "data");
      const server = await testServer({ dataDir: data });
      let file: number;
      try {
        file = await holdFile(server);
      } finally {
        await server.shutdown();
      }
      // As an older version under umask 022 left them.
      for (const [path, mode] of privatePaths(data, file)) {
        await Deno.chmod(path, mode === "0700" ? 0o755 : 0o644);
        assert.notEqual(await modeOf(path), mode);
      }
      const child = spawnChat(
        ["serve", "--data", data, "--host", "127.0.0.1", "--port", "0", "--drain-window", "0"],
      );
      child.stdin.close();
      const stderr = new Response(child.stderr).text();
      try {
        const next = lineReader(child.stdout);
        let port = 0;
        for (let line = await next(); line !== null && port === 0; line = await next()) {
          port = Number(/listening on [^ ]+:(\d+)/.exec(line)?.[1] ?? 0);
        }
        assert.ok(port > 0, "chat serve did not start");
        (async () => {
          while (await next() !== null) { /* keep the pipe drained */ }
        })();
        for (const [path, mode] of privatePaths(data, file)) {
          assert.equal(await modeOf(path), mode, path);
        }
        // The server still serves the held file to its recipient.
        const target = { addr: { port } } as Parameters<typeof Probe.login>[0];
        await using bob = await Probe.login(target, "bob");
        const list = await bob.ok("file_list");
        assert.deepEqual((list.files as { file: number }[]).map((f) => f.file), [file]);
      } finally {
        child.kill("SIGTERM");
        await child.status;
      }
      const log = await stderr;
      assert.match(log, /chat\.db was readable by others \(mode 0644\): tightened to 0600/, log);
      assert.match(log, /data was readable by others \(mode 0755\): tightened to 0700/, log);
      assert.match(log, /1 held files in .* were readable by others: tightened to 0600/, log);
    });
  },
});
