/**
 * A file that ended while its sender was away is never uploaded again. The sender's
 * connection (through a proxy the test cuts) drops at a chosen point of its upload: as
 * the server records the upload complete (the last chunk's acknowledgement is lost), or
 * once a chunk is written (before its acknowledgement). While the sender is away, the
 * recipient receives the file (`file_done`) or declines it. The sender's client comes
 * back and resends its chunks in flight: the server remembers how the file ended and
 * says so (the resent chunk of a received file is answered complete, with the
 * `file_completed` the sender missed; one of a declined file is refused `file_gone`,
 * after the `file_declined` it missed), instead of `no_file`, after which the client
 * offered the file again as a new one and the recipient got it twice. Files held in the
 * data folder (SQLite) or in PostgreSQL.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { ChatClient } from "../client/chat_client.ts";
import { ChatError } from "../client/chat_error.ts";
import { FileTransfers } from "../client/file_transfer.ts";
import { fileServiceOf } from "../server/files.ts";
import { openPostgresFiles } from "../server/postgres_files.ts";
import type { ChatServer } from "../server/server.ts";
import type { FileTransferEvent } from "../transport/file_transfer_events.ts";
import { CuttableProxy } from "./helpers/cuttable_proxy.ts";
import { listDir, sha256Of, writeRandomFile } from "./helpers/files.ts";
import { connectClient, testServer, until } from "./helpers/harness.ts";
import { POSTGRES_SKIP, startPostgres } from "./helpers/postgres.ts";

const pg = POSTGRES_SKIP === null ? await startPostgres() : null;
if (pg === null) console.log(`files_gone_test: the PostgreSQL cases skip: ${POSTGRES_SKIP}`);

const MiB = 1024 * 1024;
/** Generous: the machine is shared and loaded. */
const WAIT_MS = 60_000;

interface Case {
  files: "disk" | "postgres";
  /** What the recipient does while the sender is away. */
  end: "received" | "declined";
}

async function endedWhileAway({ files, end }: Case): Promise<void> {
  const tmp = await Deno.makeTempDir({ prefix: "chat-file-gone-" });
  const server: ChatServer = files === "disk"
    ? await testServer({ dataDir: join(tmp, "data") })
    : await testServer({}, {
      files: await openPostgresFiles(await pg!.createDatabase(), { pollMs: 50 }),
    });
  const proxy = new CuttableProxy(server.addr.port);
  const closing: { close(): Promise<void> }[] = [];
  try {
    const service = fileServiceOf(server.hub);
    const store = service.store;
    // The sender's connection drops at its point: as the upload is recorded complete
    // (before the last chunk's acknowledgement), or once its second chunk is written.
    let cut = false;
    if (end === "received") {
      const update = store.update.bind(store);
      store.update = async (id, changes) => {
        const updated = await update(id, changes);
        if (changes.uploaded === true && !cut) {
          cut = true;
          proxy.cut();
        }
        return updated;
      };
    } else {
      const bytes = service.bytes;
      const openWriter = bytes.openWriter.bind(bytes);
      bytes.openWriter = async (id, maxSize) => {
        const writer = await openWriter(id, maxSize);
        const append = writer.append.bind(writer);
        let written = 0;
        writer.append = async (data) => {
          await append(data);
          if (++written === 2 && !cut) {
            cut = true;
            proxy.cut();
          }
        };
        return writer;
      };
    }

    const bobEvents: FileTransferEvent[] = [];
    const bobClient = await connectClient(server, "bob");
    closing.push(bobClient);
    const bob = new FileTransfers(bobClient, {
      ...(end === "received" ? { acceptDir: join(tmp, "in") } : {}),
      onEvent: (e) => bobEvents.push(e),
    });
    closing.push(bob);

    const aliceClient = await ChatClient.connect({
      port: proxy.port,
      nick: "alice",
      password: "password123",
      reconnect: { initialDelayMs: 20, maxDelayMs: 100, maxAttempts: 100_000 },
    });
    closing.push(aliceClient);
    const aliceChat: string[] = [];
    aliceClient.onEvent((e) => aliceChat.push(e.type));
    const aliceEvents: FileTransferEvent[] = [];
    const alice = new FileTransfers(aliceClient, { onEvent: (e) => aliceEvents.push(e) });
    closing.push(alice);

    const path = join(tmp, "report.bin");
    const size = 3 * MiB + 4321;
    const sha = await writeRandomFile(path, size, 31);
    const sending = alice.send("bob", path);
    sending.catch(() => {});
    await until(() => cut || undefined, "alice's connection cut", WAIT_MS);
    const offered = await until(
      () => bobEvents.find((e) => e.type === "file_offered"),
      "the offer",
      WAIT_MS,
    );
    const file = offered.file;

    // While alice is away, bob receives or declines it: the server holds it no more.
    if (end === "received") {
      const saved = await until(
        () => bobEvents.find((e) => e.type === "file_saved" || e.type === "file_failed"),
        "bob's copy",
        WAIT_MS,
      );
      assert.equal(saved.type, "file_saved", JSON.stringify(saved));
      assert.equal(saved.type === "file_saved" && await sha256Of(saved.path), sha);
    } else {
      await bob.decline(file);
    }
    assert.equal(await store.get(file), null);

    // alice comes back and resends its chunks in flight.
    proxy.resume();
    if (end === "received") {
      const sent = await sending;
      assert.equal(sent.file, file);
      await until(
        () => aliceChat.includes("file_completed") || undefined,
        "alice told the file arrived",
        WAIT_MS,
      );
    } else {
      await assert.rejects(sending, (err: unknown) => {
        assert.ok(err instanceof ChatError);
        assert.ok(err.code === "declined" || err.code === "file_gone", err.code);
        return true;
      });
      await until(
        () => aliceChat.includes("file_declined") || undefined,
        "alice told the file was declined",
        WAIT_MS,
      );
    }
    // Not offered again: the server holds nothing, bob was offered one file only.
    assert.deepEqual(await store.held(), { files: 0, bytes: 0 });
    assert.deepEqual((await bob.list()).files, []);
    assert.deepEqual(
      bobEvents.filter((e) => e.type === "file_offered").map((e) => e.file),
      [file],
    );
    if (end === "received") {
      assert.deepEqual(await listDir(join(tmp, "in")), ["report.bin"]);
    }
  } finally {
    for (const c of closing.reverse()) await c.close().catch(() => {});
    await proxy.close();
    await server.shutdown();
    await Deno.remove(tmp, { recursive: true });
  }
}

const CASES: Case[] = [
  { files: "disk", end: "received" },
  { files: "disk", end: "declined" },
  { files: "postgres", end: "received" },
  { files: "postgres", end: "declined" },
];

for (const c of CASES) {
  Deno.test({
    name: `a file ${c.end} while its sender's connection was down (${
      c.files === "disk" ? "data folder" : "PostgreSQL"
    }): the sender's resent chunks learn it, the file is not sent again`,
    ignore: c.files === "postgres" && pg === null,
    fn: () => endedWhileAway(c),
  });
}
