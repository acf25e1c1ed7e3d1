/**
 * Test files: pseudo-random content from a seed, written and hashed in bounded pieces
 * (never whole in memory), and helpers to look at a download folder.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { join } from "node:path";
import { partFileName, safeFileName } from "../../protocol/file_names.ts";
import { FileSource } from "../../transport/file_io.ts";

const PIECE = 1024 * 1024;

/**
 * Writes `size` pseudo-random bytes (xorshift32 from `seed`) to `path`, one MiB at a
 * time; returns their SHA-256 (hex).
 */
export async function writeRandomFile(path: string, size: number, seed = 1): Promise<string> {
  const hash = createHash("sha256");
  const buffer = new Uint8Array(PIECE);
  const words = new Uint32Array(buffer.buffer);
  let x = seed >>> 0 || 1;
  using file = await Deno.open(path, { write: true, create: true, truncate: true });
  let written = 0;
  while (written < size) {
    for (let i = 0; i < words.length; i++) {
      x ^= x << 13;
      x >>>= 0;
      x ^= x >>> 17;
      x ^= x << 5;
      x >>>= 0;
      words[i] = x;
    }
    const piece = buffer.subarray(0, Math.min(PIECE, size - written));
    let done = 0;
    while (done < piece.length) done += await file.write(piece.subarray(done));
    hash.update(piece);
    written += piece.length;
  }
  return hash.digest("hex");
}

/** SHA-256 (hex) of a file, read one MiB at a time. */
export async function sha256Of(path: string): Promise<string> {
  const hash = createHash("sha256");
  using file = await Deno.open(path, { read: true });
  const buffer = new Uint8Array(PIECE);
  while (true) {
    const n = await file.read(buffer);
    if (n === null) break;
    hash.update(buffer.subarray(0, n));
  }
  return hash.digest("hex");
}

/** The names in a folder, sorted. */
export async function listDir(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) names.push(entry.name);
  return names.sort();
}

/** Resident set size of a process from /proc (Linux), in bytes: current and peak. */
export async function processMemory(pid: number): Promise<{ rss: number; peak: number }> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const field = (name: string) => {
    const match = new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(status);
    if (match === null) throw new Error(`no ${name} in /proc/${pid}/status`);
    return Number(match[1]) * 1024;
  };
  return { rss: field("VmRSS"), peak: field("VmHWM") };
}

/** Runs `fn` with a fresh temporary folder, removed afterwards whatever happens. */
export async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * Writes `bytes` as the `.part` file a receiver saving into `dl` holds of the file at
 * `path` (named by its resume key, as a peer or relay receiver names it); returns its path.
 */
export async function writePartFile(dl: string, path: string, bytes: Uint8Array): Promise<string> {
  const source = await FileSource.openToStream(path);
  try {
    await Deno.mkdir(dl, { recursive: true });
    const part = join(dl, partFileName(safeFileName(source.name), await source.resumeKey()));
    await Deno.writeFile(part, bytes);
    return part;
  } finally {
    source.close();
  }
}
