/**
 * Held files' bytes, store against store: MiB/s writing and then reading one file through
 * the file folder (`DiskFileBytes`), PostgreSQL chunk rows (`PostgresFileBytes`) and, for
 * the choice made there, PostgreSQL large objects (`lo_put` / `lo_get`), in the same run.
 * Written as uploads write (one 512 KiB chunk after the other, each done before the next;
 * the disk file synced at the end), read as `file_read` reads (512 KiB frames in order),
 * the SHA-256 checked.
 *
 * ```sh
 * deno run -A bench/file_bytes.ts [--mib 128] [--url postgres://...]
 * ```
 *
 * Without `--url`, a scratch PostgreSQL (`tests/helpers/postgres.ts`, fsync on) is started
 * and removed.
 *
 * Measured here (2 cores shared with other test runs: load average 15-17, so each figure
 * varies by 2x between runs; PostgreSQL 15 scratch server, fsync on, shared_buffers 16MB),
 * 128 MiB, write / read MiB/s:
 *
 * | run | disk         | PostgreSQL chunk rows | PostgreSQL large object |
 * | --- | ------------ | --------------------- | ----------------------- |
 * | 1   | 98.5 / 409.0 | 11.8 / 37.4           | 13.3 / 32.1             |
 * | 2   | 57.3 / 548.4 | 21.8 / 61.3           | 10.0 / 39.8             |
 *
 * A PostgreSQL append writes each byte twice (WAL and table) and sends it as hex text;
 * the disk writes it once, to the page cache, synced at the end.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { parseArgs } from "node:util";
import { DiskFileBytes } from "../server/disk_file_bytes.ts";
import type { FileBytes } from "../server/file_bytes.ts";
import { PostgresFileBytes } from "../server/postgres_file_bytes.ts";
import { connectPostgresFiles, type Sql } from "../server/postgres_files.ts";
import { startPostgres } from "../tests/helpers/postgres.ts";

const CHUNK = 512 * 1024;

/** One store's figures. */
interface Figures {
  store: string;
  writeMiBs: number;
  readMiBs: number;
}

/** `CHUNK` bytes of pseudo-random content for chunk number `n` (incompressible). */
function chunkOf(n: number): Uint8Array {
  const bytes = new Uint8Array(CHUNK);
  const words = new Uint32Array(bytes.buffer);
  let x = (n * 2654435761) >>> 0 || 1;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    words[i] = x;
  }
  return bytes;
}

/** A store reduced to what is measured: append chunks, then read frames. */
interface Target {
  name: string;
  write(chunks: Uint8Array[]): Promise<void>;
  read(size: number, onFrame: (bytes: Uint8Array) => void): Promise<void>;
  cleanup(): Promise<void>;
}

function fileBytesTarget(name: string, bytes: FileBytes, id: number): Target {
  return {
    name,
    async write(chunks) {
      const writer = await bytes.openWriter(id, chunks.length * CHUNK);
      for (const chunk of chunks) await writer.append(chunk);
      await writer.sync();
      writer.close();
      await bytes.complete(id, chunks.length * CHUNK);
    },
    async read(size, onFrame) {
      const reader = (await bytes.openReader(id, true))!;
      const frame = new Uint8Array(CHUNK);
      for (let at = 0; at < size;) {
        const n = await reader.read(at, frame);
        if (n === 0) throw new Error(`${name}: ${at} of ${size} bytes read`);
        onFrame(frame.subarray(0, n));
        at += n;
      }
      reader.close();
    },
    async cleanup() {
      await bytes.remove(id);
      await bytes.close();
    },
  };
}

function largeObjectTarget(sql: Sql): Target {
  let oid = 0;
  return {
    name: "PostgreSQL large object",
    async write(chunks) {
      [{ oid }] = await sql`SELECT lo_create(0)::int8 AS oid`.then((rows) =>
        rows.map((r) => ({ oid: Number(r.oid) }))
      );
      let at = 0;
      for (const chunk of chunks) {
        // Committed as the chunk rows' appends are: without waiting for the WAL flush.
        await sql`
          SELECT lo_put(${oid}::oid, ${at}::int8, ${chunk})
          FROM (SELECT set_config('synchronous_commit', 'off', true)) AS asynchronous`;
        at += chunk.length;
      }
    },
    async read(size, onFrame) {
      for (let at = 0; at < size;) {
        const [row] = await sql`SELECT lo_get(${oid}::oid, ${at}::int8, ${CHUNK}) AS b`;
        const bytes = row.b as Uint8Array;
        if (bytes.length === 0) throw new Error(`large object: ${at} of ${size} bytes read`);
        onFrame(bytes);
        at += bytes.length;
      }
    },
    async cleanup() {
      await sql`SELECT lo_unlink(${oid}::oid)`;
    },
  };
}

async function measure(target: Target, chunks: Uint8Array[], sha256: string): Promise<Figures> {
  const size = chunks.length * CHUNK;
  const mib = size / (1024 * 1024);
  const started = performance.now();
  await target.write(chunks);
  const wrote = performance.now();
  const hash = createHash("sha256");
  await target.read(size, (bytes) => hash.update(bytes));
  const read = performance.now();
  if (hash.digest("hex") !== sha256) throw new Error(`${target.name}: SHA-256 mismatch`);
  await target.cleanup();
  return {
    store: target.name,
    writeMiBs: mib / ((wrote - started) / 1000),
    readMiBs: mib / ((read - wrote) / 1000),
  };
}

async function main(): Promise<void> {
  const args = parseArgs({
    args: Deno.args,
    options: { mib: { type: "string", default: "128" }, url: { type: "string" } },
  });
  const mib = Number(args.values.mib);
  const count = Math.ceil((mib * 1024 * 1024) / CHUNK);
  const chunks = Array.from({ length: count }, (_, n) => chunkOf(n));
  const whole = createHash("sha256");
  for (const chunk of chunks) whole.update(chunk);
  const sha256 = whole.digest("hex");

  const scratch = args.values.url === undefined ? await startPostgres() : null;
  if (args.values.url === undefined && scratch === null) Deno.exit(1);
  const url = args.values.url ?? await scratch!.createDatabase();
  const dir = await Deno.makeTempDir({ prefix: "chat-bench-bytes-" });
  const handle = await connectPostgresFiles(url);
  const results: Figures[] = [];
  try {
    results.push(
      await measure(
        fileBytesTarget("disk (file folder)", new DiskFileBytes(dir), 1),
        chunks,
        sha256,
      ),
    );
    results.push(
      await measure(
        fileBytesTarget("PostgreSQL chunk rows", await PostgresFileBytes.open(url), 1),
        chunks,
        sha256,
      ),
    );
    results.push(await measure(largeObjectTarget(handle.sql), chunks, sha256));
  } finally {
    await handle.release();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    await scratch?.close();
  }
  console.log(`${mib} MiB in ${CHUNK / 1024} KiB chunks, written then read back:`);
  console.log("store                      write MiB/s  read MiB/s");
  for (const r of results) {
    console.log(
      `${r.store.padEnd(26)} ${r.writeMiBs.toFixed(1).padStart(11)} ${
        r.readMiBs.toFixed(1).padStart(11)
      }`,
    );
  }
}

if (import.meta.main) await main();
