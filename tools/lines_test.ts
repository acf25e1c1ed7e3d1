import assert from "node:assert/strict";
import { lineReader, LineSplitter, textLines } from "./lines.ts";

Deno.test("LineSplitter: lines split anywhere, CRLF, empty lines, a last line without newline", async () => {
  const text = "one\r\ntwo\n\nthree";
  // Every way of cutting the text into two chunks gives the same lines.
  for (let cut = 0; cut <= text.length; cut++) {
    const lines = ReadableStream.from([text.slice(0, cut), text.slice(cut)])
      .pipeThrough(new LineSplitter());
    assert.deepEqual(await Array.fromAsync(lines), ["one", "two", "", "three"], `cut at ${cut}`);
  }
});

Deno.test("textLines and lineReader decode UTF-8 split inside a character", async () => {
  const bytes = new TextEncoder().encode('é1\n{"a":2}\n');
  const stream = () => ReadableStream.from([bytes.subarray(0, 1), bytes.subarray(1)]);
  assert.deepEqual(await Array.fromAsync(textLines(stream())), ["é1", '{"a":2}']);
  const next = lineReader(stream());
  assert.equal(await next(), "é1");
  assert.equal(await next(), '{"a":2}');
  assert.equal(await next(), null);
});
