/**
 * A census of a V8 heap snapshot (`.heapsnapshot`, as `node:v8`'s `writeHeapSnapshot`
 * writes it): objects counted and their own sizes summed by kind (`object Session`,
 * `closure #onFrame`, `array`, …). Two censuses of one process, taken with different
 * numbers of connections, tell what each connection holds: {@linkcode diffCensus}.
 *
 * @example
 * ```ts ignore
 * import { censusOf, diffCensus } from "./heap_census.ts";
 * const half = censusOf(JSON.parse(await Deno.readTextFile("5000.heapsnapshot")));
 * const full = censusOf(JSON.parse(await Deno.readTextFile("10000.heapsnapshot")));
 * for (const row of diffCensus(half, full, 5000).slice(0, 20)) console.log(row);
 * ```
 *
 * @module
 */

/** The parts of a `.heapsnapshot` the census reads. */
export interface HeapSnapshot {
  snapshot: {
    meta: {
      node_fields: string[];
      node_types: (string[] | string)[];
      edge_fields: string[];
      edge_types: (string[] | string)[];
    };
  };
  nodes: number[];
  edges: number[];
  strings: string[];
}

/** Objects of one kind: how many, and their own bytes. */
export interface CensusEntry {
  count: number;
  bytes: number;
}

/** Kind → its objects. */
export type Census = Map<string, CensusEntry>;

/** One kind's growth between two censuses, per unit (connection). */
export interface CensusDelta {
  kind: string;
  /** Objects added per unit. */
  count: number;
  /** Bytes added per unit. */
  bytes: number;
}

/**
 * The kind of a node: its type, and for objects, closures and native objects its name
 * (the constructor or function); strings and numbers by type only.
 */
function kindOf(type: string, name: string): string {
  switch (type) {
    case "object":
    case "closure":
    case "native":
    case "hidden":
    case "code":
      return `${type} ${name.length > 60 ? name.slice(0, 60) + "…" : name}`;
    default:
      return type;
  }
}

/** Options of {@linkcode censusOf}. */
export interface CensusOptions {
  /**
   * Adds to each kind the path of its first strong retainers, this many levels up
   * (`object Set <- object Object.blocks`): which field holds it. Default 0.
   */
  retainers?: number;
}

/** Counts a snapshot's nodes by kind. */
export function censusOf(snapshot: HeapSnapshot, options: CensusOptions = {}): Census {
  const meta = snapshot.snapshot.meta;
  const fields = meta.node_fields;
  const types = meta.node_types[0] as string[];
  const width = fields.length;
  const typeAt = fields.indexOf("type");
  const nameAt = fields.indexOf("name");
  const sizeAt = fields.indexOf("self_size");
  const edgeCountAt = fields.indexOf("edge_count");
  const nodes = snapshot.nodes;
  const strings = snapshot.strings;
  const count = nodes.length / width;
  const kinds: string[] = new Array(count);
  for (let n = 0; n < count; n++) {
    const i = n * width;
    kinds[n] = kindOf(types[nodes[i + typeAt]], strings[nodes[i + nameAt]]);
  }
  const depth = options.retainers ?? 0;
  let labels = kinds;
  if (depth > 0) {
    // The first strong retainer of each node, and the edge's name.
    const edgeWidth = meta.edge_fields.length;
    const edgeTypes = meta.edge_types[0] as string[];
    const edgeTypeAt = meta.edge_fields.indexOf("type");
    const edgeNameAt = meta.edge_fields.indexOf("name_or_index");
    const toAt = meta.edge_fields.indexOf("to_node");
    const parent = new Int32Array(count).fill(-1);
    const via: string[] = new Array(count);
    const edges = snapshot.edges;
    let e = 0;
    for (let n = 0; n < count; n++) {
      const edgeCount = nodes[n * width + edgeCountAt];
      for (let k = 0; k < edgeCount; k++, e += edgeWidth) {
        const type = edgeTypes[edges[e + edgeTypeAt]];
        if (type === "weak" || type === "shortcut") continue;
        const to = edges[e + toAt] / width;
        if (parent[to] !== -1) continue;
        parent[to] = n;
        const name = edges[e + edgeNameAt];
        via[to] = type === "element" || type === "hidden" ? `[]` : String(strings[name]);
      }
    }
    labels = new Array(count);
    for (let n = 0; n < count; n++) {
      let label = kinds[n];
      let at = n;
      for (let d = 0; d < depth && parent[at] !== -1; d++) {
        label += ` <- ${kinds[parent[at]]}.${via[at]}`;
        at = parent[at];
      }
      labels[n] = label;
    }
  }
  const census: Census = new Map();
  for (let n = 0; n < count; n++) {
    const size = nodes[n * width + sizeAt];
    const entry = census.get(labels[n]);
    if (entry === undefined) census.set(labels[n], { count: 1, bytes: size });
    else {
      entry.count++;
      entry.bytes += size;
    }
  }
  return census;
}

/** What grew from `before` to `after`, per unit of `units`, largest first. */
export function diffCensus(before: Census, after: Census, units: number): CensusDelta[] {
  const kinds = new Set([...before.keys(), ...after.keys()]);
  const rows: CensusDelta[] = [];
  for (const kind of kinds) {
    const a = before.get(kind) ?? { count: 0, bytes: 0 };
    const b = after.get(kind) ?? { count: 0, bytes: 0 };
    rows.push({ kind, count: (b.count - a.count) / units, bytes: (b.bytes - a.bytes) / units });
  }
  return rows.sort((x, y) => y.bytes - x.bytes);
}
