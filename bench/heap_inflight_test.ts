import assert from "node:assert/strict";
import { countOf, heapPerSay } from "./heap_inflight.ts";

Deno.test("a say waiting for its sync holds no suspended async function and few promises", async () => {
  const result = await heapPerSay();
  const table = JSON.stringify(result.rows.slice(0, 12));
  // 2 generators, 7 promises and 2,560 bytes per say before the command and the reply
  // were plain functions; 0, 5 and ~1,480 after.
  assert.ok(countOf(result, "object Generator") < 0.5, table);
  assert.ok(countOf(result, "object Promise") < 6, table);
  // Compiled code comes and goes with the JIT, not with the says; and a kind with far
  // fewer objects than says is a container's backing store that grew (it doubles: one
  // array of 130 KB grew between the snapshots in one CI run, 663 B "per say"), not
  // something each say holds.
  const data = result.rows
    .filter((row) => !row.kind.startsWith("code ") && row.count >= 0.05)
    .reduce((sum, row) => sum + row.bytes, 0);
  assert.ok(data < 2_000, `${data.toFixed(0)} B per say: ${table}`);
});

Deno.test("an IRC PRIVMSG waiting for its sync holds no suspended async function and few promises", async () => {
  const result = await heapPerSay({ listener: "irc" });
  const table = JSON.stringify(result.rows.slice(0, 12));
  // 3 generators, 9 promises and ~3,700 bytes per PRIVMSG when the dispatch, the text
  // command and sendText were async functions; 0, 6 and ~1,700 after (a say: 0, 5, ~1,480).
  assert.ok(countOf(result, "object Generator") < 0.5, table);
  assert.ok(countOf(result, "object Promise") < 7.5, table);
  const data = result.rows
    .filter((row) => !row.kind.startsWith("code ") && row.count >= 0.05)
    .reduce((sum, row) => sum + row.bytes, 0);
  assert.ok(data < 2_600, `${data.toFixed(0)} B per PRIVMSG: ${table}`);
});
