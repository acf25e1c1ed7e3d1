/**
 * The frame decoder's result must not come from an allocation site that V8 can pretenure:
 * a child decodes frames while holding the last 20,000 (they outlive every scavenge of a
 * 1 MiB young generation) and V8 traces its pretenuring decisions. With the result made as
 * an object literal, its site was switched to "tenure" (and in the server, every later
 * frame went straight to the old generation). The control run wraps each frame in a
 * literal and must see that switch: the trace works on this V8.
 *
 * The same holds for a frame whose body the connection copies out of its read buffer
 * (`ownBody`: a frame with a body under 64 KiB, such as a private session's record or a
 * file's last chunk): made as a literal, its site tenured too.
 */
import assert from "node:assert/strict";

const FRAME = new URL("../protocol/frame.ts", import.meta.url).href;

/**
 * The child's trace lines that switch a site to "tenure", when it holds the last 20,000
 * frames as `keep` makes them of each decoded `frame` (with a body of `bodyBytes`).
 */
async function tenureSwitches(keep: string, bodyBytes = 0): Promise<string[]> {
  const code = `
    import { decodePayload, encodeFrame, LENGTH_PREFIX_BYTES, ownBody } from ${
    JSON.stringify(FRAME)
  };
    const payload = encodeFrame(
      { type: "say", id: "s1", room: "lobby", text: "hi" },
      new Uint8Array(${bodyBytes}),
    ).subarray(LENGTH_PREFIX_BYTES);
    const held = new Array(20000);
    for (let i = 0; i < 1000000; i++) {
      const frame = decodePayload(payload);
      held[i % 20000] = ${keep};
    }
    console.log("decoded", held.length);
  `;
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      "--v8-flags=--trace-pretenuring,--trace-pretenuring-statistics,--max-semi-space-size=1",
      code,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  assert.match(text, /decoded 20000/);
  return text.split("\n").filter((line) => /AllocationSite.*=> tenure\s*$/.test(line));
}

Deno.test("decoded frames come from no allocation site V8 can pretenure", async () => {
  const literal = "{ header: frame.header, body: frame.body }";
  assert.notEqual((await tenureSwitches(literal)).length, 0, "control: a literal's site tenured");
  assert.deepEqual(await tenureSwitches("frame"), []);
});

Deno.test("frames given their own copy of a body come from no allocation site V8 can pretenure", async () => {
  // framed_connection.ts's copy of a body out of its read buffer, as it was made before.
  const literal = "{ header: frame.header, body: frame.body.slice() }";
  assert.notEqual((await tenureSwitches(literal, 100)).length, 0, "control: a literal tenured");
  assert.deepEqual(await tenureSwitches("ownBody(frame)", 100), []);
});
