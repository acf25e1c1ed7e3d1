import assert from "node:assert/strict";
import { FreeSpace, freeSpace, isDiskFull, REMEASURE_BYTES } from "./disk_space.ts";

Deno.test("isDiskFull: ENOSPC and SQLITE_FULL, also as a cause; nothing else", () => {
  assert.equal(isDiskFull(new Error("No space left on device (os error 28)")), true);
  assert.equal(isDiskFull(Object.assign(new Error("x"), { code: "ENOSPC" })), true);
  assert.equal(isDiskFull(Object.assign(new Error("database or disk is full"), {})), true);
  assert.equal(isDiskFull(Object.assign(new Error("x"), { errcode: 13 })), true);
  const wrapped = new Error("storage failure", { cause: new Error("database or disk is full") });
  assert.equal(isDiskFull(wrapped), true);
  assert.equal(isDiskFull(new Error("database is locked")), false);
  assert.equal(isDiskFull(Object.assign(new Error("x"), { errcode: 5 })), false);
  assert.equal(isDiskFull("disk is full"), false);
});

Deno.test("FreeSpace: measures the disk, and counts what was written since", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const measured = await freeSpace(dir);
    assert.ok(measured !== null && measured > 0);
    const free = new FreeSpace(dir, 3_600_000);
    const first = await free.bytes();
    assert.ok(first !== null && first > 0);
    free.wrote(1000);
    const after = await free.bytes();
    assert.equal(after, first - 1000);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("FreeSpace: an upload's writes are counted, not measured every few MiB; a fresh measure on demand", async () => {
  let measures = 0;
  let disk = 10_000_000_000;
  const free = new FreeSpace("/unused", 3_600_000, () => {
    measures++;
    return Promise.resolve(disk);
  });
  assert.equal(await free.bytes(), disk);
  // 32 MiB written in 512 KiB chunks, each checked before it is written: no statfs.
  for (let i = 0; i < 64; i++) {
    await free.bytes();
    free.wrote(512 * 1024);
  }
  assert.equal(measures, 1);
  assert.equal(await free.bytes(), disk - 32 * 1024 * 1024);
  // Space freed meanwhile shows at a fresh measure (asked before a refusal).
  disk += 1_000_000;
  assert.equal(await free.bytes(true), disk);
  assert.equal(measures, 2);
  // Past REMEASURE_BYTES written, it measures again on its own.
  free.wrote(REMEASURE_BYTES);
  await free.bytes();
  assert.equal(measures, 3);
});
