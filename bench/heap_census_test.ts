import assert from "node:assert/strict";
import { censusOf, diffCensus, type HeapSnapshot } from "./heap_census.ts";

/** A snapshot of `sessions` Session objects, each holding a Set through its `blocks`. */
function snapshot(sessions: number): HeapSnapshot {
  const strings = ["", "Session", "Set", "blocks", "root"];
  // type, name, id, self_size, edge_count
  const nodes = [3, /* synthetic */ 4, 1, 0, sessions];
  const edges: number[] = [];
  for (let i = 0; i < sessions; i++) {
    const session = nodes.length / 5;
    nodes.push(0, /* object */ 1, 2 + 2 * i, 40, 1);
    nodes.push(0, 2, 3 + 2 * i, 32, 0);
    edges.push(1, /* element */ i, session * 5);
    // Session's edge to its Set comes after the root's edges, in node order: added below.
  }
  const sessionEdges: number[] = [];
  for (let i = 0; i < sessions; i++) sessionEdges.push(2, /* property */ 3, (2 + 2 * i) * 5);
  return {
    snapshot: {
      meta: {
        node_fields: ["type", "name", "id", "self_size", "edge_count"],
        node_types: [["object", "closure", "array", "synthetic"]],
        edge_fields: ["type", "name_or_index", "to_node"],
        edge_types: [["context", "element", "property", "internal", "hidden", "shortcut", "weak"]],
      },
    },
    nodes,
    edges: [...edges, ...sessionEdges],
    strings,
  };
}

Deno.test("censusOf counts objects and their bytes by constructor", () => {
  const census = censusOf(snapshot(3));
  assert.deepStrictEqual(census.get("object Session"), { count: 3, bytes: 120 });
  assert.deepStrictEqual(census.get("object Set"), { count: 3, bytes: 96 });
});

Deno.test("censusOf names a kind with its retainers' path when asked", () => {
  const census = censusOf(snapshot(2), { retainers: 1 });
  assert.deepStrictEqual(census.get("object Set <- object Session.blocks"), {
    count: 2,
    bytes: 64,
  });
  assert.deepStrictEqual(census.get("object Session <- synthetic.[]"), { count: 2, bytes: 80 });
});

Deno.test("diffCensus gives the growth per unit, largest first", () => {
  const rows = diffCensus(censusOf(snapshot(2)), censusOf(snapshot(6)), 4);
  assert.deepStrictEqual(rows.slice(0, 2), [
    { kind: "object Session", count: 1, bytes: 40 },
    { kind: "object Set", count: 1, bytes: 32 },
  ]);
});
