/**
 * Presence above `--presence-all-max` (server/presence.ts, ChatHub#presenceTargets):
 * told to those sharing a small room with the account or having it as a contact, not to
 * everyone; `/who` still lists everyone, paged. At or below it everyone is told.
 */

import assert from "node:assert/strict";
import { connectClient, Probe, withServer } from "./helpers/harness.ts";
import type { ChatServer } from "../server/server.ts";
import { startCluster, startClusterEngines } from "./helpers/cluster.ts";

/** PostgreSQL and nats-server for the cluster test; null when one is not installed. */
const engines = await startClusterEngines();

/**
 * Logs in a stranger (no room nor contact in common with zoe but the crowded lobby), a
 * room-mate of zoe (room `den`), a fan (has zoe as a contact) and fillers; zoe joins
 * `den` and leaves, so that her next login is a presence change with rooms. Returns them.
 */
async function cast(server: ChatServer, fillers: number, zoeServer = server) {
  const zoe = await Probe.login(zoeServer, "zoe");
  await zoe.ok("join", { room: "den" });
  await zoe.ok("logout");
  await zoe.closed();
  const stranger = await Probe.login(server, "stranger");
  const roomie = await Probe.login(server, "roomie");
  await roomie.ok("join", { room: "den" });
  const fan = await Probe.login(server, "fan");
  await fan.ok("contact_add", { nick: "zoe" });
  const others: Probe[] = [];
  for (let i = 0; i < fillers; i++) others.push(await Probe.login(server, `filler${i}`));
  return { stranger, roomie, fan, others };
}

/** Drops what each probe received so far (the logins of the cast). */
async function settle(probes: Probe[]): Promise<void> {
  for (const probe of probes) {
    await probe.ok("ping");
    probe.received.length = 0;
  }
}

Deno.test("presence above --presence-all-max: room-mates and contacts are told, strangers not", async () => {
  // 8 online, more than 3: targeted. The lobby (every account, 8 members) is a crowd.
  await withServer(async (server) => {
    const { stranger, roomie, fan, others } = await cast(server, 5);
    const everyone = [stranger, roomie, fan, ...others];
    try {
      await settle(everyone);
      const zoe = await Probe.login(server, "zoe");
      await roomie.expect({ type: "presence", nick: "zoe", online: true });
      await fan.expect({ type: "presence", nick: "zoe", online: true });
      await fan.expect({ type: "contact", nick: "zoe", online: true });
      // The notices of one change are queued to every receiver at once: had the stranger
      // been told, it would be before the answer to this ping.
      await stranger.ok("ping");
      assert.deepEqual(stranger.received.filter((m) => m.nick === "zoe"), []);

      // The stranger still finds zoe on demand.
      const who = (await stranger.ok("who")).users as string[];
      assert.ok(who.includes("zoe"), `who: ${who}`);

      await zoe.ok("logout");
      await zoe.closed();
      await roomie.expect({ type: "presence", nick: "zoe", online: false });
      await fan.expect({ type: "presence", nick: "zoe", online: false });
      await stranger.ok("ping");
      assert.deepEqual(stranger.received.filter((m) => m.nick === "zoe"), []);
    } finally {
      await Promise.all(everyone.map((p) => p[Symbol.asyncDispose]()));
    }
  }, { presenceAllMax: 3 });
});

Deno.test("presence at or below --presence-all-max: everyone is told", async () => {
  // 9 online with zoe: not more than 9.
  await withServer(async (server) => {
    const { stranger, roomie, fan, others } = await cast(server, 5);
    const everyone = [stranger, roomie, fan, ...others];
    try {
      await settle(everyone);
      await using zoe = await Probe.login(server, "zoe");
      for (const probe of everyone) {
        await probe.expect({ type: "presence", nick: "zoe", online: true });
      }
      await zoe.ok("logout");
      for (const probe of everyone) {
        await probe.expect({ type: "presence", nick: "zoe", online: false });
      }
    } finally {
      await Promise.all(everyone.map((p) => p[Symbol.asyncDispose]()));
    }
  }, { presenceAllMax: 9 });
});

Deno.test("who and whoelse page by nick: every user once, in order, over several pages", async () => {
  // A small frame limit: the reply budget holds a few nicks per page.
  await withServer(async (server) => {
    const nicks = Array.from({ length: 24 }, (_, i) => `user${String(i).padStart(2, "0")}`);
    const probes: Probe[] = [];
    try {
      for (const nick of nicks) probes.push(await Probe.login(server, nick));
      const [asker] = probes;
      for (const [request, want] of [["who", nicks], ["whoelse", nicks.slice(1)]] as const) {
        const seen: string[] = [];
        let pages = 0;
        let after: string | undefined;
        for (;;) {
          const page = await asker.ok(request, after === undefined ? {} : { after });
          const users = page.users as string[];
          seen.push(...users);
          pages++;
          if (page.more !== true) break;
          assert.ok(users.length > 0 && pages < 100, `${request}: a page moves on`);
          after = users[users.length - 1];
        }
        assert.ok(pages > 1, `${request}: ${pages} page(s)`);
        assert.deepEqual(seen, [...want]);
      }
      // The client gathers every page.
      const client = await connectClient(server, "user99");
      try {
        assert.deepEqual((await client.who()).users, [...nicks, "user99"]);
        assert.deepEqual((await client.whoelse()).users, nicks);
      } finally {
        await client.close();
      }
    } finally {
      await Promise.all(probes.map((p) => p[Symbol.asyncDispose]()));
    }
  }, { maxFrameSize: 256, presenceAllMax: 0 });
});

Deno.test({
  name: "cluster: above --presence-all-max each node tells its own room-mates, not its strangers",
  ignore: engines === null,
}, async () => {
  await using cluster = await startCluster(2, { presenceAllMax: 3 });
  const [a, b] = cluster.nodes;
  // Everyone on b; zoe on a: b derives the notices from its replica of who is online.
  const { stranger, roomie, fan, others } = await cast(b, 5, a);
  const everyone = [stranger, roomie, fan, ...others];
  try {
    await settle(everyone);
    const zoe = await Probe.login(a, "zoe");
    await roomie.expect({ type: "presence", nick: "zoe", online: true });
    await fan.expect({ type: "presence", nick: "zoe", online: true });
    await stranger.ok("ping");
    assert.deepEqual(stranger.received.filter((m) => m.nick === "zoe"), []);
    assert.ok(((await stranger.ok("who")).users as string[]).includes("zoe"));
    await zoe.ok("logout");
    await zoe.closed();
    await roomie.expect({ type: "presence", nick: "zoe", online: false });
    await stranger.ok("ping");
    assert.deepEqual(stranger.received.filter((m) => m.nick === "zoe"), []);
  } finally {
    await Promise.all(everyone.map((p) => p[Symbol.asyncDispose]()));
  }
});
