/**
 * protocol/ is pure: no `Deno.*` API, and no import from outside protocol/ but npm zod and
 * npm uuid (request ids; random bits from Web Crypto, no I/O).
 * This reads every non-test module under protocol/ (needs --allow-read).
 */

import assert from "node:assert/strict";

const PROTOCOL_DIR = new URL("./", import.meta.url);
const ALLOWED_BARE = new Set(["zod", "uuid"]);

/** Every module specifier in `source`: static, side-effect, re-export and dynamic imports. */
function importSpecifiers(source: string): { specifiers: string[]; opaque: number } {
  const specifiers: string[] = [];
  const patterns = [
    /\bfrom\s*["']([^"']+)["']/g, // import … from "x", export … from "x"
    /\bimport\s*["']([^"']+)["']/g, // import "x"
    /\bimport\s*\(\s*["'`]([^"'`]+)["'`]\s*[,)]/g, // import("x")
    /\brequire\s*\(\s*["'`]([^"'`]+)["'`]\s*\)/g, // require("x")
  ];
  for (const pattern of patterns) {
    for (const match of source.matchAll(pattern)) specifiers.push(match[1]);
  }
  // A dynamic import or require whose target is not a plain literal cannot be checked.
  const dynamic = source.match(/\b(?:import|require)\s*\(/g)?.length ?? 0;
  const literal = source.match(/\b(?:import|require)\s*\(\s*["'`][^"'`$]+["'`]\s*[,)]/g)?.length ??
    0;
  return { specifiers, opaque: dynamic - literal };
}

/** What is impure about one module of protocol/ at `url`; empty when it is pure. */
function purityProblems(url: URL, source: string): string[] {
  const problems: string[] = [];
  const name = url.pathname.slice(PROTOCOL_DIR.pathname.length);
  for (const match of source.matchAll(/\bDeno\s*(?:\?\.|\.|\[)|["']Deno["']/g)) {
    const line = source.slice(0, match.index).split("\n").length;
    problems.push(`${name}:${line}: uses the Deno namespace (${match[0]})`);
  }
  const { specifiers, opaque } = importSpecifiers(source);
  if (opaque > 0) problems.push(`${name}: ${opaque} import(s) of a computed specifier`);
  for (const specifier of specifiers) {
    if (specifier.startsWith("./") || specifier.startsWith("../")) {
      const target = new URL(specifier, url);
      if (target.protocol !== "file:" || !target.pathname.startsWith(PROTOCOL_DIR.pathname)) {
        problems.push(`${name}: imports "${specifier}" from outside protocol/`);
      }
    } else if (!ALLOWED_BARE.has(specifier)) {
      problems.push(
        `${name}: imports "${specifier}" (only relative modules, "zod" and "uuid" allowed)`,
      );
    }
  }
  return problems;
}

async function protocolModules(dir: URL = PROTOCOL_DIR): Promise<URL[]> {
  const found: URL[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (entry.isDirectory) {
      found.push(...await protocolModules(new URL(`${entry.name}/`, dir)));
    } else if (
      entry.isFile && /\.(ts|tsx|mts|js|mjs)$/.test(entry.name) &&
      !/_test\.(ts|tsx|mts|js|mjs)$/.test(entry.name)
    ) {
      found.push(new URL(entry.name, dir));
    }
  }
  return found;
}

Deno.test("protocol/ uses no Deno API and imports only protocol/ modules, zod and uuid", async () => {
  const modules = await protocolModules();
  const names = modules.map((url) => url.pathname.slice(PROTOCOL_DIR.pathname.length));
  for (const expected of ["frame.ts", "messages.ts", "errors.ts", "hello.ts", "names.ts"]) {
    assert.ok(names.includes(expected), `${expected} was scanned`);
  }
  assert.ok(!names.some((n) => n.endsWith("_test.ts")), "test files are not scanned");
  const problems: string[] = [];
  for (const url of modules) problems.push(...purityProblems(url, await Deno.readTextFile(url)));
  assert.deepEqual(problems, []);
});

Deno.test("the purity check catches Deno use and foreign imports", () => {
  const at = new URL("fake.ts", PROTOCOL_DIR);
  const clean = [
    'import { z } from "zod";',
    'import { ProtocolError } from "./errors.ts";',
    'import type { Frame } from "./frame.ts";',
    'export * from "./names.ts";',
    "const denomination = 1; // Denominator.x is not Deno",
  ].join("\n");
  assert.deepEqual(purityProblems(at, clean), []);

  const dirty: [string, RegExp][] = [
    ["const c = await Deno.connect({ port: 1 });", /Deno namespace/],
    ["globalThis.Deno?.exit(1);", /Deno namespace/],
    ['const d = globalThis["Deno"];', /Deno namespace/],
    ["Deno [\"readFile\"]('x');", /Deno namespace/],
    ['import { dial } from "../transport/net.ts";', /outside protocol/],
    ['export { x } from "../server/store.ts";', /outside protocol/],
    ['import { readFile } from "node:fs";', /only relative modules/],
    ['import "npm:left-pad";', /only relative modules/],
    ['import {\n  a,\n  b,\n} from "commander";', /only relative modules/],
    ['const m = await import("../cli/main.ts");', /outside protocol/],
    ["const m = await import(name);", /computed specifier/],
    ['const fs = require("fs");', /only relative modules/],
  ];
  for (const [source, expected] of dirty) {
    const problems = purityProblems(at, source);
    assert.equal(problems.length, 1, `${source} → ${problems}`);
    assert.match(problems[0], expected, source);
  }
});
