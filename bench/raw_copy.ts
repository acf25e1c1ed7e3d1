/**
 * One end of a raw loopback copy, the baseline of the file-transfer benchmark: the same
 * bytes from disk, over one TCP socket on 127.0.0.1, to disk, with no protocol at all.
 *
 * ```text
 * deno run -A bench/raw_copy.ts receive PATH          listen on 127.0.0.1, write one connection to PATH
 * deno run -A bench/raw_copy.ts receive-durable PATH  the same, and make PATH durable before "done"
 * deno run -A bench/raw_copy.ts send PORT PATH        connect to 127.0.0.1:PORT, send PATH, close
 * ```
 *
 * `receive-durable` makes the file durable as the chat recipient makes a received file
 * durable before it says so (`transport/file_io.ts`): a `syncData` started in the
 * background every 16 MiB written (`transport/background_sync.ts`), then a final `sync`
 * before its done line. The plain copy never syncs: its file may still be only in the
 * page cache when it says done, where a file through the server is on the disk twice
 * (the server's copy before the upload is acknowledged, the recipient's before it is
 * saved).
 *
 * Like `tests/helpers/file_endpoint.ts` it prints one JSON line when ready
 * (`{"ready": true, "port": N}`; the sender prints it once connected) and one when the
 * bytes are sent or written and the file closed: `{"done": true, "bytes": N}` (and
 * `"backgroundSyncs": N` from `receive-durable`, the syncs it started as it wrote). On
 * failure it prints `{"error": ...}` and exits 1.
 *
 * @module
 */

import { BackgroundSync } from "../transport/background_sync.ts";
import { type ByteSink, type ByteSource, writeFull } from "../transport/file_io.ts";

const PIECE = 256 * 1024;

/**
 * Copies `from` to `to` until `from` ends; returns the bytes copied. `wrote`, if
 * given, is told the bytes of each write once it is done.
 */
async function copy(
  from: ByteSource,
  to: ByteSink,
  wrote?: (n: number) => void,
): Promise<number> {
  const buffer = new Uint8Array(PIECE);
  let total = 0;
  while (true) {
    const n = await from.read(buffer);
    if (n === null) return total;
    await writeFull(to, buffer.subarray(0, n));
    wrote?.(n);
    total += n;
  }
}

/**
 * Receives one connection into `path`; returns the bytes written. `durable`: syncs in
 * the background every 16 MiB and once more at the end, before it returns.
 */
async function receive(
  path: string,
  durable: boolean,
): Promise<{ bytes: number; backgroundSyncs?: number }> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  console.log(JSON.stringify({ ready: true, port: (listener.addr as Deno.NetAddr).port }));
  const conn = await listener.accept();
  listener.close();
  using file = await Deno.open(path, { write: true, create: true, truncate: true });
  const syncs = durable ? new BackgroundSync(path) : null;
  try {
    const bytes = await copy(conn, file, syncs === null ? undefined : (n) => syncs.wrote(n));
    if (syncs !== null) {
      await syncs.syncFinally(file);
      return { bytes, backgroundSyncs: syncs.started };
    }
    return { bytes };
  } finally {
    await syncs?.close();
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
    let done: { bytes: number; backgroundSyncs?: number };
    if ((mode === "receive" || mode === "receive-durable") && args.length === 1) {
      done = await receive(args[0], mode === "receive-durable");
    } else if (mode === "send" && args.length === 2) {
      const port = Number(args[0]);
      if (!Number.isInteger(port) || port <= 0 || port > 65535) {
        throw new Error(`send: bad port "${args[0]}"`);
      }
      done = { bytes: await send(port, args[1]) };
    } else {
      throw new Error("usage: raw_copy.ts receive PATH | receive-durable PATH | send PORT PATH");
    }
    console.log(JSON.stringify({ done: true, ...done }));
    Deno.exit(0);
  } catch (err) {
    console.log(JSON.stringify({ error: err instanceof Error ? err.message : String(err) }));
    Deno.exit(1);
  }
}
