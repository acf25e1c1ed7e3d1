/**
 * A {@linkcode Store} wrapper that records the latency of every call.
 *
 * @module
 */

import type { ServerMetrics } from "./metrics.ts";
import type { Store } from "./store.ts";

/**
 * Wraps `store` so that every method's latency is recorded in `metrics` under the
 * method's name (`appendMessage`, `history`, …). Behaviour is otherwise unchanged.
 *
 * @example
 * ```ts
 * import { instrumentStore } from "./instrumented_store.ts";
 * import { MemoryStore } from "./memory_store.ts";
 * import { ServerMetrics } from "./metrics.ts";
 * const metrics = new ServerMetrics();
 * const store = instrumentStore(new MemoryStore(), metrics);
 * await store.getAccount("alice");
 * metrics.storeLatency.get("getAccount")?.count; // 1
 * ```
 */
export function instrumentStore(store: Store, metrics: ServerMetrics): Store {
  const wrapped = new Map<PropertyKey, unknown>();
  return new Proxy(store, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (typeof value !== "function") return value;
      let wrapper = wrapped.get(prop);
      if (wrapper === undefined) {
        const op = String(prop);
        wrapper = (...args: unknown[]) => {
          const start = performance.now();
          const result = value.apply(target, args);
          if (!(result instanceof Promise)) return result;
          // Timed beside the caller's wait, not in its way: the caller gets the store's own
          // promise (a `finally` would add turns of the microtask queue to every call).
          const observe = () => metrics.observeStore(op, (performance.now() - start) / 1000);
          result.then(observe, observe);
          return result;
        };
        wrapped.set(prop, wrapper);
      }
      return wrapper;
    },
  });
}
