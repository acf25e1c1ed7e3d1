/**
 * The raw loopback copy's ends as processes over a real socket: the plain receiver never
 * syncs; the durable one syncs in the background as it writes and says so.
 */
import assert from "node:assert/strict";
import { sha256Of, writeRandomFile } from "../tests/helpers/files.ts";
import { textLines } from "../tools/lines.ts";

const SCRIPT = new URL("./raw_copy.ts", import.meta.url).pathname;

/** Runs one end; returns its process and its JSON lines. */
function end(args: string[]) {
  const process = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--no-prompt", SCRIPT, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const lines = textLines(process.stdout)[Symbol.asyncIterator]();
  const next = async (): Promise<Record<string, unknown>> => {
    const timer = setTimeout(() => process.kill("SIGKILL"), 30_000);
    try {
      const r = await lines.next();
      if (r.done) throw new Error(`raw_copy.ts ${args[0]} ended without a line`);
      return JSON.parse(r.value);
    } finally {
      clearTimeout(timer);
    }
  };
  return { process, next };
}

/** Copies a 20 MiB file through `mode`; returns the receiver's done line. */
async function copyThrough(mode: "receive" | "receive-durable"): Promise<Record<string, unknown>> {
  const dir = await Deno.makeTempDir({ prefix: "chat-raw-copy-" });
  try {
    const source = `${dir}/source.bin`;
    const out = `${dir}/out.bin`;
    const hash = await writeRandomFile(source, 20 * 1024 * 1024, 3);
    const rx = end([mode, out]);
    const ready = await rx.next();
    assert.equal(ready.ready, true);
    const tx = end(["send", String(ready.port), source]);
    assert.equal((await tx.next()).ready, true);
    const done = await rx.next();
    assert.deepEqual(await tx.next(), { done: true, bytes: 20 * 1024 * 1024 });
    await Promise.all([rx.process.status, tx.process.status]);
    assert.equal(await sha256Of(out), hash);
    return done;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("raw_copy: receive-durable syncs in the background as it writes, the plain receiver not", async () => {
  const { backgroundSyncs, ...durable } = await copyThrough("receive-durable");
  // One once 4 MiB are written, then back to back: at least one, at most one per 4 MiB.
  const syncs = Number(backgroundSyncs);
  assert.ok(syncs >= 1 && syncs <= 5, `${syncs} background syncs`);
  assert.deepEqual(durable, { done: true, bytes: 20 * 1024 * 1024 });
  assert.deepEqual(await copyThrough("receive"), { done: true, bytes: 20 * 1024 * 1024 });
});

Deno.test("raw_copy: a mode it does not know is an error", async () => {
  const { process, next } = end(["receive-quickly", "/nowhere"]);
  assert.match(String((await next()).error), /usage: raw_copy\.ts/);
  assert.equal((await process.status).code, 1);
});
