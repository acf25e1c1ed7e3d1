import assert from "node:assert/strict";
import { CredentialsError, parseCredentials } from "./credentials.ts";

Deno.test("parseCredentials reads pairs and skips blank lines and comments", () => {
  const text = "\uFEFF# accounts\r\nalice s3cret-pw\n\n   \n  # indented comment\nbob\thunter2*x\n";
  assert.deepEqual(parseCredentials(text), [
    { nick: "alice", password: "s3cret-pw" },
    { nick: "bob", password: "hunter2*x" },
  ]);
});

Deno.test("parseCredentials of an empty file is an empty list", () => {
  assert.deepEqual(parseCredentials(""), []);
  assert.deepEqual(parseCredentials("# nothing\n\n"), []);
});

Deno.test("parseCredentials names the line with a wrong number of fields", () => {
  assert.throws(
    () => parseCredentials("alice pw-one-two\nbob\n", "creds.txt"),
    (err: unknown) =>
      err instanceof CredentialsError && err.line === 2 && err.code === "bad_credentials" &&
      err.message === 'creds.txt line 2: expected "username password", found 1 field',
  );
  assert.throws(
    () => parseCredentials("alice pass word\n", "creds.txt"),
    /creds\.txt line 1: expected "username password", found 3 fields/,
  );
});

Deno.test("parseCredentials rejects invalid and duplicate usernames", () => {
  assert.throws(
    () => parseCredentials("al!ce password1\n", "c"),
    /c line 1: username "al!ce" may only contain/,
  );
  assert.throws(
    () => parseCredentials("alice password1\n\nALICE password2\n", "c"),
    /c line 3: username "ALICE" is already defined on line 1/,
  );
});
