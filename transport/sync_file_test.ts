import assert from "node:assert/strict";
import { isSyncUnsupported, syncIfSupported } from "./sync_file.ts";

Deno.test("a sync the file system does not do (a pipe's: EINVAL) is not an error", async () => {
  const dir = await Deno.makeTempDir();
  const fifo = `${dir}/fifo`;
  try {
    await new Deno.Command("mkfifo", { args: [fifo] }).output();
    // Opening a FIFO for reading and writing does not wait for a peer on Linux.
    using pipe = await Deno.open(fifo, { read: true, write: true });
    const err = await pipe.syncData().then(() => null, (e) => e);
    assert(err !== null, "a FIFO's fdatasync fails on Linux");
    assert.equal(isSyncUnsupported(err), true);
    await syncIfSupported(() => pipe.syncData());
    await syncIfSupported(() => pipe.sync());
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a sync that fails otherwise (a closed handle) rejects: nothing is acknowledged", async () => {
  const path = await Deno.makeTempFile();
  try {
    const file = await Deno.open(path, { write: true });
    await file.write(new Uint8Array([1]));
    file.close();
    const err = await file.syncData().then(() => null, (e) => e);
    assert(err !== null);
    assert.equal(isSyncUnsupported(err), false);
    await assert.rejects(() => syncIfSupported(() => file.syncData()));
    for (const code of ["EIO", "ENOSPC", "EDQUOT", undefined]) {
      assert.equal(isSyncUnsupported(Object.assign(new Error("x"), { code })), false, code);
    }
  } finally {
    await Deno.remove(path);
  }
});
