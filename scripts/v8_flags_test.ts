import assert from "node:assert/strict";
import denoJson from "../deno.json" with { type: "json" };
import { compileArgs } from "./compile.ts";
import { binaryV8Flags, SERVE_V8_FLAGS, serveV8FlagArgs, v8Flags } from "./v8_flags.ts";

Deno.test("v8Flags reads the --v8-flags words of a task command", () => {
  assert.deepEqual(
    v8Flags("deno run --v8-flags=--a,--b=2 --allow-net --v8-flags=--c main.ts serve"),
    ["--a", "--b=2", "--c"],
  );
  assert.deepEqual(v8Flags("deno run --allow-net main.ts"), []);
  assert.deepEqual(
    binaryV8Flags({
      serve: "deno run --v8-flags=--a,--b x",
      connect: "deno run x",
      peer: "--v8-flags=--a",
    }),
    ["--a", "--b"],
  );
  assert.throws(() => binaryV8Flags({ serve: "deno run x" }), /no "connect" task/);
});

Deno.test("deno task serve takes V8's zone memory from V8's own pages, not malloc's arenas", () => {
  // The optimizing compiler's zones, freed on its background thread, otherwise stay resident
  // in that thread's malloc arena (6–11 MB after a 10,000-client login storm).
  assert.ok(SERVE_V8_FLAGS.includes("--managed-zone-memory"), SERVE_V8_FLAGS.join(" "));
  assert.deepEqual(serveV8FlagArgs(["--expose-gc"]), [
    `--v8-flags=${[...SERVE_V8_FLAGS, "--expose-gc"].join(",")}`,
  ]);
});

Deno.test("the binary is compiled with the V8 flags of the mode tasks", () => {
  const flags = binaryV8Flags(denoJson.tasks);
  for (const flag of SERVE_V8_FLAGS) assert.ok(flags.includes(flag), flag);
  const args = compileArgs("x86_64-unknown-linux-gnu", ["--allow-net"], "dist", flags);
  assert.ok(args.includes(`--v8-flags=${flags.join(",")}`), args.join(" "));
  assert.ok(args.indexOf(`--v8-flags=${flags.join(",")}`) < args.indexOf("main.ts"));
  assert.ok(!compileArgs("x86_64-unknown-linux-gnu", [], "dist").some((a) => a.startsWith("--v8")));
});

/** Runs a line of JavaScript under `deno` with these arguments; its exit code and output. */
async function evalWith(args: string[]): Promise<{ code: number; out: string }> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["eval", ...args, "console.log('ran')"],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return { code, out: decoder.decode(stdout) + decoder.decode(stderr) };
}

Deno.test("this Deno's V8 recognizes every V8 flag of the mode tasks", async () => {
  // Deno refuses to start on a flag its V8 does not know: a Deno upgrade that drops one
  // would stop `deno task serve` and the binary.
  const flags = binaryV8Flags(denoJson.tasks);
  const known = await evalWith(flags.length > 0 ? [`--v8-flags=${flags.join(",")}`] : []);
  assert.equal(known.code, 0, known.out);
  assert.match(known.out, /ran/);
  const unknown = await evalWith(["--v8-flags=--no-such-flag-for-chat"]);
  assert.notEqual(unknown.code, 0, unknown.out);
  assert.match(unknown.out, /did not recognize flag/);
});
