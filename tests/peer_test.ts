/**
 * Peer sessions over real loopback sockets: listen/connect, tampering and
 * man-in-the-middle proxies, vanished peers, garbage clients, and the `chat peer` CLI.
 */

import assert from "node:assert/strict";
import { spawnChat } from "./helpers/process.ts";
import { lineReader } from "../tools/lines.ts";
import { decodeFrame } from "../protocol/frame.ts";
import { connectPeer } from "../peer/connect.ts";
import { PeerError } from "../peer/errors.ts";
import { listenPeer, type ListenPeerOptions } from "../peer/listen.ts";
import type { PeerEvent, PeerSession } from "../peer/session.ts";
import { reachableAddresses } from "../cli/peer.ts";
import { MAX_TEXT_LENGTH } from "../protocol/names.ts";

const HOST = "127.0.0.1";
const ROOT = new URL("..", import.meta.url);

/** Starts a listener on an ephemeral loopback port; resolves once it is bound. */
async function listening(
  nick: string,
  extra: Partial<ListenPeerOptions> = {},
): Promise<{ port: number; session: Promise<PeerSession> }> {
  let bound!: (port: number) => void;
  const port = new Promise<number>((resolve) => bound = resolve);
  const session = listenPeer({
    host: HOST,
    port: 0,
    nick,
    onListening: (addr) => bound(addr.port),
    ...extra,
  });
  session.catch(() => {}); // awaited by the test; avoid an unhandled rejection meanwhile
  return { port: await port, session };
}

/** A connected pair: alice dials, bob listens, optionally through a proxy. */
async function pair(
  via?: (bobPort: number) => Proxy,
): Promise<{ alice: PeerSession; bob: PeerSession; proxy?: Proxy }> {
  const listener = await listening("bob");
  const proxy = via ? via(listener.port) : undefined;
  const alice = await connectPeer({
    host: HOST,
    port: proxy?.port ?? listener.port,
    nick: "alice",
  });
  return { alice, bob: await listener.session, ...(proxy ? { proxy } : {}) };
}

async function collect(session: PeerSession): Promise<{ events: PeerEvent[]; error?: PeerError }> {
  const events: PeerEvent[] = [];
  try {
    for await (const event of session) events.push(event);
    return { events };
  } catch (err) {
    assert.ok(err instanceof PeerError, `expected a PeerError, got ${err}`);
    return { events, error: err };
  }
}

const texts = (events: PeerEvent[]) =>
  events.map((e) => e.type === "text" ? e.text : `<${e.type}>`);

// ---------------------------------------------------------------------------------------
// A TCP proxy that sees the stream as what it is on the wire: u32be-length-prefixed units
// (the plaintext hellos, then the encrypted records), and lets a hook rewrite them.

type Direction = "i2r" | "r2i";
/** Returns the units to forward in place of `unit` (none drops it). */
type Hook = (direction: Direction, index: number, unit: Uint8Array) => Uint8Array[];

interface Proxy {
  port: number;
  /** Resolves when both directions ended. */
  done: Promise<void>;
}

function startProxy(targetPort: number, hook: Hook): Proxy {
  const listener = Deno.listen({ hostname: HOST, port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const done = (async () => {
    const inbound = await listener.accept();
    listener.close();
    const outbound = await Deno.connect({ hostname: HOST, port: targetPort });
    const close = () => {
      for (const conn of [inbound, outbound]) {
        try {
          conn.close();
        } catch {
          // already closed
        }
      }
    };
    await Promise.all([
      pumpUnits(inbound, outbound, "i2r", hook).finally(close),
      pumpUnits(outbound, inbound, "r2i", hook).finally(close),
    ]);
  })();
  return { port, done };
}

async function pumpUnits(from: Deno.Conn, to: Deno.Conn, direction: Direction, hook: Hook) {
  let pending = new Uint8Array(0);
  let index = 0;
  const buffer = new Uint8Array(70_000);
  try {
    for (let n = await from.read(buffer); n !== null; n = await from.read(buffer)) {
      const joined = new Uint8Array(pending.length + n);
      joined.set(pending);
      joined.set(buffer.subarray(0, n), pending.length);
      let offset = 0;
      while (joined.length - offset >= 4) {
        const length = new DataView(joined.buffer, offset).getUint32(0);
        if (joined.length - offset < 4 + length) break;
        const unit = joined.slice(offset, offset + 4 + length);
        offset += 4 + length;
        for (const out of hook(direction, index++, unit)) await writeAll(to, out);
      }
      pending = joined.slice(offset);
    }
  } catch {
    // one side closed or reset the connection
  }
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let offset = 0; offset < bytes.length;) offset += await conn.write(bytes.subarray(offset));
}

/**
 * Alice sends "one", "two", "three" as three separate records through a hooked proxy,
 * then says goodbye; returns what bob saw.
 */
async function tamperedRun(hook: Hook): Promise<{ events: PeerEvent[]; error?: PeerError }> {
  const { alice, bob, proxy } = await pair((port) => startProxy(port, hook));
  const received = collect(bob);
  const aliceSide = collect(alice);
  for (const text of ["one", "two", "three"]) {
    // Each awaited send is flushed on its own: one record per text.
    await alice.sendText(text).catch(() => {});
  }
  // Bob's session ends either way: with the failure, or with the goodbye.
  await alice.close();
  const result = await received;
  await aliceSide;
  await proxy!.done;
  return result;
}

// Unit numbering from the initiator: 0 = hello, 1 = key confirmation, 2.. = session records.
const FIRST_RECORD = 2;

Deno.test("two peers over loopback agree on the SAS, exchange texts both ways, and bye is a clean leave", async () => {
  const { alice, bob } = await pair();
  assert.equal(alice.sas, bob.sas);
  assert.match(alice.sas, /^\d{5}( \d{5}){4}$/);
  assert.equal(alice.remoteNick, "bob");
  assert.equal(bob.remoteNick, "alice");
  const atBob = collect(bob);
  const atAlice = alice[Symbol.asyncIterator]();
  await alice.sendText("hi bob");
  await bob.sendText("hi alice");
  await bob.sendText("ünïcödé ✓");
  const aliceGot = [(await atAlice.next()).value, (await atAlice.next()).value] as PeerEvent[];
  assert.deepEqual(texts(aliceGot), ["hi alice", "ünïcödé ✓"]);
  assert.ok(aliceGot[0].type === "text" && aliceGot[0].from === "bob");
  await alice.sendText("bye now");
  await alice.close();
  assert.equal((await atAlice.next()).done, true, "a local close ends the iteration quietly");
  const bobGot = await atBob;
  assert.equal(bobGot.error, undefined);
  assert.deepEqual(texts(bobGot.events), ["hi bob", "bye now", "<left>"]);
  assert.deepEqual(bobGot.events.at(-1), { type: "left", from: "alice" });
  assert.ok(bob.closed);
  await bob.close();
});

Deno.test("the wire carries no plaintext after the hellos", async () => {
  const seen: Uint8Array[] = [];
  const { alice, bob, proxy } = await pair((port) =>
    startProxy(port, (_direction, _index, unit) => {
      seen.push(unit);
      return [unit];
    })
  );
  const atBob = collect(bob);
  await alice.sendText("a very secret sentence");
  await alice.close();
  assert.deepEqual(texts((await atBob).events), ["a very secret sentence", "<left>"]);
  await proxy!.done;
  const wire = new TextDecoder().decode(new Uint8Array(seen.flatMap((u) => [...u])));
  assert.ok(wire.includes("peer_hello"), "the hellos are plaintext frames");
  assert.ok(!wire.includes("secret"), "the text is encrypted");
  assert.ok(!wire.includes("peer_text") && !wire.includes("peer_bye"));
});

Deno.test("a proxy flipping one byte of an encrypted record: decrypt_failed, nothing tampered is yielded", async () => {
  const result = await tamperedRun((direction, index, unit) => {
    if (direction === "i2r" && index === FIRST_RECORD) {
      const copy = unit.slice();
      copy[copy.length - 20] ^= 0x01;
      return [copy];
    }
    return [unit];
  });
  assert.deepEqual(result.events, []);
  assert.equal(result.error?.code, "decrypt_failed");
});

Deno.test("a replayed record: the original is delivered once, the replay fails", async () => {
  const result = await tamperedRun((direction, index, unit) =>
    direction === "i2r" && index === FIRST_RECORD ? [unit, unit] : [unit]
  );
  assert.deepEqual(texts(result.events), ["one"]);
  assert.equal(result.error?.code, "decrypt_failed");
});

Deno.test("a dropped record: the next one fails, nothing after the gap is yielded", async () => {
  const result = await tamperedRun((direction, index, unit) =>
    direction === "i2r" && index === FIRST_RECORD ? [] : [unit]
  );
  assert.deepEqual(result.events, []);
  assert.equal(result.error?.code, "decrypt_failed");
});

Deno.test("a reordered pair of records fails, nothing is yielded", async () => {
  let held: Uint8Array | null = null;
  const result = await tamperedRun((direction, index, unit) => {
    if (direction !== "i2r") return [unit];
    if (index === FIRST_RECORD) {
      held = unit;
      return [];
    }
    if (index === FIRST_RECORD + 1) return [unit, held!];
    return [unit];
  });
  assert.deepEqual(result.events, []);
  assert.equal(result.error?.code, "decrypt_failed");
});

Deno.test("a proxy changing a hello makes key confirmation fail on both sides", async () => {
  const rejected: PeerError[] = [];
  const stop = new AbortController();
  const listener = await listening("bob", {
    onRejected: (error) => rejected.push(error),
    signal: stop.signal,
  });
  const proxy = startProxy(listener.port, (direction, index, unit) => {
    if (direction !== "r2i" || index !== 0) return [unit];
    // Change one character of the responder's nonce: still a well-formed hello.
    const copy = unit.slice();
    const at = new TextDecoder().decode(copy).indexOf('"nonce":"') + 9;
    copy[at] = copy[at] === 0x41 ? 0x42 : 0x41;
    return [copy];
  });
  await assert.rejects(
    connectPeer({ host: HOST, port: proxy.port, nick: "alice" }),
    (err) => err instanceof PeerError && err.code === "handshake_failed",
  );
  await proxy.done;
  while (rejected.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
  assert.equal(rejected[0].code, "handshake_failed");
  stop.abort();
  await assert.rejects(
    listener.session,
    (err) => err instanceof PeerError && err.code === "aborted",
  );
});

Deno.test("a man in the middle running two handshakes relays text, but the SAS strings differ", async () => {
  const bobListener = await listening("bob");
  // Mallory listens for alice (posing as bob) and dials bob (posing as alice).
  const mallorysListener = await listening("bob");
  const alice = await connectPeer({ host: HOST, port: mallorysListener.port, nick: "alice" });
  const malloryAlice = await mallorysListener.session;
  const malloryBob = await connectPeer({ host: HOST, port: bobListener.port, nick: "alice" });
  const bob = await bobListener.session;

  assert.equal(alice.sas, malloryAlice.sas);
  assert.equal(bob.sas, malloryBob.sas);
  assert.notEqual(alice.sas, bob.sas, "the two ends see different SAS strings");
  assert.equal(alice.remoteNick, "bob");
  assert.equal(bob.remoteNick, "alice");

  const relay = (async () => {
    for await (const event of malloryAlice) {
      if (event.type === "text") await malloryBob.sendText(event.text);
    }
    await malloryBob.close();
  })();
  const atBob = collect(bob);
  await alice.sendText("meet at noon");
  await alice.close();
  await relay;
  assert.deepEqual(texts((await atBob).events), ["meet at noon", "<left>"]);
});

Deno.test("a peer that vanishes without a goodbye is reported as connection_lost", async () => {
  const { alice, bob } = await pair();
  const atBob = collect(bob);
  await alice.sendText("still here");
  alice.abort();
  const result = await atBob;
  assert.deepEqual(texts(result.events), ["still here"]);
  assert.equal(result.error?.code, "connection_lost");
  assert.match(result.error!.message, /alice/);
});

Deno.test("a garbage-speaking client gets a clear handshake error; the listener keeps waiting", async () => {
  const rejected: PeerError[] = [];
  const listener = await listening("bob", { onRejected: (error) => rejected.push(error) });

  // Something silent connects first: it must not block the real peer.
  const silent = await Deno.connect({ hostname: HOST, port: listener.port });

  const garbage = await Deno.connect({ hostname: HOST, port: listener.port });
  await writeAll(garbage, new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  const reply: number[] = [];
  const buffer = new Uint8Array(4096);
  for (let n = await garbage.read(buffer); n !== null; n = await garbage.read(buffer)) {
    reply.push(...buffer.subarray(0, n));
  }
  garbage.close();
  const frame = decodeFrame(new Uint8Array(reply));
  assert.equal(frame.header.type, "peer_error");
  assert.equal(frame.header.code, "handshake_failed");
  assert.match(String(frame.header.message), /does not speak the chat peer protocol/);
  assert.equal(rejected.length, 1);
  assert.equal(rejected[0].code, "handshake_failed");

  const alice = await connectPeer({ host: HOST, port: listener.port, nick: "alice" });
  const bob = await listener.session;
  assert.equal(alice.sas, bob.sas);
  // The listener closed the silent connection once the real peer was through.
  assert.equal(await silent.read(buffer).catch(() => null), null);
  silent.close();
  await assert.rejects(
    Deno.connect({ hostname: HOST, port: listener.port }),
    "the listener stopped listening",
  );
  await alice.close();
  await bob.close();
});

Deno.test("connecting to a port where nobody listens fails with connect_failed", async () => {
  const probe = Deno.listen({ hostname: HOST, port: 0 });
  const port = (probe.addr as Deno.NetAddr).port;
  probe.close();
  await assert.rejects(
    connectPeer({ host: HOST, port, nick: "alice" }),
    (err) => err instanceof PeerError && err.code === "connect_failed",
  );
});

Deno.test("listenPeer can be aborted while waiting", async () => {
  const controller = new AbortController();
  const listener = await listening("bob", { signal: controller.signal });
  controller.abort();
  await assert.rejects(
    listener.session,
    (err) => err instanceof PeerError && err.code === "aborted",
  );
});

// ---------------------------------------------------------------------------------------
// The command line.

Deno.test("chat peer --listen advertises non-loopback addresses first, then loopback", () => {
  const nic = (address: string, family: "IPv4" | "IPv6"): Deno.NetworkInterfaceInfo => ({
    family,
    name: "eth0",
    address,
    netmask: "",
    scopeid: null,
    cidr: "",
    mac: "",
  });
  const interfaces = [
    nic("127.0.0.1", "IPv4"),
    nic("192.168.1.5", "IPv4"),
    nic("169.254.3.3", "IPv4"),
    nic("2001:db8::5", "IPv6"),
    nic("fe80::1", "IPv6"),
    nic("10.0.0.7", "IPv4"),
  ];
  assert.deepEqual(reachableAddresses("0.0.0.0", 40123, interfaces), [
    "192.168.1.5:40123",
    "10.0.0.7:40123",
    "127.0.0.1:40123",
  ]);
  assert.deepEqual(reachableAddresses("::", 1, interfaces), [
    "[2001:db8::5]:1",
    "192.168.1.5:1",
    "10.0.0.7:1",
    "127.0.0.1:1",
  ]);
  assert.deepEqual(reachableAddresses("0.0.0.0", 9, []), ["127.0.0.1:9"]);
  assert.deepEqual(reachableAddresses("10.1.2.3", 9, interfaces), ["10.1.2.3:9"]);
});

function spawnPeer(args: string[]): Deno.ChildProcess {
  return spawnChat(["peer", ...args]);
}

Deno.test("chat peer: --listen and --connect with --json exchange a text and agree on the SAS", async () => {
  const listener = spawnPeer([
    "--listen",
    "--port",
    "0",
    "--host",
    HOST,
    "--json",
    "--nick",
    "alice",
  ]);
  const listenerErr = new Response(listener.stderr).text();
  const fromListener = lineReader(listener.stdout);
  const listeningLine = JSON.parse((await fromListener())!);
  assert.equal(listeningLine.type, "listening");
  assert.deepEqual(listeningLine.addresses, [`${HOST}:${listeningLine.port}`]);
  assert.equal(
    listeningLine.command,
    `chat peer --connect ${HOST}:${listeningLine.port} --nick NAME`,
  );

  const connector = spawnPeer([
    "--connect",
    `${HOST}:${listeningLine.port}`,
    "--json",
    "--nick",
    "bob",
  ]);
  const writer = connector.stdin.getWriter();
  await writer.write(new TextEncoder().encode("hello \x1b[2J alice\n\n"));
  await writer.close(); // end of input: bob sends his text, then says goodbye
  const connectorOut = await connector.output();

  const listenerEvents: Record<string, unknown>[] = [];
  for (let line = await fromListener(); line !== null; line = await fromListener()) {
    listenerEvents.push(JSON.parse(line));
  }
  await listener.stdin.close();
  const listenerStatus = await listener.status;
  const stderr = await listenerErr;

  const connectorLines = new TextDecoder().decode(connectorOut.stdout).trim().split("\n");
  const connectorEvents = connectorLines.filter((l) => l !== "").map((l) => JSON.parse(l));
  assert.equal(
    connectorOut.code,
    0,
    `connector failed: ${new TextDecoder().decode(connectorOut.stderr)}`,
  );
  assert.equal(listenerStatus.code, 0, `listener failed: ${stderr}`);

  const listenerSas = listenerEvents.find((e) => e.type === "sas");
  const connectorSas = connectorEvents.find((e) => e.type === "sas");
  assert.ok(listenerSas && connectorSas);
  assert.match(String(listenerSas.sas), /^\d{5}( \d{5}){4}$/);
  assert.equal(listenerSas.sas, connectorSas.sas);
  assert.equal(listenerSas.peer, "bob");
  assert.equal(connectorSas.peer, "alice");

  const received = listenerEvents.filter((e) => e.type === "text");
  assert.equal(received.length, 1, JSON.stringify(listenerEvents));
  assert.equal(received[0].from, "bob");
  assert.equal(received[0].text, "hello \x1b[2J alice");
  assert.equal(typeof received[0].ts, "number");
  assert.deepEqual(listenerEvents.at(-1), { type: "left", from: "bob" });
});

Deno.test("chat peer: a vanished peer is reported with exit code 1; usage errors exit 2", async () => {
  const listener = spawnPeer(["--listen", "--port", "0", "--host", HOST, "--nick", "alice"]);
  const fromListener = lineReader(listener.stdout);
  let port = 0;
  for (let line = await fromListener(); line !== null && port === 0; line = await fromListener()) {
    const match = /^\s+127\.0\.0\.1:(\d+)$/.exec(line);
    if (match) port = Number(match[1]);
  }
  assert.ok(port > 0);
  // A client that completes the handshake and then disappears without a goodbye.
  const ghost = await connectPeer({ host: HOST, port, nick: "ghost" });
  ghost.abort();
  const output: string[] = [];
  for (let line = await fromListener(); line !== null; line = await fromListener()) {
    output.push(line);
  }
  await listener.stdin.close();
  const status = await listener.status;
  const stderr = await new Response(listener.stderr).text();
  assert.equal(status.code, 1);
  assert.ok(output.some((l) => l === `Compare with your peer: ${ghost.sas}`), output.join("\n"));
  assert.match(stderr, /chat peer: connection to ghost lost/);

  const usage = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "main.ts", "peer", "--listen", "--connect", "127.0.0.1:1"],
    cwd: ROOT,
    stdout: "null",
    stderr: "piped",
  }).output();
  assert.equal(usage.code, 2);
  assert.match(new TextDecoder().decode(usage.stderr), /either --listen or --connect/);
});

Deno.test("chat peer: a line over the text limit arrives as several texts, split between words", async () => {
  const listener = spawnPeer([
    "--listen",
    "--port",
    "0",
    "--host",
    HOST,
    "--json",
    "--nick",
    "alice",
  ]);
  const listenerErr = new Response(listener.stderr).text();
  const fromListener = lineReader(listener.stdout);
  const listeningLine = JSON.parse((await fromListener())!);
  const connector = spawnPeer([
    "--connect",
    `${HOST}:${listeningLine.port}`,
    "--json",
    "--nick",
    "bob",
  ]);
  const words = Array.from({ length: 2000 }, (_, i) => `w${i}`);
  const writer = connector.stdin.getWriter();
  await writer.write(new TextEncoder().encode(`${words.join(" ")}\nafter\n`));
  await writer.close();
  const connectorOut = await connector.output();
  const events: Record<string, unknown>[] = [];
  for (let line = await fromListener(); line !== null; line = await fromListener()) {
    events.push(JSON.parse(line));
  }
  await listener.stdin.close();
  assert.equal((await listener.status).code, 0, await listenerErr);
  assert.equal(connectorOut.code, 0, new TextDecoder().decode(connectorOut.stderr));
  const received = events.filter((e) => e.type === "text").map((e) => String(e.text));
  assert.equal(received.length, 4, JSON.stringify(received.map((t) => t.length)));
  for (const text of received) assert.ok(text.length <= MAX_TEXT_LENGTH, `${text.length}`);
  assert.deepEqual(received.slice(0, -1).join(" ").split(" "), words);
  assert.equal(received.at(-1), "after");
});
