import assert from "node:assert/strict";
import { InvalidArgumentError } from "commander";
import { integerIn, parseHostPort, parsePort } from "./options.ts";

Deno.test("parsePort accepts 0 to 65535 written as plain digits", () => {
  assert.equal(parsePort("0"), 0);
  assert.equal(parsePort("44444"), 44444);
  assert.equal(parsePort(" 65535 "), 65535);
  for (const bad of ["", "abc", "-1", "65536", "1e3", "0x10", "12.5", "4 4"]) {
    assert.throws(() => parsePort(bad), InvalidArgumentError, bad);
  }
});

Deno.test("integerIn names the range in its error", () => {
  assert.throws(() => integerIn(5, 9)("4"), /Expected a whole number from 5 to 9\./);
  assert.equal(integerIn(5, 9)("9"), 9);
});

Deno.test("parseHostPort splits host and port, IPv6 in brackets", () => {
  assert.deepEqual(parseHostPort("example.org:44444"), { host: "example.org", port: 44444 });
  assert.deepEqual(parseHostPort("192.168.1.5:1"), { host: "192.168.1.5", port: 1 });
  assert.deepEqual(parseHostPort("[::1]:9000"), { host: "::1", port: 9000 });
  for (const bad of ["example.org", ":44", "host:", "host:0", "host:70000", "::1:80", "[::1]"]) {
    assert.throws(() => parseHostPort(bad), InvalidArgumentError, bad);
  }
});
