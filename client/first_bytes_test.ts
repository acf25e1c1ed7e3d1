import assert from "node:assert/strict";
import { looksLikeTlsRecord } from "./first_bytes.ts";

Deno.test("looksLikeTlsRecord knows a TLS alert or handshake from a chat frame's length", () => {
  assert.ok(looksLikeTlsRecord([0x15, 0x03, 0x03]));
  assert.ok(looksLikeTlsRecord([0x16, 0x03, 0x01]));
  assert.ok(!looksLikeTlsRecord([0x00, 0x00, 0x01]));
  assert.ok(!looksLikeTlsRecord([0x15]));
});
