import assert from "node:assert/strict";
import { LocalLog } from "./local_log.ts";

Deno.test("LocalLog: one file per room and conversation, each message once", async () => {
  const dir = await Deno.makeTempDir({ prefix: "chat_local_log_unit_" });
  try {
    await LocalLog.prepare(`${dir}/a/b`);
    const errors: string[] = [];
    const log = new LocalLog(`${dir}/a/b`, "Ada", (text) => errors.push(text));
    const ts = new Date(2026, 0, 2, 3, 4, 5).getTime();
    log.record({ type: "msg", id: 1, ts, from: "bob", room: "Lobby", text: "hi" });
    log.record({ type: "msg", id: 1, ts, from: "bob", room: "Lobby", text: "hi" });
    log.record({ type: "dm", id: 2, ts, from: "ADA", to: "Bob", text: "yo" });
    log.record({ type: "dm", id: 3, ts, from: "bob", to: "ada", text: "a\u2028b" });
    log.record({ type: "info", text: "not a message" });
    assert.equal(
      await Deno.readTextFile(`${dir}/a/b/#lobby.log`),
      "2026-01-02 03:04:05 <bob> hi\n",
    );
    assert.equal(
      await Deno.readTextFile(`${dir}/a/b/@bob.log`),
      "2026-01-02 03:04:05 <ADA> yo\n2026-01-02 03:04:05 <bob> a␊b\n",
    );
    assert.deepEqual(errors, []);
    // A folder gone: said once, not once a message.
    await Deno.remove(`${dir}/a`, { recursive: true });
    log.record({ type: "msg", id: 4, ts, from: "bob", room: "lobby", text: "lost" });
    log.record({ type: "msg", id: 5, ts, from: "bob", room: "lobby", text: "lost" });
    assert.equal(errors.length, 1, errors.join("\n"));
    assert.match(errors[0]!, /local log: cannot write .*#lobby\.log: no such folder/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
