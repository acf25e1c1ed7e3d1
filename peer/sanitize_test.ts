import assert from "node:assert/strict";
import { neutralizeControls } from "./sanitize.ts";

Deno.test("neutralizeControls keeps ordinary text, including non-ASCII", () => {
  assert.equal(neutralizeControls("hello, wörld 👋 ünïcödé"), "hello, wörld 👋 ünïcödé");
  assert.equal(neutralizeControls(""), "");
});

Deno.test("neutralizeControls replaces C0 controls, ESC and DEL with control pictures", () => {
  assert.equal(neutralizeControls("a\x1b[31mred\x1b[0m"), "a␛[31mred␛[0m");
  assert.equal(neutralizeControls("line\r\nfake 12:00 <alice> hi"), "line␍␊fake 12:00 <alice> hi");
  assert.equal(neutralizeControls("\x00\x07\t\x7f"), "␀␇␉␡");
});

Deno.test("neutralizeControls replaces C1 controls, separators and bidi overrides", () => {
  assert.equal(neutralizeControls("x\x9b2Jy"), "x<U+009B>2Jy");
  assert.equal(neutralizeControls("a\u2028b\u202ecba"), "a<U+2028>b<U+202E>cba");
  assert.equal(neutralizeControls("\u2066i\u2069"), "<U+2066>i<U+2069>");
});

Deno.test("neutralizeControls output never contains a control character", () => {
  let all = "";
  for (let c = 0; c < 0x100; c++) all += String.fromCharCode(c);
  const out = neutralizeControls(all);
  for (const ch of out) {
    const code = ch.codePointAt(0)!;
    assert.ok(!(code < 0x20 || (code >= 0x7f && code <= 0x9f)), `found U+${code.toString(16)}`);
  }
});
