import assert from "node:assert/strict";
import { encodeFrame } from "../protocol/frame.ts";
import { PeerError } from "./errors.ts";
import { performHandshake } from "./handshake.ts";
import { memoryChannelPair } from "./memory_channel.ts";
import type { ByteChannel } from "../transport/framed_connection.ts";
import { QueueOverflowError } from "../transport/errors.ts";
import { SecureChannel } from "./secure_channel.ts";
import { type PeerEvent, PeerSession } from "./session.ts";

async function pairWithChannels(): Promise<
  { sessions: [PeerSession, PeerSession]; channels: [SecureChannel, SecureChannel] }
> {
  const [a, b] = memoryChannelPair();
  const [x, y] = await Promise.all([
    performHandshake(a, { role: "initiator", nick: "alice" }),
    performHandshake(b, { role: "responder", nick: "bob" }),
  ]);
  return {
    sessions: [
      new PeerSession({ ...x, role: "initiator", localNick: "alice" }),
      new PeerSession({ ...y, role: "responder", localNick: "bob" }),
    ],
    channels: [x.channel, y.channel],
  };
}

async function pair(): Promise<[PeerSession, PeerSession]> {
  return (await pairWithChannels()).sessions;
}

async function collect(session: PeerSession): Promise<{ events: PeerEvent[]; error?: PeerError }> {
  const events: PeerEvent[] = [];
  try {
    for await (const event of session) events.push(event);
    return { events };
  } catch (err) {
    assert.ok(err instanceof PeerError, String(err));
    return { events, error: err };
  }
}

const texts = (events: PeerEvent[]) =>
  events.map((e) => e.type === "text" ? e.text : `<${e.type}>`);

Deno.test("texts travel both ways and a goodbye ends the other side cleanly", async () => {
  const [alice, bob] = await pair();
  assert.equal(alice.sas, bob.sas);
  assert.equal(alice.remoteNick, "bob");
  assert.equal(bob.role, "responder");
  const bobEvents = collect(bob);
  const sent = await alice.sendText("hello bob");
  assert.equal(sent.text, "hello bob");
  await alice.sendText("line two");
  const atAlice = alice[Symbol.asyncIterator]();
  await bob.sendText("hi alice");
  const fromBob = await atAlice.next();
  assert.deepEqual(texts([fromBob.value as PeerEvent]), ["hi alice"]);
  await alice.close();
  assert.equal((await atAlice.next()).done, true, "a local close ends the iteration quietly");
  const fromAlice = await bobEvents;
  assert.equal(fromAlice.error, undefined);
  assert.deepEqual(texts(fromAlice.events), ["hello bob", "line two", "<left>"]);
  const first = fromAlice.events[0];
  assert.ok(first.type === "text" && first.from === "alice" && first.id === sent.id);
  assert.equal(first.ts, sent.ts);
  assert.ok(alice.closed && bob.closed);
  await assert.rejects(
    alice.sendText("late"),
    (e) => e instanceof PeerError && e.code === "closed",
  );
});

Deno.test("a vanished peer (no goodbye) is reported as connection_lost", async () => {
  const [alice, bob] = await pair();
  const bobEvents = collect(bob);
  await alice.sendText("about to vanish");
  alice.abort();
  const result = await bobEvents;
  assert.deepEqual(texts(result.events), ["about to vanish"]);
  assert.equal(result.error?.code, "connection_lost");
});

Deno.test("empty or too long texts are refused locally and nothing is sent", async () => {
  const [alice, bob] = await pair();
  await assert.rejects(
    alice.sendText("   "),
    (e) => e instanceof PeerError && e.code === "invalid_text",
  );
  await assert.rejects(
    alice.sendText("x".repeat(4001)),
    (e) => e instanceof PeerError && e.code === "invalid_text",
  );
  const bobEvents = collect(bob);
  await alice.close();
  assert.deepEqual(texts((await bobEvents).events), ["<left>"]);
});

Deno.test("an authenticated but invalid message ends the session with bad_message", async () => {
  const [a, b] = memoryChannelPair();
  const [x, y] = await Promise.all([
    performHandshake(a, { role: "initiator", nick: "alice" }),
    performHandshake(b, { role: "responder", nick: "bob" }),
  ]);
  const bob = new PeerSession({ ...y, role: "responder", localNick: "bob" });
  const bobEvents = collect(bob);
  const frames = [
    encodeFrame({ type: "peer_text", id: "1", ts: 1, text: "ok" }),
    encodeFrame({ type: "peer_text", id: "2", ts: 1 }),
    encodeFrame({ type: "peer_text", id: "3", ts: 1, text: "never" }),
  ];
  await x.channel.write(new Uint8Array(frames.flatMap((f) => [...f])));
  const result = await bobEvents;
  assert.deepEqual(texts(result.events), ["ok"]);
  assert.equal(result.error?.code, "bad_message");
  assert.ok(bob.closed);
});

Deno.test("garbage inside the encrypted stream is bad_message; a cut frame is connection_lost", async () => {
  for (
    const [bytes, code] of [[new Uint8Array([0, 0, 0, 5, 0, 0, 0, 9, 1]), "bad_message"], [
      encodeFrame({ type: "peer_bye" }).subarray(0, 6),
      "connection_lost",
    ]] as const
  ) {
    const [a, b] = memoryChannelPair();
    const [x, y] = await Promise.all([
      performHandshake(a, { role: "initiator", nick: "alice" }),
      performHandshake(b, { role: "responder", nick: "bob" }),
    ]);
    const bob = new PeerSession({ ...y, role: "responder", localNick: "bob" });
    const bobEvents = collect(bob);
    await x.channel.write(bytes);
    x.channel.close();
    const result = await bobEvents;
    assert.deepEqual(result.events, []);
    assert.equal(result.error?.code, code);
  }
});

Deno.test("a session can be iterated only once", async () => {
  const [alice, bob] = await pair();
  const it = alice[Symbol.asyncIterator]();
  const pending = it.next();
  await assert.rejects(alice[Symbol.asyncIterator]().next(), TypeError);
  await bob.close();
  assert.deepEqual(await pending, { done: false, value: { type: "left", from: "bob" } });
  assert.equal((await it.next()).done, true);
});

Deno.test("file data bodies are sealed where they are laid out and decrypted straight into their frames' payloads, never copied", async () => {
  const { sessions: [alice, bob], channels: [aliceChannel, bobChannel] } = await pairWithChannels();
  const chunk = 1024 * 1024 - 512;
  const bodies = [0, 1, 2].map((n) => new Uint8Array(chunk).map((_, i) => (i * 7 + n) & 0xff));
  const received: Uint8Array[] = [];
  const reading = (async () => {
    for await (const event of bob) {
      if (event.type !== "file" || event.message.type !== "peer_file_data") continue;
      received.push(event.body.slice());
      bob.recycleFileData(event.body);
    }
  })();
  await alice.sendText("a text before");
  for (const [n, body] of bodies.entries()) {
    const { frame, body: into } = alice.encodeFileData(
      { type: "peer_file_data", fid: 1, offset: n * chunk },
      chunk,
    );
    into.set(body);
    alice.sendEncodedFileData(frame);
    alice.sendFileMessage({ type: "peer_file_ack", fid: 9, offset: n });
  }
  await alice.close(); // bob's reading ends at the goodbye, after everything sent before
  await reading;
  assert.deepEqual(received, bodies);
  assert.ok(
    bobChannel.bytesReadCopied < 64 * 1024,
    `${bobChannel.bytesReadCopied} bytes were decrypted aside and copied`,
  );
  // And sealed where they were laid out: no buffer of alice's channel to seal them into.
  assert.equal(aliceChannel.keptBytes, 0);
  await bob.close();
});

Deno.test("a file data frame the queue cannot take is refused whole, nothing of it queued", () => {
  // A connection that never finishes a write: everything after the first waits queued.
  const stalled: ByteChannel = {
    read: () => new Promise<null>(() => {}),
    write: () => new Promise<number>(() => {}),
    close: () => {},
  };
  const key = () => ({ key: new Uint8Array(32).fill(1), iv: new Uint8Array(12) });
  const session = new PeerSession({
    channel: SecureChannel.create(stalled, key(), key()),
    role: "initiator",
    localNick: "alice",
    remoteNick: "bob",
    sas: "x",
  });
  const chunk = 1024 * 1024 - 512;
  let refused: unknown = null;
  for (let n = 0; n < 32 && refused === null; n++) {
    const before = session.queuedBytes;
    const { frame } = session.encodeFileData(
      { type: "peer_file_data", fid: 1, offset: n * chunk },
      chunk,
    );
    try {
      session.sendEncodedFileData(frame);
    } catch (err) {
      refused = err;
      assert.equal(session.queuedBytes, before, "no part of the refused frame is queued");
    }
  }
  assert.ok(refused instanceof QueueOverflowError, String(refused));
  session.abort();
});

Deno.test("a keepalive interval that is not positive, or a timeout shorter than it, is refused", async () => {
  const [a, b] = memoryChannelPair();
  const [x, y] = await Promise.all([
    performHandshake(a, { role: "initiator", nick: "alice" }),
    performHandshake(b, { role: "responder", nick: "bob" }),
  ]);
  const init = { ...x, role: "initiator" as const, localNick: "alice" };
  for (
    const [keepalive, problem] of [
      [{ intervalMs: 0 }, /interval must be a positive number/],
      [{ intervalMs: Number.NaN }, /interval must be a positive number/],
      [{ intervalMs: 100, timeoutMs: 99 }, /timeout must be at least its interval/],
      [{ timeoutMs: 1000 }, /timeout must be at least its interval/], // under the 15 s default
    ] as const
  ) {
    assert.throws(() => new PeerSession({ ...init, keepalive }), (err) => {
      assert.ok(err instanceof RangeError, String(err));
      assert.match(err.message, problem);
      return true;
    });
  }
  const session = new PeerSession({ ...init, keepalive: { intervalMs: 100, timeoutMs: 100 } });
  session.abort();
  y.channel.close();
});
