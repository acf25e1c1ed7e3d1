import assert from "node:assert/strict";
import { fastReplyParsers, parseReply, replySchemas } from "./replies.ts";

Deno.test("the fast checks of the file_chunk and file_read replies give exactly what their schemas give", () => {
  const numbers: unknown[] = [
    undefined,
    0,
    -0,
    1,
    -1,
    1.5,
    Number.MAX_SAFE_INTEGER + 1,
    "1",
  ];
  const flags: unknown[] = [undefined, true, false, 1];
  const digests: unknown[] = [undefined, "a".repeat(64), "A".repeat(64), "0".repeat(63), 5];
  const cases: [keyof typeof fastReplyParsers, Record<string, readonly unknown[]>][] = [
    ["file_chunk", { file: numbers, offset: numbers, complete: flags }],
    ["file_read", { file: numbers, offset: numbers, length: numbers, available: numbers }],
  ];
  let compared = 0;
  let taken = 0;
  for (const [type, fields] of cases) {
    const fast = fastReplyParsers[type]!;
    const schema = replySchemas[type];
    let datas: Record<string, unknown>[] = [{}];
    for (const [field, values] of Object.entries(fields)) {
      datas = datas.flatMap((d) => values.map((v) => (v === undefined ? d : { ...d, [field]: v })));
    }
    // Extra keys after the schema's, before them, an own `__proto__`, and a digest (file_read's is optional).
    datas = datas.flatMap((d) => [
      d,
      { ...d, extra: 1 },
      { extra: 1, ...d },
      { ...d, ...JSON.parse('{"__proto__":{"x":1}}') },
    ]);
    if (type === "file_read") {
      datas = datas.flatMap((d) =>
        digests.map((sha256) => sha256 === undefined ? d : { ...d, sha256 })
      );
      datas.push({ sha256: "a".repeat(64), file: 1, offset: 0, length: 1, available: 1 });
    }
    for (const data of datas) {
      const expected = schema.safeParse(data);
      const got = fast(data);
      if (got !== null) {
        assert.ok(expected.success, `fast ${type} took ${JSON.stringify(data)}`);
        assert.deepEqual(got, expected.data);
        assert.deepEqual(Object.keys(got), Object.keys(expected.data as object));
        taken++;
      }
      const parsed = parseReply(type, data);
      assert.equal(parsed.ok, expected.success);
      if (parsed.ok) assert.deepEqual(parsed.data, expected.data);
      compared++;
    }
  }
  assert.ok(compared > 10_000 && taken > 50, `${taken} taken of ${compared}`);
});
