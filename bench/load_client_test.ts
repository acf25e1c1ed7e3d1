import assert from "node:assert/strict";
import { encodeFrame } from "../protocol/frame.ts";
import { spawnChild } from "./child.ts";

const HERE = new URL(".", import.meta.url).pathname;

/**
 * A server that takes one connection, reads what the client sends first, answers it with
 * `reply` (none when null), then closes it; resolves once it has closed.
 */
function closingServer(reply: Uint8Array | null): { port: number; done: Promise<void> } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const done = (async () => {
    const conn = await listener.accept();
    listener.close();
    try {
      await conn.read(new Uint8Array(4096));
      if (reply !== null) await conn.write(reply);
    } finally {
      conn.close();
    }
  })();
  return { port: (listener.addr as Deno.NetAddr).port, done };
}

/** Opens one load connection to `port`; returns what `open` answered. */
async function openOne(port: number): Promise<Record<string, unknown>> {
  const load = await spawnChild(`${HERE}load_client.ts`, ["--tag", "0"], { name: "load" });
  try {
    await load.request("target", { host: "127.0.0.1", port, mode: "chat", web: false });
    // Without the closing noticed, the wait for hello would end only at this timeout.
    return await load.request("open", {
      group: "g",
      prefix: "u",
      count: 1,
      concurrency: 1,
      timeoutMs: 10_000,
    }, 60_000);
  } finally {
    await load.stop();
  }
}

Deno.test("load client: a connection closed before hello fails at once, with the server's last word", async () => {
  const server = closingServer(encodeFrame({
    type: "error",
    code: "not_logged_in",
    message: "hello and login must complete within 10 s",
  }));
  const opened = await openOne(server.port);
  await server.done;
  assert.equal(opened.failed, 1);
  assert.equal(
    String(opened.firstFailure),
    "u0: connection closed by the server before the reply to hello; the server's last word: " +
      "not_logged_in: hello and login must complete within 10 s",
  );
});

Deno.test("load client: a connection closed without a word before hello fails at once", async () => {
  const server = closingServer(null);
  const opened = await openOne(server.port);
  await server.done;
  assert.equal(opened.failed, 1);
  assert.equal(
    String(opened.firstFailure),
    "u0: connection closed by the server before the reply to hello",
  );
});
