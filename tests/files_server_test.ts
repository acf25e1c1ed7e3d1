/**
 * File transfers through a real server, spoken frame by frame with the raw probe:
 * offer, upload in chunks, accept, read, done; the refusals (size limit, quota, blocked,
 * someone else's file, bad offsets, missing body); resuming an upload by offering again;
 * reading while the upload goes on; offline hold and `file_list`; expiry.
 */

import assert from "node:assert/strict";
import { concatBytes } from "../protocol/bytes.ts";
import type { ChatServer } from "../server/server.ts";
import { fileServiceOf } from "../server/files.ts";
import { delay, Probe, withServer } from "./helpers/harness.ts";
import { bytesOf, chunkOk, offeredAndAccepted, sha256 } from "./helpers/file_requests.ts";

async function chunkFails(
  probe: Probe,
  file: number,
  offset: number,
  body: Uint8Array | undefined,
  code: string,
): Promise<void> {
  const id = crypto.randomUUID();
  probe.send({ type: "file_chunk", id, file, offset }, body);
  const reply = await probe.expect((m) => (m.type === "ok" || m.type === "error") && m.re === id);
  assert.equal(reply.type, "error", JSON.stringify(reply));
  assert.equal(reply.code, code, JSON.stringify(reply));
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

async function login(server: ChatServer, nick: string): Promise<Probe> {
  return await Probe.login(server, nick);
}

/**
 * The names in the server's file folder once the bytes dropped so far are deleted (that
 * happens in the background after a drop).
 */
async function filesOnDisk(server: ChatServer): Promise<string[]> {
  const service = fileServiceOf(server.hub);
  await service.bytes.freed?.();
  return [...Deno.readDirSync(service.dir)].map((e) => e.name);
}

Deno.test("a file goes through the server: offer, upload, accept, read, done", async () => {
  await withServer(async (server) => {
    await using alice = await login(server, "alice");
    await using bob = await login(server, "bob");
    const content = bytesOf(200_000);
    const offer = await alice.ok("file_offer", {
      to: "bob",
      name: "data.bin",
      size: content.length,
      sha256: sha256(content),
    });
    assert.equal(offer.offset, 0);
    assert.equal(offer.online, true);
    const file = offer.file as number;
    const seen = await bob.expect({ type: "file_offer", file });
    assert.equal(seen.from, "alice");
    assert.equal(seen.name, "data.bin");
    assert.equal(seen.size, content.length);
    assert.equal(seen.sha256, sha256(content));

    // Someone else may not upload into it, nor skip ahead.
    await chunkFails(bob, file, 0, content.subarray(0, 10), "no_file");
    await chunkFails(alice, file, 10, content.subarray(10, 20), "bad_offset");
    await chunkFails(alice, file, 0, undefined, "bad_message");

    let offset = 0;
    for (; offset < 120_000; offset += 60_000) {
      const reply = await chunkOk(alice, file, offset, content.subarray(offset, offset + 60_000));
      assert.equal(reply.offset, offset + 60_000);
      assert.equal(reply.complete, false);
    }
    // A resent chunk is acknowledged again, not appended twice.
    const again = await chunkOk(alice, file, 0, content.subarray(0, 60_000));
    assert.equal(again.offset, 120_000);
    // Offering again resumes: the server says where it stands.
    const resumed = await alice.ok("file_offer", {
      to: "bob",
      name: "data.bin",
      size: content.length,
      sha256: sha256(content),
    });
    assert.equal(resumed.file, file);
    assert.equal(resumed.offset, 120_000);

    await bob.fails("file_read", { file, offset: 0, length: 1000 }, "no_file"); // not accepted
    await bob.ok("file_accept", { file });
    await alice.expect({ type: "file_accepted", file, by: "bob" });

    const last = await chunkOk(alice, file, offset, content.subarray(offset));
    assert.equal(last.complete, true);
    assert.equal(last.offset, content.length);

    const read = await bob.ok("file_read", { file, offset: 150_000, length: 100_000 });
    assert.equal(read.length, 50_000);
    assert.equal(read.available, content.length);
    const data = bob.received.filter((m) => m.type === "file_data" && m.file === file);
    assert.deepEqual(data.map((m) => m.offset), [150_000]);
    await bob.fails("file_read", { file, offset: content.length + 1, length: 1 }, "bad_offset");
    await bob.fails("file_done", { file: file + 1000 }, "no_file");
    await alice.fails("file_accept", { file }, "no_file"); // not offered to alice
    await bob.ok("file_done", { file });
    await alice.expect({ type: "file_completed", file, by: "bob" });
    await bob.fails("file_accept", { file }, "no_file"); // gone
  });
});

Deno.test("the server refuses files over the size limit and past the quota", async () => {
  await withServer(async (server) => {
    await using alice = await login(server, "alice");
    await using _bob = await login(server, "bob");
    const big = await alice.fails("file_offer", {
      to: "bob",
      name: "big.iso",
      size: 1_000_001,
      sha256: "0".repeat(64),
    }, "file_too_large");
    assert.match(String(big.message), /up to 976\.6 KiB/);
    const first = await alice.ok("file_offer", {
      to: "bob",
      name: "a",
      size: 900_000,
      sha256: "1".repeat(64),
    });
    await alice.fails("file_offer", {
      to: "bob",
      name: "b",
      size: 200_000,
      sha256: "2".repeat(64),
    }, "quota_exceeded");
    await alice.fails(
      "file_offer",
      { to: "alice", name: "c", size: 1, sha256: "3".repeat(64) },
      "self",
    );
    await alice.fails("file_offer", {
      to: "nobody",
      name: "c",
      size: 1,
      sha256: "3".repeat(64),
    }, "unknown_user");
    // Withdrawing the first frees the quota.
    await alice.ok("file_cancel", { file: first.file });
    const second = await alice.ok("file_offer", {
      to: "bob",
      name: "b",
      size: 200_000,
      sha256: "2".repeat(64),
    });
    // Nothing of the refused offers is on disk: only the part file of the one held.
    assert.deepEqual(
      await filesOnDisk(server),
      [`${second.file}.part`],
    );
  }, { maxFileSize: 1_000_000, fileQuotaBytes: 1_000_000 });
});

Deno.test("a blocked sender cannot offer; a declined file is dropped", async () => {
  await withServer(async (server) => {
    await using alice = await login(server, "alice");
    await using bob = await login(server, "bob");
    await using carol = await login(server, "carol");
    await bob.ok("block", { nick: "carol" });
    await carol.fails("file_offer", {
      to: "bob",
      name: "x",
      size: 1,
      sha256: "4".repeat(64),
    }, "blocked");
    const content = bytesOf(1000);
    const offer = await alice.ok("file_offer", {
      to: "bob",
      name: "x",
      size: 1000,
      sha256: sha256(content),
    });
    await bob.expect({ type: "file_offer", file: offer.file });
    await bob.ok("file_decline", { file: offer.file });
    await alice.expect({ type: "file_declined", file: offer.file, by: "bob" });
    await chunkFails(alice, offer.file as number, 0, content, "file_gone");
  });
});

Deno.test("a bad upload is caught by its recipient: file_cancel corrupt drops it, the sender hears", async () => {
  await withServer(async (server) => {
    await using alice = await login(server, "alice");
    await using bob = await login(server, "bob");
    const content = bytesOf(5000);
    const offer = await alice.ok("file_offer", {
      to: "bob",
      name: "x",
      size: 5000,
      sha256: sha256(bytesOf(5000, 2)),
    });
    const file = offer.file as number;
    // The server does not hash: it holds the announced size, the recipient checks.
    const last = await chunkOk(alice, file, 0, content);
    assert.equal(last.complete, true);
    await bob.ok("file_accept", { file });
    const read = await bob.ok("file_read", { file, offset: 0, length: 5000 });
    assert.equal(read.length, 5000);
    await bob.ok("file_cancel", { file, reason: "corrupt" });
    await alice.expect({ type: "file_cancelled", file, by: "bob", reason: "corrupt" });
    await bob.fails("file_accept", { file }, "no_file");
    assert.deepEqual(
      await filesOnDisk(server),
      [],
    );
  });
});

Deno.test("an offline recipient finds the file at its next login; it expires after the TTL", async () => {
  await withServer(async (server) => {
    await using alice = await login(server, "alice");
    {
      await using bob = await login(server, "bob");
      await bob.ok("logout");
    }
    const content = bytesOf(3000);
    const offer = await alice.ok("file_offer", {
      to: "bob",
      name: "held.txt",
      size: 3000,
      sha256: sha256(content),
    });
    assert.equal(offer.online, false);
    await chunkOk(alice, offer.file as number, 0, content);
    await using bob = await login(server, "bob");
    const list = await bob.ok("file_list");
    const files = list.files as Record<string, unknown>[];
    assert.equal(files.length, 1);
    assert.equal(files[0].file, offer.file);
    assert.equal(files[0].name, "held.txt");
    assert.equal(files[0].from, "alice");
    // The hub's clock moves past the TTL: the sweep deletes it and tells both sides.
    server.hub.now = () => Date.now() + 3_600_000;
    await fileServiceOf(server.hub).sweep();
    await bob.expect({ type: "file_cancelled", file: offer.file, reason: "expired" }, 3000);
    await alice.expect({ type: "file_cancelled", file: offer.file, reason: "expired" }, 3000);
    assert.deepEqual((await bob.ok("file_list")).files, []);
  }, { fileTtlSec: 60 });
});

Deno.test("the periodic sweep deletes an expired file from disk", async () => {
  await withServer(async (server) => {
    await using alice = await login(server, "alice");
    (await login(server, "bob")).close();
    const content = bytesOf(10);
    const offer = await alice.ok("file_offer", {
      to: "bob",
      name: "x",
      size: 10,
      sha256: sha256(content),
    });
    await chunkOk(alice, offer.file as number, 0, content);
    const dir = fileServiceOf(server.hub).dir;
    assert.ok(await exists(`${dir}/${offer.file}.file`));
    await alice.expect({ type: "file_cancelled", file: offer.file, reason: "expired" }, 5000);
    assert.equal(await exists(`${dir}/${offer.file}.file`), false);
  }, { fileTtlSec: 1 });
});

Deno.test("a read past the bytes uploaded sends them as they arrive", async () => {
  await withServer(async (server) => {
    await using alice = await login(server, "alice");
    await using bob = await login(server, "bob");
    const content = bytesOf(100_000);
    const file = await offeredAndAccepted(alice, bob, "bob", "x", content);
    const id = "read-1";
    bob.send({ type: "file_read", id, file, offset: 0, length: 100_000 });
    await delay(100);
    assert.equal(bob.received.find((m) => m.type === "ok" && m.re === id), undefined);
    await chunkOk(alice, file, 0, content.subarray(0, 40_000));
    const first = await bob.expect({ type: "file_data", file, offset: 0 });
    assert.deepEqual(first.frameBody, content.subarray(0, 40_000));
    await delay(100);
    assert.equal(bob.received.find((m) => m.type === "ok" && m.re === id), undefined);
    await chunkOk(alice, file, 40_000, content.subarray(40_000));
    const second = await bob.expect({ type: "file_data", file, offset: 40_000 });
    assert.deepEqual(second.frameBody, content.subarray(40_000));
    const reply = await bob.expect({ type: "ok", re: id });
    assert.equal(reply.length, 100_000);
    assert.equal(reply.available, 100_000);
  });
});

Deno.test("a reader keeping up is sent the upload's chunks from memory, a late one from disk", async () => {
  await withServer(async (server) => {
    await using alice = await login(server, "alice");
    await using bob = await login(server, "bob");
    await using carol = await login(server, "carol");
    const counters = server.hub.metrics.counters;
    const content = bytesOf(300_000, 7);
    const file = await offeredAndAccepted(alice, bob, "bob", "live", content);
    bob.send({ type: "file_read", id: "live-read", file, offset: 0, length: content.length });
    await delay(50); // the read waits: bob is reading file #file
    for (let at = 0; at < content.length; at += 100_000) {
      await chunkOk(alice, file, at, content.subarray(at, at + 100_000));
    }
    const reply = await bob.expect({ type: "ok", re: "live-read" });
    assert.equal(reply.length, content.length);
    const data = [];
    for (let at = 0; at < content.length; at += 100_000) {
      data.push(
        (await bob.expect({ type: "file_data", file, offset: at })).frameBody as Uint8Array,
      );
    }
    assert.deepEqual(concatBytes(data), content);
    assert.equal(counters.fileBytesStored, content.length);
    assert.equal(counters.fileBytesSentFromMemory, content.length);
    assert.equal(counters.fileBytesSentFromDisk, 0);

    // The same file read again once complete, after bob's reader (parked between his
    // reads, the last chunks kept for it) is closed, comes from disk, and is the same.
    const service = fileServiceOf(server.hub);
    const deadline = performance.now() + 20_000;
    while (service.keptChunks > 0 && performance.now() < deadline) await delay(50);
    assert.equal(service.keptChunks, 0);
    const again = await bob.ok("file_read", { file, offset: 0, length: content.length });
    assert.equal(again.length, content.length);
    assert.equal(counters.fileBytesSentFromDisk, content.length);
    await carol.fails("file_read", { file, offset: 0, length: 1 }, "no_file");
  });
});

Deno.test("an empty file: complete at its offer, read as nothing, done", async () => {
  await withServer(async (server) => {
    await using alice = await login(server, "alice");
    await using bob = await login(server, "bob");
    const empty = sha256(new Uint8Array(0));
    const offer = await alice.ok("file_offer", {
      to: "bob",
      name: "empty",
      size: 0,
      sha256: empty,
    });
    assert.equal(offer.offset, 0);
    const file = offer.file as number;
    await bob.ok("file_accept", { file });
    const read = await bob.ok("file_read", { file, offset: 0, length: 10 });
    assert.equal(read.length, 0);
    assert.equal(read.available, 0);
    await bob.ok("file_done", { file });
    await alice.expect({ type: "file_completed", file });
    assert.deepEqual(
      await filesOnDisk(server),
      [],
    );
    // An empty file whose announced SHA-256 is not the empty one is refused at once.
    await alice.fails("file_offer", {
      to: "bob",
      name: "liar",
      size: 0,
      sha256: "0".repeat(64),
    }, "file_corrupt");
  });
});

Deno.test("an offer by key: the last chunk carries the SHA-256, the read reaching the end brings it", async () => {
  await withServer(async (server) => {
    await using alice = await login(server, "alice");
    await using bob = await login(server, "bob");
    const content = bytesOf(150_000, 9);
    const key = "5".repeat(64);
    const fields = { to: "bob", name: "k.bin", size: content.length, key };
    await alice.fails("file_offer", { to: "bob", name: "k.bin", size: 1 }, "bad_message");
    const offer = await alice.ok("file_offer", fields);
    const file = offer.file as number;
    const seen = await bob.expect({ type: "file_offer", file });
    assert.equal(seen.key, key);
    assert.equal(seen.sha256, undefined, "not known before the last chunk");
    await bob.ok("file_accept", { file });
    await chunkOk(alice, file, 0, content.subarray(0, 100_000));
    // The chunk that completes the upload without the SHA-256 is refused, nothing written.
    await chunkFails(alice, file, 100_000, content.subarray(100_000), "bad_message");
    // A read of every byte waits for the rest, and brings the SHA-256 with them.
    const readId = crypto.randomUUID();
    bob.send({ type: "file_read", id: readId, file, offset: 0, length: content.length });
    const id = crypto.randomUUID();
    alice.send(
      { type: "file_chunk", id, file, offset: 100_000, sha256: sha256(content) },
      content.subarray(100_000),
    );
    const last = await alice.expect((m) => (m.type === "ok" || m.type === "error") && m.re === id);
    assert.equal(last.type, "ok", JSON.stringify(last));
    assert.equal(last.complete, true);
    const read = await bob.expect((m) => m.type === "ok" && m.re === readId);
    assert.equal(read.length, content.length);
    assert.equal(read.sha256, sha256(content));
    // At the end, a read asks for the SHA-256 alone; offers and lists have it now.
    const end = await bob.ok("file_read", { file, offset: content.length, length: 1 });
    assert.equal(end.length, 0);
    assert.equal(end.sha256, sha256(content));
    const listed = await bob.ok("file_list");
    assert.equal((listed.files as { sha256?: string }[])[0].sha256, sha256(content));
    // Offered again by its key: complete.
    const again = await alice.ok("file_offer", fields);
    assert.equal(again.file, file);
    assert.equal(again.offset, content.length);
    assert.equal((await fileServiceOf(server.hub).store.get(file))?.sha256, sha256(content));
    await bob.ok("file_done", { file });
  });
});

Deno.test("an offer that carried its SHA-256 (older clients) refuses a different one with the last chunk", async () => {
  await withServer(async (server) => {
    await using alice = await login(server, "alice");
    await using _bob = await login(server, "bob");
    const content = bytesOf(1000, 4);
    const offer = await alice.ok("file_offer", {
      to: "bob",
      name: "o.bin",
      size: content.length,
      sha256: sha256(content),
    });
    const file = offer.file as number;
    const id = crypto.randomUUID();
    alice.send({ type: "file_chunk", id, file, offset: 0, sha256: "6".repeat(64) }, content);
    const reply = await alice.expect((m) => (m.type === "ok" || m.type === "error") && m.re === id);
    assert.equal(reply.code, "file_corrupt", JSON.stringify(reply));
    const done = await chunkOk(alice, file, 0, content);
    assert.equal(done.complete, true);
    assert.equal((await fileServiceOf(server.hub).store.get(file))?.key, sha256(content));
  });
});

Deno.test("a chunk resent after its file ended: received, it is complete; cancelled or expired, file_gone; a session told the end live is not told it again", async () => {
  await withServer(async (server) => {
    await using alice = await login(server, "alice");
    await using bob = await login(server, "bob");
    await using carol = await login(server, "carol");
    const content = bytesOf(3000);
    // Replies come after any event their handling sends: none of these was told twice.
    const toldAgain = (type: string, file: number) =>
      assert.deepEqual(alice.received.filter((m) => m.type === type && m.file === file), []);
    const offer = async (name: string) =>
      (await alice.ok("file_offer", { to: "bob", name, size: 3000, sha256: sha256(content) }))
        .file as number;
    // Received while alice's last acknowledgement was lost: her resent chunk is answered
    // complete; she was told the file arrived, once (however many chunks she resends).
    const received = await offer("received.bin");
    await chunkOk(alice, received, 0, content);
    await bob.ok("file_accept", { file: received });
    await bob.ok("file_done", { file: received });
    await alice.expect({ type: "file_completed", file: received, by: "bob" });
    const again = await chunkOk(alice, received, 0, content);
    assert.deepEqual([again.offset, again.complete], [3000, true]);
    await chunkOk(alice, received, 0, content);
    toldAgain("file_completed", received);
    await chunkFails(carol, received, 0, content, "no_file"); // not hers
    // Cancelled by bob as it was uploading: file_gone, the cancel told once.
    const cancelled = await offer("cancelled.bin");
    await chunkOk(alice, cancelled, 0, content.subarray(0, 1000));
    await bob.ok("file_cancel", { file: cancelled });
    await alice.expect({ type: "file_cancelled", file: cancelled, reason: "cancelled" });
    await chunkFails(alice, cancelled, 1000, content.subarray(1000), "file_gone");
    toldAgain("file_cancelled", cancelled);
    // Expired and swept while alice was online: her resent chunk gets file_gone, the expiry
    // told once (a session that was away is told it again: tests/files_told_once_test.ts).
    const expired = await offer("expired.bin");
    await chunkOk(alice, expired, 0, content.subarray(0, 1000));
    server.hub.now = () => Date.now() + 3_600_000;
    await fileServiceOf(server.hub).sweep();
    await alice.expect({ type: "file_cancelled", file: expired, reason: "expired" });
    await chunkFails(alice, expired, 1000, content.subarray(1000), "file_gone");
    toldAgain("file_cancelled", expired);
    assert.deepEqual(await fileServiceOf(server.hub).store.held(), { files: 0, bytes: 0 });
    // Remembered one TTL after the end: a sweep past it forgets them.
    server.hub.now = () => Date.now() + 3 * 3_600_000;
    await fileServiceOf(server.hub).sweep();
    assert.equal(await fileServiceOf(server.hub).store.ended(received), null);
    await chunkFails(alice, expired, 1000, content.subarray(1000), "no_file");
  }, { fileTtlSec: 60 });
});

Deno.test("a reader's reads of a file open it once; the file dropped, nothing keeps it open", async () => {
  await withServer(async (server) => {
    await using alice = await login(server, "alice");
    await using bob = await login(server, "bob");
    const service = fileServiceOf(server.hub);
    const bytes = service.bytes;
    const openReader = bytes.openReader.bind(bytes);
    let opens = 0;
    bytes.openReader = (id, complete) => {
      opens++;
      return openReader(id, complete);
    };
    const content = bytesOf(500_000, 5);
    const file = await offeredAndAccepted(alice, bob, "bob", "opened.bin", content);
    await chunkOk(alice, file, 0, content, 30_000);
    // Ten reads one after another: between two of them, no read of the file is under way.
    const data: Uint8Array[] = [];
    for (let at = 0; at < content.length; at += 50_000) {
      const reply = await bob.ok("file_read", { file, offset: at, length: 50_000 });
      assert.equal(reply.length, 50_000);
      data.push(
        (await bob.expect({ type: "file_data", file, offset: at })).frameBody as Uint8Array,
      );
    }
    assert.deepEqual(concatBytes(data), content);
    assert.equal(opens, 1);
    await bob.ok("file_done", { file });
    // No descriptor of this process is left on the file's bytes (deleted or not).
    const open = [...Deno.readDirSync("/proc/self/fd")].map((e) => {
      try {
        return Deno.readLinkSync(`/proc/self/fd/${e.name}`);
      } catch {
        return "";
      }
    }).filter((target) => target.startsWith(service.dir));
    assert.deepEqual(open, []);
  });
});

Deno.test("a read following an upload on this server does not look its record up again at each chunk", async () => {
  await withServer(async (server) => {
    await using alice = await login(server, "alice");
    await using bob = await login(server, "bob");
    const store = fileServiceOf(server.hub).store;
    const content = bytesOf(500_000, 9);
    const file = await offeredAndAccepted(alice, bob, "bob", "followed.bin", content);
    const get = store.get.bind(store);
    let gets = 0;
    store.get = (id) => {
      if (id === file) gets++;
      return get(id);
    };
    bob.send({ type: "file_read", id: "follow", file, offset: 0, length: content.length });
    for (let at = 0; at < content.length; at += 50_000) {
      await chunkOk(alice, file, at, content.subarray(at, at + 50_000));
    }
    const reply = await bob.expect({ type: "ok", re: "follow" });
    assert.equal(reply.length, content.length);
    // The read's own lookup and the first chunk's (it opens the upload): not one per chunk.
    assert.ok(gets <= 3, `${gets} lookups of the record for 10 chunks`);
  });
});
