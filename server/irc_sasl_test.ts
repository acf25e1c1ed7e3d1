import assert from "node:assert/strict";
import { decodePlain, saslCapability } from "./irc_sasl.ts";

const b64 = (text: string) => btoa(String.fromCharCode(...new TextEncoder().encode(text)));

Deno.test("decodePlain: authzid empty or the same account; anything else refused", () => {
  assert.deepEqual(decodePlain(b64("\0alice\0pw")), { account: "alice", password: "pw" });
  assert.deepEqual(decodePlain(b64("ALICE\0alice\0pw")), { account: "alice", password: "pw" });
  assert.deepEqual(decodePlain(b64("\0\u00e9l\u00e8ve\0m\u00f6t")), {
    account: "\u00e9l\u00e8ve",
    password: "m\u00f6t",
  });
  assert.equal(decodePlain(b64("bob\0alice\0pw")), null);
  assert.equal(decodePlain(b64("\0alice\0")), null);
  assert.equal(decodePlain(b64("alice\0pw")), null);
  assert.equal(decodePlain("not base64!"), null);
  assert.equal(decodePlain(btoa("\0a\0\xff")), null, "not UTF-8");
});

Deno.test("saslCapability: mechanisms from CAP LS 302 on", () => {
  assert.equal(saslCapability(0), "sasl");
  assert.equal(saslCapability(302), "sasl=PLAIN");
});
