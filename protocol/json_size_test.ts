import assert from "node:assert/strict";
import { encodedSize } from "./json_size.ts";

Deno.test("encodedSize counts JSON escapes and UTF-8 bytes", () => {
  assert.equal(encodedSize("abc"), 5);
  assert.equal(encodedSize("\u0001".repeat(10)), 2 + 60);
  assert.equal(encodedSize('"\\'), 2 + 4);
  assert.equal(encodedSize("日本"), 2 + 6);
  assert.equal(encodedSize({ type: "ok", n: 1 }), JSON.stringify({ type: "ok", n: 1 }).length);
});
