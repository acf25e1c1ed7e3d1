/**
 * A peer listener under attack, over real loopback sockets: wrong session codes burn the
 * code after a few tries (one after another, or all at once), and silent connections
 * neither keep the real peer out nor stay open long.
 */

import assert from "node:assert/strict";
import { spawnChat } from "./helpers/process.ts";
import { lineReader } from "../tools/lines.ts";
import { connectPeer } from "../peer/connect.ts";
import { PeerError } from "../peer/errors.ts";
import { DEFAULT_MAX_CODE_FAILURES, DEFAULT_MAX_PENDING_HANDSHAKES } from "../peer/listen.ts";
import type { PeerSession } from "../peer/session.ts";
import { listening } from "./helpers/peer_listener.ts";

const HOST = "127.0.0.1";
const CODE = "42-maple-otter";

/** `promise`'s outcome, or "pending" if it has none within `ms`. */
async function settledWithin<T>(
  promise: Promise<T>,
  ms: number,
): Promise<{ value: T } | { error: unknown } | "pending"> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const pending = new Promise<"pending">((resolve) => timer = setTimeout(resolve, ms, "pending"));
  try {
    return await Promise.race([
      promise.then((value) => ({ value }), (error) => ({ error })),
      pending,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Reads `conn` until the other side closes it; false if it is still open after `ms`. */
async function closedWithin(conn: Deno.Conn, ms: number): Promise<boolean> {
  const buffer = new Uint8Array(4096);
  const draining = (async () => {
    try {
      while (await conn.read(buffer) !== null) { /* discard */ }
    } catch { /* reset: closed too */ }
  })();
  const outcome = await settledWithin(draining, ms);
  conn.close();
  return outcome !== "pending";
}

const code = (err: unknown) => err instanceof PeerError ? err.code : String(err);

Deno.test("wrong session codes one after another: the listener stops after the limit", async () => {
  const bob = await listening("bob", { code: CODE });
  const outcomes: string[] = [];
  for (let attempt = 0; attempt < 10; attempt++) {
    try {
      await connectPeer({ host: HOST, port: bob.port, nick: "mallory", code: `${attempt}-a-b` });
      outcomes.push("connected");
    } catch (err) {
      outcomes.push(code(err));
      if (code(err) === "connect_failed") break;
    }
  }
  // A connection made while the listener was still closing is closed (handshake_failed):
  // no guess is tested after the last one allowed.
  assert.deepEqual(
    outcomes.filter((outcome) => outcome !== "handshake_failed"),
    [...Array(DEFAULT_MAX_CODE_FAILURES).fill("pake_failed"), "connect_failed"],
    `the listener stopped listening after the last wrong code: ${outcomes}`,
  );
  const outcome = await settledWithin(bob.session, 5000);
  assert.ok(outcome !== "pending" && "error" in outcome, "listening ended with an error");
  assert.equal(code(outcome.error), "too_many_attempts");
  assert.match((outcome.error as Error).message, /burned.*new code/);
  // Even the right code is too late now.
  await assert.rejects(
    connectPeer({ host: HOST, port: bob.port, nick: "alice", code: CODE }),
    (err) => code(err) === "connect_failed",
  );
});

Deno.test("wrong session codes all at once test no more guesses than the limit", async () => {
  const bob = await listening("bob", { code: CODE });
  const attempts = 6;
  const outcomes = await Promise.all(
    Array.from(
      { length: attempts },
      (_, i) =>
        connectPeer({ host: HOST, port: bob.port, nick: "mallory", code: `${i}-c-d` })
          .then(() => "connected", code),
    ),
  );
  const guesses = outcomes.filter((outcome) => outcome === "pake_failed").length;
  assert.ok(guesses <= DEFAULT_MAX_CODE_FAILURES, `${guesses} guesses tested: ${outcomes}`);
  assert.ok(
    outcomes.every((outcome) => outcome !== "connected"),
    `no wrong code connects: ${outcomes}`,
  );
  const outcome = await settledWithin(bob.session, 5000);
  assert.ok(outcome !== "pending" && "error" in outcome, `listening ended: ${outcomes}`);
  assert.equal(code(outcome.error), "too_many_attempts");
});

Deno.test("one wrong code leaves the real peer its turn", async () => {
  const bob = await listening("bob", { code: CODE });
  await assert.rejects(
    connectPeer({ host: HOST, port: bob.port, nick: "alice", code: "43-maple-otter" }),
    (err) => code(err) === "pake_failed",
  );
  const alice = await connectPeer({ host: HOST, port: bob.port, nick: "alice", code: CODE });
  const session = await bob.session;
  assert.equal(alice.sas, session.sas);
  await alice.close();
  await session.close();
});

Deno.test("silent connections filling every handshake slot do not keep the real peer out", async () => {
  const bob = await listening("bob");
  const silent: Deno.Conn[] = [];
  for (let i = 0; i < DEFAULT_MAX_PENDING_HANDSHAKES + 4; i++) {
    silent.push(await Deno.connect({ hostname: HOST, port: bob.port }));
  }
  // They queue before the real peer's connection, so the listener accepts them first.
  let alice: PeerSession;
  try {
    alice = await connectPeer({ host: HOST, port: bob.port, nick: "alice" });
  } finally {
    for (const conn of silent) conn.close();
  }
  const session = await bob.session;
  assert.equal(alice.sas, session.sas);
  await alice.close();
  await session.close();
});

Deno.test("a silent connection is closed after a short hello deadline, before the handshake's", async () => {
  const bob = await listening("bob");
  const silent = await Deno.connect({ hostname: HOST, port: bob.port });
  // The whole handshake may take 10 s; a connection that says nothing is gone well before.
  assert.ok(await closedWithin(silent, 7000), "the listener closed the silent connection");
  assert.equal(bob.rejected.length, 1);
  assert.equal(bob.rejected[0].code, "timeout");
  assert.match(bob.rejected[0].message, /no hello/);
  bob.stop.abort();
  await bob.session.catch(() => {});
});

Deno.test("chat peer --listen with a code exits 1 after the last wrong code, saying why", async () => {
  const child = spawnChat(["peer", "--listen", "--host", HOST, "--nick", "bob", "--json"], {
    CHAT_PEER_CODE: CODE,
  });
  const stderrText = new Response(child.stderr).text();
  const next = lineReader(child.stdout);
  const listening = JSON.parse((await next())!);
  assert.equal(listening.type, "listening");
  const port = listening.port as number;
  for (let attempt = 0; attempt < DEFAULT_MAX_CODE_FAILURES; attempt++) {
    await assert.rejects(
      connectPeer({ host: HOST, port, nick: "mallory", code: `${attempt}-wrong-guess` }),
      (err) => code(err) === "pake_failed",
    );
  }
  await child.stdin.close();
  const exited = await settledWithin(child.status, 10_000);
  if (exited === "pending") child.kill();
  const lines: Record<string, unknown>[] = [];
  for (let line = await next(); line !== null; line = await next()) lines.push(JSON.parse(line));
  const stderr = await stderrText;
  const status = await child.status;
  assert.notEqual(exited, "pending", `chat peer still listens after the last wrong code`);
  assert.equal(status.code, 1, stderr);
  assert.deepEqual(lines.map((line) => [line.type, line.code]), [["error", "too_many_attempts"]]);
  assert.match(stderr, /1 of 3 tries with the code used/);
  assert.match(stderr, /stopped listening.*burned/);
});

Deno.test("chat peer --listen on a port in use says so, in words", async () => {
  const taken = Deno.listen({ hostname: HOST, port: 0 });
  try {
    const port = (taken.addr as Deno.NetAddr).port;
    const child = spawnChat(
      ["peer", "--listen", "--host", HOST, "--port", String(port), "--nick", "bob", "--json"],
    );
    await child.stdin.close();
    const { code: status, stdout, stderr } = await child.output();
    const err = new TextDecoder().decode(stderr);
    assert.equal(status, 1, err);
    assert.match(
      err,
      new RegExp(`cannot listen on ${HOST}:${port}: port ${port} is already in use`),
    );
    assert.doesNotMatch(err, /os error/);
    const lines = new TextDecoder().decode(stdout).trim().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(lines.map((line) => [line.type, line.code]), [["error", "listen_failed"]]);
  } finally {
    taken.close();
  }
});
