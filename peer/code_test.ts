import assert from "node:assert/strict";
import { CODE_WORDS, generateCode, MAX_CODE_LENGTH, normalizeCode } from "./code.ts";
import { PeerError } from "./errors.ts";

Deno.test("code: the word list has 256 distinct lowercase words", () => {
  assert.equal(CODE_WORDS.length, 256);
  assert.equal(new Set(CODE_WORDS).size, 256);
  for (const word of CODE_WORDS) assert.match(word, /^[a-z]{2,9}$/);
});

Deno.test("code: generated codes are N-word-word and already normalised", () => {
  const seen = new Set<string>();
  for (let i = 0; i < 50; i++) {
    const code = generateCode();
    assert.match(code, /^([1-9]\d{0,2})-([a-z]+)-([a-z]+)$/);
    const [number, first, second] = code.split("-");
    assert.ok(Number(number) >= 1 && Number(number) <= 999);
    assert.ok(CODE_WORDS.includes(first) && CODE_WORDS.includes(second));
    assert.equal(normalizeCode(code), code);
    seen.add(code);
  }
  assert.ok(seen.size > 40, "codes are random");
});

Deno.test("code: normalisation forgives case, spacing and separators", () => {
  assert.equal(normalizeCode("  7 Maple--Otter\n"), "7-maple-otter");
  assert.equal(normalizeCode("7_maple.otter"), "7-maple-otter");
  assert.equal(normalizeCode("ＡＢＣ"), "abc"); // NFKC: full-width letters
  assert.notEqual(normalizeCode("7-maple-otter"), normalizeCode("7-maple-otters"));
});

Deno.test("code: empty and overlong codes are refused with invalid_code", () => {
  for (const bad of ["", "   ", "\n", "---", "x".repeat(MAX_CODE_LENGTH + 1)]) {
    assert.throws(
      () => normalizeCode(bad),
      (err) => err instanceof PeerError && err.code === "invalid_code",
    );
  }
});
