import assert from "node:assert/strict";
import { join } from "node:path";
import { withTempDir } from "../tests/helpers/files.ts";
import { BackgroundSync } from "./background_sync.ts";

Deno.test("BackgroundSync starts a sync every so many bytes, one at a time, and lets its handle go", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "big.part");
    using file = await Deno.open(path, { write: true, create: true });
    const syncs = new BackgroundSync(path, 64 * 1024);
    const piece = new Uint8Array(16 * 1024);
    // Under the threshold: nothing starts.
    for (let i = 0; i < 3; i++) {
      file.writeSync(piece);
      syncs.wrote(piece.length);
    }
    assert.equal(syncs.started, 0);
    file.writeSync(piece);
    syncs.wrote(piece.length);
    assert.equal(syncs.started, 1);
    // While it runs, further counts start no second one.
    for (let i = 0; i < 8; i++) {
      file.writeSync(piece);
      syncs.wrote(piece.length);
    }
    assert.equal(syncs.started, 1);
    // Settled: the handle is closed (the resource sanitizer would see it open); counting
    // goes on afresh.
    await syncs.settle();
    for (let i = 0; i < 4; i++) {
      file.writeSync(piece);
      syncs.wrote(piece.length);
    }
    assert.equal(syncs.started, 2);
    // Closed with a sync under way: it resolves once its handle is closed; nothing starts
    // afterwards.
    await syncs.close();
    for (let i = 0; i < 8; i++) syncs.wrote(piece.length);
    assert.equal(syncs.started, 2);
    assert.equal((await Deno.stat(path)).size, 16 * piece.length);
  });
});

Deno.test("BackgroundSync of a file that is gone fails quietly; the owner's final sync reports", async () => {
  await withTempDir(async (dir) => {
    const syncs = new BackgroundSync(join(dir, "missing.part"), 1);
    syncs.wrote(1);
    assert.equal(syncs.started, 1);
    await syncs.settle();
    await syncs.close();
  });
});

Deno.test("BackgroundSync: a sync that ends starts the next at once when enough was written meanwhile", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "big.part");
    using file = await Deno.open(path, { write: true, create: true });
    const syncs = new BackgroundSync(path, 64 * 1024);
    const piece = new Uint8Array(64 * 1024);
    file.writeSync(piece);
    syncs.wrote(piece.length);
    assert.equal(syncs.started, 1);
    // Written while the first runs: no second yet.
    file.writeSync(piece);
    syncs.wrote(piece.length);
    assert.equal(syncs.started, 1);
    // No further write: the first one's end starts the second (the disk never waits for
    // the next write to be told).
    const deadline = Date.now() + 10_000;
    while (syncs.started < 2 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    assert.equal(syncs.started, 2);
    // Settling waits for it and starts none after it.
    await syncs.settle();
    assert.equal(syncs.started, 2);
    await syncs.close();
  });
});

Deno.test("BackgroundSync.syncFinally starts the final sync beside the one under way, and reports a failure of either", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "big.part");
    using file = await Deno.open(path, { write: true, create: true });
    const syncs = new BackgroundSync(path, 64 * 1024);
    file.writeSync(new Uint8Array(64 * 1024));
    syncs.wrote(64 * 1024);
    assert.equal(syncs.running, true);
    // The writing handle's sync, as syncFinally calls it: is the background one still on?
    let beside: boolean | null = null;
    const writing = {
      sync: () => {
        beside = syncs.running;
        return file.sync();
      },
    } as unknown as Deno.FsFile;
    await syncs.syncFinally(writing);
    assert.equal(beside, true, "the final sync started while the background one ran");
    assert.equal(syncs.running, false);
    // A final sync that fails rejects with its error; one the file system does not do
    // (EINVAL and the like) is not an error.
    const failing = (code: string) =>
      ({
        sync: () => Promise.reject(Object.assign(new Error(code), { code })),
      }) as unknown as Deno.FsFile;
    await assert.rejects(syncs.syncFinally(failing("EIO")), /EIO/);
    await syncs.syncFinally(failing("EINVAL"));
    await syncs.close();
  });
});
