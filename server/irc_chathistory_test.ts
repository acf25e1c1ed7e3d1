import assert from "node:assert/strict";
import { parseHistoryRef } from "./irc_chathistory.ts";

Deno.test("parseHistoryRef: msgid= and timestamp=, nothing else", () => {
  assert.deepEqual(parseHistoryRef("msgid=42"), { id: 42 });
  assert.deepEqual(parseHistoryRef("timestamp=2026-12-05T09:00:00.000Z"), {
    ts: Date.parse("2026-12-05T09:00:00.000Z"),
  });
  assert.deepEqual(parseHistoryRef("timestamp=2026-12-05T09:00:00Z"), {
    ts: Date.parse("2026-12-05T09:00:00Z"),
  });
  for (const bad of ["*", "msgid=", "msgid=-1", "msgid=abc", "timestamp=yesterday", "id=4", "42"]) {
    assert.equal(parseHistoryRef(bad), null, bad);
  }
  assert.equal(parseHistoryRef("timestamp=2026-12-05T09:00:00+01:00"), null, "UTC only");
});
