import assert from "node:assert/strict";
import { concatBytes } from "../protocol/bytes.ts";
import type { ByteChannel } from "../transport/framed_connection.ts";
import { PeerError } from "./errors.ts";
import { memoryChannelPair } from "./memory_channel.ts";
import { nodeRecordAead } from "./record_aead_node.ts";
import { loadOpenSslRecordAead } from "./record_aead_openssl.ts";
import {
  MAX_RECORD_CIPHERTEXT,
  MAX_RECORD_PLAINTEXT,
  OWN_RECORD_BYTES,
  type RecordKeys,
  recordNonce,
  SecureChannel,
  TAG_BYTES,
} from "./secure_channel.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

/** A random key and IV for one direction. */
function direction(): RecordKeys {
  return {
    key: crypto.getRandomValues(new Uint8Array(32)),
    iv: crypto.getRandomValues(new Uint8Array(12)),
  };
}

function keys(): [RecordKeys, RecordKeys] {
  return [direction(), direction()];
}

/** A copy (the channel zeroes what it is given). */
function copy(k: RecordKeys): RecordKeys {
  return { key: new Uint8Array(k.key), iv: new Uint8Array(k.iv) };
}

/** A channel that keeps each write as one captured unit. */
function capture(): ByteChannel & { writes: Uint8Array[] } {
  const writes: Uint8Array[] = [];
  return {
    writes,
    read: () => Promise.resolve(null),
    write: (p) => {
      writes.push(p.slice());
      return Promise.resolve(p.length);
    },
    close: () => {},
  };
}

/** Seals `texts` as one record each under a fresh key; returns the records and a receiver. */
async function sealed(texts: string[]): Promise<{
  records: Uint8Array[];
  receive: (units: Uint8Array[], end?: boolean) => Promise<SecureChannel>;
}> {
  const [k1, k2] = keys();
  const sendKey = copy(k1);
  const out = capture();
  const sender = SecureChannel.create(out, k1, k2);
  for (const text of texts) await sender.writeRecord(enc(text));
  return {
    records: out.writes,
    receive: async (units, end = true) => {
      const [a, b] = memoryChannelPair();
      for (const unit of units) await a.write(unit);
      if (end) a.close();
      return SecureChannel.create(b, direction(), copy(sendKey));
    },
  };
}

async function readAll(channel: SecureChannel): Promise<{ texts: string[]; error?: PeerError }> {
  const texts: string[] = [];
  try {
    for (;;) {
      const record = await channel.readRecord();
      if (record === null) return { texts };
      texts.push(dec(record));
    }
  } catch (err) {
    assert.ok(err instanceof PeerError, String(err));
    return { texts, error: err };
  }
}

Deno.test("recordNonce is the IV XOR four zero bytes and a big-endian 64-bit counter", () => {
  const zero = new Uint8Array(12);
  assert.deepEqual(recordNonce(zero, 0n), new Uint8Array(12));
  assert.deepEqual(
    recordNonce(zero, 0x0102030405060708n),
    new Uint8Array([0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8]),
  );
  const iv = Uint8Array.from({ length: 12 }, (_, i) => 0xa0 + i);
  assert.deepEqual(recordNonce(iv, 0n), iv);
  assert.deepEqual(
    recordNonce(iv, 0x0102030405060708n),
    Uint8Array.from([0xa0, 0xa1, 0xa2, 0xa3, 0xa5, 0xa7, 0xa5, 0xa3, 0xad, 0xaf, 0xad, 0xa3]),
  );
  assert.throws(() => recordNonce(new Uint8Array(8), 0n), RangeError);
});

Deno.test("records match independently computed ChaCha20-Poly1305 vectors, through each backend", async () => {
  // peer/testdata/v3_vectors.py: the key and IV of its key schedule vector (initiator to
  // responder), records 0 and 1 sealed by python's `cryptography` ChaCha20Poly1305.
  const openssl = loadOpenSslRecordAead();
  for (const aead of openssl === null ? [nodeRecordAead] : [nodeRecordAead, openssl]) {
    const out = capture();
    const sender = SecureChannel.create(
      out,
      {
        key: Uint8Array.fromHex("3ab1e2566af9f32134e26a03bb53a52a641e21ec74c61000891337e691b0e274"),
        iv: Uint8Array.fromHex("bf6766496c35fcaa794cdb0b"),
      },
      direction(),
      { aead },
    );
    await sender.writeRecord(enc("attack at dawn"));
    await sender.writeRecord(new Uint8Array(0));
    assert.deepEqual(out.writes.map((w) => w.toHex()), [
      "0000001e70abc363bced02c2c27734426d28c73bb551c9ba9b31247484f580e83ed1",
      "0000001076f92181406f483517554788b2495b15",
    ], aead.name);
  }
});

Deno.test("a channel sealing with OpenSSL and one opening with node:crypto read each other, both ways", async () => {
  const openssl = loadOpenSslRecordAead();
  if (openssl === null) return;
  const text = new Uint8Array(3 * MAX_RECORD_PLAINTEXT + 5);
  for (let i = 0; i < text.length; i += 4096) text[i] = i >> 12;
  for (const [one, other] of [[openssl, nodeRecordAead], [nodeRecordAead, openssl]]) {
    const [a, b] = memoryChannelPair();
    const [k1, k2] = keys();
    const left = SecureChannel.create(a, copy(k1), copy(k2), { aead: one });
    const right = SecureChannel.create(b, copy(k2), copy(k1), { aead: other });
    const small = enc("header");
    const sent = left.writeMany([small, text, small]);
    const got = new Uint8Array(small.length * 2 + text.length);
    for (let at = 0; at < got.length;) at += (await right.read(got.subarray(at)))!;
    await sent;
    assert.deepEqual(got.subarray(small.length, small.length + text.length), text);
    assert.equal(dec(got.subarray(0, small.length)), "header");
    await right.writeRecord(enc("back"));
    assert.equal(dec((await left.readRecord())!), "back", `${one.name} / ${other.name}`);
  }
});

Deno.test("records carry bytes both ways", async () => {
  const [a, b] = memoryChannelPair();
  const [k1, k2] = keys();
  const left = SecureChannel.create(a, copy(k1), copy(k2));
  const right = SecureChannel.create(b, k2, k1);
  assert.ok(k1.key.every((x) => x === 0) && k1.iv.every((x) => x === 0), "given bytes are wiped");
  await left.write(enc("hello right"));
  await right.write(enc("hello left"));
  const buffer = new Uint8Array(64);
  const n = await right.read(buffer);
  assert.equal(dec(buffer.subarray(0, n!)), "hello right");
  const m = await left.read(buffer);
  assert.equal(dec(buffer.subarray(0, m!)), "hello left");
  assert.equal(left.recordsSent, 1n);
  assert.equal(left.recordsReceived, 1n);
  left.close();
  assert.equal(await right.read(buffer), null);
});

Deno.test("the wire shows the record length but never the plaintext", async () => {
  const out = capture();
  const [k1, k2] = keys();
  const sender = SecureChannel.create(out, k1, k2);
  await sender.writeRecord(enc("attack at dawn"));
  assert.equal(out.writes.length, 1, "a small record goes out in one write");
  const wire = out.writes[0];
  assert.equal(wire.length, 4 + 14 + TAG_BYTES);
  assert.equal(new DataView(wire.buffer).getUint32(0), 14 + TAG_BYTES);
  assert.ok(!dec(wire).includes("attack"));
});

Deno.test("a large write is split into bounded records and reassembled", async () => {
  const out = capture();
  const [k1, k2] = keys();
  const key = copy(k1);
  const sender = SecureChannel.create(out, k1, k2);
  const data = new Uint8Array(MAX_RECORD_PLAINTEXT * 2 + 100).map((_, i) => (i * 7919) % 251);
  assert.equal(await sender.write(data), data.length);
  assert.equal(sender.recordsSent, 3n);
  const wire = concatBytes(out.writes);
  assert.equal(wire.length, data.length + 3 * (4 + TAG_BYTES));
  const view = new DataView(wire.buffer);
  assert.equal(view.getUint32(0), MAX_RECORD_PLAINTEXT + TAG_BYTES);
  const [a, b] = memoryChannelPair();
  await a.write(wire);
  a.close();
  const receiver = SecureChannel.create(b, direction(), key);
  const got: number[] = [];
  const buffer = new Uint8Array(1000);
  for (let n = await receiver.read(buffer); n !== null; n = await receiver.read(buffer)) {
    got.push(...buffer.subarray(0, n));
  }
  assert.deepEqual(new Uint8Array(got), data);
});

Deno.test("reads of any size return the stream in order, and only authenticated bytes come back", async () => {
  const out = capture();
  const [k1, k2] = keys();
  const key = copy(k1);
  const sender = SecureChannel.create(out, k1, k2);
  const data = new Uint8Array(MAX_RECORD_PLAINTEXT * 3 - 5).map((_, i) => (i * 7919) % 251);
  await sender.write(data);
  const wire = concatBytes(out.writes);
  const sizes = [1, 700 * 1024, 2 * MAX_RECORD_PLAINTEXT, 4096, MAX_RECORD_PLAINTEXT];
  const readBack = async (bytes: Uint8Array) => {
    const [a, b] = memoryChannelPair();
    await a.write(bytes);
    a.close();
    const receiver = SecureChannel.create(b, direction(), copy(key));
    const got: Uint8Array[] = [];
    try {
      for (let i = 0;; i++) {
        const buffer = new Uint8Array(sizes[i % sizes.length]);
        const n = await receiver.read(buffer);
        if (n === null) return { got: concatBytes(got) };
        got.push(buffer.slice(0, n));
      }
    } catch (error) {
      return { got: concatBytes(got), error: error as PeerError };
    }
  };
  const intact = await readBack(wire);
  assert.equal(intact.error, undefined);
  assert.deepEqual(intact.got, data);
  // The second record's last plaintext byte flipped: the first record's bytes only.
  const tampered = wire.slice();
  tampered[2 * (4 + MAX_RECORD_PLAINTEXT + TAG_BYTES) - TAG_BYTES - 1] ^= 1;
  const cut = await readBack(tampered);
  assert.equal(cut.error?.code, "decrypt_failed");
  assert.deepEqual(cut.got, data.subarray(0, MAX_RECORD_PLAINTEXT));
});

Deno.test("writeMany seals pieces as one stream: large pieces in records of their own, small ones together, written with the next large one", async () => {
  const out = capture();
  const [k1, k2] = keys();
  const key = copy(k1);
  const sender = SecureChannel.create(out, k1, k2);
  const sizes = [
    700 * 1024,
    0,
    600 * 1024,
    10,
    20,
    OWN_RECORD_BYTES - 100,
    MAX_RECORD_PLAINTEXT + 5,
  ];
  const pieces = sizes.map((n, p) => new Uint8Array(n).map((_, i) => (i * 31 + p) % 253));
  await sender.writeMany(pieces);
  const total = pieces.reduce((n, p) => n + p.length, 0);
  const wire = concatBytes(out.writes);
  const lengths: number[] = [];
  for (let at = 0; at < wire.length;) {
    const length = new DataView(wire.buffer, at).getUint32(0);
    lengths.push(length - TAG_BYTES);
    at += 4 + length;
  }
  assert.deepEqual(lengths, [
    700 * 1024,
    600 * 1024,
    10 + 20 + OWN_RECORD_BYTES - 100,
    MAX_RECORD_PLAINTEXT,
    5,
  ]);
  assert.equal(sender.recordsSent, BigInt(lengths.length));
  // The small record goes out in one write with the large one after it.
  const record = (n: number) => 4 + n + TAG_BYTES;
  assert.deepEqual(out.writes.map((w) => w.length), [
    record(700 * 1024),
    record(600 * 1024),
    record(10 + 20 + OWN_RECORD_BYTES - 100) + record(MAX_RECORD_PLAINTEXT),
    record(5),
  ]);
  const [a, b] = memoryChannelPair();
  await a.write(wire);
  a.close();
  const receiver = SecureChannel.create(b, direction(), key);
  const got = new Uint8Array(total);
  let at = 0;
  for (let r = await receiver.readRecord(); r !== null; r = await receiver.readRecord()) {
    assert.ok(r.length <= MAX_RECORD_PLAINTEXT);
    got.set(r, at);
    at += r.length;
  }
  assert.equal(at, total);
  assert.deepEqual(got, concatBytes(pieces));
});

Deno.test("a flipped ciphertext byte fails with decrypt_failed and yields nothing", async () => {
  const { records, receive } = await sealed(["one", "two"]);
  for (const index of [4, 6, records[0].length - 1]) {
    const tampered = records[0].slice();
    tampered[index] ^= 0x01;
    const result = await readAll(await receive([tampered, records[1]]));
    assert.deepEqual(result.texts, []);
    assert.equal(result.error?.code, "decrypt_failed");
  }
});

Deno.test("a replayed, dropped or reordered record fails with decrypt_failed", async () => {
  const { records, receive } = await sealed(["one", "two", "three"]);
  const [r0, r1, r2] = records;
  const replayed = await readAll(await receive([r0, r0, r1]));
  assert.deepEqual(replayed.texts, ["one"]);
  assert.equal(replayed.error?.code, "decrypt_failed");
  const dropped = await readAll(await receive([r0, r2]));
  assert.deepEqual(dropped.texts, ["one"]);
  assert.equal(dropped.error?.code, "decrypt_failed");
  const reordered = await readAll(await receive([r1, r0, r2]));
  assert.deepEqual(reordered.texts, []);
  assert.equal(reordered.error?.code, "decrypt_failed");
  const intact = await readAll(await receive([r0, r1, r2]));
  assert.deepEqual(intact, { texts: ["one", "two", "three"] });
});

Deno.test("the failure sticks: later reads fail the same way", async () => {
  const { records, receive } = await sealed(["one", "two"]);
  const channel = await receive([records[1], records[0]]);
  const first = await readAll(channel);
  assert.equal(first.error?.code, "decrypt_failed");
  await assert.rejects(channel.readRecord(), (err) => err === first.error);
});

Deno.test("a record from the other direction's key does not authenticate", async () => {
  const [a, b] = memoryChannelPair();
  const k = direction();
  const left = SecureChannel.create(a, copy(k), direction());
  // The receiver uses the same key as the sender but in its own (wrong) direction.
  const right = SecureChannel.create(b, copy(k), direction());
  await left.writeRecord(enc("hi"));
  await assert.rejects(
    right.readRecord(),
    (e) => e instanceof PeerError && e.code === "decrypt_failed",
  );
});

Deno.test("an out-of-bounds length fails with bad_record before anything is read", async () => {
  for (const length of [0, TAG_BYTES - 1, MAX_RECORD_CIPHERTEXT + 1, 0xffff_ffff]) {
    const prefix = new Uint8Array(4);
    new DataView(prefix.buffer).setUint32(0, length);
    const { receive } = await sealed([]);
    const channel = await receive([prefix], false);
    await assert.rejects(
      channel.readRecord(),
      (err) => err instanceof PeerError && err.code === "bad_record",
      `length ${length}`,
    );
  }
});

Deno.test("a stream ending inside a record is connection_lost; between records it is the end", async () => {
  const { records, receive } = await sealed(["one"]);
  const truncated = await readAll(await receive([records[0].subarray(0, 10)]));
  assert.equal(truncated.error?.code, "connection_lost");
  const prefixOnly = await readAll(await receive([records[0].subarray(0, 4)]));
  assert.equal(prefixOnly.error?.code, "connection_lost");
  assert.deepEqual(await readAll(await receive([records[0]])), { texts: ["one"] });
});

Deno.test("a counter at its limit ends the channel instead of reusing a nonce", async () => {
  const [a, b] = memoryChannelPair();
  const [k1, k2] = keys();
  const left = SecureChannel.create(a, copy(k1), copy(k2), { maxRecords: 2n });
  const right = SecureChannel.create(b, k2, k1, { maxRecords: 1n });
  await left.writeRecord(enc("0"));
  await left.writeRecord(enc("1"));
  await assert.rejects(
    left.writeRecord(enc("2")),
    (e) => e instanceof PeerError && e.code === "limit",
  );
  await assert.rejects(left.write(enc("3")), (e) => e instanceof PeerError && e.code === "limit");
  assert.equal(left.recordsSent, 2n);
  assert.equal(dec((await right.readRecord())!), "0");
  await assert.rejects(right.readRecord(), (e) => e instanceof PeerError && e.code === "limit");
});

Deno.test("writes issued together reach the wire in counter order", async () => {
  const [a, b] = memoryChannelPair();
  const [k1, k2] = keys();
  const left = SecureChannel.create(a, copy(k1), copy(k2));
  const right = SecureChannel.create(b, k2, k1);
  await Promise.all(Array.from({ length: 20 }, (_, i) => left.writeRecord(enc(String(i)))));
  for (let i = 0; i < 20; i++) assert.equal(dec((await right.readRecord())!), String(i));
});

Deno.test("records read together come back in order, and stop at the first bad one", async () => {
  const texts = Array.from({ length: 8 }, (_, i) => `record ${i}`);
  const { records, receive } = await sealed(texts);
  // All in one unit: the reader has them all at once.
  const whole = await receive([records.reduce((a, b) => new Uint8Array([...a, ...b]))]);
  assert.deepEqual(await readAll(whole), { texts });
  assert.equal(whole.recordsReceived, 8n);

  const tampered = records.map((r) => r.slice());
  tampered[5][10] ^= 1;
  const channel = await receive([tampered.reduce((a, b) => new Uint8Array([...a, ...b]))]);
  const read = await readAll(channel);
  assert.deepEqual(read.texts, texts.slice(0, 5));
  assert.equal(read.error?.code, "decrypt_failed");
  assert.ok(read.error?.message.includes("record 5"), read.error?.message);
  assert.equal(channel.recordsReceived, 5n);

  const badLength = new Uint8Array(4);
  new DataView(badLength.buffer).setUint32(0, MAX_RECORD_CIPHERTEXT + 1);
  const cut = await receive([new Uint8Array([...records[0], ...records[1], ...badLength])]);
  const bounded = await readAll(cut);
  assert.deepEqual(bounded.texts, texts.slice(0, 2));
  assert.equal(bounded.error?.code, "bad_record");
});

Deno.test("records read one by one from the transport come back in order, and an end inside one after them", async () => {
  const texts = ["zero", "one", "two"];
  const { records, receive } = await sealed(texts);
  // Each record in its own unit, read from the transport one after another.
  const whole = await receive(records);
  assert.deepEqual(await readAll(whole), { texts });
  const cut = await receive([records[0], records[1], records[2].subarray(0, 9)]);
  const read = await readAll(cut);
  assert.deepEqual(read.texts, ["zero", "one"]);
  assert.equal(read.error?.code, "connection_lost");
  assert.equal(cut.recordsReceived, 2n);
});

Deno.test("sealing and opening 48 MiB leaves no node:crypto outputs waiting for the garbage collector", async () => {
  const MiB = 1024 * 1024;
  const records = 48;
  const [k1, k2] = keys();
  const wire = new Uint8Array(records * (4 + MAX_RECORD_CIPHERTEXT));
  let written = 0;
  // The sender's transport copies into one buffer allocated up front: nothing else grows.
  const sink: ByteChannel = {
    read: () => Promise.resolve(null),
    write: (p) => {
      wire.set(p, written);
      written += p.length;
      return Promise.resolve(p.length);
    },
    close: () => {},
  };
  const plaintext = new Uint8Array(MAX_RECORD_PLAINTEXT).fill(7);
  // node:crypto's outputs are what this is about (the OpenSSL backend makes none).
  const sender = SecureChannel.create(sink, copy(k1), copy(k2), { aead: nodeRecordAead });
  // Outputs left to the collector pile up as external memory until a collection, which
  // V8 runs every 15 MiB or so of them here (measured: 1 MiB more per record until
  // then); released, the growth stays at the 1 MiB record buffer the channel keeps.
  const bound = 8 * MiB;
  let base = Deno.memoryUsage().external;
  for (let i = 0; i < records; i++) {
    await sender.writeRecord(plaintext);
    const grown = Deno.memoryUsage().external - base;
    assert.ok(grown < bound, `sealing: external memory grew by ${grown} bytes at record ${i}`);
  }
  let served = 0;
  const source: ByteChannel = {
    read: (p) => {
      if (served === written) return Promise.resolve(null);
      const n = Math.min(p.length, written - served);
      p.set(wire.subarray(served, served + n));
      served += n;
      return Promise.resolve(n);
    },
    write: (p) => Promise.resolve(p.length),
    close: () => {},
  };
  const receiver = SecureChannel.create(source, copy(k2), copy(k1), { aead: nodeRecordAead });
  const into = new Uint8Array(MiB);
  let received = 0;
  base = Deno.memoryUsage().external;
  while (true) {
    const n = await receiver.read(into);
    if (n === null) break;
    assert.equal(into[n - 1], 7);
    received += n;
    const grown = Deno.memoryUsage().external - base;
    assert.ok(grown < bound, `opening: external memory grew by ${grown} bytes at ${received}`);
  }
  assert.equal(received, records * MAX_RECORD_PLAINTEXT);
});

Deno.test("a large record read into a buffer that holds it is read and decrypted there, in place, with no buffer of the channel's between", async () => {
  const [a, b] = memoryChannelPair();
  const [k1, k2] = keys();
  const sender = SecureChannel.create(a, copy(k1), copy(k2));
  const receiver = SecureChannel.create(b, k2, k1);
  const data = new Uint8Array(MAX_RECORD_PLAINTEXT).map((_, i) => (i * 31) % 253);
  await sender.writeRecord(data);
  const into = new Uint8Array(MAX_RECORD_PLAINTEXT);
  assert.equal(await receiver.read(into), MAX_RECORD_PLAINTEXT);
  assert.deepEqual(into, data);
  assert.equal(receiver.bytesReadCopied, 0);
  assert.equal(receiver.keptBytes, 0, "no ciphertext buffer: the record went straight into `into`");
  // Without a destination the ciphertext still has its kept buffer.
  await sender.writeRecord(data);
  assert.deepEqual(await receiver.readRecord(), data);
  assert.ok(receiver.keptBytes >= MAX_RECORD_CIPHERTEXT);
});

Deno.test("a large record read in place with a flipped byte or tag fails with decrypt_failed", async () => {
  const [k1, k2] = keys();
  const sendKey = copy(k1);
  const out = capture();
  const sender = SecureChannel.create(out, k1, k2);
  await sender.writeRecord(new Uint8Array(MAX_RECORD_PLAINTEXT).fill(7));
  const record = concatBytes(out.writes);
  for (const index of [4, 4 + MAX_RECORD_PLAINTEXT / 2, record.length - 1]) {
    const tampered = record.slice();
    tampered[index] ^= 0x01;
    const [a, b] = memoryChannelPair();
    await a.write(tampered);
    a.close();
    const receiver = SecureChannel.create(b, direction(), copy(sendKey));
    await assert.rejects(
      receiver.read(new Uint8Array(MAX_RECORD_PLAINTEXT)),
      (err) => err instanceof PeerError && err.code === "decrypt_failed",
    );
  }
});

/** Every record on `wire`, opened under `key` one by one (counters from 0), with the channel. */
async function openAll(
  wire: Uint8Array,
  key: RecordKeys,
): Promise<{ records: Uint8Array[]; receiver: SecureChannel }> {
  const [a, b] = memoryChannelPair();
  await a.write(wire);
  a.close();
  const receiver = SecureChannel.create(b, direction(), copy(key));
  const records: Uint8Array[] = [];
  for (let r = await receiver.readRecord(); r !== null; r = await receiver.readRecord()) {
    records.push(r.slice());
  }
  return { records, receiver };
}

/** `n` bytes of a pattern seeded with `seed`. */
function pattern(n: number, seed: number): Uint8Array {
  return new Uint8Array(n).map((_, i) => (i * 31 + seed) % 251);
}

Deno.test("a frame laid out in a sealable buffer is sealed where it lies: one write from the buffer, no seal buffer kept", async () => {
  const writes: Uint8Array[] = [];
  const out: ByteChannel = {
    read: () => Promise.resolve(null),
    write: (p) => {
      writes.push(p); // not copied: where the channel wrote from
      return Promise.resolve(p.length);
    },
    close: () => {},
  };
  const [k1, k2] = keys();
  const key = copy(k1);
  const sender = SecureChannel.create(out, k1, k2);
  const frame = sender.sealable(MAX_RECORD_PLAINTEXT);
  const header = pattern(100, 1);
  const body = pattern(MAX_RECORD_PLAINTEXT - 200, 2);
  frame.set(header);
  frame.set(body, header.length);
  await sender.writeMany([
    frame.subarray(0, header.length),
    frame.subarray(header.length, header.length + body.length),
  ]);
  assert.equal(sender.keptBytes, 0, "no buffer of the channel's: sealed in the frame's");
  assert.equal(writes.length, 1, "the header's record and the body's go in one write");
  const [write] = writes;
  assert.equal(write.buffer, frame.buffer, "written from the frame's own buffer");
  // The body's record ends 16 bytes past the body: its ciphertext where the body was.
  assert.equal(
    write.byteOffset + write.length,
    frame.byteOffset + header.length + body.length + 16,
  );
  assert.equal(write.length, 4 + header.length + TAG_BYTES + 4 + body.length + TAG_BYTES);
  assert.notDeepEqual(frame.subarray(header.length, header.length + 64), body.subarray(0, 64));
  const { records } = await openAll(write.slice(), key);
  assert.deepEqual(records, [header, body]);
  assert.equal(sender.recordsSent, 2n);
});

Deno.test("records sealed in place and elsewhere, small and large, mixed in writes, keep their order and counters", async () => {
  const out = capture();
  const [k1, k2] = keys();
  const key = copy(k1);
  const sender = SecureChannel.create(out, k1, k2);
  const laid = (length: number, seed: number) => {
    const bytes = sender.sealable(length);
    bytes.set(pattern(length, seed));
    return bytes;
  };
  const expected: Uint8Array[] = [];
  await sender.writeRecord(enc("first"));
  expected.push(enc("first"));
  // A frame's header (small) and body (in place), between other pieces.
  const frame = laid(300 * 1024, 3);
  const plain = pattern(200 * 1024, 4);
  const [header, body] = [frame.subarray(0, 40), frame.subarray(40)];
  expected.push(
    new Uint8Array([...enc("ab"), ...header]),
    body.slice(),
    new Uint8Array([...enc("c")]),
    plain.slice(),
  );
  await sender.writeMany([enc("a"), enc("b"), header, body, enc("c"), plain]);
  // A whole frame alone (in place), then a sealable piece too long for one record
  // (sealed as any other), then one followed by more of its buffer (not in place: its
  // tag would fall on bytes still to be written).
  const whole = laid(MAX_RECORD_PLAINTEXT, 5);
  expected.push(whole.slice());
  await sender.write(whole);
  const long = laid(MAX_RECORD_PLAINTEXT + 10, 6);
  expected.push(long.slice(0, MAX_RECORD_PLAINTEXT), long.slice(MAX_RECORD_PLAINTEXT));
  await sender.write(long);
  const split = laid(400 * 1024, 7);
  const [front, back] = [split.subarray(0, 150 * 1024), split.subarray(150 * 1024)];
  expected.push(front.slice(), back.slice());
  await sender.writeMany([front, back]);
  await sender.writeRecord(enc("last"));
  expected.push(enc("last"));
  const { records, receiver } = await openAll(concatBytes(out.writes), key);
  assert.equal(records.length, expected.length);
  for (const [i, record] of records.entries()) assert.deepEqual(record, expected[i], `record ${i}`);
  assert.equal(sender.recordsSent, BigInt(expected.length));
  assert.equal(receiver.recordsReceived, BigInt(expected.length));
});

Deno.test("a small record too long for the room before an in-place record goes in a write of its own", async () => {
  const out = capture();
  const [k1, k2] = keys();
  const key = copy(k1);
  const sender = SecureChannel.create(out, k1, k2);
  const small = pattern(OWN_RECORD_BYTES - 1, 8);
  const body = sender.sealable(200 * 1024);
  body.set(pattern(body.length, 9));
  const plain = body.slice();
  await sender.writeMany([small, body]);
  assert.deepEqual(out.writes.map((w) => w.length), [
    4 + small.length + TAG_BYTES,
    4 + body.length + TAG_BYTES,
  ]);
  assert.equal(sender.keptBytes, 0);
  assert.deepEqual((await openAll(concatBytes(out.writes), key)).records, [small, plain]);
});

Deno.test("a record sealed in place with a flipped length, ciphertext or tag byte fails with decrypt_failed", async () => {
  const [k1, k2] = keys();
  const sendKey = copy(k1);
  const out = capture();
  const sender = SecureChannel.create(out, k1, k2);
  const body = sender.sealable(MAX_RECORD_PLAINTEXT);
  body.fill(7);
  await sender.write(body);
  assert.equal(sender.keptBytes, 0);
  const record = concatBytes(out.writes);
  assert.equal(record.length, 4 + MAX_RECORD_PLAINTEXT + TAG_BYTES);
  for (const index of [3, 4, 4 + MAX_RECORD_PLAINTEXT / 2, record.length - 1]) {
    const tampered = record.slice();
    tampered[index] ^= 0x01;
    for (const into of [new Uint8Array(MAX_RECORD_PLAINTEXT), null]) {
      const [a, b] = memoryChannelPair();
      await a.write(tampered);
      a.close();
      const receiver = SecureChannel.create(b, direction(), copy(sendKey));
      await assert.rejects(
        into === null ? receiver.readRecord() : receiver.read(into),
        (err) => err instanceof PeerError && ["decrypt_failed", "bad_record"].includes(err.code),
        `byte ${index}`,
      );
    }
  }
  // Untouched, it opens.
  const { records } = await openAll(record, sendKey);
  assert.deepEqual(records, [new Uint8Array(MAX_RECORD_PLAINTEXT).fill(7)]);
});

Deno.test("a sealable buffer's length is checked", () => {
  const sender = SecureChannel.create(capture(), direction(), direction());
  for (const bad of [-1, 1.5, NaN]) assert.throws(() => sender.sealable(bad), RangeError);
  const bytes = sender.sealable(10);
  assert.equal(bytes.length, 10);
});
