import assert from "node:assert/strict";
import tls from "node:tls";
import { ca, cert, key } from "../tests/helpers/tls.ts";
import { NodeSocketChannel } from "./node_socket_channel.ts";
import { OutboundQueue } from "./outbound_queue.ts";
import { ServerTls, type ServerTlsConn } from "./server_tls.ts";

/** A TLS loopback pair: the client a `node:tls` socket (as client/pinned_tls.ts dials), the server's end as the server serves it. */
async function tlsPair(
  spy?: (chunk: Uint8Array) => void,
): Promise<{ client: NodeSocketChannel; server: ServerTlsConn; close(): void }> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const accepted = listener.accept();
  const socket = tls.connect({ host: "127.0.0.1", port, ca });
  if (spy !== undefined) {
    const write = socket.write.bind(socket) as (chunk: Uint8Array, cb: () => void) => boolean;
    socket.write = ((chunk: Uint8Array, cb: () => void) => {
      spy(chunk);
      return write(chunk, cb);
    }) as typeof socket.write;
  }
  const secure = new Promise<void>((resolve, reject) => {
    socket.once("secureConnect", resolve);
    socket.once("error", reject);
  });
  const server = new ServerTls({ cert, key }).wrap(await accepted);
  listener.close();
  await Promise.all([secure, server.handshake(30_000)]);
  // Little read ahead: a reader that does not read holds the writer back soon.
  const client = new NodeSocketChannel(socket, { highWater: 16 * 1024 });
  return {
    client,
    server,
    close() {
      client.close();
      server.close();
    },
  };
}

/** Frame `i` of the test stream: a length that varies and bytes that say where they are. */
function frame(i: number): Uint8Array {
  const bytes = new Uint8Array(200 + (i * 7919) % 3000);
  for (let j = 0; j < bytes.length; j++) bytes[j] = (i * 131 + j * 13) & 0xff;
  return bytes;
}

/**
 * Queues `count` distinct frames on `queue` with `pushCopy` (pooled buffers, reused from
 * write to write), at most `window` bytes unwritten at once; `behind` runs once the
 * queue first holds `window` bytes the socket did not take (or all are queued).
 */
async function pushFrames(
  queue: OutboundQueue,
  count: number,
  window: number,
  behind: () => void,
): Promise<void> {
  for (let i = 0; i < count; i++) {
    queue.pushCopy(frame(i));
    if (queue.queuedBytes > window) {
      behind();
      assert.ok(await queue.whenWritten(queue.bytesOut + queue.queuedBytes - window / 2));
    }
  }
  behind();
  await queue.flush();
}

/** Reads the `count` frames of the test stream from `channel` and checks every byte. */
async function readFrames(
  channel: { read(p: Uint8Array): Promise<number | null> },
  count: number,
): Promise<void> {
  const buffer = new Uint8Array(7000);
  let i = 0;
  let expected = frame(0);
  let at = 0;
  while (i < count) {
    const n = await channel.read(buffer);
    assert.notEqual(n, null, `the stream ended at frame ${i} of ${count}`);
    for (let k = 0; k < n!; k++) {
      if (buffer[k] !== expected[at]) {
        assert.fail(`frame ${i}, byte ${at}: got ${buffer[k]}, sent ${expected[at]}`);
      }
      if (++at === expected.length && ++i < count) {
        expected = frame(i);
        at = 0;
      }
    }
  }
}

Deno.test("NodeSocketChannel: write hands the caller's bytes to the socket, not a copy of them", async () => {
  const seen: Uint8Array[] = [];
  const pair = await tlsPair((chunk) => seen.push(chunk));
  try {
    const bytes = new Uint8Array(64 * 1024);
    for (let j = 0; j < bytes.length; j++) bytes[j] = j * 7;
    const part = bytes.subarray(1000, 41_000);
    assert.equal(await pair.client.write(part), part.length);
    assert.equal(seen.length, 1);
    assert.equal(seen[0].buffer, bytes.buffer, "the socket got a copy");
    assert.equal(seen[0].byteOffset, 1000);
    assert.equal(seen[0].byteLength, 40_000);
    const got = new Uint8Array(part.length);
    for (let n = 0; n < got.length;) n += (await pair.server.read(got.subarray(n)))!;
    assert.deepEqual(got, part);
  } finally {
    pair.close();
  }
});

Deno.test("NodeSocketChannel: pooled buffers reused once each write settles reach the peer intact, both ways, under back-pressure", async () => {
  const count = 6000; // ~10 MB each way
  const pair = await tlsPair();
  try {
    const failed = (err: unknown) => {
      throw err;
    };
    const fromClient = new OutboundQueue(pair.client, { onWriteFailed: failed });
    const fromServer = new OutboundQueue(pair.server, { onWriteFailed: failed });
    // Neither side reads until its peer is behind: writes wait on the socket meanwhile.
    let clientBehind!: () => void;
    let serverBehind!: () => void;
    const clientWaits = new Promise<void>((resolve) => clientBehind = resolve);
    const serverWaits = new Promise<void>((resolve) => serverBehind = resolve);
    const clientPushed = pushFrames(fromClient, count, 1024 * 1024, clientBehind);
    const serverPushed = pushFrames(fromServer, count, 1024 * 1024, serverBehind);
    await Promise.all([clientWaits, serverWaits]);
    await Promise.all([
      readFrames(pair.server, count),
      readFrames(pair.client, count),
      clientPushed,
      serverPushed,
    ]);
  } finally {
    pair.close();
  }
});
