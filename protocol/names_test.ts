import assert from "node:assert/strict";
import {
  MAX_NAME_LENGTH,
  MAX_TEXT_LENGTH,
  MAX_TOPIC_LENGTH,
  NAME_PATTERN,
  nameKey,
  nameProblem,
  nameSkeleton,
  reservedNickProblem,
  textProblem,
  topicProblem,
} from "./names.ts";

Deno.test("nameProblem accepts 1 to 32 ASCII letters, digits, _ - and .", () => {
  const valid = [
    "a",
    "Z",
    "7",
    "alice",
    "Bob_42",
    "dot.ted",
    "dash-ed",
    "_",
    "a".repeat(MAX_NAME_LENGTH),
    "AZaz09_.-",
  ];
  for (const name of valid) {
    assert.equal(nameProblem(name), null, name);
    assert.ok(NAME_PATTERN.test(name), name);
  }
});

Deno.test("nameProblem: empty and too long", () => {
  assert.equal(nameProblem(""), "must not be empty");
  assert.equal(nameProblem("a".repeat(MAX_NAME_LENGTH + 1)), "must be at most 32 characters");
  assert.equal(nameProblem("a".repeat(10_000)), "must be at most 32 characters");
});

Deno.test("nameProblem refuses anything outside the allowed characters", () => {
  const invalid = [
    "a b",
    " alice",
    "alice ",
    "alice\n", // `$` must not match before a trailing newline
    "\nalice",
    "a\tb",
    "a\u0000b",
    "a/b",
    "a@b",
    "#room",
    "a:b",
    "a,b",
    "é",
    "naïve",
    "аlice", // Cyrillic а
    "ａｌｉｃｅ", // full-width
    "😀",
    "a\u200bb", // zero-width space
    "\u00a0",
  ];
  for (const name of invalid) {
    assert.equal(
      nameProblem(name),
      "may only contain letters, digits, _ - and .",
      JSON.stringify(name),
    );
  }
});

Deno.test("nameKey folds case so that names are unique case-insensitively", () => {
  assert.equal(nameKey("Alice"), "alice");
  assert.equal(nameKey("ALICE"), nameKey("alice"));
  assert.equal(nameKey("Bob_42.x-Y"), "bob_42.x-y");
  assert.notEqual(nameKey("alice"), nameKey("alice_"));
});

Deno.test("textProblem: empty or blank text", () => {
  for (const text of ["", " ", "\n\t \r", "\u00a0", "\u2028", " ".repeat(MAX_TEXT_LENGTH * 2)]) {
    assert.equal(textProblem(text), "message is empty", JSON.stringify(text).slice(0, 20));
  }
});

Deno.test("textProblem: length up to the maximum", () => {
  assert.equal(textProblem("x"), null);
  assert.equal(textProblem("  padded  "), null);
  assert.equal(textProblem("x".repeat(MAX_TEXT_LENGTH)), null);
  assert.equal(
    textProblem("x".repeat(MAX_TEXT_LENGTH + 1)),
    `message is longer than ${MAX_TEXT_LENGTH} characters`,
  );
  assert.equal(textProblem("x".repeat(MAX_TOPIC_LENGTH), MAX_TOPIC_LENGTH), null);
  assert.equal(
    textProblem("x".repeat(MAX_TOPIC_LENGTH + 1), MAX_TOPIC_LENGTH),
    `message is longer than ${MAX_TOPIC_LENGTH} characters`,
  );
  assert.equal(textProblem("abcd", 3), "message is longer than 3 characters");
});

Deno.test("textProblem accepts any Unicode text", () => {
  assert.equal(textProblem("héllo 你好 😀 \u0000"), null);
});

Deno.test("nameSkeleton folds names that read alike", () => {
  const same = (a: string, b: string) =>
    assert.equal(nameSkeleton(a), nameSkeleton(b), `${a} ~ ${b}`);
  same("aIice", "alice");
  same("al1ce", "alice");
  same("alice.", "alice");
  same("_alice_", "alice");
  same("b0b", "bob");
  same("rnary", "mary");
  same("a.b", "a-b");
  assert.notEqual(nameSkeleton("bob"), nameSkeleton("rob"));
  assert.notEqual(nameSkeleton("alice"), nameSkeleton("alicia"));
});

Deno.test("reservedNickProblem refuses names that read like the system", () => {
  for (const nick of ["server", "SYSTEM", "Server.", "5erver", "admin", "r00t"]) {
    assert.notEqual(reservedNickProblem(nick), null, nick);
  }
  for (const nick of ["alice", "serverless", "sys", "bob"]) {
    assert.equal(reservedNickProblem(nick), null, nick);
  }
});

Deno.test("topicProblem counts the bytes of JSON escapes", () => {
  assert.equal(topicProblem("welcome"), null);
  assert.notEqual(topicProblem("x".repeat(MAX_TOPIC_LENGTH + 1)), null);
  // 200 characters, 1,200 bytes once escaped.
  assert.notEqual(topicProblem("\u0001".repeat(200)), null);
  assert.equal(topicProblem("é".repeat(MAX_TOPIC_LENGTH)), null);
});
