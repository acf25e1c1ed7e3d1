/**
 * Peer files streamed before the accept (peer protocol version 6), over loopback: a
 * receiver started with an accept folder says so first thing (`peer_file_policy`), and
 * the sender streams each file right after its offer. The receiver's answers are held
 * back here (in order, released by the test) to show what crosses before the accept
 * does: a whole file, a resume checked only once the accept arrives, a decline; and a
 * resume whose bytes are being hashed (held by the test), which holds no message.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { partFileName } from "../protocol/file_names.ts";
import { connectPeer } from "../peer/connect.ts";
import {
  CHUNK_BYTES,
  MAX_FILES_AT_ONCE,
  PeerFileError,
  type PeerFileSession,
  PeerFileTransfers,
  type PeerFileTransfersOptions,
  WINDOW_BYTES,
} from "../peer/file_transfer.ts";
import type { PeerFileMessage } from "../peer/messages.ts";
import type { PeerSession } from "../peer/session.ts";
import type { FileTransferEvent } from "../transport/file_transfer_events.ts";
import { until } from "./helpers/harness.ts";
import { listening } from "./helpers/peer_listener.ts";
import { sha256Of, withTempDir, writePartFile, writeRandomFile } from "./helpers/files.ts";

/**
 * `session` for file transfers, with its file messages but the policy held (in order)
 * until `release`.
 */
function answersHeld(session: PeerSession): PeerFileSession & {
  held: PeerFileMessage[];
  release(): void;
} {
  let holding = true;
  const held: PeerFileMessage[] = [];
  return {
    held,
    get remoteNick() {
      return session.remoteNick;
    },
    get closed() {
      return session.closed;
    },
    whenQueuedBelow: (bytes) => session.whenQueuedBelow(bytes),
    recycleFileData: (body) => session.recycleFileData(body),
    sendFileMessage(message, body) {
      // The policy goes at once (it is what lets the sender stream); the rest waits.
      if (holding && message.type !== "peer_file_policy") held.push(message);
      else session.sendFileMessage(message, body);
    },
    release() {
      holding = false;
      for (const message of held.splice(0)) session.sendFileMessage(message);
    },
  };
}

/** What one side received (`got ...`) and sent (`sent ...`), in order. */
type Log = string[];

function describe(message: PeerFileMessage): string {
  return message.type === "peer_file_end" && message.early ? "peer_file_end early" : message.type;
}

/** What {@linkcode withPeers} gives its test. */
interface Peers {
  aliceFiles: PeerFileTransfers;
  bobFiles: PeerFileTransfers;
  bobAnswers: ReturnType<typeof answersHeld> | null;
  aliceEvents: FileTransferEvent[];
  bobEvents: FileTransferEvent[];
  /** What bob received and sent, in order. */
  bobLog: Log;
  /** What alice received, in order. */
  aliceLog: Log;
  /** Bytes of file data bob received. */
  bobData: () => number;
  alice: PeerSession;
}

/**
 * Alice sends `path` to bob, whose answers are held: the whole file and an early end
 * reach him, and he does not save it on that end (`unsaved` says why); his answers let
 * go, the file is saved with the SHA-256 `sha`.
 */
async function savedOnceReleased(p: Peers, path: string, sha: string, unsaved: string) {
  const sending = p.aliceFiles.send(path);
  sending.catch(() => {}); // awaited below; a failure before that is the test's
  await until(() => p.bobLog.includes("got peer_file_end early") || undefined, "early end");
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.ok(!p.bobEvents.some((e) => e.type === "file_saved"), unsaved);
  p.bobAnswers!.release();
  await sending;
  const saved = await until(() => p.bobEvents.find((e) => e.type === "file_saved"), "saved");
  assert.ok(saved.type === "file_saved");
  assert.equal(await sha256Of(saved.path), sha);
}

/**
 * A `resumeGate` that holds each resume (its prefix hashed) until `open`; `held` lists the
 * files it holds.
 */
function resumeGate(): { held: number[]; open: () => void; gate: (fid: number) => Promise<void> } {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => open = resolve);
  const held: number[] = [];
  return {
    held,
    open,
    gate: (fid) => {
      held.push(fid);
      return opened;
    },
  };
}

/**
 * Alice and bob over loopback; bob's file messages held when `hold`, his transfers made
 * with `bobOptions`. Runs `fn`, then ends both sides.
 */
async function withPeers(
  hold: boolean,
  bobOptions: Omit<PeerFileTransfersOptions, "onEvent">,
  fn: (peers: Peers) => Promise<void>,
): Promise<void> {
  const bobListening = await listening("bob");
  const alice = await connectPeer({ host: "127.0.0.1", port: bobListening.port, nick: "alice" });
  const bob = await bobListening.session;
  const bobLog: Log = [];
  const aliceLog: Log = [];
  const bobAnswers = hold ? answersHeld(bob) : null;
  const bobSession: PeerFileSession = bobAnswers ?? {
    get remoteNick() {
      return bob.remoteNick;
    },
    get closed() {
      return bob.closed;
    },
    whenQueuedBelow: (bytes) => bob.whenQueuedBelow(bytes),
    recycleFileData: (body) => bob.recycleFileData(body),
    sendFileMessage: (message, body) => bob.sendFileMessage(message, body),
  };
  const logged: PeerFileSession = {
    get remoteNick() {
      return bobSession.remoteNick;
    },
    get closed() {
      return bobSession.closed;
    },
    whenQueuedBelow: (bytes) => bobSession.whenQueuedBelow(bytes),
    recycleFileData: (body) => bobSession.recycleFileData!(body),
    sendFileMessage(message, body) {
      bobLog.push(`sent ${describe(message)}`);
      bobSession.sendFileMessage(message, body);
    },
  };
  const aliceEvents: FileTransferEvent[] = [];
  const bobEvents: FileTransferEvent[] = [];
  const bobFiles = new PeerFileTransfers(logged, {
    ...bobOptions,
    onEvent: (e) => bobEvents.push(e),
  });
  const aliceFiles = new PeerFileTransfers(alice, { onEvent: (e) => aliceEvents.push(e) });
  let dataBytes = 0;
  const follow = async (session: PeerSession, files: PeerFileTransfers, log: Log) => {
    try {
      for await (const event of session) {
        if (event.type === "text") log.push(`got text ${event.text}`);
        if (event.type !== "file") continue;
        log.push(`got ${describe(event.message)}`);
        if (log === bobLog && event.message.type === "peer_file_data") {
          dataBytes += event.body.length;
        }
        await files.handle(event);
      }
    } finally {
      await files.close();
    }
  };
  const followed = [follow(alice, aliceFiles, aliceLog), follow(bob, bobFiles, bobLog)];
  try {
    await fn({
      aliceFiles,
      bobFiles,
      bobAnswers,
      aliceEvents,
      bobEvents,
      bobLog,
      aliceLog,
      bobData: () => dataBytes,
      alice,
    });
  } finally {
    bobAnswers?.release();
    await alice.close();
    await Promise.all(followed);
  }
}

Deno.test("peer files: an auto-accepting receiver saves a file streamed before its accept reached the sender", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "early.bin");
    const sha = await writeRandomFile(path, 3 * 1024 * 1024 + 11, 5);
    const dl = join(dir, "dl");
    await withPeers(true, { acceptDir: dl }, async (p) => {
      const sending = p.aliceFiles.send(path);
      sending.catch(() => {}); // awaited below; a failure before that is the test's
      const saved = await until(() => p.bobEvents.find((e) => e.type === "file_saved"), "saved");
      assert.ok(saved.type === "file_saved");
      assert.equal(await sha256Of(saved.path), sha);
      // Every answer of bob's still held: the accept, the acks, the done.
      assert.equal(p.bobAnswers!.held[0].type, "peer_file_accept");
      assert.equal(p.bobAnswers!.held.at(-1)?.type, "peer_file_done");
      assert.ok(!p.aliceEvents.some((e) => e.type === "file_answer"), "alice heard nothing");
      const got = p.bobLog.filter((l) => l.startsWith("got"));
      assert.equal(got[0], "got peer_file_offer");
      assert.equal(got[1], "got peer_file_data");
      assert.equal(got.at(-1), "got peer_file_end early");
      p.bobAnswers!.release();
      await sending;
      assert.deepEqual(
        p.aliceEvents.flatMap((e) => e.type === "file_answer" ? [e.answer] : []),
        ["accepted", "completed"],
      );
    });
  });
});

Deno.test("peer files: a receiver that does not accept everything still gets offer, accept, then data", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "asked.bin");
    const sha = await writeRandomFile(path, 2 * 1024 * 1024 + 3, 6);
    await withPeers(false, { downloadDir: join(dir, "dl") }, async (p) => {
      const sending = p.aliceFiles.send(path);
      sending.catch(() => {}); // awaited below; a failure before that is the test's
      const offer = await until(() => p.bobFiles.offers[0], "the offer");
      // Time for anything sent before the accept to arrive.
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.deepEqual(p.bobLog, ["got peer_file_offer"]);
      const saved = await p.bobFiles.accept(offer.file);
      await sending;
      assert.equal(await sha256Of(saved), sha);
      assert.equal(p.bobLog[1], "sent peer_file_accept");
      assert.equal(p.bobLog[2], "got peer_file_data");
      assert.ok(!p.bobLog.includes("got peer_file_end early"));
    });
  });
});

Deno.test("peer files: a resume under the early stream: held bytes skipped, the prefix checked once the accept comes, then the end", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "resumed.bin");
    const size = 5 * 1024 * 1024 + 21;
    const sha = await writeRandomFile(path, size, 7);
    const bytes = await Deno.readFile(path);
    const dl = join(dir, "dl");
    const held = CHUNK_BYTES + 100;
    await writePartFile(dl, path, bytes.subarray(0, held));
    await withPeers(true, { acceptDir: dl }, async (p) => {
      // The whole file and an early end arrive while bob's accept (from `held`) waits.
      await savedOnceReleased(p, path, sha, "not saved on the early end");
      assert.ok(p.bobLog.includes("got peer_file_end"), "the end after the prefix check");
      assert.ok(!p.bobLog.includes("got peer_file_restart"));
    });
  });
});

Deno.test("peer files: a .part of other bytes under the early stream: not saved on the early end, restarted, right", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "changed.bin");
    const size = 4 * 1024 * 1024 + 5;
    const sha = await writeRandomFile(path, size, 8);
    const stale = (await Deno.readFile(path)).slice(0, 2 * CHUNK_BYTES + 7);
    stale[1000] ^= 0xff;
    const dl = join(dir, "dl");
    await writePartFile(dl, path, stale);
    await withPeers(true, { acceptDir: dl }, async (p) => {
      await savedOnceReleased(p, path, sha, "stale prefix not saved");
      const restart = p.bobLog.indexOf("got peer_file_restart");
      assert.ok(restart > 0, p.bobLog.join(", "));
      assert.ok(p.bobLog.indexOf("sent peer_file_accept", restart) > restart, "accepted from 0");
    });
  });
});

Deno.test("peer files: a receiver that cannot write declines; the stream that followed is dropped, at most a window", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "big.bin");
    await writeRandomFile(path, 3 * WINDOW_BYTES, 9);
    const notADir = join(dir, "file");
    await Deno.writeTextFile(notADir, "");
    await withPeers(true, { acceptDir: join(notADir, "dl") }, async (p) => {
      const sending = p.aliceFiles.send(path);
      sending.catch(() => {}); // awaited below; a failure before that is the test's
      // The decline waits until data came (else it could beat the first chunk).
      await until(() => p.bobData() > 0 || undefined, "data before the decline");
      assert.deepEqual(p.bobAnswers!.held.map((m) => m.type), ["peer_file_decline"]);
      p.bobAnswers!.release();
      await assert.rejects(sending, (err: unknown) => {
        assert.ok(err instanceof PeerFileError && err.code === "declined", String(err));
        return true;
      });
      assert.ok(p.aliceEvents.some((e) => e.type === "file_answer" && e.answer === "declined"));
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.ok(p.bobData() < WINDOW_BYTES + CHUNK_BYTES, `${p.bobData()} bytes dropped`);
      assert.ok(!p.bobEvents.some((e) => e.type === "file_receiving"));
      assert.ok(!p.alice.closed, "the session goes on");
    });
  });
});

Deno.test("peer files: offers past MAX_FILES_AT_ONCE are declined at once, with a reason; the others are accepted", async () => {
  await withTempDir(async (dir) => {
    await withPeers(false, { acceptDir: join(dir, "dl") }, async (p) => {
      const extra = 3;
      // Offers straight on the session, as a peer of its own making would send them.
      for (let fid = 1; fid <= MAX_FILES_AT_ONCE + extra; fid++) {
        p.alice.sendFileMessage({
          type: "peer_file_offer",
          fid,
          name: `f${fid}.bin`,
          size: 10,
          key: "0123456789abcdef".repeat(4),
        });
      }
      const sent = (what: string) => p.bobLog.filter((entry) => entry === `sent ${what}`).length;
      await until(() => sent("peer_file_accept") === MAX_FILES_AT_ONCE || undefined, "accepts");
      await until(() => sent("peer_file_decline") === extra || undefined, "declines");
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.equal(sent("peer_file_accept"), MAX_FILES_AT_ONCE);
      assert.equal(sent("peer_file_decline"), extra);
      assert.equal(p.bobEvents.filter((e) => e.type === "file_offered").length, MAX_FILES_AT_ONCE);
    });
  });
});

Deno.test("peer files: a resume's prefix being hashed holds no message: a text sent after the offer and its stream arrives meanwhile, then the file resumes", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "resumed.bin");
    const size = 5 * 1024 * 1024 + 21;
    const sha = await writeRandomFile(path, size, 10);
    const bytes = await Deno.readFile(path);
    const dl = join(dir, "dl");
    const held = CHUNK_BYTES + 100;
    const part = await writePartFile(dl, path, bytes.subarray(0, held));
    const hashing = resumeGate();
    await withPeers(false, { acceptDir: dl, resumeGate: hashing.gate }, async (p) => {
      try {
        // Alice streams before the accept once she has heard bob's policy.
        await until(() => p.aliceLog.includes("got peer_file_policy") || undefined, "the policy");
        const sending = p.aliceFiles.send(path);
        sending.catch(() => {}); // awaited below; a failure before that is the test's
        await until(() => hashing.held.length > 0 || undefined, "the prefix hashed, held");
        await until(() => p.bobLog.includes("got peer_file_data") || undefined, "the stream");
        await p.alice.sendText("while the prefix is hashed");
        await until(
          () => p.bobLog.includes("got text while the prefix is hashed") || undefined,
          "the text, the hashing held",
        );
        assert.ok(!p.bobLog.includes("sent peer_file_accept"), "no accept before the hashing ends");
        hashing.open();
        await sending;
        const saved = await until(() => p.bobEvents.find((e) => e.type === "file_saved"), "saved");
        assert.ok(saved.type === "file_saved");
        assert.equal(await sha256Of(saved.path), sha);
        const receiving = p.bobEvents.find((e) => e.type === "file_receiving");
        assert.ok(receiving?.type === "file_receiving" && receiving.offset === held, "resumed");
        assert.ok(!p.bobLog.includes("got peer_file_restart"));
        await assert.rejects(Deno.stat(part), Deno.errors.NotFound);
      } finally {
        hashing.open(); // a failure above does not leave bob's reader held
      }
    });
  });
});

Deno.test("peer files: an abort or a decline while a resume's prefix is hashed: no accept, the .part kept, the file no longer counted", async () => {
  await withTempDir(async (dir) => {
    const dl = join(dir, "dl");
    await Deno.mkdir(dl);
    const key = "0123456789abcdef".repeat(4);
    const prefix = new Uint8Array(64 * 1024).map((_, i) => (i * 7) & 0xff);
    const parts = ["a.bin", "b.bin"].map((name) => join(dl, partFileName(name, key)));
    for (const part of parts) await Deno.writeFile(part, prefix);
    const hashing = resumeGate();
    await withPeers(false, { acceptDir: dl, resumeGate: hashing.gate }, async (p) => {
      try {
        // Offers straight on the session: a peer's own sender may abort whenever it likes.
        for (const [fid, name] of [[1, "a.bin"], [2, "b.bin"]] as const) {
          p.alice.sendFileMessage({ type: "peer_file_offer", fid, name, size: 1024 * 1024, key });
        }
        await until(() => hashing.held.length === 2 || undefined, "both prefixes hashed, held");
        p.alice.sendFileMessage({ type: "peer_file_abort", fid: 1, reason: "changed my mind" });
        await until(() => p.bobLog.includes("got peer_file_abort") || undefined, "the abort");
        p.bobFiles.decline(2);
        const failed = await until(() => {
          const found = p.bobEvents.filter((e) => e.type === "file_failed");
          return found.length === 2 ? found : undefined;
        }, "both given up, the hashing held");
        assert.deepEqual(
          failed.map((e) => e.type === "file_failed" ? `${e.file} ${e.code}` : "").sort(),
          ["1 cancelled", "2 cancelled"],
        );
        assert.ok(p.bobFiles.busy, "each counts until its hashing ends");
        hashing.open();
        await until(() => !p.bobFiles.busy || undefined, "released");
        assert.ok(!p.bobLog.includes("sent peer_file_accept"), p.bobLog.join(", "));
        for (const part of parts) assert.deepEqual(await Deno.readFile(part), prefix);
        // Neither holds a place: MAX_FILES_AT_ONCE new offers are all accepted.
        const declines = p.bobLog.filter((entry) => entry === "sent peer_file_decline").length;
        for (let fid = 3; fid < 3 + MAX_FILES_AT_ONCE; fid++) {
          p.alice.sendFileMessage({
            type: "peer_file_offer",
            fid,
            name: `f${fid}.bin`,
            size: 10,
            key,
          });
        }
        const sent = (what: string) => p.bobLog.filter((entry) => entry === `sent ${what}`).length;
        await until(() => sent("peer_file_accept") === MAX_FILES_AT_ONCE || undefined, "accepts");
        assert.equal(sent("peer_file_decline"), declines);
      } finally {
        hashing.open(); // a failure above does not leave bob's reader held
      }
    });
  });
});
