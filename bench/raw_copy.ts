/**
 * One end of a raw loopback copy, the baseline of the file-transfer benchmark: the same
 * bytes from disk, over one TCP socket on 127.0.0.1, to disk, with no protocol at all.
 *
 * ```text
 * deno run -A bench/raw_copy.ts receive PATH    listen on 127.0.0.1, write one connection to PATH
 * deno run -A bench/raw_copy.ts send PORT PATH  connect to 127.0.0.1:PORT, send PATH, close
 * ```
 *
 * Like `tests/helpers/file_endpoint.ts` it prints one JSON line when ready
 * (`{"ready": true, "port": N}`; the sender prints it once connected) and one when the
 * bytes are sent or written and the file closed: `{"done": true, "bytes": N}`. On
 * failure it prints `{"error": ...}` and exits 1.
 *
 * @module
 */

import { type ByteSink, type ByteSource, writeFull } from "../transport/file_io.ts";

const PIECE = 256 * 1024;

/** Copies `from` to `to` until `from` ends; returns the bytes copied. */
async function copy(from: ByteSource, to: ByteSink): Promise<number> {
  const buffer = new Uint8Array(PIECE);
  let total = 0;
  while (true) {
    const n = await from.read(buffer);
    if (n === null) return total;
    await writeFull(to, buffer.subarray(0, n));
    total += n;
  }
}

/** Receives one connection into `path`; returns the bytes written. */
async function receive(path: string): Promise<number> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  console.log(JSON.stringify({ ready: true, port: (listener.addr as Deno.NetAddr).port }));
  const conn = await listener.accept();
  listener.close();
  using file = await Deno.open(path, { write: true, create: true, truncate: true });
  try {
    return await copy(conn, file);
  } finally {
    conn.close();
  }
}

/** Sends `path` to 127.0.0.1:`port`; returns the bytes sent. */
async function send(port: number, path: string): Promise<number> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  console.log(JSON.stringify({ ready: true, port }));
  using file = await Deno.open(path, { read: true });
  try {
    const bytes = await copy(file, conn);
    await conn.closeWrite();
    return bytes;
  } finally {
    conn.close();
  }
}

if (import.meta.main) {
  const [mode, ...args] = Deno.args;
  try {
    let bytes: number;
    if (mode === "receive" && args.length === 1) {
      bytes = await receive(args[0]);
    } else if (mode === "send" && args.length === 2) {
      const port = Number(args[0]);
      if (!Number.isInteger(port) || port <= 0 || port > 65535) {
        throw new Error(`send: bad port "${args[0]}"`);
      }
      bytes = await send(port, args[1]);
    } else {
      throw new Error("usage: raw_copy.ts receive PATH | send PORT PATH");
    }
    console.log(JSON.stringify({ done: true, bytes }));
    Deno.exit(0);
  } catch (err) {
    console.log(JSON.stringify({ error: err instanceof Error ? err.message : String(err) }));
    Deno.exit(1);
  }
}
