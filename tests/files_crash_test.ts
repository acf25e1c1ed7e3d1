/**
 * An upload cut by a crash of the server carries on and completes. The server (its own
 * process, `tests/helpers/server_process.ts`) kills itself with SIGKILL at a chosen point
 * (`CHAT_TEST_KILL_AT`): as it marks an upload's bytes complete, before (the `.part`
 * file holds every byte) or after (the bytes are complete, the record does not say
 * "uploaded" yet), once a chunk is written (before its acknowledgement), or once the
 * upload is recorded complete (before the last chunk's acknowledgement). It is started
 * again on the same data (held files in the data folder, or in PostgreSQL as a cluster
 * node keeps them). The sender either carries on over its reconnected client (which
 * resends its chunks in flight, the last one with the SHA-256) or is a new process
 * offering the file again. Either way the server ends up holding the file complete, with
 * its SHA-256, without the sender starting over, and the recipient receives it and
 * checks it. The browser page's upload (web/file_transfer.ts, run in Deno) is cut the
 * same way.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import type { ChatClient } from "../client/chat_client.ts";
import { type FileClient, FileTransfers } from "../client/file_transfer.ts";
import { decodeFrame } from "../protocol/frame.ts";
import { until } from "./helpers/harness.ts";
import { listDir, sha256Of, writeRandomFile } from "./helpers/files.ts";
import {
  closeAll,
  type Closing,
  connectTo,
  CRASH_WAIT_MS,
  killedItself,
  receiveOne,
} from "./helpers/crashing_server.ts";
import { POSTGRES_SKIP, startPostgres } from "./helpers/postgres.ts";
import { reservePorts } from "./helpers/ports.ts";
import { type Spawned, spawnScript } from "./helpers/process.ts";
import { asPage, page } from "./helpers/web_page.ts";

const serverScript = new URL("./helpers/server_process.ts", import.meta.url);
const pg = POSTGRES_SKIP === null ? await startPostgres() : null;
if (pg === null) console.log(`files_crash_test: the PostgreSQL cases skip: ${POSTGRES_SKIP}`);

const MiB = 1024 * 1024;

/** A client for file transfers that counts the file bytes it uploads. */
class CountingClient {
  readonly client: ChatClient;
  sentBytes = 0;

  constructor(client: ChatClient) {
    this.client = client;
  }

  get nick(): string {
    return this.client.nick;
  }

  readonly request: FileClient["request"] = ((type, fields, options) => {
    const frame = options?.frame;
    if (type === "file_chunk" && frame !== undefined) {
      this.sentBytes += decodeFrame(frame).body.length;
    }
    return this.client.request(type, fields, options);
  }) as FileClient["request"];

  onEvent: FileClient["onEvent"] = (listener) => this.client.onEvent(listener);
  onFileData: FileClient["onFileData"] = (listener) => this.client.onFileData(listener);
}

interface Case {
  /** Where the server holds files: its data folder, or PostgreSQL. */
  files: "disk" | "postgres";
  /**
   * When it dies (`CHAT_TEST_KILL_AT`): before or after marking the bytes complete,
   * once the third chunk is written (before its acknowledgement), or once the upload is
   * recorded complete (before the last chunk's acknowledgement).
   */
  at: "complete:before" | "complete:after" | "chunk:3" | "uploaded";
  /** How the sender goes on: its client reconnects and resends, or a new one offers again. */
  sender: "resends" | "offers again";
}

async function uploadCut({ files, at, sender }: Case): Promise<void> {
  const dataDir = await Deno.makeTempDir({ prefix: "chat-upload-crash-" });
  const tmp = await Deno.makeTempDir();
  const env: Record<string, string> = files === "postgres"
    ? { CHAT_TEST_FILES_POSTGRES: await pg!.createDatabase() }
    : {};
  // Reserved against the other test files, so that the restart below can have it again
  // (a port of the ephemeral range could be taken by any connection meanwhile).
  using reserved = reservePorts();
  const port = reserved.port;
  let server: Spawned<{ port: number }> = await spawnScript(serverScript, [dataDir, String(port)], {
    ...env,
    CHAT_TEST_KILL_AT: at,
  });
  const closing: Closing = [];
  const connect = (nick: string, reconnect: boolean) => connectTo(port, nick, reconnect, closing);
  try {
    await (await connect("bob", false)).close();
    const path = join(tmp, "report.bin");
    const size = 3 * MiB + 12_345;
    const sha = await writeRandomFile(path, size, 21);

    const first = new CountingClient(await connect("alice", sender === "resends"));
    const alice = new FileTransfers(first, { onEvent: () => {} });
    closing.push(alice);
    const sending = alice.send("bob", path);
    sending.catch(() => {});
    // The server dies at its point of the upload.
    await killedItself(server.child);
    if (files === "disk") {
      const folder = join(dataDir, "files");
      const held = (await listDir(folder)).filter((n) => /^\d+\.(part|file)$/.test(n));
      assert.deepEqual(held.map((n) => n.replace(/^\d+/, "")), [
        at === "complete:after" || at === "uploaded" ? ".file" : ".part",
      ]);
      const bytes = (await Deno.stat(join(folder, held[0]))).size;
      if (at === "chunk:3") assert.ok(bytes > 0 && bytes < size, `${bytes} bytes held`);
      else assert.equal(bytes, size);
    }
    server = await spawnScript(serverScript, [dataDir, String(port)], env);

    let sent = first.sentBytes;
    if (sender === "resends") {
      await sending;
      sent = first.sentBytes;
    } else {
      await assert.rejects(sending);
      const again = new CountingClient(await connect("alice", false));
      const alice2 = new FileTransfers(again, { onEvent: () => {} });
      closing.push(alice2);
      await alice2.send("bob", path);
      sent += again.sentBytes;
    }
    // Resumed at its end, not started over: at most the window in flight went twice.
    assert.ok(sent < size + 2 * MiB + 1, `sent ${sent} bytes for a ${size}-byte file`);

    // The server holds the whole file: its SHA-256, given with the last chunk, is known.
    const bobClient = await connect("bob", false);
    const listed = await bobClient.request("file_list", {});
    assert.deepEqual(
      listed.files.map((f) => ({ file: f.file, sha256: f.sha256 })),
      [{ file: listed.files[0]?.file, sha256: sha }],
    );
    const saved = await receiveOne(bobClient, join(tmp, "dl"), closing);
    assert.equal(saved.type, "file_saved", JSON.stringify(saved));
    assert.equal(saved.type === "file_saved" && await sha256Of(saved.path), sha);
  } finally {
    await closeAll(closing, server.child);
    await Deno.remove(dataDir, { recursive: true });
    await Deno.remove(tmp, { recursive: true });
  }
}

const CASES: Case[] = [
  { files: "disk", at: "complete:before", sender: "resends" },
  { files: "disk", at: "complete:after", sender: "resends" },
  { files: "disk", at: "complete:before", sender: "offers again" },
  { files: "disk", at: "complete:after", sender: "offers again" },
  { files: "postgres", at: "complete:before", sender: "resends" },
  { files: "postgres", at: "complete:after", sender: "offers again" },
  { files: "disk", at: "chunk:3", sender: "resends" },
  { files: "postgres", at: "chunk:3", sender: "offers again" },
  { files: "disk", at: "uploaded", sender: "resends" },
  { files: "postgres", at: "uploaded", sender: "offers again" },
];

const WHEN: Record<Case["at"], string> = {
  "complete:before": "before an upload's bytes are marked complete",
  "complete:after": "after an upload's bytes are marked complete",
  "chunk:3": "after an upload's chunk is written and before its ack",
  uploaded: "after an upload is recorded complete and before its last ack",
};

for (const c of CASES) {
  Deno.test({
    name: `a crash ${WHEN[c.at]} (${
      c.files === "disk" ? "data folder" : "PostgreSQL"
    }): the sender ${c.sender}, the upload carries on and completes, the file is received and checked`,
    ignore: c.files === "postgres" && pg === null,
    fn: () => uploadCut(c),
  });
}

/**
 * The page sends a file; the server dies as it marks its bytes complete and comes back;
 * the page carries on (its socket reconnects and resends the chunks in flight), or goes
 * (a reload) and a new page sends the same file again (offered with its SHA-256).
 */
async function pageUploadCut(sender: "resends" | "offers again"): Promise<void> {
  const dataDir = await Deno.makeTempDir({ prefix: "chat-upload-crash-" });
  const tmp = await Deno.makeTempDir();
  // Reserved against the other test files, so that the restart below can have them again.
  using reserved = reservePorts(2);
  const [port, webPort] = reserved.ports;
  let server: Spawned<{ port: number; webPort: number }> = await spawnScript(
    serverScript,
    [dataDir, String(port)],
    { CHAT_TEST_WEB_PORT: String(webPort), CHAT_TEST_KILL_AT: "complete:before" },
  );
  const closing: Closing = [];
  const connect = (nick: string) => connectTo(port, nick, false, closing);
  try {
    await (await connect("bob")).close();
    const path = join(tmp, "from-page.bin");
    const sha = await writeRandomFile(path, 3 * MiB + 7, 22);
    const file = new File([await Deno.readFile(path)], "from-page.bin");
    await asPage(webPort, async () => {
      let alice = await page(webPort, "alice");
      closing.push(alice.chat);
      const sending = alice.files.send("bob", file);
      await killedItself(server.child);
      if (sender === "offers again") {
        alice.chat.close();
        assert.equal((await sending).state, "failed");
      }
      server = await spawnScript(serverScript, [dataDir, String(port)], {
        CHAT_TEST_WEB_PORT: String(webPort),
      });
      if (sender === "offers again") {
        alice = await page(webPort, "alice");
        closing.push(alice.chat);
      }
      const sent = sender === "resends" ? await sending : await alice.files.send("bob", file);
      assert.equal(sent.state, "uploaded", JSON.stringify(sent.error));

      const bobClient = await connect("bob");
      const saved = await receiveOne(bobClient, join(tmp, "dl"), closing);
      assert.equal(saved.type === "file_saved" && await sha256Of(saved.path), sha);
      // Received, the file is dropped (a file not recorded complete is kept: offered
      // again at every login) and its sender told.
      assert.deepEqual((await bobClient.request("file_list", {})).files, []);
      await until(
        () => alice.changes.find((t) => t.file === sent.file && t.state === "delivered"),
        "the page told the file arrived",
        CRASH_WAIT_MS,
      );
    });
  } finally {
    await closeAll(closing, server.child);
    await Deno.remove(dataDir, { recursive: true });
    await Deno.remove(tmp, { recursive: true });
  }
}

for (const sender of ["resends", "offers again"] as const) {
  Deno.test({
    name: `a crash before an upload's bytes are marked complete: the page ${
      sender === "resends" ? "resends its last chunks" : "is reloaded and offers the file again"
    }; the file is completed, received, and the page told`,
    sanitizeResources: false,
    sanitizeOps: false,
    fn: () => pageUploadCut(sender),
  });
}
