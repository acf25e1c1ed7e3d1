import assert from "node:assert/strict";
import { deriveSas, sameSas } from "./sas.ts";

Deno.test("deriveSas gives five groups of five digits, deterministically", async () => {
  const th = crypto.getRandomValues(new Uint8Array(32));
  const sas = await deriveSas(th);
  assert.match(sas, /^\d{5} \d{5} \d{5} \d{5} \d{5}$/);
  assert.equal(await deriveSas(new Uint8Array(th)), sas);
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
