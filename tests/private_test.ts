/**
 * Private sessions brokered by a real server between two `ChatClient`s: the direct
 * session with its SAS, the refusals (unknown, self, offline, blocked, declined), the
 * relay fallback when the direct port is unreachable (the server only carries
 * ciphertext), and a direct session outliving the server.
 */

import assert from "node:assert/strict";
import type { ChatClient } from "../client/chat_client.ts";
import { ChatError } from "../client/chat_error.ts";
import { executeLine } from "../client/commands.ts";
import {
  type PrivateEvent,
  PrivateSessions,
  type PrivateSessionsOptions,
} from "../client/private_sessions.ts";
import { type DisplayItem, formatItem } from "../client/render.ts";
import { SessionState } from "../client/session_state.ts";
import type { ChatServer } from "../server/server.ts";
import { connectClient, Probe, testServer, until, withServer } from "./helpers/harness.ts";

interface Side {
  client: ChatClient;
  privates: PrivateSessions;
  events: PrivateEvent[];
  relayed: Uint8Array[];
}

async function side(
  server: ChatServer,
  nick: string,
  options: Partial<PrivateSessionsOptions> = {},
): Promise<Side> {
  const client = await connectClient(server, nick);
  const events: PrivateEvent[] = [];
  const relayed: Uint8Array[] = [];
  client.onRelay((_sid, body) => relayed.push(body.slice()));
  const privates = new PrivateSessions(client, {
    listenHost: "127.0.0.1",
    onEvent: (event) => events.push(event),
    ...options,
  });
  return { client, privates, events, relayed };
}

function event<T extends PrivateEvent["type"]>(
  s: Side,
  type: T,
  match: (e: Extract<PrivateEvent, { type: T }>) => boolean = () => true,
): Promise<Extract<PrivateEvent, { type: T }>> {
  return until(
    () =>
      s.events.find((e): e is Extract<PrivateEvent, { type: T }> =>
        e.type === type && match(e as Extract<PrivateEvent, { type: T }>)
      ),
    `${type} at ${s.client.nick}; got ${JSON.stringify(s.events)}`,
  );
}

async function offerArrives(s: Side, from: string): Promise<void> {
  await until(() => s.privates.offers.includes(from) ? true : undefined, `${from}'s request`);
}

async function shutdown(server: ChatServer, ...sides: Side[]): Promise<void> {
  for (const s of sides) {
    await s.privates.close();
    await s.client.close();
  }
  await server.shutdown();
}

const rejectsWith = (code: string) => (err: unknown) => {
  assert.ok(err instanceof ChatError, `expected a ChatError, got ${err}`);
  assert.equal(err.code, code, err.message);
  return true;
};

Deno.test("private: a brokered direct session shows the same SAS on both sides; texts and stop", async () => {
  const server = await testServer();
  const alice = await side(server, "alice");
  const bob = await side(server, "bob");
  try {
    await alice.privates.start("bob");
    await offerArrives(bob, "alice");
    await bob.privates.accept("alice");
    const atAlice = await event(alice, "private_open");
    const atBob = await event(bob, "private_open");
    assert.equal(atAlice.sas, atBob.sas);
    assert.match(atAlice.sas, /^\d{5}( \d{5}){4}$/);
    assert.equal(atAlice.via, "direct");
    assert.equal(atBob.via, "direct");
    assert.equal(atAlice.nick, "bob");
    assert.equal(atBob.nick, "alice");
    assert.ok(alice.events.some((e) => e.type === "private_info" && /accepted/.test(e.text)));

    // The slash commands of the terminal client.
    const shown: DisplayItem[] = [];
    const ctx = {
      client: alice.client,
      state: new SessionState("alice", "lobby"),
      privates: alice.privates,
      show: (item: DisplayItem) => shown.push(item),
      quit: () => {},
    };
    assert.equal(await executeLine(ctx, "/p bob over the direct line"), true);
    assert.equal(await executeLine(ctx, "/private bob and again"), true);
    await bob.privates.send("alice", "hello alice");
    const texts = await until(
      () => {
        const got = bob.events.flatMap((e) =>
          e.type === "private_text" && e.from === "alice" ? [e.text] : []
        );
        return got.length === 2 ? got : undefined;
      },
      "two texts at bob",
    );
    assert.deepEqual(texts, ["over the direct line", "and again"]);
    await event(alice, "private_text", (e) => e.from === "bob" && e.text === "hello alice");
    assert.equal(await executeLine(ctx, "/p carol hi"), false);
    const error = shown.at(-1);
    assert.ok(error?.type === "error");
    assert.equal((error as { message: string }).message, "Private messaging to carol not enabled");
    assert.equal(await executeLine(ctx, "/accept carol"), false);

    // The server relayed nothing: the records went directly.
    assert.equal(alice.relayed.length + bob.relayed.length, 0);

    assert.equal(await executeLine(ctx, "/stopprivate bob"), true);
    const closed = await event(bob, "private_closed");
    assert.match(closed.reason, /alice closed the private session/);
    // Alice is told in words, not "closed: closed".
    const mine = await event(alice, "private_closed");
    assert.deepEqual(formatItem(mine).map((line) => line.slice(6)), [
      "* private session with bob closed: you closed it",
    ]);
    await assert.rejects(bob.privates.send("alice", "anyone?"), rejectsWith("no_private"));
    assert.equal(alice.privates.session("bob"), undefined);
    // A new session can be set up afterwards.
    await bob.privates.start("alice");
    await offerArrives(alice, "bob");
    await alice.privates.accept("bob");
    await until(() => alice.privates.session("bob"), "the second session");
  } finally {
    await shutdown(server, alice, bob);
  }
});

Deno.test("private: refused for an unknown, self, offline or blocking user, or declined", async () => {
  const server = await testServer();
  const alice = await side(server, "alice");
  const bob = await side(server, "bob");
  const carol = await side(server, "carol");
  try {
    await assert.rejects(alice.privates.start("nobody"), rejectsWith("unknown_user"));
    await assert.rejects(alice.privates.start("ALICE"), rejectsWith("self"));
    // The server refuses self too, when asked directly.
    await assert.rejects(
      alice.client.request("private_start", {
        nick: "alice",
        sid: "0123456789abcdefABCDEF",
        port: 4000,
      }),
      rejectsWith("self"),
    );
    // dave has an account but is offline.
    const dave = await connectClient(server, "dave");
    await dave.logout();
    await assert.rejects(alice.privates.start("dave"), (err) => {
      rejectsWith("offline")(err);
      assert.match((err as Error).message, /dave is not online/);
      return true;
    });
    // carol blocks alice.
    await carol.client.block("alice");
    await assert.rejects(alice.privates.start("carol"), (err) => {
      rejectsWith("blocked")(err);
      assert.match((err as Error).message, /carol has blocked you/);
      return true;
    });
    assert.deepEqual(carol.privates.offers, []);
    // bob declines.
    await alice.privates.start("bob");
    await offerArrives(bob, "alice");
    await assert.rejects(alice.privates.start("bob"), rejectsWith("already_private"));
    await bob.privates.decline("alice");
    const closed = await event(alice, "private_closed");
    assert.equal(closed.code, "declined");
    assert.match(closed.reason, /bob declined/);
    await assert.rejects(bob.privates.accept("alice"), rejectsWith("no_private_request"));
    // Accepting what was never asked is refused by the server as well.
    await assert.rejects(
      bob.client.request("private_accept", { nick: "carol" }),
      rejectsWith("no_private_request"),
    );
    // Once declined, alice may ask again.
    await alice.privates.start("bob");
    await offerArrives(bob, "alice");
    await alice.privates.stop("bob");
    await until(
      () => bob.privates.offers.length === 0 ? true : undefined,
      "the withdrawn request",
    );
  } finally {
    await shutdown(server, alice, bob, carol);
  }
});

Deno.test("private: when the direct port is unreachable, records are relayed through the server, which sees only ciphertext", async () => {
  const server = await testServer();
  // alice announces a port where nothing listens: bob's direct connection fails.
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const deadPort = (probe.addr as Deno.NetAddr).port;
  probe.close();
  const alice = await side(server, "alice", { advertisePort: deadPort, directTimeoutMs: 1000 });
  const bob = await side(server, "bob", { directTimeoutMs: 1000 });
  try {
    await alice.privates.start("bob");
    await offerArrives(bob, "alice");
    await bob.privates.accept("alice");
    const atAlice = await event(alice, "private_open");
    const atBob = await event(bob, "private_open");
    assert.equal(atAlice.via, "relay");
    assert.equal(atBob.via, "relay");
    assert.equal(atAlice.sas, atBob.sas);
    for (const s of [alice, bob]) {
      assert.ok(
        s.events.some((e) =>
          e.type === "private_info" &&
          e.text === "direct connection failed; relaying encrypted records through the server"
        ),
        `${s.client.nick} says so`,
      );
    }
    const MARKER = "PLAINTEXT-MARKER-4f1c";
    await alice.privates.send("bob", `${MARKER} from alice`);
    await bob.privates.send("alice", `${MARKER} from bob`);
    await event(bob, "private_text", (e) => e.text === `${MARKER} from alice`);
    await event(alice, "private_text", (e) => e.text === `${MARKER} from bob`);

    // Everything the server forwarded: hellos in clear, then records it cannot read.
    const relayed = [...alice.relayed, ...bob.relayed];
    assert.ok(relayed.length >= 4, `relayed ${relayed.length} frames`);
    const wire = new TextDecoder().decode(new Uint8Array(relayed.flatMap((b) => [...b])));
    assert.ok(wire.includes("peer_hello"), "the hellos went through the relay");
    assert.ok(!wire.includes(MARKER), "the server never saw the plaintext");
    assert.ok(!wire.includes("peer_text"));

    await bob.privates.stop("alice");
    const closed = await event(alice, "private_closed");
    assert.match(closed.reason, /bob closed the private session/);
  } finally {
    await shutdown(server, alice, bob);
  }
});

Deno.test("private: a direct session keeps working when the server goes away", async () => {
  const server = await testServer();
  const alice = await side(server, "alice");
  const bob = await side(server, "bob");
  try {
    await alice.privates.start("bob");
    await offerArrives(bob, "alice");
    await bob.privates.accept("alice");
    await event(alice, "private_open");
    await server.shutdown();
    await alice.client.done;
    await bob.client.done;
    await alice.privates.send("bob", "still here without the server");
    await bob.privates.send("alice", "me too");
    await event(bob, "private_text", (e) => e.text === "still here without the server");
    await event(alice, "private_text", (e) => e.text === "me too");
    assert.equal(alice.events.filter((e) => e.type === "private_closed").length, 0);
    await alice.privates.stop("bob");
    await event(bob, "private_closed");
  } finally {
    await shutdown(server, alice, bob);
  }
});

Deno.test("private: the device that asked goes away while the account stays online: the offer ends", async () => {
  await withServer(async (server) => {
    await using phone = await Probe.login(server, "alice");
    await using laptop = await Probe.login(server, "alice");
    await using bob = await Probe.login(server, "bob");
    const sid = "0123456789abcdefABCDEF";
    await phone.ok("private_start", { nick: "bob", sid, port: 4000 });
    await bob.expect({ type: "private_request", sid, from: "alice" });
    phone.close(); // alice is still online on her laptop: no presence change
    const ended = await bob.expect({ type: "private_ended", sid });
    assert.equal(ended.reason, "offline");
    assert.equal(laptop.ended, false);
  });
});
