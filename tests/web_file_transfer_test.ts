/**
 * The page's file transfers (web/file_transfer.ts over web/chat_socket.ts) without a
 * browser: Deno's own WebSocket, `File` and `Blob` run the page's modules against a real
 * server, with a terminal user (the client library's `FileTransfers`) on the other side.
 * Cases the browser tests do not reach: a file of zero bytes both ways, and an upload
 * that resumes at the server's offset when the page sends the same file again after its
 * connection was closed (a reload); transfers both ways under a server's small
 * `--max-queue` (over a WebSocket, unread requests past it close the socket); and the
 * pure pieces (which bytes of a `file_data`
 * continue a download, byte counts for people).
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { FileTransfers } from "../client/file_transfer.ts";
import {
  LARGE_CHUNKS_FEATURE,
  LARGE_FILE_CHUNK_BYTES,
  MAX_FILE_FRAME_BYTES,
} from "../protocol/file_chunks.ts";
import { SERVER_FEATURES } from "../protocol/hello.ts";
import type { FileTransferEvent } from "../transport/file_transfer_events.ts";
import {
  formatBytes,
  freshBytes,
  readShape,
  type Transfer,
  uploadWindow,
} from "../web/file_transfer.ts";
import { sha256Of } from "./helpers/files.ts";
import { connectClient, testServer, until } from "./helpers/harness.ts";
import { asPage, page } from "./helpers/web_page.ts";

const WAIT_MS = 60_000;

function randomBytes(size: number, seed: number): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(size);
  let x = seed;
  for (let i = 0; i < size; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    bytes[i] = x >>> 24;
  }
  return bytes;
}

/** `promise`, or a failure after `ms` (a transfer that never ends fails the test, not hangs it). */
async function within<T>(promise: Promise<T>, what: string, ms = WAIT_MS): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) =>
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms)
  );
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Asserts that a page's upload ended well: `uploaded`, or `delivered` when the recipient,
 * reading along, had every byte and its `file_done` was taken before the acknowledgement
 * of the last chunk came back (the server takes it while that chunk is being synced, and
 * tells the sender at once: a slow sync on a loaded machine made this test flaky when it
 * asked for `uploaded` only).
 */
function assertSent(sent: Transfer): void {
  assert.ok(
    sent.state === "uploaded" || sent.state === "delivered",
    `${sent.state}: ${JSON.stringify(sent.error)}`,
  );
}

/** What {@linkcode withPageAndBob} gives its test. */
interface PageAndBob {
  tmp: string;
  /** Bob's file events. */
  events: FileTransferEvent[];
  /** Bob's transfers: a terminal client's, accepting every offer into `tmp/bob`. */
  bobFiles: FileTransfers;
  /** Alice on the browser page. */
  alice: Awaited<ReturnType<typeof page>>;
}

/**
 * Runs `fn` with a server of `options`, bob on a terminal client and alice on the page,
 * then closes them all and removes the temporary folder.
 */
async function withPageAndBob(
  options: Parameters<typeof testServer>[0],
  fn: (t: PageAndBob) => Promise<void>,
): Promise<void> {
  const tmp = await Deno.makeTempDir();
  const server = await testServer(options);
  const events: FileTransferEvent[] = [];
  const bob = await connectClient(server, "bob");
  const bobFiles = new FileTransfers(bob, {
    onEvent: (e) => events.push(e),
    acceptDir: join(tmp, "bob"),
  });
  const alice = await asPage(server, () => page(server, "alice"));
  try {
    await fn({ tmp, events, bobFiles, alice });
  } finally {
    alice.chat.close();
    await bobFiles.close();
    await bob.close();
    await server.shutdown();
    await Deno.remove(tmp, { recursive: true });
  }
}

/**
 * `bytes` written to `path`, offered by a terminal client's `files` to the page `alice`,
 * accepted there: asserts the page saved them whole.
 */
async function pageDownloads(
  alice: Awaited<ReturnType<typeof page>>,
  files: FileTransfers,
  path: string,
  bytes: Uint8Array,
): Promise<void> {
  await Deno.writeFile(path, bytes);
  const offer = await files.send("alice", path);
  await until(() => alice.files.get(`receive-${offer.file}`), "the offer", WAIT_MS);
  const received = await within(alice.files.accept(offer.file), "the download");
  assert.equal(received?.state, "saved", JSON.stringify(received?.error));
  const copy = new Uint8Array(await received!.blob!.arrayBuffer());
  assert.equal(sha256Hex(copy), sha256Hex(bytes));
}

function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

Deno.test({
  name: "web file transfers: a file of zero bytes goes page -> terminal and terminal -> page",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () =>
    withPageAndBob({ webPort: 0 }, async ({ tmp, events, bobFiles, alice }) => {
      const sent = await within(alice.files.send("bob", new File([], "empty.txt")), "the upload");
      assertSent(sent);
      assert.equal(sent.sha256, sha256Hex(new Uint8Array(0)));
      const saved = await until(
        () => events.find((e) => e.type === "file_saved"),
        "bob's copy",
        WAIT_MS,
      );
      assert.equal(await sha256Of((saved as { path: string }).path), sent.sha256);

      await pageDownloads(alice, bobFiles, join(tmp, "nothing.bin"), new Uint8Array(0));
    }),
});

Deno.test({
  name:
    "web file transfers: the same file sent again after the page's socket closed resumes at the server's offset",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const tmp = await Deno.makeTempDir();
    // Paced at 256 KiB/s: the upload is under way when the first page goes.
    const server = await testServer({ webPort: 0, rateFileBytesPerSec: 256 * 1024 });
    const events: FileTransferEvent[] = [];
    const bob = await connectClient(server, "bob");
    const bobFiles = new FileTransfers(bob, {
      onEvent: (e) => events.push(e),
      acceptDir: join(tmp, "bob"),
    });
    // Larger than the chunks the first page can have sent when it goes (its window, two
    // large chunks, and the one sent on the first acknowledgement): never complete then.
    const bytes = randomBytes(3 * LARGE_FILE_CHUNK_BYTES + 12_003, 5);
    const file = new File([bytes], "resume.bin");
    try {
      const first = await asPage(server, () => page(server, "alice"));
      const sending = first.files.send("bob", file);
      await until(
        () => first.changes.find((t) => t.state === "uploading" && t.bytes >= 512 * 1024),
        "half a MiB uploaded",
        WAIT_MS,
      );
      first.chat.close();
      const ended = await within(sending, "the first upload's end");
      assert.equal(ended.state, "failed");

      const second = await asPage(server, () => page(server, "alice"));
      try {
        const sent = await within(second.files.send("bob", file), "the resumed upload");
        assertSent(sent);
        assert.equal(sent.file, ended.file, "the same file on the server");
        const resumedAt = second.changes.find((t) => t.state === "uploading")!.bytes;
        assert.ok(resumedAt >= 512 * 1024, `resumed at ${resumedAt}, not from the start`);
        const saved = await until(
          () => events.find((e) => e.type === "file_saved"),
          "bob's copy",
          WAIT_MS,
        );
        assert.equal(await sha256Of((saved as { path: string }).path), sha256Hex(bytes));
      } finally {
        second.chat.close();
      }
    } finally {
      await bobFiles.close();
      await bob.close();
      await server.shutdown();
      await Deno.remove(tmp, { recursive: true });
    }
  },
});

/** The small `--max-queue` of the test below. */
const SMALL_QUEUE_BYTES = 256 * 1024;

Deno.test({
  name: "web file transfers: under a small --max-queue the page's chunks stay within it, both ways",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () =>
    withPageAndBob(
      { webPort: 0, maxQueueBytes: SMALL_QUEUE_BYTES },
      async ({ tmp, events, bobFiles, alice }) => {
        assert.equal(alice.chat.maxQueue, SMALL_QUEUE_BYTES, "the server's hello says its bound");
        const bytes = randomBytes(1024 * 1024 + 11, 6);
        const sent = await within(
          alice.files.send("bob", new File([bytes], "up.bin")),
          "the upload",
        );
        assertSent(sent);
        const saved = await until(
          () => events.find((e) => e.type === "file_saved"),
          "bob's copy",
          WAIT_MS,
        );
        assert.equal(await sha256Of((saved as { path: string }).path), sha256Hex(bytes));

        await pageDownloads(
          alice,
          bobFiles,
          join(tmp, "down.bin"),
          randomBytes(1024 * 1024 + 13, 7),
        );
      },
    ),
});

Deno.test({
  name:
    "web file transfers: the page downloads in file_data frames of a large chunk from a server sharing large_chunks",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () =>
    withPageAndBob({ webPort: 0 }, async ({ tmp, bobFiles, alice }) => {
      assert.ok(alice.chat.features.includes(LARGE_CHUNKS_FEATURE));
      const frames: number[] = [];
      alice.chat.onBody((header, body) => {
        if (header.type === "file_data") frames.push(body.length);
      });
      const bytes = randomBytes(3 * LARGE_FILE_CHUNK_BYTES + 4321, 8);
      await pageDownloads(alice, bobFiles, join(tmp, "down.bin"), bytes);
      // One large frame per read (not two of 512 KiB), the rest in the last.
      assert.deepEqual(frames, [
        LARGE_FILE_CHUNK_BYTES,
        LARGE_FILE_CHUNK_BYTES,
        LARGE_FILE_CHUNK_BYTES,
        4321,
      ]);
    }),
});

Deno.test("web file transfers: an upload's chunks fit the server's frame and queue bounds", () => {
  const KiB = 1024;
  const large = SERVER_FEATURES; // a server sharing `large_chunks`, as today's does
  const older = SERVER_FEATURES.filter((f) => f !== LARGE_CHUNKS_FEATURE);
  // The defaults (1 MiB frames, 4 MiB queue) to a server sharing `large_chunks`: chunks of
  // 1 MiB less 4 KiB, two in flight (the same 2 MiB as four of 512 KiB).
  assert.deepEqual(uploadWindow(1024 * KiB, 4096 * KiB, large), {
    chunkBytes: LARGE_FILE_CHUNK_BYTES,
    window: 2,
  });
  // A server that does not share it: 512 KiB chunks, four in flight.
  assert.deepEqual(uploadWindow(1024 * KiB, 4096 * KiB, older), {
    chunkBytes: MAX_FILE_FRAME_BYTES,
    window: 4,
  });
  // An older server, which does not say its queue bound either.
  assert.deepEqual(uploadWindow(1024 * KiB, null, older), { chunkBytes: 512 * KiB, window: 4 });
  assert.deepEqual(uploadWindow(1024 * KiB, null, large), {
    chunkBytes: LARGE_FILE_CHUNK_BYTES,
    window: 2,
  });
  // Smaller frames (`--max-frame`): smaller chunks, each frame within the bound.
  for (const features of [large, older]) {
    assert.deepEqual(uploadWindow(64 * KiB, 4096 * KiB, features), {
      chunkBytes: 63 * KiB,
      window: 4,
    });
    assert.deepEqual(uploadWindow(768 * KiB, 4096 * KiB, features), {
      chunkBytes: features === large ? 767 * KiB : 512 * KiB,
      window: features === large ? 2 : 4,
    });
  }
  // Never more than 2 MiB in flight, nor a frame over the server's largest.
  for (const frame of [64, 256, 600, 1024, 2048, 4096].map((n) => n * KiB)) {
    for (const features of [large, older]) {
      const { chunkBytes, window } = uploadWindow(frame, null, features);
      assert.ok(chunkBytes + KiB <= frame, `frame ${frame}`);
      assert.ok(chunkBytes <= LARGE_FILE_CHUNK_BYTES);
      assert.ok(window >= 1 && window * chunkBytes <= 2048 * KiB, `frame ${frame}`);
    }
  }
  // A small queue: what is in flight stays under three quarters of it.
  for (const queue of [64 * KiB, 256 * KiB, 1024 * KiB, 2048 * KiB]) {
    for (const features of [large, older]) {
      const { chunkBytes, window } = uploadWindow(1024 * KiB, queue, features);
      assert.ok(window >= 1);
      assert.ok(window * (chunkBytes + KiB) <= queue * 3 / 4, `queue ${queue}`);
    }
  }
});

Deno.test("web file transfers: a download asks for a large chunk's frames from a server sharing large_chunks", () => {
  const older = SERVER_FEATURES.filter((f) => f !== LARGE_CHUNKS_FEATURE);
  assert.deepEqual(readShape(SERVER_FEATURES), {
    frame: LARGE_FILE_CHUNK_BYTES,
    length: LARGE_FILE_CHUNK_BYTES,
  });
  // A server that does not share it: 512 KiB frames, two a read, as before.
  assert.deepEqual(readShape(older), { frame: MAX_FILE_FRAME_BYTES, length: 1024 * 1024 });
});

Deno.test("web file transfers: a data frame gives only the bytes that continue the download", () => {
  const body = Uint8Array.from([1, 2, 3, 4]);
  assert.deepEqual(freshBytes(0, 0, body), body);
  // Sent again after a reconnect, partly received already: its new bytes only.
  assert.deepEqual(freshBytes(10, 8, body), Uint8Array.from([3, 4]));
  // Entirely received already.
  assert.equal(freshBytes(12, 8, body), null);
  assert.equal(freshBytes(13, 8, body), null);
  // Past a gap (a short read, with another read in flight): dropped, read again.
  assert.equal(freshBytes(10, 11, body), null);
  assert.deepEqual(freshBytes(11, 11, body), body);
});

Deno.test("web file transfers: byte counts for people", () => {
  assert.equal(formatBytes(0), "0 B");
  assert.equal(formatBytes(1023), "1023 B");
  assert.equal(formatBytes(1536), "1.5 KiB");
  assert.equal(formatBytes(3 * 1024 * 1024 + 4321), "3.0 MiB");
  assert.equal(formatBytes(1024 ** 3 + 1), "1.00 GiB");
});
