import assert from "node:assert/strict";
import { allocationPerMessage } from "./irc_alloc.ts";

Deno.test("an IRC room message costs the server little more allocation than a chat one; each frame decoded and formatted once", async () => {
  // A room of 10 with 4 senders, over real sockets. Before: the fan-out cache decoded and
  // formatted each message once per sender's view (4 times), and the dispatch, the
  // request id and the line formatting made garbage chat messages do not: 19.5–21 KB per
  // message against chat's 7–7.9 KB (2.5–2.8×); 7.9 KB after (1.10×).
  const chat = await allocationPerMessage({ listener: "chat", rounds: 200, warmupRounds: 200 });
  const irc = await allocationPerMessage({ listener: "irc", rounds: 200, warmupRounds: 200 });
  const figures = `IRC ${irc.bytesPerMessage.toFixed(0)} B, chat ${
    chat.bytesPerMessage.toFixed(0)
  } B per message; IRC decodes ${irc.decodesPerMessage}, formats ${irc.formatsPerMessage}`;
  assert.equal(irc.decodesPerMessage, 1, figures);
  assert.equal(irc.formatsPerMessage, 1, figures);
  assert.ok(irc.bytesPerMessage < 1.4 * chat.bytesPerMessage, figures);
});
