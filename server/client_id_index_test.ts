import assert from "node:assert/strict";
import { clientIdHash, ClientIdIndex, randomClientIdKey } from "./client_id_index.ts";

/** The (id, ring) pairs the index gives for `hash`, sorted by id. */
function candidates(index: ClientIdIndex, hash: number): [number, number][] {
  const out: [number, number][] = [];
  for (let slot = index.candidate(hash); slot >= 0; slot = index.candidate(hash, slot)) {
    out.push([index.idAt(slot), index.ringAt(slot)]);
  }
  return out.sort((a, b) => a[0] - b[0]);
}

Deno.test("ClientIdIndex: adds and removes as a map does, with clustered hashes", () => {
  // A small hash range: long probe runs, clusters across the table's end, many equal hashes.
  let seed = 12345;
  const random = (n: number) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed % n;
  };
  const index = new ClientIdIndex();
  const reference = new Map<number, { hash: number; ring: number }>();
  let nextId = 1;
  for (let step = 0; step < 20_000; step++) {
    if (reference.size > 0 && random(3) === 0) {
      const ids = [...reference.keys()];
      const id = ids[random(ids.length)];
      assert.equal(index.remove(reference.get(id)!.hash, id), true);
      reference.delete(id);
    } else {
      const hash = random(2) === 0 ? random(40) - 20 : (random(1 << 30) * 2) | 0;
      const ring = random(5);
      index.add(hash, nextId, ring);
      reference.set(nextId++, { hash, ring });
    }
    if (step % 500 === 0 || step === 19_999) {
      assert.equal(index.size, reference.size);
      assert.ok(index.capacity >= 2 * index.size);
      const byHash = new Map<number, [number, number][]>();
      for (const [id, { hash, ring }] of reference) {
        byHash.set(hash, [...(byHash.get(hash) ?? []), [id, ring]]);
      }
      for (const [hash, entries] of byHash) assert.deepEqual(candidates(index, hash), entries);
    }
  }
  assert.equal(index.remove(7, 1_000_000), false, "an unknown entry");
  for (const [id, { hash }] of reference) index.remove(hash, id);
  assert.equal(index.size, 0);
  assert.deepEqual(candidates(index, 0), []);
});

Deno.test("ClientIdIndex.hash: the sender and the request id both count, not just their concatenation", () => {
  const index = new ClientIdIndex();
  assert.equal(index.hash("alice", "1"), index.hash("alice", "1"));
  assert.notEqual(index.hash("alice", "1"), index.hash("bob", "1"));
  assert.notEqual(index.hash("ab", "c"), index.hash("a", "bc"));
  assert.notEqual(index.hash("", "ab"), index.hash("a", "b"));
  // Request ids counted per session ("1", "2", …): spread over the table's low bits.
  const low = new Set(Array.from({ length: 256 }, (_, i) => index.hash("alice", String(i)) & 255));
  assert.ok(low.size > 128, `${low.size} of 256 low bytes`);
});

Deno.test("ClientIdIndex.hash: each index has its own random key; a given key gives the same hashes", () => {
  const a = new ClientIdIndex();
  const b = new ClientIdIndex();
  const ids = Array.from({ length: 8 }, (_, i) => `id${i}`);
  assert.notDeepEqual(ids.map((id) => a.hash("alice", id)), ids.map((id) => b.hash("alice", id)));
  const key = randomClientIdKey();
  assert.deepEqual(
    ids.map((id) => new ClientIdIndex({ key }).hash("alice", id)),
    ids.map((id) => clientIdHash("alice", id, key[0], key[1])),
  );
});

/** HalfSipHash-c-d with a 32-bit output, written from the reference C code, over bytes. */
function halfSipHash(c: number, d: number, key: Uint8Array, bytes: Uint8Array): number {
  const word = (p: Uint8Array, i: number) =>
    (p[i] | p[i + 1] << 8 | p[i + 2] << 16 | p[i + 3] << 24) >>> 0;
  const k0 = word(key, 0);
  const k1 = word(key, 4);
  const v = new Uint32Array([k0, k1, 0x6c796765 ^ k0, 0x74656462 ^ k1]);
  const rotl = (x: number, b: number) => (x << b | x >>> (32 - b)) >>> 0;
  const round = () => {
    v[0] += v[1], v[1] = rotl(v[1], 5), v[1] ^= v[0], v[0] = rotl(v[0], 16);
    v[2] += v[3], v[3] = rotl(v[3], 8), v[3] ^= v[2];
    v[0] += v[3], v[3] = rotl(v[3], 7), v[3] ^= v[0];
    v[2] += v[1], v[1] = rotl(v[1], 13), v[1] ^= v[2], v[2] = rotl(v[2], 16);
  };
  const whole = bytes.length - bytes.length % 4;
  for (let i = 0; i < whole; i += 4) {
    const m = word(bytes, i);
    v[3] ^= m;
    for (let r = 0; r < c; r++) round();
    v[0] ^= m;
  }
  let b = (bytes.length << 24) >>> 0;
  for (let i = whole; i < bytes.length; i++) b |= bytes[i] << 8 * (i - whole);
  v[3] ^= b;
  for (let r = 0; r < c; r++) round();
  v[0] ^= b;
  v[2] ^= 0xff;
  for (let r = 0; r < d; r++) round();
  return (v[1] ^ v[3]) >>> 0;
}

Deno.test("clientIdHash is HalfSipHash-1-3 of the UTF-16LE units (sender's length, sender, request id)", () => {
  // The reference above gives the published HalfSipHash-2-4 vectors (key bytes 0..7,
  // message bytes 0..n-1; vectors_hsip32 of github.com/veorq/SipHash, as little-endian words).
  const published = [
    0x5b9f35a9,
    0xb85a4727,
    0x03a662fa,
    0x04e7fe8a,
    0x89466e2a,
    0x69b6fac5,
    0x23fc6358,
    0xc563cf8b,
    0x8f84b8d0,
    0x79e706f8,
    0x3479b094,
    0x50300808,
    0x2f87f057,
    0xff63e677,
  ];
  const key = Uint8Array.from({ length: 8 }, (_, i) => i);
  published.forEach((expected, n) => {
    const bytes = Uint8Array.from({ length: n }, (_, i) => i);
    assert.equal(halfSipHash(2, 4, key, bytes), expected, `${n} bytes`);
  });
  // Ours, with 1 and 3 rounds, on strings of every length up to 70 units (odd and even
  // counts of units, lone surrogates, astral characters, the largest unit).
  let seed = 99;
  const random = (n: number) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return (seed >>> 8) % n;
  };
  const randomString = (length: number) =>
    String.fromCharCode(
      ...Array.from({ length }, () => [random(128), random(0x10000), 0xd800, 0xffff][random(4)]),
    );
  for (let step = 0; step < 300; step++) {
    const fromKey = randomString(random(20));
    const clientId = randomString(random(50));
    const [k0, k1] = [random(0x10000) * 0x10000 + random(0x10000), random(0x10000) << 16];
    const units = [
      fromKey.length,
      ...[...fromKey + clientId].flatMap((ch) =>
        Array.from({ length: ch.length }, (_, i) => ch.charCodeAt(i))
      ),
    ];
    const bytes = new Uint8Array(new Uint16Array(units).buffer);
    const keyBytes = new Uint8Array(new Uint32Array([k0, k1]).buffer);
    assert.equal(
      clientIdHash(fromKey, clientId, k0, k1) >>> 0,
      halfSipHash(1, 3, keyBytes, bytes),
      JSON.stringify({ fromKey, clientId, k0, k1 }),
    );
  }
});

/** The hash the index used before it was keyed: FNV-1a of sender, 0xffff, request id, then mixed. */
function unkeyedHash(fromKey: string, clientId: string): number {
  let h = 0x811c9dc5;
  for (const unit of [...units(fromKey), 0xffff, ...units(clientId)]) {
    h = Math.imul(h ^ unit, FNV_PRIME);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  return h | 0;
}

const FNV_PRIME = 0x01000193;

function units(s: string): number[] {
  return Array.from({ length: s.length }, (_, i) => s.charCodeAt(i));
}

/**
 * `count` request ids of `fromKey` whose FNV-1a states all equal that of `target` (so
 * their unkeyed hashes are equal): a printable prefix, then two units solved for, as an
 * attacker would (FNV-1a's step inverts: state = next × prime⁻¹ ^ unit).
 */
function craftCollisions(fromKey: string, target: string, count: number): string[] {
  const state = (clientId: string) => {
    let h = 0x811c9dc5;
    for (const unit of [...units(fromKey), 0xffff, ...units(clientId)]) {
      h = Math.imul(h ^ unit, FNV_PRIME);
    }
    return h;
  };
  let inverse = FNV_PRIME; // Newton's iteration for the inverse modulo 2^32
  for (let i = 0; i < 5; i++) inverse = Math.imul(inverse, 2 - Math.imul(FNV_PRIME, inverse));
  // The state before the last unit must be `before` in its high 16 bits.
  const before = Math.imul(state(target), inverse);
  const ids: string[] = [];
  for (let n = 0; ids.length < count; n++) {
    const prefix = `x${n}-`;
    const s = state(prefix);
    for (let c1 = 0; c1 < 0x10000; c1++) {
      const s1 = Math.imul(s ^ c1, FNV_PRIME);
      if ((s1 ^ before) >>> 16 !== 0) continue;
      ids.push(prefix + String.fromCharCode(c1, (s1 ^ before) & 0xffff));
      break;
    }
  }
  return ids;
}

Deno.test("ClientIdIndex: request ids crafted to collide unkeyed spread under the random key; lookups stay short", () => {
  const fromKey = "mallory";
  const crafted = craftCollisions(fromKey, "0", 1000);
  assert.equal(new Set(crafted).size, crafted.length);
  // They do collide without a key (every one of them in one probe run).
  assert.equal(new Set(crafted.map((id) => unkeyedHash(fromKey, id))).size, 1);
  const index = new ClientIdIndex();
  const hashes = crafted.map((id) => index.hash(fromKey, id));
  // 1,000 random 32-bit hashes: a pair alike has a chance of about 1 in 8,600.
  assert.ok(new Set(hashes).size >= crafted.length - 2, `${new Set(hashes).size} distinct hashes`);
  hashes.forEach((hash, i) => index.add(hash, i + 1, 0));
  const probes = hashes.map((hash) => index.probeLength(hash));
  const total = probes.reduce((a, b) => a + b, 0);
  // At most half full: about 2.5 slots a lookup on average (at most 5.6 and 45 at most
  // in 3,000 random keys), 500 on average and 1,000 at most if they collided.
  assert.ok(total <= 20 * crafted.length, `${total} slots read by ${crafted.length} lookups`);
  assert.ok(Math.max(...probes) <= 200, `a lookup read ${Math.max(...probes)} slots`);
  assert.deepEqual(candidates(index, hashes[500]).map(([id]) => id).includes(501), true);
});

Deno.test("ClientIdIndex: a flood of distinct ids through a bounded history keeps the table's size", () => {
  // As a room ring bounded at 100 does: each new entry replaces the oldest.
  const index = new ClientIdIndex();
  const held: [number, number][] = [];
  for (let id = 1; id <= 50_000; id++) {
    if (held.length === 100) {
      const [hash, oldest] = held.shift()!;
      assert.equal(index.remove(hash, oldest), true);
    }
    const hash = index.hash("flood", `id${id}`);
    index.add(hash, id, 0);
    held.push([hash, id]);
  }
  assert.equal(index.size, 100);
  // max(64, 4 × the most held at once)
  assert.ok(index.capacity <= 400, `${index.capacity} slots for 100 entries`);
});
