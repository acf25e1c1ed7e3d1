import assert from "node:assert/strict";
import { DiskFileBytes } from "./disk_file_bytes.ts";
import { fileBytesConformance } from "./file_bytes_conformance.ts";

Deno.test("DiskFileBytes conforms: <id>.part while uploading, <id>.file once complete", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const bytes = new DiskFileBytes(dir);
    assert.equal(bytes.pollMs, null, "only this server writes: its readers are woken");
    await fileBytesConformance(bytes);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["3.file"]);
    await bytes.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("DiskFileBytes drops bytes at once and frees their space in the background", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const bytes = new DiskFileBytes(dir);
    const writer = await bytes.openWriter(1, 4);
    await writer.append(new Uint8Array([1, 2, 3, 4]));
    writer.close();
    const reader = await bytes.openReader(1, false);
    assert.ok(reader !== null);
    await bytes.remove(1);
    // Not held any more, whether or not its space is freed yet.
    assert.equal(await bytes.size(1), null);
    assert.equal(await bytes.openReader(1, false), null);
    assert.equal(await bytes.used(), 0);
    const names = () => [...Deno.readDirSync(dir)].map((e) => e.name).sort();
    assert.ok(names().every((name) => /^1\.\d+\.gone$/.test(name)), names().join(", "));
    // A reader that had it open reads on.
    const into = new Uint8Array(4);
    assert.equal(await reader.read(0, into), 4);
    reader.close();
    await bytes.freed();
    assert.deepEqual(names(), []);

    // Dropped bytes a crash left undeleted go with the orphans at start.
    await Deno.writeFile(`${dir}/7.3.gone`, new Uint8Array(10));
    await Deno.writeFile(`${dir}/8.part`, new Uint8Array(10));
    await bytes.removeOrphans(() => Promise.resolve(new Set([8])));
    assert.deepEqual(names(), ["8.part"]);
    await bytes.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("DiskFileBytes syncs an upload in the background as it is written", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const bytes = new DiskFileBytes(dir, { backgroundSyncBytes: 64 * 1024 });
    const piece = new Uint8Array(32 * 1024).fill(7);
    const writer = await bytes.openWriter(5, 16 * piece.length);
    const started = () => (writer as { backgroundSyncs?: number }).backgroundSyncs ?? 0;
    for (let i = 0; i < 8; i++) await writer.append(piece);
    // Every 64 KiB a sync starts unless one runs: at least one over 256 KiB, at most four.
    assert.ok(started() >= 1, `${started()} background syncs`);
    assert.ok(started() <= 4, `${started()} background syncs`);
    // The final sync waits for the one under way.
    await writer.sync();
    const synced = started();
    // Let go with a sync under way: its handle is closed by the time the bytes are closed.
    for (let i = 0; i < 8; i++) await writer.append(piece);
    assert.ok(started() > synced);
    writer.close();
    await bytes.complete(5, 16 * piece.length);
    assert.equal(await bytes.size(5), 16 * piece.length);
    await bytes.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("DiskFileBytes reads synchronously only the bytes an open upload wrote last", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const bytes = new DiskFileBytes(dir, { cachedReadBytes: 8 });
    const writer = await bytes.openWriter(4, 32);
    const written = Uint8Array.from({ length: 24 }, (_, i) => i);
    await writer.append(written);
    const reader = await bytes.openReader(4, false);
    assert.ok(reader !== null);
    const into = new Uint8Array(4);
    // Within the last 8 bytes written: read synchronously, the same bytes.
    assert.equal(await reader.read(18, into), 4);
    assert.deepEqual(into, written.subarray(18, 22));
    assert.equal(bytes.syncReadBytes, 4);
    // Written longer ago: read asynchronously (it may have left the page cache).
    assert.equal(await reader.read(4, into), 4);
    assert.deepEqual(into, written.subarray(4, 8));
    assert.equal(bytes.syncReadBytes, 4);
    // Past the bytes written: not read synchronously.
    assert.equal(await reader.read(22, into), 2);
    assert.deepEqual(into.subarray(0, 2), written.subarray(22, 24));
    assert.equal(bytes.syncReadBytes, 4);
    // The upload no longer open here: every read is asynchronous.
    writer.close();
    assert.equal(await reader.read(20, into), 4);
    assert.deepEqual(into, written.subarray(20, 24));
    assert.equal(bytes.syncReadBytes, 4);
    // A new upload of another file is followed on its own.
    const other = await bytes.openWriter(5, 8);
    await other.append(new Uint8Array([9, 8, 7]));
    const otherReader = await bytes.openReader(5, false);
    assert.equal(await otherReader!.read(0, into.subarray(0, 3)), 3);
    assert.deepEqual(into.subarray(0, 3), new Uint8Array([9, 8, 7]));
    assert.equal(bytes.syncReadBytes, 7);
    other.close();
    reader.close();
    otherReader!.close();
    await bytes.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
