/**
 * The registration check against look-alike nicks: a new nick may not be reserved
 * (`server`, `SYSTEM`: see `RESERVED_NICKS`) nor read like a registered one (`aIice`
 * beside `alice`, `alice.`), compared by `nameSkeleton`.
 *
 * The index (skeleton → account keys) is read from the store at the first
 * registration and kept up to date by the registrations that pass the check. It is a
 * hint, checked against the store: a key whose account does not exist (a registration
 * that failed after its check) is dropped when found, so it blocks nobody. Accounts
 * registered before the check existed keep their nicks, look-alike or not.
 *
 * @module
 */

import { nameSkeleton, reservedNickProblem } from "../protocol/names.ts";
import type { Store } from "./store.ts";

/** Skeletons of the registered nicks. */
export class NickSkeletons {
  readonly #store: Pick<Store, "accountKeys" | "getAccount">;
  #index: Promise<Map<string, Set<string>>> | null = null;
  /** Keys claimed whose registration is under way (not settled yet). */
  readonly #claimed = new Set<string>();

  /** An index over `store`'s accounts, read when first needed. */
  constructor(store: Pick<Store, "accountKeys" | "getAccount">) {
    this.#store = store;
  }

  /**
   * Why the account `key` (nick `nick`, not registered yet) may not be registered, or
   * null; then the key is counted in the index at once, so that a look-alike
   * registering at the same moment is refused. Call {@linkcode NickSkeletons.settle}
   * once the registration is over, whichever way.
   *
   * @example
   * ```ts
   * import { MemoryStore } from "./memory_store.ts";
   * import { NickSkeletons } from "./nick_skeletons.ts";
   * const store = new MemoryStore();
   * await store.createAccount({ key: "alice", nick: "alice", passwordHash: null, createdAt: 0 });
   * await new NickSkeletons(store).claim("aiice", "aIice"); // 'reads like "alice", ...'
   * ```
   */
  async claim(key: string, nick: string): Promise<string | null> {
    const reserved = reservedNickProblem(nick);
    if (reserved !== null) return reserved;
    const index = await this.#load();
    const skeleton = nameSkeleton(nick);
    while (true) {
      const keys = index.get(skeleton) ?? new Set<string>();
      const others = [...keys].filter((other) => other !== key);
      const busy = others.find((other) => this.#claimed.has(other));
      if (busy !== undefined) return `reads like "${busy}", being registered now`;
      if (others.length === 0) {
        // Checked and counted with no await in between: a look-alike claimed at the same
        // moment sees this one.
        keys.add(key);
        index.set(skeleton, keys);
        this.#claimed.add(key);
        return null;
      }
      const account = await this.#store.getAccount(others[0]);
      if (account !== null) return `reads like "${account.nick}", who is already registered`;
      keys.delete(others[0]);
    }
  }

  /** Drops `key` from the index again when its account was not created. */
  async settle(key: string): Promise<void> {
    this.#claimed.delete(key);
    if (await this.#store.getAccount(key) !== null) return;
    const index = await this.#load();
    const skeleton = nameSkeleton(key);
    const keys = index.get(skeleton);
    keys?.delete(key);
    if (keys?.size === 0) index.delete(skeleton);
  }

  #load(): Promise<Map<string, Set<string>>> {
    this.#index ??= this.#store.accountKeys().then((keys) => {
      const index = new Map<string, Set<string>>();
      for (const key of keys) {
        const skeleton = nameSkeleton(key);
        const set = index.get(skeleton) ?? new Set<string>();
        set.add(key);
        index.set(skeleton, set);
      }
      return index;
    });
    this.#index.catch(() => this.#index = null);
    return this.#index;
  }
}
