import assert from "node:assert/strict";
import { escapeToken, natsPrefix, natsSubject, NatsSubjectError } from "./nats_subjects.ts";

const NAMES = [
  "all",
  "room.a",
  "room.a.b",
  "room.a%2Eb",
  "room.*",
  "room.>",
  "room.a b",
  "room.a\tb",
  "room.",
  "room",
  "room.%",
  "room.%25",
  "user.a",
  "user.a.b",
  "room.ünï",
  "room.😀",
  "room..",
  ".room",
  "room.a_b-c",
];

Deno.test("natsSubject: distinct names give distinct subjects", () => {
  const seen = new Map<string, string>();
  for (const name of NAMES) {
    const subject = natsSubject("chat.b.", name);
    assert.equal(seen.get(subject), undefined, `${name} and ${seen.get(subject)} -> ${subject}`);
    seen.set(subject, name);
  }
});

Deno.test("natsSubject: never a wildcard, a space or an empty token; one token per part", () => {
  for (const name of NAMES) {
    const subject = natsSubject("chat.b.", name);
    assert.doesNotMatch(subject, /[*>\s]/, subject);
    const tokens = subject.split(".");
    assert.ok(tokens.every((t) => t !== ""), subject);
    assert.equal(tokens.length, 2 + (name.includes(".") ? 2 : 1), subject);
  }
  assert.equal(natsSubject("chat.b.", "room.lobby"), "chat.b.room.lobby");
  assert.equal(natsSubject("chat.b.", "room.a.b"), "chat.b.room.a%2Eb");
  assert.equal(escapeToken("ü"), "%C3%BC");
});

Deno.test("natsPrefix: normalised, wildcards and spaces refused", () => {
  assert.equal(natsPrefix("chat"), "chat.");
  assert.equal(natsPrefix("a.b."), "a.b.");
  for (const bad of ["", ".", "a..b", "a.*", "a.>", "a b", "a.%"]) {
    assert.throws(() => natsPrefix(bad), NatsSubjectError, bad);
  }
});
