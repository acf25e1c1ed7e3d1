/**
 * The keepalive of peer sessions (peer protocol version 7), over loopback with short
 * intervals: an idle session stays up on its pings and pongs, a blocked event loop is not
 * the other side's silence, a peer behind a proxy that stops forwarding (a laptop's lid
 * closed: nothing closes, nothing arrives) ends the session with `timeout` and stops its
 * file transfer with the `.part` kept, and a link slower than the timeout per record
 * keeps the session up (bytes count as they arrive; the receiver pings the sender).
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { connectPeer } from "../peer/connect.ts";
import { PeerError } from "../peer/errors.ts";
import { PeerFileError, PeerFileTransfers } from "../peer/file_transfer.ts";
import type { PeerEvent, PeerKeepaliveOptions, PeerSession } from "../peer/session.ts";
import type { FileTransferEvent } from "../transport/file_transfer_events.ts";
import { delay, until } from "./helpers/harness.ts";
import { listening } from "./helpers/peer_listener.ts";
import { sha256Of, withTempDir, writeRandomFile } from "./helpers/files.ts";

const HOST = "127.0.0.1";
/** Short enough for a test, long against the scheduling of a loaded machine. */
const KEEPALIVE: PeerKeepaliveOptions = { intervalMs: 100, timeoutMs: 300 };
/** Bound on every wait of these tests (a session on the code before 7 waits forever). */
const BOUND_MS = 10_000;

/** Alice dials bob (directly, or through the proxy `via` makes in front of bob's port). */
async function pair(
  keepalive: PeerKeepaliveOptions,
  via?: (bobPort: number) => { port: number },
): Promise<{ alice: PeerSession; bob: PeerSession }> {
  const bobListening = await listening("bob", { keepalive });
  const port = via ? via(bobListening.port).port : bobListening.port;
  const alice = await connectPeer({ host: HOST, port, nick: "alice", keepalive });
  return { alice, bob: await bobListening.session };
}

/** `promise`, or a failure naming `what` after {@linkcode BOUND_MS}. */
async function bounded<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no ${what} within ${BOUND_MS} ms`)), BOUND_MS);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

interface Followed {
  events: PeerEvent[];
  /** Settles with the error that ended the session, or undefined at a goodbye. */
  end: Promise<PeerError | undefined>;
}

/** Iterates `session`, handing file events to `files` (closed with the session's end). */
function follow(session: PeerSession, files?: PeerFileTransfers): Followed {
  const events: PeerEvent[] = [];
  const end = (async () => {
    let failure: PeerError | undefined;
    try {
      for await (const event of session) {
        events.push(event);
        if (event.type === "file") await files?.handle(event);
      }
    } catch (err) {
      assert.ok(err instanceof PeerError, `expected a PeerError, got ${err}`);
      failure = err;
    }
    await files?.close(failure?.message ?? "the session ended");
    return failure;
  })();
  return { events, end };
}

const texts = (events: PeerEvent[]) =>
  events.flatMap((e) => e.type === "text" ? [e.text] : e.type === "left" ? ["<left>"] : []);

/**
 * A TCP proxy in front of `target` that forwards both ways until `freezeAfter` bytes went
 * from the dialler to `target`, then forwards nothing more either way and reads nothing
 * more, both connections left open: the other machine went to sleep.
 */
function freezingProxy(target: number, freezeAfter: number) {
  const listener = Deno.listen({ hostname: HOST, port: 0 });
  const conns: Deno.Conn[] = [];
  let frozen = false;
  let froze!: () => void;
  const hasFrozen = new Promise<void>((resolve) => froze = resolve);
  let release!: () => void;
  const released = new Promise<void>((resolve) => release = resolve);
  const pump = async (from: Deno.Conn, to: Deno.Conn, counted: boolean) => {
    const buffer = new Uint8Array(64 * 1024);
    let forwarded = 0;
    try {
      for (let n = await from.read(buffer); n !== null; n = await from.read(buffer)) {
        if (frozen) break;
        const take = counted ? Math.min(n, freezeAfter - forwarded) : n;
        for (let at = 0; at < take;) at += await to.write(buffer.subarray(at, take));
        forwarded += take;
        if (counted && forwarded >= freezeAfter) {
          frozen = true;
          froze();
          break;
        }
      }
    } catch {
      // closed at the end of the test
    }
    await released;
  };
  const running = (async () => {
    const inbound = await listener.accept();
    const outbound = await Deno.connect({ hostname: HOST, port: target });
    conns.push(inbound, outbound);
    await Promise.all([pump(inbound, outbound, true), pump(outbound, inbound, false)]);
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    hasFrozen,
    async close() {
      release();
      listener.close();
      for (const conn of conns) {
        try {
          conn.close();
        } catch {
          // already closed
        }
      }
      await running;
    },
  };
}

/**
 * A TCP proxy in front of `target` that passes the dialler's bytes on at most `piece`
 * bytes every `everyMs` (a slow link), and the other way at once.
 */
function tricklingProxy(target: number, piece: number, everyMs: number) {
  const listener = Deno.listen({ hostname: HOST, port: 0 });
  const conns: Deno.Conn[] = [];
  const pump = async (from: Deno.Conn, to: Deno.Conn, slow: boolean) => {
    const buffer = new Uint8Array(slow ? piece : 64 * 1024);
    try {
      for (let n = await from.read(buffer); n !== null; n = await from.read(buffer)) {
        for (let at = 0; at < n;) at += await to.write(buffer.subarray(at, n));
        if (slow) await delay(everyMs);
      }
    } catch {
      // closed at the end of the test
    }
    for (const conn of [from, to]) {
      try {
        conn.close();
      } catch {
        // already closed
      }
    }
  };
  const running = (async () => {
    const inbound = await listener.accept();
    listener.close();
    const outbound = await Deno.connect({ hostname: HOST, port: target });
    conns.push(inbound, outbound);
    await Promise.all([pump(inbound, outbound, true), pump(outbound, inbound, false)]);
  })();
  return { port: (listener.addr as Deno.NetAddr).port, done: running };
}

Deno.test("peer keepalive: an idle session stays up through several timeouts on its pings and pongs", async () => {
  const { alice, bob } = await pair(KEEPALIVE);
  const atAlice = follow(alice);
  const atBob = follow(bob);
  const started = performance.now();
  const pongs = () => alice.keepaliveStats.pongsReceived + bob.keepaliveStats.pongsReceived;
  // Idle for at least four timeouts, with at least three pings answered meanwhile.
  await until(
    () => performance.now() - started >= 4 * KEEPALIVE.timeoutMs! && pongs() >= 3 || undefined,
    "an idle period of four timeouts with three pongs",
    BOUND_MS,
  );
  assert.ok(!alice.closed && !bob.closed, "both sessions are up");
  for (const [session, other] of [[alice, bob], [bob, alice]]) {
    const mine = session.keepaliveStats;
    // Every pong answers a ping: no more pongs than pings sent; each ping is answered.
    assert.ok(mine.pongsReceived <= mine.pingsSent, JSON.stringify(mine));
    assert.ok(other.keepaliveStats.pingsReceived <= mine.pingsSent, JSON.stringify(mine));
  }
  const sent = alice.keepaliveStats.pingsSent + bob.keepaliveStats.pingsSent;
  assert.ok(sent >= 3, `${sent} pings sent`);
  await alice.sendText("still here");
  await until(() => texts(atBob.events).includes("still here") || undefined, "the text");
  await alice.close();
  assert.equal(await bounded(atBob.end, "end at bob"), undefined, "a goodbye, no error");
  assert.deepEqual(texts(atBob.events), ["still here", "<left>"]);
  assert.equal(await atAlice.end, undefined);
});

Deno.test("peer keepalive: a process that does not run for several timeouts (its event loop blocked) does not time its peer out", async () => {
  const { alice, bob } = await pair(KEEPALIVE);
  const atAlice = follow(alice);
  const atBob = follow(bob);
  await alice.sendText("before");
  await until(() => texts(atBob.events).includes("before") || undefined, "the first text");
  // Both sides are in this process: nothing is sent or read meanwhile.
  const blockedUntil = performance.now() + 4 * KEEPALIVE.timeoutMs!;
  while (performance.now() < blockedUntil) {
    // blocked
  }
  await delay(2 * KEEPALIVE.timeoutMs!);
  assert.ok(!alice.closed && !bob.closed, "both sessions are up");
  await bob.sendText("after");
  await until(() => texts(atAlice.events).includes("after") || undefined, "the second text");
  await bob.close();
  assert.equal(await bounded(atAlice.end, "end at alice"), undefined);
  assert.equal(await atBob.end, undefined);
});

Deno.test("peer keepalive: a consumer that holds an event for several timeouts does not time its peer out", async () => {
  const { alice, bob } = await pair(KEEPALIVE);
  const atAlice = follow(alice);
  const got: string[] = [];
  const atBob = (async () => {
    for await (const event of bob) {
      if (event.type !== "text") continue;
      got.push(event.text);
      // Busy with the text (a slow disk, say): the session reads nothing meanwhile.
      if (event.text === "hold") await delay(4 * KEEPALIVE.timeoutMs!);
    }
  })();
  await alice.sendText("hold");
  await until(() => got.includes("hold") || undefined, "the held text");
  await delay(4 * KEEPALIVE.timeoutMs!);
  await alice.sendText("after");
  await until(() => got.includes("after") || undefined, "the text after");
  assert.ok(!alice.closed && !bob.closed, "both sessions are up");
  await alice.close();
  await bounded(atBob, "end at bob");
  assert.equal(await atAlice.end, undefined);
});

Deno.test("peer keepalive: a peer that goes silent mid-transfer without closing ends both sessions with timeout; the transfer stops, its .part kept", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "big.bin");
    const size = 32 * 1024 * 1024;
    await writeRandomFile(path, size, 7);
    const dl = join(dir, "dl");
    let proxy!: ReturnType<typeof freezingProxy>;
    const { alice, bob } = await pair(
      KEEPALIVE,
      (port) => proxy = freezingProxy(port, 3 * 1024 * 1024),
    );
    try {
      const aliceEvents: FileTransferEvent[] = [];
      const bobEvents: FileTransferEvent[] = [];
      const aliceFiles = new PeerFileTransfers(alice, { onEvent: (e) => aliceEvents.push(e) });
      const bobFiles = new PeerFileTransfers(bob, {
        acceptDir: dl,
        onEvent: (e) => bobEvents.push(e),
      });
      const atAlice = follow(alice, aliceFiles);
      const atBob = follow(bob, bobFiles);
      const sending = aliceFiles.send(path);
      sending.catch(() => {}); // awaited below
      await bounded(proxy.hasFrozen, "freeze");
      // Nothing arrives any more either way, and nothing closes: each side times out.
      const [aliceError, bobError] = await bounded(
        Promise.all([atAlice.end, atBob.end]),
        "timeout of either session",
      );
      assert.equal(aliceError?.code, "timeout", String(aliceError));
      assert.equal(aliceError?.message, "bob stopped answering: nothing received for 300 ms");
      assert.equal(bobError?.code, "timeout", String(bobError));
      assert.equal(bobError?.message, "alice stopped answering: nothing received for 300 ms");
      assert.ok(alice.closed && bob.closed);
      await assert.rejects(alice.sendText("anyone?"), (err) => {
        assert.ok(err instanceof PeerError && err.code === "closed", String(err));
        return true;
      });
      // The transfer stops with the session's end, on both sides.
      await assert.rejects(bounded(sending, "the send's end"), (err) => {
        assert.ok(err instanceof PeerFileError && err.code === "closed", String(err));
        assert.match(err.message, /bob stopped answering/);
        return true;
      });
      const failed = bobEvents.find((e) => e.type === "file_failed");
      assert.ok(failed?.type === "file_failed", JSON.stringify(bobEvents.map((e) => e.type)));
      assert.equal(failed.direction, "receive");
      assert.equal(failed.code, "closed");
      assert.match(failed.reason, /alice stopped answering/);
      assert.ok(!bobEvents.some((e) => e.type === "file_saved"));
      // The .part stays, with what came before the silence, for a resume.
      const receiving = bobEvents.find((e) => e.type === "file_receiving");
      assert.ok(receiving?.type === "file_receiving");
      const part = await Deno.stat(receiving.path);
      assert.ok(part.size > 0 && part.size < size, `${part.size} bytes in the .part`);
    } finally {
      await proxy.close();
    }
  });
});

Deno.test("peer keepalive: a link slower than the timeout per record keeps the session up (bytes count as they come; the receiver pings)", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "slow.bin");
    // Three records of about 1 MiB, each taking about 640 ms (over twice the timeout) to
    // pass; acks only every 2 MiB: the sender hears the receiver's pings meanwhile.
    const sha = await writeRandomFile(path, 2 * 1024 * 1024 + 300 * 1024, 3);
    const dl = join(dir, "dl");
    let proxy!: ReturnType<typeof tricklingProxy>;
    const { alice, bob } = await pair(
      KEEPALIVE,
      (port) => proxy = tricklingProxy(port, 16 * 1024, 10),
    );
    const bobEvents: FileTransferEvent[] = [];
    const aliceFiles = new PeerFileTransfers(alice, { onEvent: () => {} });
    const bobFiles = new PeerFileTransfers(bob, {
      acceptDir: dl,
      onEvent: (e) => bobEvents.push(e),
    });
    const atAlice = follow(alice, aliceFiles);
    const atBob = follow(bob, bobFiles);
    await bounded(aliceFiles.send(path), "the transfer's end");
    const saved = await until(() => bobEvents.find((e) => e.type === "file_saved"), "saved");
    assert.ok(saved.type === "file_saved");
    assert.equal(await sha256Of(saved.path), sha);
    assert.ok(bob.keepaliveStats.pingsSent >= 1, JSON.stringify(bob.keepaliveStats));
    await alice.close();
    assert.equal(await bounded(atBob.end, "end at bob"), undefined);
    assert.equal(await atAlice.end, undefined);
    await proxy.done;
  });
});
