import assert from "node:assert/strict";
import { MemoryStore } from "./memory_store.ts";
import { NickSkeletons } from "./nick_skeletons.ts";

Deno.test("NickSkeletons: look-alikes refused, also while one registers, freed when it fails", async () => {
  const store = new MemoryStore();
  await store.createAccount({ key: "alice", nick: "alice", passwordHash: null, createdAt: 0 });
  const skeletons = new NickSkeletons(store);
  assert.match((await skeletons.claim("aiice", "aIice"))!, /reads like "alice"/);
  assert.match((await skeletons.claim("server", "server"))!, /reserved/);
  // Two look-alikes at the same moment: the second is refused.
  const [first, second] = await Promise.all([
    skeletons.claim("bob", "bob"),
    skeletons.claim("b0b", "b0b"),
  ]);
  assert.equal(first, null);
  assert.match(second!, /being registered/);
  // The first registration failed (no account): its claim is dropped.
  await skeletons.settle("bob");
  assert.equal(await skeletons.claim("b0b", "b0b"), null);
  await store.createAccount({ key: "b0b", nick: "b0b", passwordHash: null, createdAt: 0 });
  await skeletons.settle("b0b");
  assert.match((await skeletons.claim("bob", "bob"))!, /reads like "b0b"/);
});
