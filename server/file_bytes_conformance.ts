/**
 * The behaviour every {@linkcode FileBytes} has, as one suite run against each
 * implementation (`disk_file_bytes_test.ts`, `postgres_file_bytes_test.ts`).
 *
 * @module
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import type { FileBytes } from "./file_bytes.ts";
import { StoreError } from "./store.ts";

/** `n` bytes of a repeatable pattern starting at `from`. */
export function patternBytes(n: number, from = 0): Uint8Array {
  const bytes = new Uint8Array(n);
  for (let i = 0; i < n; i++) bytes[i] = ((from + i) * 7 + ((from + i) >> 9)) & 0xff;
  return bytes;
}

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/**
 * Writes, reads ranges, resumes from the size held, starts over past
 * the size announced, completes, drops, removes orphans. Uses file ids 1 to 4 of an empty
 * `bytes`; leaves it open.
 */
export async function fileBytesConformance(bytes: FileBytes): Promise<void> {
  const content = patternBytes(300_000);
  assert.equal(await bytes.size(1), null);
  assert.equal(await bytes.openReader(1, false), null);

  // Written in uneven chunks; read while written.
  const writer = await bytes.openWriter(1, content.length);
  assert.equal(writer.size, 0);
  assert.equal(await bytes.size(1), 0);
  await writer.append(content.subarray(0, 1000));
  await writer.append(content.subarray(1000, 100_000));
  assert.equal(writer.size, 100_000);
  assert.equal(await bytes.size(1), 100_000);
  const reader = await bytes.openReader(1, false);
  assert.ok(reader !== null);
  const into = new Uint8Array(50_000);
  assert.equal(await reader.read(90_000, into), 10_000, "a read ends at the bytes held");
  assert.deepEqual(into.subarray(0, 10_000), content.subarray(90_000, 100_000));
  writer.close();

  // Resumed from the size held; the rest appended.
  const resumed = await bytes.openWriter(1, content.length);
  assert.equal(resumed.size, 100_000);
  await resumed.append(content.subarray(100_000));
  assert.equal(resumed.size, content.length);
  await resumed.sync();
  resumed.close();

  // The same reader sees the new bytes; ranges anywhere, across chunk boundaries.
  for (const [at, length] of [[0, 10], [999, 2], [99_990, 20], [123_456, 65_536], [299_999, 5]]) {
    const buffer = new Uint8Array(length);
    const n = await reader.read(at, buffer);
    const want = Math.min(length, content.length - at);
    assert.equal(n, want, `read at ${at}`);
    assert.deepEqual(buffer.subarray(0, n), content.subarray(at, at + want), `bytes at ${at}`);
  }
  assert.equal(await reader.read(content.length, new Uint8Array(10)), 0);
  reader.close();

  // Fewer bytes held than the size to complete (a crash of the storage lost the last
  // ones, which the writer counted): refused, not complete, still appended to.
  await assert.rejects(
    bytes.complete(1, content.length + 1),
    (err) => err instanceof StoreError && err.code === "conflict",
  );
  const short = await bytes.openWriter(1, content.length + 1);
  assert.equal(short.size, content.length, "not marked complete: resumed from its end");
  short.close();

  await bytes.complete(1, content.length);
  assert.equal(await bytes.size(1), content.length);
  const done = await bytes.openReader(1, true);
  assert.ok(done !== null);
  const all = new Uint8Array(content.length);
  assert.equal(await done.read(0, all), content.length);
  assert.equal(sha256(all), sha256(content));
  done.close();

  // Complete, then opened to write again (the server stopped between completing the
  // bytes and recording the file uploaded): they are all held, nothing appends, and
  // completing them again changes nothing.
  const reopened = await bytes.openWriter(1, content.length);
  assert.equal(reopened.size, content.length);
  await assert.rejects(
    reopened.append(patternBytes(1)),
    (err) => err instanceof StoreError && err.code === "conflict",
  );
  reopened.close();
  await bytes.complete(1, content.length);
  assert.equal(await bytes.size(1), content.length);

  // More bytes held than announced: the file starts over.
  const two = await bytes.openWriter(2, 10);
  await two.append(patternBytes(20));
  two.close();
  const again = await bytes.openWriter(2, 10);
  assert.equal(again.size, 0);
  again.close();
  assert.equal(await bytes.size(2), 0);

  // A file of zero bytes: opened, closed, completed, read as nothing.
  (await bytes.openWriter(3, 0)).close();
  await bytes.complete(3, 0);
  assert.equal(await bytes.size(3), 0);
  const empty = await bytes.openReader(3, true);
  assert.ok(empty !== null);
  assert.equal(await empty.read(0, new Uint8Array(4)), 0);
  empty.close();

  const four = await bytes.openWriter(4, 5);
  await four.append(patternBytes(5));
  four.close();
  assert.equal(await bytes.used(), content.length + 5);

  await bytes.remove(1);
  await bytes.remove(1);
  assert.equal(await bytes.size(1), null);
  assert.equal(await bytes.openReader(1, true), null);
  assert.equal(await bytes.used(), 5);

  // Orphans: only the ids known (asked after listing) stay.
  await bytes.removeOrphans(() => Promise.resolve(new Set([3])));
  assert.equal(await bytes.size(3), 0);
  assert.equal(await bytes.size(2), null);
  assert.equal(await bytes.size(4), null);
  assert.equal(await bytes.used(), 0);
}
