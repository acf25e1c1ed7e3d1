/**
 * Replies stay under the frame size a client accepts, whatever others stored: room
 * listings are paged, join and history replies are cut by their JSON size (a control
 * character takes 6 bytes there), offered file names and topics have byte limits, and
 * a recipient of many held files still logs in and lists them all.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { DEFAULT_MAX_FRAME_SIZE } from "../protocol/frame.ts";
import { MAX_OFFERED_NAME_BYTES } from "../protocol/file_names.ts";
import { encodedSize } from "../protocol/json_size.ts";
import { MAX_TOPIC_BYTES } from "../protocol/names.ts";
import { FileTransfers } from "../client/file_transfer.ts";
import type { FileTransferEvent } from "../transport/file_transfer_events.ts";
import { connectClient, Probe, type Received, withServer } from "./helpers/harness.ts";
import { withTempDir } from "./helpers/files.ts";

const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
/** Bytes of a frame carrying `reply` (length prefix and header length included). */
const frameBytes = (reply: Received) => 8 + encodedSize(reply);

Deno.test("rooms whose topics are full of control characters are listed in pages under the frame limit", async () => {
  await withServer(async (server) => {
    const alice = await Probe.login(server, "alice");
    // 1,024 bytes once escaped: the most a topic may take.
    const topic = "\u0001".repeat(MAX_TOPIC_BYTES / 6) + "abcd";
    const count = 1100;
    for (let i = 0; i < count; i++) {
      const room = `room-${String(i).padStart(4, "0")}`;
      await alice.ok("join", { room });
      await alice.ok("topic", { room, topic });
    }
    const names = new Set<string>();
    let after: string | undefined;
    let pages = 0;
    while (true) {
      const page = await alice.ok("rooms", after === undefined ? {} : { after });
      pages++;
      assert.ok(frameBytes(page) <= DEFAULT_MAX_FRAME_SIZE, `page of ${frameBytes(page)} bytes`);
      const rooms = page.rooms as { name: string; topic: string }[];
      assert.ok(rooms.length > 0);
      for (const room of rooms) names.add(room.name);
      if (page.more !== true) break;
      after = rooms[rooms.length - 1].name;
    }
    assert.ok(pages >= 2, "more than one page");
    assert.equal(names.size, count + 1, "every room once (and the lobby)");
    // The client library fetches every page.
    const client = await connectClient(server, "bob");
    try {
      const listed = await client.rooms();
      assert.equal(listed.rooms.length, count + 1);
      assert.equal(listed.more, false);
    } finally {
      await client.close();
    }
    await alice.close();
  });
});

Deno.test("a topic over its byte limit is refused, counting JSON escapes", async () => {
  await withServer(async (server) => {
    const alice = await Probe.login(server, "alice");
    await alice.ok("join", { room: "ctl" });
    // 300 characters (the most), 1,800 bytes once escaped.
    const reply = await alice.fails(
      "topic",
      { room: "ctl", topic: "\u0007".repeat(300) },
      "bad_text",
    );
    assert.match(reply.message as string, /bytes/);
    await alice.ok("topic", { room: "ctl", topic: "é".repeat(300) });
    await alice.close();
  });
});

Deno.test("a join reply with history full of control characters stays within its budget", async () => {
  await withServer(async (server) => {
    const alice = await Probe.login(server, "alice");
    await alice.ok("join", { room: "noisy" });
    const text = "\u0001".repeat(4000); // 24,000 bytes in JSON
    for (let i = 0; i < 50; i++) await alice.ok("say", { room: "noisy", text });
    const bob = await Probe.login(server, "bob");
    const reply = await bob.ok("join", { room: "noisy" });
    const history = reply.history as unknown[];
    assert.ok(history.length > 0, "some history");
    assert.ok(history.length < 50, "cut");
    // The history takes at most half a frame, as designed (it took twice that before).
    assert.ok(encodedSize(history) <= DEFAULT_MAX_FRAME_SIZE / 2, `${encodedSize(history)} bytes`);
    assert.ok(frameBytes(reply) <= DEFAULT_MAX_FRAME_SIZE);
    const page = await bob.ok("history", { room: "noisy", limit: 500 });
    assert.equal(page.more, true);
    assert.ok(encodedSize(page.messages) <= DEFAULT_MAX_FRAME_SIZE / 2);
    await alice.close();
    await bob.close();
  });
});

Deno.test("a 16,000-character file name is refused at the offer", async () => {
  await withServer(async (server) => {
    const bob = await Probe.login(server, "bob");
    await bob.close();
    const alice = await Probe.login(server, "alice");
    const offer = { to: "bob", size: 0, sha256: EMPTY_SHA256 };
    await alice.fails("file_offer", { ...offer, name: "x".repeat(16_000) }, "bad_name");
    // Within the limit in characters, over it in bytes once escaped.
    await alice.fails("file_offer", { ...offer, name: "\u0001".repeat(200) + ".txt" }, "bad_name");
    await alice.ok("file_offer", { ...offer, name: "x".repeat(MAX_OFFERED_NAME_BYTES) });
    await alice.close();
  });
});

Deno.test("25 held files with names at the byte limit do not stop the recipient's login", async () => {
  await withTempDir(async (tmp) => {
    await withServer(async (server) => {
      const bob = await connectClient(server, "bob");
      await bob.close();
      const alice = await Probe.login(server, "alice");
      for (let i = 0; i < 25; i++) {
        // 1,024 bytes once escaped.
        const name = `${String(i).padStart(2, "0")}${"\u0001".repeat(170)}.t`;
        assert.equal(encodedSize(name) - 2, MAX_OFFERED_NAME_BYTES);
        await alice.ok("file_offer", { to: "bob", name, size: 0, sha256: EMPTY_SHA256 });
      }
      await alice.close();
      const client = await connectClient(server, "bob");
      const events: FileTransferEvent[] = [];
      const files = new FileTransfers(client, {
        onEvent: (e) => events.push(e),
        downloadDir: join(tmp, "dl"),
      });
      try {
        const listed = await files.list();
        assert.equal(listed.files.length, 25);
        assert.equal(client.state, "ready");
        await client.ping();
      } finally {
        await files.close();
        await client.close();
      }
    });
  });
});

Deno.test("held file offers are listed in pages under the frame limit", async () => {
  await withTempDir(async (tmp) => {
    await withServer(async (server) => {
      const bob = await connectClient(server, "bob");
      await bob.close();
      const controls = "\u0001".repeat(169); // 1,014 bytes in JSON
      let offered = 0;
      for (let s = 0; s < 10; s++) {
        const sender = await Probe.login(server, `sender${s}`);
        for (let i = 0; i < 60; i++) {
          await sender.ok("file_offer", {
            to: "bob",
            name: `${i}${controls}.bin`,
            size: 0,
            sha256: EMPTY_SHA256,
          });
          offered++;
        }
        await sender.close();
      }
      const probe = await Probe.login(server, "bob");
      const first = await probe.ok("file_list");
      assert.ok(frameBytes(first) <= DEFAULT_MAX_FRAME_SIZE);
      assert.equal(first.more, true);
      await probe.close();
      const client = await connectClient(server, "bob");
      const files = new FileTransfers(client, { onEvent: () => {}, downloadDir: join(tmp, "dl") });
      try {
        const listed = await files.list();
        assert.equal(listed.files.length, offered);
        assert.equal(new Set(listed.files.map((f) => f.file)).size, offered);
      } finally {
        await files.close();
        await client.close();
      }
    });
  });
});

Deno.test("under a small --max-frame, history and sync pages still move on", async () => {
  await withServer(async (server) => {
    const alice = await Probe.login(server, "alice");
    const text = "y".repeat(1500); // over half of a 2 KiB frame, within the frame
    for (let i = 0; i < 3; i++) await alice.ok("say", { room: "lobby", text });
    const history = await alice.ok("history", { room: "lobby", limit: 10 });
    assert.equal((history.messages as unknown[]).length, 1, "the newest, alone");
    assert.equal(history.more, true);
    let after = 0;
    let seen = 0;
    for (let page = 0; page < 10; page++) {
      const reply = await alice.ok("sync", { after });
      const messages = reply.messages as { id: number }[];
      seen += messages.length;
      if (messages.length === 0 || reply.more !== true) break;
      after = messages[messages.length - 1].id;
    }
    assert.equal(seen, 3);
    await alice.close();
  }, { maxFrameSize: 2048 });
});
