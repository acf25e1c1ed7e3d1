/**
 * A client survives frames larger than it accepts: the frame is skipped (its length is
 * known, so the stream stays in step), the request it answers fails with
 * `reply_too_large`, an event that large is reported, and the connection stays up.
 */

import assert from "node:assert/strict";
import type { ChatEvent } from "../client/chat_client.ts";
import { ChatError } from "../client/chat_error.ts";
import { connectClient, Probe, until, withServer } from "./helpers/harness.ts";

Deno.test("a reply over the client's frame limit fails its request, not the connection", async () => {
  await withServer(async (server) => {
    const alice = await Probe.login(server, "alice");
    await alice.ok("join", { room: "big" });
    const text = "\u0001".repeat(4000); // 24,000 bytes in JSON
    for (let i = 0; i < 20; i++) await alice.ok("say", { room: "big", text });
    // This client accepts frames of 16 KiB at most: the join reply (history) is larger.
    const bob = await connectClient(server, "bob", { maxFrameSize: 16 * 1024 });
    const events: ChatEvent[] = [];
    bob.onEvent((event) => events.push(event));
    try {
      await assert.rejects(
        bob.join("big"),
        (err) => err instanceof ChatError && err.code === "reply_too_large",
      );
      assert.equal(bob.state, "ready");
      await bob.ping();
      // An event over the limit (a message of 24,000 bytes) is reported and skipped.
      await alice.ok("say", { room: "big", text });
      await until(
        () => events.find((e) => e.type === "error" && e.code === "reply_too_large"),
        "the skipped event reported",
      );
      await alice.ok("say", { room: "big", text: "small" });
      await until(
        () => events.find((e) => e.type === "msg" && e.text === "small"),
        "the next message",
      );
      assert.equal(bob.state, "ready");
    } finally {
      await bob.close();
      await alice.close();
    }
  });
});
