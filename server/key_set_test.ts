import assert from "node:assert/strict";
import { EMPTY_KEYS, keySet, sharedKeySet, withKey, withoutKey } from "./key_set.ts";

Deno.test("keySet: no keys give the shared empty set, keys a set of their own", () => {
  assert.equal(keySet([]), EMPTY_KEYS);
  assert.equal(keySet(new Set()), EMPTY_KEYS);
  const set = keySet(["a", "b", "a"]);
  assert.notEqual(set, EMPTY_KEYS);
  assert.deepEqual([...set], ["a", "b"]);
});

Deno.test("withKey and withoutKey never change a set in place", () => {
  const one = withKey(EMPTY_KEYS, "a");
  assert.equal(EMPTY_KEYS.size, 0, "the shared empty set stays empty");
  assert.deepEqual([...one], ["a"]);
  const two = withKey(one, "b");
  assert.deepEqual([...one], ["a"], "a set handed out stays as it was");
  assert.deepEqual([...two], ["a", "b"]);
  assert.equal(withKey(two, "a"), two, "a key already there: the same set");
  assert.equal(withoutKey(two, "c"), two, "a key not there: the same set");
  const back = withoutKey(two, "b");
  assert.deepEqual([...back], ["a"]);
  assert.deepEqual([...two], ["a", "b"]);
  assert.equal(withoutKey(back, "a"), EMPTY_KEYS, "emptied: the shared empty set");
});

Deno.test("sharedKeySet: a set of one key is shared, others are not", () => {
  const a = sharedKeySet(["lobby"]);
  assert.equal(sharedKeySet(new Set(["lobby"])), a);
  assert.deepEqual([...a], ["lobby"]);
  assert.notEqual(sharedKeySet(["lobby", "dev"]), sharedKeySet(["lobby", "dev"]));
  assert.equal(sharedKeySet([]), EMPTY_KEYS);
  // Changed, a shared set gives a new one: the others holding it see no change.
  const b = withKey(a, "dev");
  assert.deepEqual([...sharedKeySet(["lobby"])], ["lobby"]);
  assert.deepEqual([...b], ["lobby", "dev"]);
});
