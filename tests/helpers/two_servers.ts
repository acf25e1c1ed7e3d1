/**
 * Two chat servers on free loopback ports sharing one in-memory store, as nodes of a
 * cluster share PostgreSQL (the rest of their state, fan-out and presence, is their
 * own): enough for tests of the client's failover between addresses.
 *
 * @module
 */

import { MemoryStore } from "../../server/memory_store.ts";
import type { Store } from "../../server/store.ts";
import type { ChatServer } from "../../server/server.ts";
import type { ServerConfig } from "../../server/config.ts";
import { testServer } from "./harness.ts";

/** The store, except that a server shutting down does not close it for the other. */
export function sharedStore(store: Store): Store {
  return new Proxy(store, {
    get(target, prop) {
      if (prop === "close") return () => Promise.resolve();
      const value = Reflect.get(target, prop, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

/** Two servers on free ports over one shared in-memory store, with their own settings. */
export async function twoServers(
  first: Partial<ServerConfig> = {},
  second: Partial<ServerConfig> = {},
): Promise<
  { one: ChatServer; two: ChatServer; stop(): Promise<void> }
> {
  const store = new MemoryStore();
  const one = await testServer(first, { store: sharedStore(store) });
  const two = await testServer(second, { store: sharedStore(store) });
  return {
    one,
    two,
    async stop() {
      await one.shutdown();
      await two.shutdown();
      await store.close();
    },
  };
}

/** A port nothing listens on (taken from the system, then given back). */
export function downPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}
