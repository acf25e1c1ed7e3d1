/**
 * Small sets of keys that are read often, changed rarely, and empty for most accounts
 * (the accounts one blocks), or the same for most of them (the rooms one is in: the
 * lobby alone): never changed in place, replaced on each change, the empty one shared,
 * and with {@linkcode sharedKeySet} a set of one key shared by all who hold it. An
 * account that blocks nobody and is in the lobby alone holds no set of its own (a
 * server holds several per online account), and a set handed out stays as it was.
 *
 * @example
 * ```ts
 * import { EMPTY_KEYS, keySet, sharedKeySet, withKey, withoutKey } from "./key_set.ts";
 * let blocks = keySet([]); // EMPTY_KEYS, shared
 * blocks = withKey(blocks, "bob"); // a new set
 * blocks = withoutKey(blocks, "bob"); // EMPTY_KEYS again
 * blocks === EMPTY_KEYS; // true
 * sharedKeySet(["lobby"]) === sharedKeySet(["lobby"]); // true
 * ```
 *
 * @module
 */

/** The empty key set, shared by everyone. */
export const EMPTY_KEYS: ReadonlySet<string> = new Set<string>();

/** A key set of `keys`: the shared empty one when there are none. */
export function keySet(keys: Iterable<string>): ReadonlySet<string> {
  const set = new Set(keys);
  return set.size === 0 ? EMPTY_KEYS : set;
}

/** `set` with `key` added: `set` itself when it has it already, else a new set. */
export function withKey(set: ReadonlySet<string>, key: string): ReadonlySet<string> {
  if (set.has(key)) return set;
  const next = new Set(set);
  next.add(key);
  return next;
}

/** `set` without `key`: `set` itself when it lacks it, else a new set (or the empty one). */
export function withoutKey(set: ReadonlySet<string>, key: string): ReadonlySet<string> {
  if (!set.has(key)) return set;
  const next = new Set(set);
  next.delete(key);
  return next.size === 0 ? EMPTY_KEYS : next;
}

/** Sets of one key kept for sharing, at most this many (distinct keys). */
const MAX_SHARED = 1024;
const singletons = new Map<string, ReadonlySet<string>>();

/**
 * A key set of `keys`, as {@linkcode keySet}; a set of one key is the one every caller
 * with that key gets (for the first {@linkcode MAX_SHARED} distinct keys).
 */
export function sharedKeySet(keys: Iterable<string>): ReadonlySet<string> {
  const set = keySet(keys);
  if (set.size !== 1) return set;
  const [key] = set;
  const shared = singletons.get(key);
  if (shared !== undefined) return shared;
  if (singletons.size < MAX_SHARED) singletons.set(key, set);
  return set;
}
