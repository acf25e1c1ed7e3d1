/**
 * Peer sessions with a session code (CPace over ristretto255): both sides with the same
 * code, a wrong code, a code on one side only, a man in the middle without the code, and
 * the `chat peer --generate-code` / `--code-file` / `CHAT_PEER_CODE` command line.
 */

import assert from "node:assert/strict";
import { spawnChat } from "./helpers/process.ts";
import { lineReader } from "../tools/lines.ts";
import { connectPeer } from "../peer/connect.ts";
import { PeerError } from "../peer/errors.ts";
import { listenPeer } from "../peer/listen.ts";
import { resolveCode } from "../cli/peer.ts";
import { UsageError } from "../cli/errors.ts";
import { listening } from "./helpers/peer_listener.ts";

const HOST = "127.0.0.1";
const ROOT = new URL("..", import.meta.url);
const CODE = "42-maple-otter";

async function until(condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 3000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const isPake = (err: unknown) => err instanceof PeerError && err.code === "pake_failed";

Deno.test("the same code on both sides: the session opens, texts flow, the SAS matches", async () => {
  const bob = await listening("bob", { code: CODE });
  // Typed differently, normalised to the same code.
  const alice = await connectPeer({
    host: HOST,
    port: bob.port,
    nick: "alice",
    code: "42 Maple Otter",
  });
  const bobSession = await bob.session;
  assert.equal(alice.sas, bobSession.sas);
  const iterator = bobSession[Symbol.asyncIterator]();
  await alice.sendText("with a code");
  const event = (await iterator.next()).value;
  assert.equal(event.type === "text" && event.text, "with a code");
  await alice.close();
  assert.equal((await iterator.next()).value.type, "left");
  await bobSession.close();
});

Deno.test("a wrong code fails the handshake on both sides with pake_failed", async () => {
  const bob = await listening("bob", { code: CODE });
  await assert.rejects(
    connectPeer({ host: HOST, port: bob.port, nick: "alice", code: "43-maple-otter" }),
    (err) => isPake(err) && /same code/.test((err as Error).message),
  );
  await until(() => bob.rejected.length === 1);
  assert.equal(bob.rejected[0].code, "pake_failed");
  bob.stop.abort();
  await assert.rejects(bob.session, (err) => err instanceof PeerError && err.code === "aborted");
});

Deno.test("a code on one side only fails with pake_failed on both sides, either way round", async () => {
  for (const [listenerCode, dialerCode] of [[CODE, undefined], [undefined, CODE]]) {
    const bob = await listening("bob", listenerCode ? { code: listenerCode } : {});
    await assert.rejects(
      connectPeer({
        host: HOST,
        port: bob.port,
        nick: "alice",
        ...(dialerCode ? { code: dialerCode } : {}),
      }),
      (err) => isPake(err) && /both sides must use the same code/.test((err as Error).message),
    );
    await until(() => bob.rejected.length === 1);
    assert.equal(bob.rejected[0].code, "pake_failed");
    assert.match(bob.rejected[0].message, /code/);
    bob.stop.abort();
    await bob.session.catch(() => {});
  }
});

Deno.test("a man in the middle running two handshakes without the code fails on both sides", async () => {
  const bob = await listening("bob", { code: CODE });
  // Mallory listens for alice posing as bob and dials bob posing as alice, guessing a code.
  const mallory = await listening("bob", { code: "1-guess-wrong" });
  await assert.rejects(
    connectPeer({ host: HOST, port: mallory.port, nick: "alice", code: CODE }),
    isPake,
  );
  await until(() => mallory.rejected.length === 1);
  assert.equal(mallory.rejected[0].code, "pake_failed");
  await assert.rejects(
    connectPeer({ host: HOST, port: bob.port, nick: "alice", code: "1-guess-wrong" }),
    isPake,
  );
  await until(() => bob.rejected.length === 1);
  assert.equal(bob.rejected[0].code, "pake_failed");

  // Without any code, mallory cannot even start: alice's code is refused outright.
  const plain = await listening("bob");
  await assert.rejects(
    connectPeer({ host: HOST, port: plain.port, nick: "alice", code: CODE }),
    isPake,
  );
  for (const listener of [bob, mallory, plain]) {
    listener.stop.abort();
    await listener.session.catch(() => {});
  }
});

Deno.test("an empty code is refused before anything is sent", async () => {
  await assert.rejects(
    connectPeer({ host: HOST, port: 9, nick: "alice", code: " - " }),
    (err) => err instanceof PeerError && err.code === "invalid_code",
  );
  await assert.rejects(
    listenPeer({ host: HOST, port: 0, nick: "bob", code: "" }),
    (err) => err instanceof PeerError && err.code === "invalid_code",
  );
});

Deno.test("chat peer: the code never comes from argv; sources are exclusive", async () => {
  const base = { host: "0.0.0.0", port: 0 };
  await assert.rejects(
    resolveCode({ ...base, listen: true, code: "1-a-b" }),
    (err) => err instanceof UsageError && /never taken from the command line/.test(err.message),
  );
  await assert.rejects(
    resolveCode({ ...base, connect: { host: HOST, port: 1 }, generateCode: true }),
    (err) => err instanceof UsageError && /--generate-code goes with --listen/.test(err.message),
  );
  await assert.rejects(
    resolveCode({ ...base, listen: true, generateCode: true, codeFile: "x" }),
    (err) => err instanceof UsageError && /one way/.test(err.message),
  );
  await assert.rejects(
    resolveCode({ ...base, listen: true, codeFile: "/nonexistent/code" }),
    (err) => err instanceof UsageError && /no such file/.test(err.message),
  );
  const file = await Deno.makeTempFile();
  try {
    await Deno.writeTextFile(file, "  7 Maple Otter\n");
    assert.equal(await resolveCode({ ...base, listen: true, codeFile: file }), "7-maple-otter");
    await Deno.writeTextFile(file, "\n");
    await assert.rejects(
      resolveCode({ ...base, listen: true, codeFile: file }),
      (err) => err instanceof UsageError && /empty/.test(err.message),
    );
  } finally {
    await Deno.remove(file);
  }
  const generated = await resolveCode({ ...base, listen: true, generateCode: true });
  assert.match(generated!, /^\d+-[a-z]+-[a-z]+$/);
});

Deno.test("chat peer: --generate-code on the listener, the code from a file or CHAT_PEER_CODE on the other side", async () => {
  const listener = spawnChat([
    "peer",
    "--listen",
    "--generate-code",
    "--host",
    HOST,
    "--json",
    "--nick",
    "alice",
  ]);
  const listenerErr = new Response(listener.stderr).text();
  const next = lineReader(listener.stdout);
  const codeLine = JSON.parse((await next())!);
  assert.equal(codeLine.type, "code");
  assert.match(codeLine.code, /^\d+-[a-z]+-[a-z]+$/);
  const listeningLine = JSON.parse((await next())!);
  assert.equal(listeningLine.type, "listening");
  assert.match(listeningLine.command, /--code-file FILE$/);

  // First a wrong code through the environment: refused, the listener keeps waiting.
  const wrong = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "main.ts", "peer", "--connect", `${HOST}:${listeningLine.port}`, "--json"],
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", CHAT_PEER_CODE: "1-wrong-code", USER: "mallory" },
  }).output();
  assert.equal(wrong.code, 1);
  const wrongEvents = new TextDecoder().decode(wrong.stdout).trim().split("\n").map((l) =>
    JSON.parse(l)
  );
  assert.equal(wrongEvents.at(-1).type, "error");
  assert.equal(wrongEvents.at(-1).code, "pake_failed");

  // Then the right code from a file.
  const file = await Deno.makeTempFile();
  await Deno.writeTextFile(file, `${codeLine.code}\n`);
  try {
    const connector = spawnChat([
      "peer",
      "--connect",
      `${HOST}:${listeningLine.port}`,
      "--code-file",
      file,
      "--json",
      "--nick",
      "bob",
    ]);
    const writer = connector.stdin.getWriter();
    await writer.write(new TextEncoder().encode("coded hello\n"));
    await writer.close();
    const out = await connector.output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    const events: Record<string, unknown>[] = [];
    for (let line = await next(); line !== null; line = await next()) events.push(JSON.parse(line));
    await listener.stdin.close();
    const status = await listener.status;
    assert.equal(status.code, 0, await listenerErr);
    const bobSas = new TextDecoder().decode(out.stdout).trim().split("\n").map((l) => JSON.parse(l))
      .find((e) => e.type === "sas");
    const aliceSas = events.find((e) => e.type === "sas");
    assert.equal(aliceSas?.sas, bobSas?.sas);
    assert.deepEqual(
      events.filter((e) => e.type === "text").map((e) => e.text),
      ["coded hello"],
    );
    assert.match(await listenerErr, /rejected a connection .*code/);
  } finally {
    await Deno.remove(file);
  }
});
