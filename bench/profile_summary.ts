/**
 * Summarises a V8 `.cpuprofile` (as written by `deno run --cpu-prof`): self time per
 * function, the busiest first, as a share of the time the process was not idle.
 *
 * ```sh
 * deno run -A bench/profile_summary.ts bench/results/profiles/fanout-100/CPU.*.cpuprofile
 * ```
 *
 * @module
 */

/** One function's self time. */
export interface ProfileEntry {
  /** Function name (`(anonymous)`, `(garbage collector)`, `(program)` …). */
  name: string;
  /** Where: file (shortened) and 1-based line. */
  where: string;
  /** Self time in ms. */
  selfMs: number;
  /** Share of the non-idle time, %. */
  pct: number;
}

/** A profile's summary. */
export interface ProfileSummary {
  /** Wall time covered, ms. */
  totalMs: number;
  /** Time not idle, ms. */
  busyMs: number;
  /** Busiest functions first. */
  top: ProfileEntry[];
  /** Self time by file (`ops`: native ops; `v8`: GC and the like), busiest first. */
  byFile: { file: string; selfMs: number; pct: number }[];
}

interface CpuProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

interface CpuProfile {
  nodes: CpuProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

/**
 * Self time by function of a parsed `.cpuprofile`, `limit` entries.
 *
 * @example
 * ```ts ignore
 * import { summariseProfile } from "./profile_summary.ts";
 * const summary = summariseProfile(JSON.parse(Deno.readTextFileSync("x.cpuprofile")), 15);
 * ```
 */
export function summariseProfile(profile: CpuProfile, limit = 20): ProfileSummary {
  const byId = new Map<number, CpuProfileNode>();
  for (const node of profile.nodes) byId.set(node.id, node);
  const selfUs = new Map<string, { name: string; where: string; us: number }>();
  let idleUs = 0;
  let totalUs = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    // The delta after a sample is the time spent in it.
    const us = profile.timeDeltas[i + 1] ?? 0;
    const node = byId.get(profile.samples[i]);
    if (node === undefined || us <= 0) continue;
    totalUs += us;
    const frame = node.callFrame;
    if (frame.functionName === "(idle)") {
      idleUs += us;
      continue;
    }
    const where = frame.url ? `${shorten(frame.url)}:${frame.lineNumber + 1}` : "";
    const key = `${frame.functionName}@${where}`;
    const entry = selfUs.get(key) ?? { name: frame.functionName || "(anonymous)", where, us: 0 };
    entry.us += us;
    selfUs.set(key, entry);
  }
  const busyUs = totalUs - idleUs;
  const files = new Map<string, number>();
  for (const e of selfUs.values()) {
    const file = e.where
      ? e.where.replace(/:\d+$/, "").replace(/^(npm:[^/]+).*$/, "$1")
      : e.name.startsWith("op_")
      ? "ops (native: I/O, encoding, SQLite)"
      : e.name.startsWith("(")
      ? "v8 (GC, program)"
      : "native functions";
    files.set(file, (files.get(file) ?? 0) + e.us);
  }
  const byFile = [...files.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, limit)
    .map(([file, us]) => ({
      file,
      selfMs: Math.round(us / 100) / 10,
      pct: busyUs > 0 ? Math.round((1000 * us) / busyUs) / 10 : 0,
    }));
  const top = [...selfUs.values()]
    .sort((a, b) => b.us - a.us)
    .slice(0, limit)
    .map((e) => ({
      name: e.name,
      where: e.where,
      selfMs: Math.round(e.us / 100) / 10,
      pct: busyUs > 0 ? Math.round((1000 * e.us) / busyUs) / 10 : 0,
    }));
  return {
    totalMs: Math.round(totalUs / 1000),
    busyMs: Math.round(busyUs / 1000),
    top,
    byFile,
  };
}

/** Summarises every `.cpuprofile` in a folder (one per thread of a process), busiest first. */
export async function summariseProfileDir(dir: string, limit = 20): Promise<ProfileSummary[]> {
  const out: ProfileSummary[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (!entry.name.endsWith(".cpuprofile")) continue;
    out.push(summariseProfile(JSON.parse(await Deno.readTextFile(`${dir}/${entry.name}`)), limit));
  }
  // Busiest first: a process writes one profile per thread (the SQLite store's checkpoint
  // worker has its own), and callers that take one want the event loop's.
  return out.sort((a, b) => b.busyMs - a.busyMs);
}

function shorten(url: string): string {
  const marker = url.indexOf("/work/");
  let path = url.replace(/^file:\/\//, "");
  if (marker >= 0) path = path.replace(/^.*?\/(server|transport|protocol|bench)\//, "$1/");
  path = path.replace(/^.*\/node_modules\/\.deno\//, "npm:").replace(/^ext:/, "ext:");
  const registry = path.indexOf("registry.npmjs.org/");
  if (registry >= 0) path = "npm:" + path.slice(registry + "registry.npmjs.org/".length);
  return path;
}

/** Formats a summary as text lines. */
export function formatProfile(summary: ProfileSummary): string {
  const lines = [
    `  profile: ${summary.busyMs} ms busy of ${summary.totalMs} ms`,
    ...summary.top.map((e) =>
      `  ${e.pct.toFixed(1).padStart(5)}%  ${
        e.selfMs.toFixed(0).padStart(6)
      } ms  ${e.name}  ${e.where}`
    ),
    "  by file:",
    ...summary.byFile.slice(0, 10).map((e) =>
      `  ${e.pct.toFixed(1).padStart(5)}%  ${e.selfMs.toFixed(0).padStart(6)} ms  ${e.file}`
    ),
  ];
  return lines.join("\n");
}

if (import.meta.main) {
  for (const path of Deno.args) {
    console.log(path);
    console.log(formatProfile(summariseProfile(JSON.parse(await Deno.readTextFile(path)), 25)));
  }
}
