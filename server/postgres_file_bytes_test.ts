import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { POSTGRES_SKIP, startPostgres } from "../tests/helpers/postgres.ts";
import { fileBytesConformance, patternBytes } from "./file_bytes_conformance.ts";
import { PostgresFileBytes } from "./postgres_file_bytes.ts";
import { connectPostgresFiles } from "./postgres_files.ts";
import { StoreError } from "./store.ts";

const pg = POSTGRES_SKIP === null ? await startPostgres() : null;
const ignore = pg === null;

Deno.test({
  name: "PostgresFileBytes conforms",
  ignore,
  async fn() {
    const bytes = await PostgresFileBytes.open(await pg!.createDatabase());
    try {
      assert.ok(bytes.pollMs > 0, "readers on other nodes poll for new bytes");
      await fileBytesConformance(bytes);
    } finally {
      await bytes.close();
    }
  },
});

Deno.test({
  name: "PostgresFileBytes: 20 MiB written on one node, resumed on another, read back whole",
  ignore,
  async fn() {
    const url = await pg!.createDatabase();
    const [a, b] = [await PostgresFileBytes.open(url), await PostgresFileBytes.open(url)];
    try {
      const size = 20 * 1024 * 1024;
      const chunk = 512 * 1024;
      const expected = createHash("sha256");
      for (let at = 0; at < size; at += chunk) expected.update(patternBytes(chunk, at));
      const sha256 = expected.digest("hex");

      // Node A uploads the first 7.5 MiB, then goes away.
      const first = await a.openWriter(1, size);
      for (let at = 0; at < 15 * chunk; at += chunk) await first.append(patternBytes(chunk, at));
      first.close();
      // Node B resumes from the size held.
      const second = await b.openWriter(1, size);
      assert.equal(second.size, 15 * chunk);
      for (let at = second.size; at < size; at += chunk) {
        await second.append(patternBytes(chunk, at));
      }
      second.close();
      await b.complete(1, size);

      // Read back on A in 1 MiB ranges not aligned with the chunks.
      const reader = (await a.openReader(1, true))!;
      const read = createHash("sha256");
      const buffer = new Uint8Array(1024 * 1024 + 3);
      let at = 0;
      while (true) {
        const n = await reader.read(at, buffer);
        if (n === 0) break;
        read.update(buffer.subarray(0, n));
        at += n;
      }
      reader.close();
      assert.equal(at, size);
      assert.equal(read.digest("hex"), sha256);
      assert.equal(await a.used(), size);

      await a.remove(1);
      const handle = await connectPostgresFiles(url);
      const [{ rows }] = await handle.sql`SELECT count(*)::int AS rows FROM held_file_chunks`;
      await handle.release();
      assert.equal(rows, 0, "dropping a file drops its chunk rows");
    } finally {
      await a.close();
      await b.close();
    }
  },
});

Deno.test({
  name: "PostgresFileBytes: two writers on one file: the late one gets conflict, nothing torn",
  ignore,
  async fn() {
    const url = await pg!.createDatabase();
    const [a, b] = [await PostgresFileBytes.open(url), await PostgresFileBytes.open(url)];
    try {
      const one = await a.openWriter(1, 100);
      const two = await b.openWriter(1, 100);
      await one.append(patternBytes(10));
      await assert.rejects(two.append(patternBytes(10)), (err: unknown) => {
        assert.ok(err instanceof StoreError);
        assert.equal(err.code, "conflict");
        return true;
      });
      assert.equal(await b.size(1), 10);
      // Reopened, the late writer carries on after the other's bytes.
      two.close();
      const again = await b.openWriter(1, 100);
      assert.equal(again.size, 10);
      await again.append(patternBytes(5, 10));
      const into = new Uint8Array(20);
      assert.equal(await (await a.openReader(1, false))!.read(0, into), 15);
      assert.deepEqual(into.subarray(0, 15), patternBytes(15));
    } finally {
      await a.close();
      await b.close();
    }
  },
});

Deno.test({
  name:
    "PostgresFileBytes: PostgreSQL stopped: unavailable, nothing torn; back: the upload resumes",
  ignore,
  async fn() {
    const bytes = await PostgresFileBytes.open(await pg!.createDatabase());
    try {
      const writer = await bytes.openWriter(1, 100);
      await writer.append(patternBytes(40));
      await pg!.stop();
      try {
        await assert.rejects(writer.append(patternBytes(40, 40)), (err: unknown) => {
          assert.ok(err instanceof StoreError);
          assert.equal(err.code, "unavailable", err.message);
          return true;
        });
        await assert.rejects(bytes.size(1), (err: unknown) => {
          assert.equal((err as StoreError).code, "unavailable");
          return true;
        });
      } finally {
        await pg!.start();
      }
      writer.close();
      // The pool's first connection after the restart may still fail with the attempt it
      // began while PostgreSQL was down (`unavailable`, which says to retry): retried.
      const resumed = await untilAvailable(() => bytes.openWriter(1, 100));
      assert.equal(resumed.size, 40);
      await resumed.append(patternBytes(60, 40));
      resumed.close();
      const reader = (await bytes.openReader(1, false))!;
      const back = new Uint8Array(100);
      assert.equal(await reader.read(0, back), 100);
      reader.close();
      assert.deepEqual(back, patternBytes(100));
    } finally {
      await bytes.close();
    }
  },
});

Deno.test({
  name: "PostgresFileBytes: bytes marked complete but short (before complete checked the size) " +
    "are resumed from their end",
  ignore,
  async fn() {
    const url = await pg!.createDatabase();
    const bytes = await PostgresFileBytes.open(url);
    const handle = await connectPostgresFiles(url);
    try {
      const writer = await bytes.openWriter(1, 100);
      await writer.append(patternBytes(40));
      writer.close();
      // What a complete() that did not check the size left after a crash of PostgreSQL
      // lost the last appends.
      await handle.sql`UPDATE held_file_bytes SET complete = true WHERE file_id = 1`;
      const resumed = await bytes.openWriter(1, 100);
      assert.equal(resumed.size, 40);
      await resumed.append(patternBytes(60, 40));
      resumed.close();
      await bytes.complete(1, 100);
      const back = new Uint8Array(100);
      assert.equal(await (await bytes.openReader(1, true))!.read(0, back), 100);
      assert.deepEqual(back, patternBytes(100));
    } finally {
      await handle.release();
      await bytes.close();
    }
  },
});

/** `fn()`, called again while it fails with `unavailable` (for at most 10 s). */
async function untilAvailable<T>(fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 10_000;
  while (true) {
    try {
      return await fn();
    } catch (err) {
      if (!(err instanceof StoreError) || err.code !== "unavailable" || Date.now() > deadline) {
        throw err;
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}
