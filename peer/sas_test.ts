import assert from "node:assert/strict";
import { deriveSas, sameSas } from "./sas.ts";

Deno.test("deriveSas gives five groups of five digits, deterministically", async () => {
  const th = crypto.getRandomValues(new Uint8Array(32));
  const sas = await deriveSas(th);
  assert.match(sas, /^\d{5} \d{5} \d{5} \d{5} \d{5}$/);
  assert.equal(await deriveSas(new Uint8Array(th)), sas);
});

Deno.test("deriveSas matches an independently computed vector", async () => {
  // peer/testdata/v3_vectors.py: HKDF-SHA256 (python `cryptography`) of the transcript hash
  // of its key schedule vector, label "chat-peer/3 sas", 16 bytes, modulo 10^25.
  const th = Uint8Array.fromHex("8ac15ebe2c2e1371305a6ae2ae3ecba1ecd95de373d97e65b3a565bc0fce7ef6");
  assert.equal(await deriveSas(th), "79795 72316 87844 23190 45614");
});

Deno.test("deriveSas differs when one bit of the transcript hash differs", async () => {
  const th = new Uint8Array(32);
  const other = new Uint8Array(32);
  other[31] = 1;
  assert.notEqual(await deriveSas(th), await deriveSas(other));
});

Deno.test("deriveSas is spread over many digits (no constant group)", async () => {
  const seen = new Set<string>();
  for (let i = 0; i < 20; i++) {
    const sas = await deriveSas(crypto.getRandomValues(new Uint8Array(32)));
    for (const group of sas.split(" ")) seen.add(group);
  }
  assert.ok(seen.size > 90, `only ${seen.size} distinct groups in 100`);
});

Deno.test("sameSas ignores spacing only", () => {
  assert.ok(sameSas("12345 67890", "1234567890"));
  assert.ok(sameSas("12345  67890 ", " 12345 67890"));
  assert.ok(!sameSas("12345 67890", "12345 67891"));
});
