import assert from "node:assert/strict";
import { DEFAULT_SERVER_CONFIG } from "../server/config.ts";
import { concatBytes } from "../protocol/bytes.ts";
import { encodeFrame } from "../protocol/frame.ts";
import { MAX_IN_FLIGHT } from "../server/connection.ts";
import { MemoryStore } from "../server/memory_store.ts";
import type { NewMessage } from "../server/store.ts";
import { delay, Probe, testServer, until, withServer } from "./helpers/harness.ts";
import { helloFrom } from "./helpers/local_address.ts";

const FLOOD = {
  rateMessagesPerSec: DEFAULT_SERVER_CONFIG.rateMessagesPerSec,
  rateMessagesBurst: DEFAULT_SERVER_CONFIG.rateMessagesBurst,
  rateRequestsPerSec: DEFAULT_SERVER_CONFIG.rateRequestsPerSec,
  rateRequestsBurst: DEFAULT_SERVER_CONFIG.rateRequestsBurst,
  rateBytesPerSec: DEFAULT_SERVER_CONFIG.rateBytesPerSec,
};

Deno.test("flood: a pasted burst goes through, a steady excess gets rate_limited", async () => {
  await withServer(async (server) => {
    await using alice = await Probe.login(server, "alice");
    await using bob = await Probe.login(server, "bob");
    // Ten lines pasted at once: all accepted.
    for (let i = 0; i < 10; i++) {
      alice.send({ type: "say", id: `p${i}`, room: "lobby", text: `line ${i}` });
    }
    for (let i = 0; i < 10; i++) assert.equal((await alice.expect({ re: `p${i}` })).type, "ok");
    // The eleventh, right away, is refused with the time to wait.
    const refused = await alice.fails("say", { room: "lobby", text: "too fast" }, "rate_limited");
    assert.ok(Number(refused.retryAfter) > 0 && Number(refused.retryAfter) <= 1);
    await bob.expectNone({ type: "msg", text: "too fast" });
    // Other requests and pings are not messages: still fine.
    await alice.ok("who");
    await alice.ok("ping");
    // After the wait, messages go through again.
    await delay(Number(refused.retryAfter) * 1000 + 50);
    await alice.ok("say", { room: "lobby", text: "patient" });
    assert.equal(alice.ended, false);
  }, FLOOD);
});

Deno.test("flood: persistent excess disconnects with a notice; others keep chatting", async () => {
  await withServer(async (server) => {
    await using flooder = await Probe.login(server, "flooder");
    await using calm = await Probe.login(server, "calm");
    for (let i = 0; i < 40; i++) {
      flooder.send({ type: "dm", id: `f${i}`, to: "calm", text: `spam ${i}` });
    }
    const notice = await flooder.expect({ type: "notice", code: "flood" });
    assert.match(String(notice.text), /too much/);
    await flooder.closed();
    await calm.ok("say", { room: "lobby", text: "peace" });
  }, { ...FLOOD, floodStrikes: 10 });
});

Deno.test("flood: the bytes a session sends are bounded too", async () => {
  await withServer(async (server) => {
    await using alice = await Probe.login(server, "alice");
    const big = "b".repeat(3900);
    let accepted = 0;
    let refused: Record<string, unknown> | undefined;
    while (refused === undefined && accepted < 20) {
      const reply = await alice.request("say", { room: "lobby", text: big });
      if (reply.type === "ok") accepted++;
      else refused = reply;
    }
    // A 20,000-byte burst holds five of these 3,900-byte messages, not six.
    assert.equal(accepted, 5);
    assert.equal(refused?.code, "rate_limited");
    assert.match(String(refused?.message), /bytes/);
  }, { rateBytesPerSec: 1000, rateBytesBurst: 20_000 });
});

Deno.test("connections: a cap per IP address and a global cap, with a clear error", async () => {
  await withServer(async (server) => {
    await using a = await Probe.dial(server);
    await using b = await Probe.dial(server);
    await using c = await Probe.dial(server);
    const error = await c.expect({ type: "error" });
    assert.equal(error.code, "too_many_connections");
    assert.match(String(error.message), /127\.0\.0\.1/);
    await c.closed();
    a.close();
    await delay(100);
    await using d = await Probe.dial(server);
    await d.hello();
    assert.equal(b.ended, false);
  }, { maxConnectionsPerIp: 2 });
  await withServer(async (server) => {
    await using a = await Probe.dial(server);
    await using b = await Probe.dial(server);
    const error = await b.expect({ type: "error" });
    assert.equal(error.code, "too_many_connections");
    assert.match(String(error.message), /full/);
    await a.hello();
  }, { maxConnections: 1 });
});

Deno.test("sessions: at most --max-sessions per account", async () => {
  await withServer(async (server) => {
    await using one = await Probe.login(server, "alice");
    await using two = await Probe.login(server, "alice");
    await using three = await Probe.dial(server);
    await three.hello();
    const error = await three.fails(
      "login",
      { nick: "alice", password: "password123" },
      "too_many_sessions",
    );
    assert.match(String(error.message), /2 sessions/);
    one.close();
    await delay(100);
    await three.ok("login", { nick: "alice", password: "password123" });
    assert.equal(two.ended, false);
  }, { maxSessionsPerAccount: 2 });
});

Deno.test("logins: failed logins are throttled per IP address across nicks", async () => {
  await withServer(async (server) => {
    for (const nick of ["u1", "u2", "u3", "u4"]) (await Probe.login(server, nick)).close();
    await using probe = await Probe.dial(server);
    await probe.hello();
    // Four failures on four different nicks: no nick is locked, but the address is throttled.
    for (const nick of ["u1", "u2", "u3", "u4"]) {
      await probe.fails("login", { nick, password: "wrong-one" }, "wrong_password");
    }
    const throttled = await probe.fails(
      "login",
      { nick: "u1", password: "password123" },
      "rate_limited",
    );
    assert.ok(Number(throttled.retryAfter) >= 1);
  }, { loginFailuresPerMinutePerIp: 4 });
});

Deno.test("flood: a steady excess that some requests slip through is still cut off", async () => {
  await withServer(async (server) => {
    await using flooder = await Probe.login(server, "steady");
    // Ten times the allowed rate, spaced out: each refill lets one through, the rest pile up.
    for (let i = 0; i < 200 && !flooder.ended; i++) {
      flooder.send({ type: "who", id: `w${i}` });
      await delay(5);
    }
    await flooder.expect({ type: "notice", code: "flood" });
    await flooder.closed();
  }, { rateRequestsPerSec: 20, rateRequestsBurst: 5, floodStrikes: 20 });
});

Deno.test("flood: long history pages cost more than one request", async () => {
  await withServer(async (server) => {
    await using reader = await Probe.login(server, "reader");
    await reader.ok("history", { room: "lobby", limit: 500 }); // 10 tokens
    await reader.ok("history", { room: "lobby", limit: 500 }); // 20
    const refused = await reader.fails("history", { room: "lobby", limit: 500 }, "rate_limited");
    assert.match(String(refused.message), /requests/);
    await reader.ok("history", { room: "lobby", limit: 10 }); // the last token: a short page
  }, { rateRequestsPerSec: 1, rateRequestsBurst: 21 });
});

Deno.test("pipelining: at most MAX_IN_FLIGHT requests run at once; reading resumes as they finish", async () => {
  // A store whose appends wait for the test: requests pile up in flight. Its wrapper
  // drops the append's options (onCommitted): the room still hears every message.
  const memory = new MemoryStore();
  let started = 0;
  const gate = Promise.withResolvers<void>();
  const store = new Proxy(memory, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (prop !== "appendMessage") return typeof value === "function" ? value.bind(target) : value;
      return async (message: NewMessage) => {
        started++;
        await gate.promise;
        return await target.appendMessage(message);
      };
    },
  });
  const server = await testServer({}, { store });
  try {
    await using alice = await Probe.login(server, "alice");
    await using bob = await Probe.login(server, "bob");
    await alice.ok("join", { room: "pipe" });
    await bob.ok("join", { room: "pipe" });
    const count = MAX_IN_FLIGHT + 88;
    alice.sendRaw(concatBytes(
      Array.from(
        { length: count },
        (_, i) => encodeFrame({ type: "say", id: `p${i}`, room: "pipe", text: `m${i}` }),
      ),
    ));
    await until(() => started === MAX_IN_FLIGHT || undefined, `${MAX_IN_FLIGHT} appends started`);
    alice.send({ type: "ping", id: "behind" });
    await delay(100);
    assert.equal(started, MAX_IN_FLIGHT, "reading paused at the bound");
    assert.equal(alice.received.some((m) => m.re === "behind"), false, "not read yet");
    gate.resolve();
    const ids: number[] = [];
    for (let i = 0; i < count; i++) {
      const reply = await alice.expect({ type: "ok", re: `p${i}` });
      ids.push((reply.msg as { id: number }).id);
    }
    assert.equal(started, count);
    await alice.expect({ type: "ok", re: "behind" });
    for (let i = 0; i < count; i++) await bob.expect({ type: "msg", id: ids[i], text: `m${i}` });
    for (let i = 1; i < ids.length; i++) assert.ok(ids[i] > ids[i - 1], "stored in order");
  } finally {
    await server.shutdown("test over");
  }
});

/** The value of a gauge or counter in the server's `/metrics` text. */
async function metricValue(port: number, name: string): Promise<number | undefined> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}

Deno.test("logins: concurrent registrations never run more than --hash-concurrency hashes at once", async () => {
  await withServer(async (server) => {
    await using chatter = await Probe.login(server, "chatter");
    const probes = await Promise.all(Array.from({ length: 24 }, async () => {
      const probe = await Probe.dial(server);
      await probe.hello();
      return probe;
    }));
    try {
      probes.forEach((p, i) =>
        p.send({ type: "login", id: "l", nick: `new${i}`, password: "password123" })
      );
      // A logged-in session is still answered while the logins wait for their hashes.
      await chatter.ok("say", { room: "lobby", text: "still here" });
      for (const probe of probes) {
        assert.equal((await probe.expect({ re: "l" }, 30_000)).type, "ok");
      }
      const peak = await metricValue(server.metricsAddr!.port, "chat_password_hashes_peak");
      assert.ok(peak !== undefined && peak >= 1 && peak <= 2, `peak of ${peak} hashes at once`);
      assert.equal(
        await metricValue(server.metricsAddr!.port, "chat_password_hashes_running"),
        0,
      );
    } finally {
      for (const probe of probes) probe.close();
    }
  }, { passwordHashConcurrency: 2, passwordCost: 1 << 13, metricsPort: 0 });
});

Deno.test("logins: a login flood from one address does not keep another address out", async () => {
  await withServer(async (server) => {
    const flood = await Promise.all(
      Array.from({ length: 20 }, () => helloFrom(server, "127.0.0.2")),
    );
    try {
      flood.forEach((p, i) =>
        p.send({ type: "login", id: "l", nick: `flood${i}`, password: "password123" })
      );
      await using user = await helloFrom(server, "127.0.0.3");
      await user.ok("login", { nick: "user", password: "password123" });
      const replies = await Promise.all(flood.map((p) => p.expect({ re: "l" }, 30_000)));
      const refused = replies.filter((r) => r.type === "error");
      assert.ok(refused.length > 0, "the flood's address gave way when the queue was full");
      for (const r of refused) assert.equal(r.code, "rate_limited");
    } finally {
      for (const probe of flood) probe.close();
    }
  }, { passwordHashConcurrency: 1, passwordHashQueue: 4, passwordCost: 1 << 14 });
});

Deno.test("registrations: limited per address and in all; logins to existing accounts are not", async () => {
  await withServer(async (server) => {
    await using a = await helloFrom(server, "127.0.0.2");
    await a.ok("login", { nick: "reg1", password: "password123" });
    await using a2 = await helloFrom(server, "127.0.0.2");
    await a2.ok("login", { nick: "reg2", password: "password123" });
    await using a3 = await helloFrom(server, "127.0.0.2");
    const fromIp = await a3.fails(
      "login",
      { nick: "reg3", password: "password123" },
      "rate_limited",
    );
    assert.match(String(fromIp.message), /127\.0\.0\.2/);
    assert.ok(Number(fromIp.retryAfter) >= 1);
    await a3.ok("login", { nick: "reg1", password: "password123" });
    await using b = await helloFrom(server, "127.0.0.3");
    await b.ok("login", { nick: "reg4", password: "password123" });
    await using c = await helloFrom(server, "127.0.0.4");
    const inAll = await c.fails("login", { nick: "reg5", password: "password123" }, "rate_limited");
    assert.match(String(inAll.message), /on this server/);
  }, { registrationsPerMinutePerIp: 2, registrationsPerMinute: 3 });
});

Deno.test("flood: a session sending only unknown or malformed requests is cut off; others keep chatting", async () => {
  await withServer(async (server) => {
    await using flooder = await Probe.login(server, "junk");
    await using calm = await Probe.login(server, "calm");
    for (let i = 0; i < 2000 && !flooder.ended; i++) {
      if (i % 2 === 0) flooder.send({ type: "no_such_type", id: `u${i}` });
      else flooder.send({ type: "say", id: `m${i}` }); // no room, no text
      if (i % 100 === 99) await delay(1);
    }
    const notice = await flooder.expect({ type: "notice", code: "flood" });
    assert.match(String(notice.text), /too much|failed/);
    await flooder.closed();
    const errors = flooder.received.filter((m) => m.type === "error").length;
    assert.ok(errors < 1000, `${errors} error replies before the cut-off`);
    await calm.ok("say", { room: "lobby", text: "still chatting" });
  }, FLOOD);
});

Deno.test("flood: ping floods are limited like any request", async () => {
  await withServer(async (server) => {
    await using flooder = await Probe.login(server, "pinger");
    for (let i = 0; i < 1000 && !flooder.ended; i++) flooder.send({ type: "ping", id: `p${i}` });
    await flooder.expect({ type: "error", code: "rate_limited" });
    await flooder.expect({ type: "notice", code: "flood" });
    await flooder.closed();
  }, FLOOD);
});

Deno.test("flood: before login, bad frames and login attempts have a budget too", async () => {
  await withServer(async (server) => {
    (await Probe.login(server, "target", "the-password")).close();
    await using junk = await Probe.dial(server);
    await junk.hello();
    for (let i = 0; i < 1000 && !junk.ended; i++) junk.send({ type: "nope", id: `n${i}` });
    await junk.expect({ type: "notice", code: "flood" });
    await junk.closed();
    await using guesser = await helloFrom(server, "127.0.0.2");
    for (let i = 0; i < 300 && !guesser.ended; i++) {
      guesser.send({ type: "login", id: `l${i}`, nick: "target", password: `guess-${i}` });
    }
    await guesser.expect({ type: "notice", code: "flood" }, 20_000);
    await guesser.closed();
    await using owner = await Probe.dial(server);
    await owner.hello();
    await owner.ok("login", { nick: "target", password: "the-password" });
  }, FLOOD);
});

Deno.test("flood: a session whose every request fails is cut off, however slowly it sends", async () => {
  await withServer(async (server) => {
    await using mixed = await Probe.login(server, "mixed");
    for (let i = 0; i < 6; i++) {
      await mixed.fails("join", { room: "bad room" }, "bad_name");
      await mixed.ok("who");
    }
    await using failing = await Probe.login(server, "failing");
    for (let i = 0; i < 4; i++) await failing.fails("join", { room: "bad room" }, "bad_name");
    failing.send({ type: "join", id: "last", room: "bad room" });
    await failing.expect({ type: "notice", code: "flood" });
    await failing.closed();
    assert.equal(mixed.ended, false);
    await mixed.ok("who");
  }, { floodStrikes: 5 });
});

Deno.test("flood: file and relay traffic is paced by a byte budget, not refused", async () => {
  await withServer(async (server) => {
    await using peer = await Probe.login(server, "relayer");
    const body = new Uint8Array(40 * 1024);
    for (let i = 0; i < 3; i++) {
      peer.send({ type: "relay", id: `r${i}`, sid: "s".repeat(16) }, body);
    }
    for (let i = 0; i < 2; i++) {
      peer.send({ type: "file_read", id: `f${i}`, file: 1, offset: 0, length: 64 * 1024 });
    }
    for (const id of ["r0", "r1", "r2", "f0", "f1"]) {
      const reply = await peer.expect({ re: id }, 10_000);
      assert.notEqual(reply.code, "rate_limited", "paced, not refused");
    }
    const paced = await metricValue(server.metricsAddr!.port, "chat_paced_requests_total");
    assert.ok(paced !== undefined && paced >= 2, `${paced} requests paced`);
  }, { rateFileBytesPerSec: 64 * 1024, metricsPort: 0 });
});
