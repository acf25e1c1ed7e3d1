import assert from "node:assert/strict";
import { allocationPerMessage, type AllocationResult } from "./irc_alloc.ts";

Deno.test("an IRC room message costs the server little more allocation than a chat one; each event formatted once", async () => {
  // A room of 10 with 4 senders, over real sockets. Before: the fan-out cache decoded and
  // formatted each message once per sender's view (4 times), and the dispatch, the
  // request id and the line formatting made garbage chat messages do not: 19.5–21 KB per
  // message against chat's 7–7.9 KB (2.5–2.8×); 7.9 KB after (1.10×), 7.2–7.5 KB once
  // the receivers took the broker's events instead of decoding the frames (0.95–1.0×).
  const chat = await allocationPerMessage({ listener: "chat", rounds: 200, warmupRounds: 200 });
  const irc = await allocationPerMessage({ listener: "irc", rounds: 200, warmupRounds: 200 });
  const figures = `IRC ${irc.bytesPerMessage.toFixed(0)} B, chat ${
    chat.bytesPerMessage.toFixed(0)
  } B per message; IRC formats ${irc.formatsPerMessage}`;
  assert.equal(irc.formatsPerMessage, 1, figures);
  assert.ok(irc.bytesPerMessage < 1.4 * chat.bytesPerMessage, figures);
});

Deno.test("IRC receivers format the broker's events: no frame decoded again, and what the server's fan-out leaves to scavenges no more than chat's", async () => {
  // A room of 10 with 4 senders, over real sockets, the allocations that outlived a
  // scavenge sampled (what the garbage collector copies and promotes), in a process with
  // V8's gc exposed (a scavenge at the end). Before: the IRC fan-out decoded each
  // message's frame again (a copy of the event), and made its tables anew for each
  // fan-out (maps of offsets, runs, their lists), live while a scavenge came in the
  // middle of it: 360–410 B per message outlived one against chat's 95–100 B (about 4×);
  // 60–66 B after (0.65×).
  const output = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--v8-flags=--expose-gc",
      "bench/irc_alloc.ts",
      "--survivors",
      "--json",
      "--rounds",
      "200",
      "--warmup",
      "200",
    ],
    cwd: new URL("..", import.meta.url),
    stdout: "piped",
    stderr: "piped",
  }).output();
  const err = new TextDecoder().decode(output.stderr);
  assert.ok(output.success, err);
  const [chat, irc] = new TextDecoder().decode(output.stdout).trim().split("\n").map((line) =>
    JSON.parse(line) as AllocationResult & { listener: string }
  );
  assert.deepEqual([chat.listener, irc.listener], ["chat", "irc"]);
  const figures = `outlived a scavenge: IRC ${irc.serverBytes!.toFixed(0)} B, chat ${
    chat.serverBytes!.toFixed(0)
  } B per message; IRC decodes ${irc.decodesPerMessage}, formats ${irc.formatsPerMessage}`;
  assert.equal(irc.decodesPerMessage, 0, figures);
  assert.equal(irc.formatsPerMessage, 1, figures);
  assert.ok(irc.serverBytes! < 2 * chat.serverBytes!, figures);
});
