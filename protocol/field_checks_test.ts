import assert from "node:assert/strict";
import { fileBytesSchema, isFileBytes, isSha256Hex, sha256HexSchema } from "./field_checks.ts";

Deno.test("field checks: byte counts and SHA-256 digests as the schemas take them", () => {
  for (const v of [0, 1, 2 ** 53 - 1]) assert.equal(isFileBytes(v), true, String(v));
  for (const v of [-1, 0.5, 2 ** 53, Infinity, NaN, "1", null, undefined]) {
    assert.equal(isFileBytes(v), false, String(v));
  }
  const hex = "0123456789abcdef".repeat(4);
  assert.equal(isSha256Hex(hex), true);
  for (const v of [hex.toUpperCase(), hex.slice(1), hex + "0", hex.slice(1) + "g", hex + "\n", 5]) {
    assert.equal(isSha256Hex(v), false, String(v));
  }
  // Each check takes what its schema takes.
  const values = [0, 1, 2 ** 53 - 1, -1, 0.5, 2 ** 53, Infinity, NaN, "1", null, undefined, {}, []];
  for (const v of [...values, hex, hex.toUpperCase(), hex.slice(1), hex + "\n", ` ${hex}`]) {
    assert.equal(isFileBytes(v), fileBytesSchema.safeParse(v).success, `bytes ${String(v)}`);
    assert.equal(isSha256Hex(v), sha256HexSchema.safeParse(v).success, `sha256 ${String(v)}`);
  }
});
