import assert from "node:assert/strict";
import { splitText } from "./split_text.ts";
import { MAX_TEXT_LENGTH, textProblem } from "./names.ts";

Deno.test("splitText: a text that fits is one part, unchanged", () => {
  assert.deepEqual(splitText("  hello  ", 10), ["  hello  "]);
  assert.deepEqual(splitText("", 10), [""]);
  const full = "x".repeat(MAX_TEXT_LENGTH);
  assert.deepEqual(splitText(full), [full]);
});

Deno.test("splitText: breaks at the last whitespace that fits and drops it", () => {
  assert.deepEqual(splitText("the quick brown fox", 10), ["the quick", "brown fox"]);
  // A space right after the limit is a break: the part before is exactly `max`.
  assert.deepEqual(splitText("abcd efgh", 4), ["abcd", "efgh"]);
  assert.deepEqual(splitText("ab   \t  cd", 4), ["ab", "cd"]);
  assert.deepEqual(splitText("one two three four five", 9), ["one two", "three", "four five"]);
});

Deno.test("splitText: a word longer than a part is cut, never inside a surrogate pair", () => {
  assert.deepEqual(splitText("abcdefghij", 4), ["abcd", "efgh", "ij"]);
  assert.deepEqual(splitText("ab 123456789", 4), ["ab", "1234", "5678", "9"]);
  const emoji = "😀".repeat(3); // six code units
  assert.deepEqual(splitText(`a${emoji}`, 4), ["a😀", "😀😀"]);
  // Whitespace alone is never a part.
  assert.deepEqual(splitText("      abcdef", 4), ["abcd", "ef"]);
  assert.deepEqual(splitText("abcd      ", 4), ["abcd"]);
});

Deno.test("splitText: every part of a long text is a valid message; nothing is lost", () => {
  const words = Array.from({ length: 3000 }, (_, i) => `word${i}${i % 7 === 0 ? "é😀" : ""}`);
  const text = words.join(" ");
  const parts = splitText(text);
  assert.ok(parts.length >= 2, `${parts.length} parts`);
  for (const part of parts) assert.equal(textProblem(part), null);
  assert.deepEqual(parts.join(" ").split(" "), words);
});
