import assert from "node:assert/strict";
import { MemoryStore } from "./memory_store.ts";
import { storeConformance } from "./store_conformance.ts";

storeConformance("MemoryStore", () => Promise.resolve(new MemoryStore()));

Deno.test("MemoryStore: returned messages are copies", async () => {
  const store = new MemoryStore();
  await store.createRoom({ key: "a", name: "A", topic: "", topicBy: "", createdAt: 0 });
  const { message } = await store.appendMessage({
    fromKey: "alice",
    from: "Alice",
    room: "a",
    text: "original",
    ts: 1,
    clientId: "1",
  });
  message.text = "changed";
  const [stored] = await store.history({ room: "a", limit: 1 });
  assert.equal(stored.text, "original");
  await store.close();
});
