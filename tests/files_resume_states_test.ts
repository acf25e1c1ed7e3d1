/**
 * An upload resumes whatever its bytes in the data folder look like after a crash. The
 * server (its own process, `tests/helpers/server_process.ts`) kills itself once the third
 * chunk of an upload is written (`CHAT_TEST_KILL_AT=chunk:3`); while it is down the test
 * puts the file's bytes in the state a crash, a full disk or an operator may leave them
 * in (a `.part` file cut in the middle of a chunk, emptied, deleted, longer than the file,
 * a `.file` holding only part of the bytes, a `.gone` leftover beside), then starts the
 * server again. The sender carries on over its reconnected client (resending its chunks
 * in flight) or offers the file again from a new client; either way the upload completes
 * (never an `internal` error) and the recipient receives the file whole.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { FileTransfers } from "../client/file_transfer.ts";
import { listDir, sha256Of, writeRandomFile } from "./helpers/files.ts";
import {
  closeAll,
  type Closing,
  connectTo,
  killedItself,
  receiveOne,
} from "./helpers/crashing_server.ts";
import { reservePorts } from "./helpers/ports.ts";
import { type Spawned, spawnScript } from "./helpers/process.ts";
import { DiskFileBytes } from "../server/disk_file_bytes.ts";
import { SqliteFileStore } from "../server/sqlite_file_store.ts";
import { Probe, type Received, testServer } from "./helpers/harness.ts";
import { createHash } from "node:crypto";

const serverScript = new URL("./helpers/server_process.ts", import.meta.url);
const MiB = 1024 * 1024;

/** What is done to the held bytes of the file (`<id>.part`) while the server is down. */
type State =
  | "cut mid-chunk"
  | "emptied"
  | "deleted"
  | "longer than the file"
  | "renamed .file"
  | "a .file beside"
  | "a .gone beside";

const STATES: Record<State, (folder: string, id: string) => Promise<void>> = {
  "cut mid-chunk": async (folder, id) => {
    const path = join(folder, `${id}.part`);
    const size = (await Deno.stat(path)).size;
    await Deno.truncate(path, size - 1000);
  },
  "emptied": (folder, id) => Deno.truncate(join(folder, `${id}.part`), 0),
  "deleted": (folder, id) => Deno.remove(join(folder, `${id}.part`)),
  "longer than the file": (folder, id) => Deno.truncate(join(folder, `${id}.part`), 4 * MiB),
  // The record says "not uploaded", the folder holds a complete-looking `.file` of part
  // of the bytes.
  "renamed .file": (folder, id) =>
    Deno.rename(join(folder, `${id}.part`), join(folder, `${id}.file`)),
  "a .file beside": (folder, id) =>
    Deno.copyFile(join(folder, `${id}.part`), join(folder, `${id}.file`)),
  "a .gone beside": (folder, id) =>
    Deno.copyFile(join(folder, `${id}.part`), join(folder, `${id}.1.gone`)),
};

async function resumeFrom(state: State, sender: "resends" | "offers again"): Promise<void> {
  const dataDir = await Deno.makeTempDir({ prefix: "chat-resume-state-" });
  const tmp = await Deno.makeTempDir();
  // Reserved against the other test files, so that the restart below can have it again
  // (a port of the ephemeral range could be taken by any connection meanwhile).
  using reserved = reservePorts();
  const port = reserved.port;
  let server: Spawned<{ port: number }> = await spawnScript(serverScript, [dataDir, String(port)], {
    CHAT_TEST_KILL_AT: "chunk:3",
  });
  const closing: Closing = [];
  const connect = (nick: string, reconnect: boolean) => connectTo(port, nick, reconnect, closing);
  try {
    await (await connect("bob", false)).close();
    const path = join(tmp, "report.bin");
    const size = 3 * MiB + 12_345;
    const sha = await writeRandomFile(path, size, 31);
    const alice = new FileTransfers(await connect("alice", sender === "resends"), {
      onEvent: () => {},
    });
    closing.push(alice);
    const sending = alice.send("bob", path);
    sending.catch(() => {});
    await killedItself(server.child);

    const folder = join(dataDir, "files");
    const part = (await listDir(folder)).find((n) => /^\d+\.part$/.test(n));
    assert.ok(part !== undefined, `no .part file in ${await listDir(folder)}`);
    await STATES[state](folder, part.replace(/\.part$/, ""));
    server = await spawnScript(serverScript, [dataDir, String(port)], { CHAT_TEST_LOG: "error" });

    if (sender === "resends") {
      await sending;
    } else {
      await assert.rejects(sending);
      const again = new FileTransfers(await connect("alice", false), { onEvent: () => {} });
      closing.push(again);
      await again.send("bob", path);
    }

    const saved = await receiveOne(await connect("bob", false), join(tmp, "dl"), closing);
    assert.equal(saved.type, "file_saved", JSON.stringify(saved));
    assert.equal(saved.type === "file_saved" && await sha256Of(saved.path), sha);
  } finally {
    await closeAll(closing, server.child);
    await Deno.remove(dataDir, { recursive: true });
    await Deno.remove(tmp, { recursive: true });
  }
}

for (const state of Object.keys(STATES) as State[]) {
  for (const sender of ["resends", "offers again"] as const) {
    Deno.test(`a .part file ${state} after a crash: the sender ${sender}, the upload completes`, () =>
      resumeFrom(state, sender));
  }
}

/** Sends a chunk of file `file` and waits for its reply. */
async function chunk(
  probe: Probe,
  fields: { file: number; offset: number; sha256?: string },
  body: Uint8Array,
): Promise<Received> {
  const id = crypto.randomUUID();
  probe.send({ type: "file_chunk", id, ...fields }, body);
  return await probe.expect((m) => (m.type === "ok" || m.type === "error") && m.re === id);
}

Deno.test("a resent chunk straddling the end of a .part file cut mid-chunk: its new tail is taken", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "chat-straddle-" });
  const filesDir = join(dataDir, "files");
  const content = new Uint8Array(200_000).map((_, i) => (i * 7 + 3) & 0xff);
  const sha256 = createHash("sha256").update(content).digest("hex");
  const start = () => {
    const files = { store: SqliteFileStore.open(filesDir), bytes: new DiskFileBytes(filesDir) };
    return testServer({ dataDir }, { files });
  };
  try {
    await Deno.mkdir(filesDir, { recursive: true });
    let file: number;
    {
      const server = await start();
      try {
        await using alice = await Probe.login(server, "alice");
        await using bob = await Probe.login(server, "bob");
        const fields = { to: "bob", name: "s.bin", size: content.length, key: "3".repeat(64) };
        file = (await alice.ok("file_offer", fields)).file as number;
        await bob.ok("file_accept", { file });
        const first = await chunk(alice, { file, offset: 0 }, content.subarray(0, 100_000));
        assert.equal(first.type, "ok", JSON.stringify(first));
      } finally {
        await server.shutdown();
      }
    }
    // A crash cut the chunk's write short: the .part file ends inside it.
    await Deno.truncate(join(filesDir, `${file}.part`), 60_000);
    const server = await start();
    try {
      await using alice = await Probe.login(server, "alice");
      await using bob = await Probe.login(server, "bob");
      // The sender resends its chunk in flight, which straddles the end of the bytes held.
      const again = await chunk(alice, { file, offset: 0 }, content.subarray(0, 100_000));
      assert.equal(again.type, "ok", JSON.stringify(again));
      assert.equal(again.offset, 100_000);
      const last = await chunk(alice, { file, offset: 100_000, sha256 }, content.subarray(100_000));
      assert.equal(last.type, "ok", JSON.stringify(last));
      assert.equal(last.complete, true);
      const read = await bob.ok("file_read", { file, offset: 0, length: content.length });
      assert.equal(read.sha256, sha256);
      const held = await Deno.readFile(join(filesDir, `${file}.file`));
      assert.equal(createHash("sha256").update(held).digest("hex"), sha256);
    } finally {
      await server.shutdown();
    }
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});
