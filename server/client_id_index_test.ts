import assert from "node:assert/strict";
import { clientIdHash, ClientIdIndex } from "./client_id_index.ts";

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

Deno.test("clientIdHash: the sender and the request id both count, not just their concatenation", () => {
  assert.equal(clientIdHash("alice", "1"), clientIdHash("alice", "1"));
  assert.notEqual(clientIdHash("alice", "1"), clientIdHash("bob", "1"));
  assert.notEqual(clientIdHash("ab", "c"), clientIdHash("a", "bc"));
  // Request ids counted per session ("1", "2", …): spread over the table's low bits.
  const low = new Set(
    Array.from({ length: 256 }, (_, i) => clientIdHash("alice", String(i)) & 255),
  );
  assert.ok(low.size > 128, `${low.size} of 256 low bytes`);
});
