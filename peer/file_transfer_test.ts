import assert from "node:assert/strict";
import { concatBytes } from "../protocol/bytes.ts";
import { withTempDir, writePartFile } from "../tests/helpers/files.ts";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { partFileName } from "../protocol/file_names.ts";
import { FileSource } from "../transport/file_io.ts";
import type { FileTransferEvent } from "../transport/file_transfer_events.ts";
import {
  CHUNK_BYTES,
  PeerFileError,
  type PeerFileSession,
  PeerFileTransfers,
  QUEUE_BYTES,
  WINDOW_BYTES,
} from "./file_transfer.ts";
import { MAX_RECORD_PLAINTEXT } from "./secure_channel.ts";
import type { PeerFileMessage } from "./messages.ts";

const encoder = new TextEncoder();

function sha(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** A session whose messages land in `sent` (bodies copied). */
class FakeSession implements PeerFileSession {
  readonly sent: { message: PeerFileMessage; body: Uint8Array }[] = [];
  closed = false;
  onSend: ((message: PeerFileMessage, body: Uint8Array) => void) | null = null;

  constructor(readonly remoteNick: string) {}

  /** Nothing waits: every message is delivered at once. */
  whenQueuedBelow(_bytes: number): Promise<void> {
    return Promise.resolve();
  }

  sendFileMessage(message: PeerFileMessage, body: Uint8Array = new Uint8Array(0)): void {
    const copy = body.slice();
    this.sent.push({ message, body: copy });
    this.onSend?.(message, copy);
  }
}

/** Two sides wired to each other in memory, messages delivered in order. */
function wired(dir: string, progressIntervalMs?: number) {
  const aliceSession = new FakeSession("bob");
  const bobSession = new FakeSession("alice");
  const aliceEvents: FileTransferEvent[] = [];
  const bobEvents: FileTransferEvent[] = [];
  const alice = new PeerFileTransfers(aliceSession, {
    onEvent: (e) => aliceEvents.push(e),
    ...(progressIntervalMs !== undefined ? { progressIntervalMs } : {}),
  });
  const bob = new PeerFileTransfers(bobSession, {
    downloadDir: join(dir, "dl"),
    onEvent: (e) => bobEvents.push(e),
  });
  let chain = Promise.resolve();
  aliceSession.onSend = (message, body) => {
    chain = chain.then(() => bob.handle({ message, body }));
  };
  bobSession.onSend = (message, body) => {
    chain = chain.then(() => alice.handle({ message, body }));
  };
  return { alice, bob, aliceSession, bobSession, aliceEvents, bobEvents };
}

async function until<T>(find: () => T | undefined, what: string): Promise<T> {
  const deadline = Date.now() + 5000;
  while (true) {
    const found = find();
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

Deno.test("peer files: offer, accept, data in a window, the end, saved, completed", async () => {
  await withTempDir(async (dir) => {
    const { alice, bob, aliceEvents, bobEvents, aliceSession } = wired(dir);
    const bytes = new Uint8Array(3 * 1024 * 1024 + 5).map((_, i) => (i * 7) & 0xff);
    const path = join(dir, "pattern.bin");
    await Deno.writeFile(path, bytes);
    const sending = alice.send(path);
    const offered = await until(() => bob.offers[0], "the offer");
    assert.equal(offered.name, "pattern.bin");
    assert.equal(offered.sha256, undefined, "no SHA-256: the session authenticates the bytes");
    const saved = await bob.accept(offered.file);
    await sending;
    const ends = aliceSession.sent.filter((s) => s.message.type === "peer_file_end");
    assert.deepEqual(ends.map((e) => e.message), [{ type: "peer_file_end", fid: offered.file }]);
    const last = aliceSession.sent.findLastIndex((s) => s.message.type === "peer_file_data");
    assert.equal(aliceSession.sent[last + 1].message.type, "peer_file_end", "after the last byte");
    const savedEvent = bobEvents.find((e) => e.type === "file_saved");
    assert.ok(savedEvent?.type === "file_saved" && savedEvent.sha256 === undefined);
    assert.equal(saved, join(dir, "dl", "pattern.bin"));
    assert.deepEqual(await Deno.readFile(saved), bytes);
    const answers = aliceEvents.filter((e) => e.type === "file_answer").map((e) =>
      e.type === "file_answer" ? e.answer : ""
    );
    assert.deepEqual(answers, ["accepted", "completed"]);
    assert.ok(bobEvents.some((e) => e.type === "file_saved"));
    const chunks = aliceSession.sent.filter((s) => s.message.type === "peer_file_data");
    assert.ok(chunks.every((c) => c.body.length <= CHUNK_BYTES), "chunks of at most CHUNK_BYTES");
    assert.ok(CHUNK_BYTES + 512 <= MAX_RECORD_PLAINTEXT, "a chunk and its header fit in a record");
    await alice.close();
    await bob.close();
  });
});

Deno.test("peer files: a decline reaches the sender; unknown files are ignored", async () => {
  await withTempDir(async (dir) => {
    const { alice, bob, aliceEvents } = wired(dir);
    const path = join(dir, "x.txt");
    await Deno.writeTextFile(path, "x");
    const sending = alice.send(path);
    const offered = await until(() => bob.offers[0], "the offer");
    bob.decline(offered.file);
    await assert.rejects(sending, (err: unknown) => {
      assert.ok(err instanceof PeerFileError);
      assert.equal(err.code, "declined");
      return true;
    });
    assert.ok(aliceEvents.some((e) => e.type === "file_answer" && e.answer === "declined"));
    assert.throws(() => bob.decline(99), PeerFileError);
    await assert.rejects(bob.accept(99), PeerFileError);
    // Messages about files nobody knows change nothing.
    await bob.handle({
      message: { type: "peer_file_data", fid: 42, offset: 0 },
      body: encoder.encode("stray"),
    });
    await alice.handle({
      message: { type: "peer_file_ack", fid: 42, offset: 10 },
      body: new Uint8Array(),
    });
    await alice.handle({
      message: { type: "peer_file_done", fid: 42, ok: true },
      body: new Uint8Array(),
    });
    await alice.close();
    await bob.close();
  });
});

Deno.test("peer files: a hostile sender cannot write past the size, out of order, or outside", async () => {
  await withTempDir(async (dir) => {
    const session = new FakeSession("mallory");
    const events: FileTransferEvent[] = [];
    const dl = join(dir, "dl");
    const bob = new PeerFileTransfers(session, { acceptDir: dl, onEvent: (e) => events.push(e) });
    const content = encoder.encode("0123456789");
    const offer = (fid: number, name: string) =>
      bob.handle({
        message: { type: "peer_file_offer", fid, name, size: 10, key: sha(content) },
        body: new Uint8Array(),
      });
    const data = (fid: number, offset: number, body: Uint8Array) =>
      bob.handle({ message: { type: "peer_file_data", fid, offset }, body });

    await offer(1, "../../../etc/cron.d/evil");
    await until(() => events.find((e) => e.type === "file_receiving"), "receiving 1");
    await data(1, 0, encoder.encode("0123456789+overflow"));
    const failed = await until(() => events.find((e) => e.type === "file_failed"), "failure");
    assert.equal(failed.type === "file_failed" && failed.code, "too_long");
    assert.ok(
      session.sent.some((s) => s.message.type === "peer_file_decline" && s.message.fid === 1),
    );

    await offer(2, "\x1b]0;pwn\x07/..\\C:\\gap.txt");
    await until(
      () => events.filter((e) => e.type === "file_receiving").length === 2 || undefined,
      "2",
    );
    await data(2, 5, content.subarray(5));
    await until(
      () => events.find((e) => e.type === "file_failed" && e.file === 2 && e.code === "bad_offset"),
      "gap refused",
    );

    await offer(3, "C:\\Users\\bob\\good.txt");
    await until(
      () => events.filter((e) => e.type === "file_receiving").length === 3 || undefined,
      "3",
    );
    await data(3, 0, content);
    await bob.handle({ message: { type: "peer_file_end", fid: 3 }, body: new Uint8Array() });
    const saved = await until(() => events.find((e) => e.type === "file_saved"), "saved");
    assert.equal(saved.type === "file_saved" && saved.path, join(dl, "good.txt"));
    // Everything stayed inside the download folder; no partial file of a failure is renamed.
    for await (const entry of Deno.readDir(dir)) assert.equal(entry.name, "dl");
    const names: string[] = [];
    for await (const entry of Deno.readDir(dl)) names.push(entry.name);
    assert.ok(names.includes("good.txt"));
    assert.ok(names.every((n) => !n.includes("/") && !n.includes("\x1b")));
    await bob.close();
  });
});

Deno.test("peer files: a receiver asking past the end gets an abort", async () => {
  await withTempDir(async (dir) => {
    const session = new FakeSession("mallory");
    const alice = new PeerFileTransfers(session, { onEvent: () => {} });
    const path = join(dir, "x.txt");
    await Deno.writeTextFile(path, "0123456789");
    const sending = alice.send(path);
    await until(() => session.sent.find((s) => s.message.type === "peer_file_offer"), "offer");
    await alice.handle({
      message: { type: "peer_file_accept", fid: 1, offset: 11 },
      body: new Uint8Array(),
    });
    await assert.rejects(sending, PeerFileError);
    assert.ok(session.sent.some((s) => s.message.type === "peer_file_abort"));
    await alice.close();
  });
});

Deno.test("peer files: the sender offers at once, with no hashing pass before", async () => {
  await withTempDir(async (dir) => {
    // Progress as often as it comes: a hashing pass would report every block.
    const { alice, bob, aliceEvents } = wired(dir, 0);
    const path = join(dir, "big.bin");
    await Deno.writeFile(path, new Uint8Array(2 * 1024 * 1024 + 3));
    const sending = alice.send(path);
    await bob.accept((await until(() => bob.offers[0], "the offer")).file);
    await sending;
    assert.ok(!aliceEvents.some((e) => e.type === "file_hashing"), "no hashing before the offer");
    await alice.close();
    await bob.close();
  });
});

Deno.test("peer files: a receiver saves only after the sender's end, whatever comes first", async () => {
  await withTempDir(async (dir) => {
    const session = new FakeSession("alice");
    const events: FileTransferEvent[] = [];
    const bob = new PeerFileTransfers(session, {
      acceptDir: join(dir, "dl"),
      onEvent: (e) => events.push(e),
    });
    const content = encoder.encode("hello, world");
    const handle = (message: PeerFileMessage, body = new Uint8Array()) =>
      bob.handle({ message, body });
    // File 1: every byte, then the end. File 2: the end first (a sender's end before
    // the receiver's write is done), then the bytes.
    for (const [fid, endFirst] of [[1, false], [2, true]] as const) {
      await handle({
        type: "peer_file_offer",
        fid,
        name: `f${fid}.txt`,
        size: 12,
        key: sha(content),
      });
      await until(
        () =>
          session.sent.find((s) => s.message.type === "peer_file_accept" && s.message.fid === fid),
        "accept",
      );
      if (endFirst) await handle({ type: "peer_file_end", fid });
      await handle({ type: "peer_file_data", fid, offset: 0 }, content);
      if (!endFirst) {
        // Written and complete, but not saved before the end came.
        await until(
          () =>
            session.sent.find((s) => s.message.type === "peer_file_ack" && s.message.fid === fid),
          "ack",
        );
        assert.ok(!events.some((e) => e.type === "file_saved" && e.file === fid));
        await handle({ type: "peer_file_end", fid });
      }
      const saved = await until(
        () => events.find((e) => e.type === "file_saved" && e.file === fid),
        "saved",
      );
      assert.ok(saved.type === "file_saved");
      assert.deepEqual(await Deno.readFile(saved.path), content);
    }
    await bob.close();
  });
});

/** A session whose data waits in a queue the test drains, as a slow connection would. */
class QueueingSession extends FakeSession {
  queued = 0;
  mostQueued = 0;
  #waiters: { bytes: number; resolve: () => void }[] = [];
  /** Resolves once the sender waits for the queue (replaced after each wait). */
  blocked: Promise<void>;
  #onBlocked!: () => void;

  constructor(remoteNick: string) {
    super(remoteNick);
    this.blocked = new Promise((resolve) => this.#onBlocked = resolve);
  }

  override sendFileMessage(message: PeerFileMessage, body?: Uint8Array): void {
    super.sendFileMessage(message, body);
    this.queued += body?.length ?? 0;
    this.mostQueued = Math.max(this.mostQueued, this.queued);
  }

  override whenQueuedBelow(bytes: number): Promise<void> {
    if (this.queued <= bytes) return Promise.resolve();
    const waited = new Promise<void>((resolve) => this.#waiters.push({ bytes, resolve }));
    this.#onBlocked();
    return waited;
  }

  /** The connection writes everything queued. */
  drain(): void {
    this.queued = 0;
    this.blocked = new Promise((resolve) => this.#onBlocked = resolve);
    for (const waiter of this.#waiters.splice(0)) waiter.resolve();
  }
}

Deno.test("peer files: the sender queues at most QUEUE_BYTES ahead of the connection, whatever the window", async () => {
  await withTempDir(async (dir) => {
    const aliceSession = new QueueingSession("bob");
    const bobSession = new FakeSession("alice");
    const alice = new PeerFileTransfers(aliceSession, { onEvent: () => {} });
    const bob = new PeerFileTransfers(bobSession, {
      acceptDir: join(dir, "dl"),
      onEvent: () => {},
    });
    // Bob receives and acknowledges at once: the window never holds the sender back.
    let chain = Promise.resolve();
    aliceSession.onSend = (message, body) => {
      chain = chain.then(() => bob.handle({ message, body }));
    };
    bobSession.onSend = (message, body) => {
      chain = chain.then(() => alice.handle({ message, body }));
    };
    assert.ok(WINDOW_BYTES >= QUEUE_BYTES + 4 * CHUNK_BYTES, "the window alone allows more");
    const bytes = new Uint8Array(WINDOW_BYTES).map((_, i) => (i * 13) & 0xff);
    const path = join(dir, "queued.bin");
    await Deno.writeFile(path, bytes);
    const sending = alice.send(path);
    const dataSent = () => aliceSession.sent.filter((s) => s.message.type === "peer_file_data");
    // Each wait: nothing more is read while the queue is above QUEUE_BYTES.
    let drains = 0;
    while (true) {
      const outcome = await Promise.race([
        aliceSession.blocked.then(() => "blocked"),
        sending.then(() => "sent"),
      ]);
      if (outcome === "sent") break;
      const before = dataSent().length;
      await chain;
      assert.equal(dataSent().length, before, "no chunk is queued while the sender waits");
      assert.ok(
        aliceSession.mostQueued <= QUEUE_BYTES + 2 * CHUNK_BYTES,
        `queued ${aliceSession.mostQueued} bytes, more than the queue bound allows`,
      );
      aliceSession.drain();
      drains++;
    }
    assert.ok(drains >= 2, `the sender waited for the connection (${drains} times)`);
    const saved = join(dir, "dl", "queued.bin");
    assert.deepEqual(await Deno.readFile(saved), bytes);
    await alice.close();
    await bob.close();
  });
});

Deno.test("peer files: a complete .part from an earlier session: the sender compares its hash, sends only the end", async () => {
  await withTempDir(async (dir) => {
    const bytes = new Uint8Array(2 * 1024 * 1024 + 9).map((_, i) => (i * 3) & 0xff);
    const path = join(dir, "whole.bin");
    await Deno.writeFile(path, bytes);
    await writePartFile(join(dir, "dl"), path, bytes);
    const { alice, bob, aliceSession, bobSession, aliceEvents } = wired(dir, 0);
    const sending = alice.send(path);
    const saved = await bob.accept((await until(() => bob.offers[0], "the offer")).file);
    await sending;
    assert.deepEqual(await Deno.readFile(saved), bytes);
    const accepts = bobSession.sent.filter((s) => s.message.type === "peer_file_accept");
    assert.deepEqual(accepts.map((a) => a.message), [
      { type: "peer_file_accept", fid: 1, offset: bytes.length, prefix: sha(bytes) },
    ]);
    assert.ok(!aliceSession.sent.some((s) => s.message.type === "peer_file_data"));
    const hashed = aliceEvents.filter((e) => e.type === "file_hashing").at(-1);
    assert.ok(hashed?.type === "file_hashing" && hashed.done && hashed.bytes === bytes.length);
    await alice.close();
    await bob.close();
  });
});

Deno.test("peer files: a .part of other bytes under the same name: the sender's prefix check restarts it from 0", async () => {
  await withTempDir(async (dir) => {
    const bytes = new Uint8Array(3 * 1024 * 1024 + 1).map((_, i) => (i * 11) & 0xff);
    const path = join(dir, "changed.bin");
    await Deno.writeFile(path, bytes);
    // The first MiB on bob's side differs (the file changed since, in its middle).
    const stale = bytes.slice(0, 1024 * 1024);
    stale[1000] ^= 0xff;
    await writePartFile(join(dir, "dl"), path, stale);
    const { alice, bob, aliceSession, bobSession } = wired(dir);
    const sending = alice.send(path);
    const saved = await bob.accept((await until(() => bob.offers[0], "the offer")).file);
    await sending;
    assert.deepEqual(await Deno.readFile(saved), bytes);
    const accepts = bobSession.sent.filter((s) => s.message.type === "peer_file_accept");
    assert.deepEqual(
      accepts.map((a) => a.message.type === "peer_file_accept" && a.message.offset),
      [
        1024 * 1024,
        0,
      ],
    );
    const types = aliceSession.sent.map((s) => s.message.type);
    assert.equal(types.indexOf("peer_file_restart"), 1, "restarted before any data");
    assert.equal(types.filter((t) => t === "peer_file_end").length, 1);
    const done = bobSession.sent.filter((s) => s.message.type === "peer_file_done");
    assert.deepEqual(done.map((d) => d.message.type === "peer_file_done" && d.message.ok), [true]);
    await alice.close();
    await bob.close();
  });
});

Deno.test("peer files: a restart empties the .part and accepts from 0 without a prefix, once; a second gives up as corrupt", async () => {
  await withTempDir(async (dir) => {
    const bytes = new Uint8Array(300_000).map((_, i) => (i * 17) & 0xff);
    const path = join(dir, "held.bin");
    await Deno.writeFile(path, bytes);
    const part = await writePartFile(join(dir, "dl"), path, bytes.subarray(0, 100_000));
    const source = await FileSource.openToStream(path);
    const key = await source.resumeKey();
    source.close();
    const session = new FakeSession("mallory");
    const events: FileTransferEvent[] = [];
    const bob = new PeerFileTransfers(session, {
      acceptDir: join(dir, "dl"),
      onEvent: (e) => events.push(e),
    });
    const handle = (message: PeerFileMessage) => bob.handle({ message, body: new Uint8Array() });
    const accepts = () =>
      session.sent.flatMap((s) => s.message.type === "peer_file_accept" ? [s.message] : []);
    await handle({ type: "peer_file_offer", fid: 7, name: "held.bin", size: bytes.length, key });
    await until(() => accepts()[0], "the first accept");
    assert.deepEqual(accepts(), [
      {
        type: "peer_file_accept",
        fid: 7,
        offset: 100_000,
        prefix: sha(bytes.subarray(0, 100_000)),
      },
    ]);
    await handle({ type: "peer_file_restart", fid: 7 });
    await until(() => accepts()[1], "the accept from 0");
    assert.deepEqual(accepts()[1], { type: "peer_file_accept", fid: 7, offset: 0 });
    assert.equal((await Deno.stat(part)).size, 0, "the .part file is emptied");
    await handle({ type: "peer_file_restart", fid: 7 });
    const failed = await until(() => events.find((e) => e.type === "file_failed"), "failure");
    assert.equal(failed.type === "file_failed" && failed.code, "corrupt");
    await bob.close();
  });
});

// ------------------------------------------------- streaming before the accept (v6)

const policy = { type: "peer_file_policy", accept: "all" } as const;

Deno.test("peer files: a receiver accepting every offer says so at once; one that asks does not", () => {
  const auto = new FakeSession("alice");
  new PeerFileTransfers(auto, { acceptDir: "/nonexistent", onEvent: () => {} });
  assert.deepEqual(auto.sent.map((s) => s.message), [policy]);
  const asking = new FakeSession("alice");
  new PeerFileTransfers(asking, { onEvent: () => {} });
  assert.deepEqual(asking.sent, []);
});

Deno.test("peer files: after the policy the sender streams from 0 before any accept, within its window; an accept from 0 changes nothing", async () => {
  await withTempDir(async (dir) => {
    const session = new FakeSession("bob");
    const alice = new PeerFileTransfers(session, { onEvent: () => {} });
    const bytes = new Uint8Array(WINDOW_BYTES + 3 * CHUNK_BYTES).map((_, i) => (i * 5) & 0xff);
    const path = join(dir, "early.bin");
    await Deno.writeFile(path, bytes);
    await alice.handle({ message: policy, body: new Uint8Array() });
    const sending = alice.send(path);
    const data = () => session.sent.flatMap((s) => s.message.type === "peer_file_data" ? [s] : []);
    const sentBytes = () => data().reduce((n, d) => n + d.body.length, 0);
    // No accept, no ack: the window's worth goes, then the sender waits.
    await until(() => sentBytes() >= WINDOW_BYTES - CHUNK_BYTES || undefined, "the window");
    await new Promise((resolve) => setTimeout(resolve, 50));
    // (A chunk goes while the window has room: it may pass the window by less than one.)
    assert.ok(sentBytes() < WINDOW_BYTES + CHUNK_BYTES, `${sentBytes()} bytes unacknowledged`);
    assert.equal(session.sent[0].message.type, "peer_file_offer");
    assert.deepEqual(data()[0].message, { type: "peer_file_data", fid: 1, offset: 0 });
    const handle = (message: PeerFileMessage) => alice.handle({ message, body: new Uint8Array() });
    await handle({ type: "peer_file_accept", fid: 1, offset: 0 });
    await handle({ type: "peer_file_ack", fid: 1, offset: sentBytes() });
    const end = await until(
      () => session.sent.find((s) => s.message.type === "peer_file_end"),
      "the end",
    );
    assert.deepEqual(end.message, { type: "peer_file_end", fid: 1 }, "after the accept: not early");
    // One stream: every offset once, in order, the whole file.
    const offsets = data().map((d) => d.message.type === "peer_file_data" ? d.message.offset : -1);
    assert.deepEqual(offsets, offsets.map((_, i) => i * CHUNK_BYTES));
    assert.deepEqual(concatBytes(data().map((d) => d.body)), bytes);
    await handle({ type: "peer_file_done", fid: 1, ok: true });
    await sending;
    await alice.close();
  });
});

Deno.test("peer files: a policy heard after the offer starts the stream; the end before any accept is early", async () => {
  await withTempDir(async (dir) => {
    const session = new FakeSession("bob");
    const alice = new PeerFileTransfers(session, { onEvent: () => {} });
    const path = join(dir, "small.txt");
    await Deno.writeTextFile(path, "small");
    const sending = alice.send(path);
    await until(() => session.sent[0], "the offer");
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.deepEqual(session.sent.map((s) => s.message.type), ["peer_file_offer"]);
    await alice.handle({ message: policy, body: new Uint8Array() });
    await until(() => session.sent.find((s) => s.message.type === "peer_file_end"), "the end");
    assert.deepEqual(session.sent.slice(1).map((s) => s.message), [
      { type: "peer_file_data", fid: 1, offset: 0 },
      { type: "peer_file_end", fid: 1, early: true },
    ]);
    await alice.handle({
      message: { type: "peer_file_decline", fid: 1, reason: "no" },
      body: new Uint8Array(),
    });
    await assert.rejects(sending, (err: unknown) => {
      assert.ok(err instanceof PeerFileError && err.code === "declined", String(err));
      return true;
    });
    await alice.close();
  });
});

Deno.test("peer files: data right after the offer is dropped while a resume's prefix is hashed, and after its accept until it joins up", async () => {
  await withTempDir(async (dir) => {
    const bytes = new Uint8Array(3 * 1024 * 1024 + 7).map((_, i) => (i * 29) & 0xff);
    const held = 2 * 1024 * 1024 + 100;
    const { key, session, events, bob, gated, release } = await heldResume(
      dir,
      "resumed.bin",
      bytes,
      held,
    );
    const handle = (message: PeerFileMessage, body = new Uint8Array()) =>
      bob.handle({ message, body });
    const sent = (type: string) => session.sent.filter((s) => s.message.type === type);
    await handle({ type: "peer_file_offer", fid: 3, name: "resumed.bin", size: bytes.length, key });
    await until(() => gated() === 1 || undefined, "the prefix hashed, its accept held");
    // The same offer again meanwhile is ignored (the `.part` is not opened twice).
    await handle({ type: "peer_file_offer", fid: 3, name: "resumed.bin", size: bytes.length, key });
    assert.equal(events.filter((e) => e.type === "file_offered").length, 1);
    // The sender's stream from 0, right behind its offer, and its early end: dropped, each
    // handled at once (no write, no ack), while the accept waits.
    for (let at = 0; at < 2 * CHUNK_BYTES; at += CHUNK_BYTES) {
      await handle(
        { type: "peer_file_data", fid: 3, offset: at },
        bytes.slice(at, at + CHUNK_BYTES),
      );
    }
    assert.deepEqual(sent("peer_file_accept"), []);
    release();
    await until(() => sent("peer_file_accept")[0], "the accept");
    assert.deepEqual(sent("peer_file_accept").map((s) => s.message), [
      { type: "peer_file_accept", fid: 3, offset: held, prefix: sha(bytes.subarray(0, held)) },
    ]);
    // The rest of that stream (its start dropped: past what is held) is dropped too, and
    // so is its early end; no write fails on the gap.
    const rest = 3 * CHUNK_BYTES;
    await handle({ type: "peer_file_data", fid: 3, offset: rest }, bytes.slice(rest));
    await handle({ type: "peer_file_end", fid: 3, early: true });
    assert.deepEqual(sent("peer_file_ack"), []);
    assert.deepEqual(sent("peer_file_decline"), []);
    assert.equal((await Deno.stat(join(dir, "dl", partFileName("resumed.bin", key)))).size, held);
    // The sender found the prefix its own: it goes on from `held` and ends.
    await handle({ type: "peer_file_data", fid: 3, offset: held }, bytes.slice(held));
    await handle({ type: "peer_file_end", fid: 3 });
    const saved = await until(() => events.find((e) => e.type === "file_saved"), "saved");
    assert.ok(saved.type === "file_saved");
    assert.deepEqual(await Deno.readFile(saved.path), bytes);
    await bob.close();
  });
});

Deno.test("peer files: closing while a resume's prefix is hashed: no accept, the .part kept, close resolves", async () => {
  await withTempDir(async (dir) => {
    const bytes = new Uint8Array(256 * 1024).map((_, i) => (i * 13) & 0xff);
    const { key, part, session, events, bob, gated, release } = await heldResume(
      dir,
      "held.bin",
      bytes,
      1000,
    );
    await bob.handle({
      message: { type: "peer_file_offer", fid: 1, name: "held.bin", size: bytes.length, key },
      body: new Uint8Array(),
    });
    await until(() => gated() === 1 || undefined, "the prefix hashed, its accept held");
    const closing = bob.close();
    const failed = await until(() => events.find((e) => e.type === "file_failed"), "stopped");
    assert.ok(failed.type === "file_failed" && failed.code === "closed", JSON.stringify(failed));
    assert.ok(bob.busy, "counted until its hashing ends");
    release();
    await closing;
    assert.ok(!bob.busy);
    assert.deepEqual(session.sent.filter((s) => s.message.type === "peer_file_accept"), []);
    assert.deepEqual(await Deno.readFile(part), bytes.subarray(0, 1000));
  });
});

Deno.test("peer files: a resume stopped while its prefix is hashed stops the hashing: close does not wait for it", async () => {
  await withTempDir(async (dir) => {
    const bytes = new Uint8Array(256 * 1024).map((_, i) => (i * 17) & 0xff);
    const { key, part, session, events, bob, gated } = await heldResume(
      dir,
      "long.bin",
      bytes,
      1000,
      // A hashing as long as it is let run: it ends only when stopped.
      (signal) => new Promise((resolve) => signal.addEventListener("abort", () => resolve())),
    );
    await bob.handle({
      message: { type: "peer_file_offer", fid: 1, name: "long.bin", size: bytes.length, key },
      body: new Uint8Array(),
    });
    await until(() => gated() === 1 || undefined, "the prefix being hashed");
    await bob.close();
    assert.ok(!bob.busy);
    const failed = events.find((e) => e.type === "file_failed");
    assert.ok(failed?.type === "file_failed" && failed.code === "closed", JSON.stringify(failed));
    assert.deepEqual(session.sent.filter((s) => s.message.type === "peer_file_accept"), []);
    assert.deepEqual(await Deno.readFile(part), bytes.subarray(0, 1000));
  });
});

Deno.test("peer files: an early end saves a file accepted from 0; data for files never offered or declined is dropped", async () => {
  await withTempDir(async (dir) => {
    const session = new FakeSession("mallory");
    const events: FileTransferEvent[] = [];
    const dl = join(dir, "dl");
    const bob = new PeerFileTransfers(session, { acceptDir: dl, onEvent: (e) => events.push(e) });
    const content = encoder.encode("0123456789");
    const handle = (message: PeerFileMessage, body = new Uint8Array()) =>
      bob.handle({ message, body });
    await handle({ type: "peer_file_data", fid: 9, offset: 0 }, content);
    await handle({ type: "peer_file_end", fid: 9, early: true });
    await handle({ type: "peer_file_offer", fid: 1, name: "a.txt", size: 10, key: sha(content) });
    await handle({ type: "peer_file_data", fid: 1, offset: 0 }, content);
    await handle({ type: "peer_file_end", fid: 1, early: true });
    const saved = await until(() => events.find((e) => e.type === "file_saved"), "saved");
    assert.ok(saved.type === "file_saved" && saved.file === 1);
    assert.deepEqual(await Deno.readFile(saved.path), content);
    // An offer bob gives up: what follows is dropped, nothing more is written.
    await handle({ type: "peer_file_offer", fid: 2, name: "b.txt", size: 10, key: sha(content) });
    bob.decline(2);
    await handle({ type: "peer_file_data", fid: 2, offset: 0 }, content);
    await handle({ type: "peer_file_end", fid: 2, early: true });
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(events.filter((e) => e.type === "file_saved").length, 1);
    const left = (await Array.fromAsync(Deno.readDir(dl))).map((e) => e.name).sort();
    assert.deepEqual(left, ["a.txt", partFileName("b.txt", sha(content))]);
    assert.equal((await Deno.stat(join(dl, left[1]))).size, 0, "nothing written after the decline");
    await bob.close();
  });
});

/**
 * `bytes` as file `name` in `dir`, its first `held` bytes in bob's `.part` file (under
 * `dir/dl`), and bob accepting every offer, each resume held once its prefix is hashed
 * until `release()`, or as long as `gate` holds it (`gated()`: how many were held).
 */
async function heldResume(
  dir: string,
  name: string,
  bytes: Uint8Array,
  held: number,
  gate?: (signal: AbortSignal) => Promise<void>,
) {
  const path = join(dir, name);
  await Deno.writeFile(path, bytes);
  const part = await writePartFile(join(dir, "dl"), path, bytes.subarray(0, held));
  const source = await FileSource.openToStream(path);
  const key = await source.resumeKey();
  source.close();
  const session = new FakeSession("alice");
  const events: FileTransferEvent[] = [];
  let release!: () => void;
  const released = new Promise<void>((resolve) => release = resolve);
  let gated = 0;
  const bob = new PeerFileTransfers(session, {
    acceptDir: join(dir, "dl"),
    onEvent: (e) => events.push(e),
    resumeGate: (_fid, signal) => {
      gated++;
      return gate?.(signal) ?? released;
    },
  });
  return { key, part, session, events, bob, gated: () => gated, release };
}
