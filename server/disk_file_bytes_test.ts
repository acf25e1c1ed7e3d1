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
