import assert from "node:assert/strict";
import { JsonLineChild } from "./child.ts";

Deno.test("JsonLineChild: stray lines go to strayLog; a reply glued to a trace line is read", async () => {
  const dir = await Deno.makeTempDir({ prefix: "chat-child-" });
  try {
    const log = `${dir}/stray.log`;
    // A trace line, then a trace cut short with the first reply glued to it.
    const script = `console.log("[1:0x1] 5 ms: GC: trace"); ` +
      `Deno.stdout.writeSync(new TextEncoder().encode('[1:0x1] 9 ms: cut{"port":7}\\n'));`;
    const child = await JsonLineChild.spawn({
      name: "glued",
      args: ["eval", script],
      strayLog: log,
    });
    assert.deepEqual(child.info, { port: 7 });
    await child.status;
    await child.stop();
    assert.equal(await Deno.readTextFile(log), "[1:0x1] 5 ms: GC: trace\n[1:0x1] 9 ms: cut\n");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("JsonLineChild: without strayLog a line that is not JSON is skipped", async () => {
  const child = await JsonLineChild.spawn({
    name: "plain",
    args: ["eval", `console.log("not json"); console.log(JSON.stringify({ port: 3 }));`],
  });
  assert.deepEqual(child.info, { port: 3 });
  await child.status;
  await child.stop();
});
