/**
 * Small sets of keys that are read often, changed rarely, and empty for most accounts
 * (the accounts one blocks): never changed in place, replaced on each change, and the
 * empty one shared. An account that blocks nobody holds no set of its own (a server
 * holds one per online account), and a set handed out stays as it was.
 *
 * @example
 * ```ts
 * import { EMPTY_KEYS, keySet, withKey, withoutKey } from "./key_set.ts";
 * let blocks = keySet([]); // EMPTY_KEYS, shared
 * blocks = withKey(blocks, "bob"); // a new set
 * blocks = withoutKey(blocks, "bob"); // EMPTY_KEYS again
 * blocks === EMPTY_KEYS; // true
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
