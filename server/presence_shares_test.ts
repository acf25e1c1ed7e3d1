import assert from "node:assert/strict";
import { PresenceShares } from "./presence_shares.ts";

Deno.test("PresenceShares: one share, then several, then fewer, as a Map would", () => {
  const shares = new PresenceShares<number>();
  const map = new Map<string, number>();
  const same = () => {
    assert.equal(shares.size, map.size);
    assert.deepEqual([...shares.keys()], [...map.keys()]);
    assert.deepEqual([...shares.values()], [...map.values()]);
    for (const node of ["a", "b", "c"]) {
      assert.equal(shares.has(node), map.has(node));
      assert.equal(shares.get(node), map.get(node));
    }
  };
  same();
  const steps: [string, string, number?][] = [
    ["set", "a", 1],
    ["set", "a", 2],
    ["delete", "b"],
    ["set", "b", 3],
    ["set", "c", 4],
    ["delete", "a"],
    ["delete", "c"],
    ["delete", "b"],
    ["delete", "b"],
    ["set", "c", 5],
  ];
  for (const [op, node, value] of steps) {
    if (op === "set") {
      assert.equal(shares.set(node, value!), shares);
      map.set(node, value!);
    } else {
      assert.equal(shares.delete(node), map.delete(node), `delete ${node}`);
    }
    same();
  }
});
