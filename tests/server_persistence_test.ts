import assert from "node:assert/strict";
import { delay, Probe, testServer } from "./helpers/harness.ts";
import { spawnScript } from "./helpers/process.ts";

const serverScript = new URL("./helpers/server_process.ts", import.meta.url);

Deno.test("persistence: offline delivery, rooms and blocks survive a restart on the same data folder", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "chat-restart-" });
  try {
    let server = await testServer({ dataDir });
    {
      await using alice = await Probe.login(server, "alice");
      (await Probe.login(server, "bob")).close();
      (await Probe.login(server, "mallory")).close();
      await alice.ok("join", { room: "keep" });
      await alice.ok("say", { room: "keep", text: "remember me" });
      await alice.ok("dm", { to: "bob", text: "while you were out" });
      await alice.ok("block", { nick: "mallory" });
      await alice.ok("contact_add", { nick: "bob" });
    }
    await server.shutdown();
    server = await testServer({ dataDir });
    try {
      await using bob = await Probe.dial(server);
      await bob.hello();
      const login = await bob.ok("login", { nick: "bob", password: "password123" });
      assert.equal(login.pending, 1);
      const dm = await bob.expect({ type: "dm" });
      assert.equal(dm.text, "while you were out");
      await bob.fails("login", { nick: "bob", password: "password123" }, "already_logged_in");
      await using alice = await Probe.dial(server);
      await alice.hello();
      const again = await alice.ok("login", { nick: "alice", password: "password123" });
      assert.deepEqual((again.rooms as string[]).sort(), ["keep", "lobby"]);
      assert.deepEqual((await alice.ok("contacts")).contacts, [{ nick: "bob", online: true }]);
      assert.deepEqual((await alice.ok("blocks")).nicks, ["mallory"]);
      const history = await alice.ok("history", { room: "keep" });
      assert.deepEqual((history.messages as { text: string }[]).map((m) => m.text), [
        "remember me",
      ]);
    } finally {
      await server.shutdown();
    }
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("persistence: every message acknowledged before a SIGKILL is there after the restart", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "chat-kill-" });
  try {
    const first = await spawnScript<{ port: number }>(serverScript, [dataDir]);
    const server = { addr: { port: first.info.port } } as Parameters<typeof Probe.login>[0];
    const alice = await Probe.login(server, "alice");
    const acked: number[] = [];
    const total = 400;
    // Pipeline many messages; kill the server as soon as a good number are acknowledged.
    for (let i = 0; i < total; i++) {
      alice.send({ type: "say", id: `k${i}`, room: "lobby", text: `durable ${i}` });
      if (i % 3 === 0) alice.send({ type: "dm", id: `d${i}`, to: "nobody", text: `x ${i}` });
    }
    while (acked.length < 150) {
      const reply = await alice.expect((m) => m.type === "ok" && String(m.re).startsWith("k"));
      acked.push((reply.msg as { id: number }).id);
    }
    first.child.kill("SIGKILL");
    await first.child.status;
    // Everything acknowledged so far, including what arrived with the last read.
    for (const m of alice.received) {
      if (m.type === "ok" && String(m.re).startsWith("k")) acked.push((m.msg as { id: number }).id);
    }
    await alice.closed();

    const second = await spawnScript<{ port: number }>(serverScript, [dataDir]);
    try {
      const restarted = { addr: { port: second.info.port } } as Parameters<typeof Probe.login>[0];
      await using reader = await Probe.login(restarted, "alice");
      const stored = new Set<number>();
      let after = 0;
      for (;;) {
        const page = await reader.ok("sync", { after, limit: 500 });
        const messages = page.messages as { id: number; type: string }[];
        for (const m of messages) if (m.type === "msg") stored.add(m.id);
        if (!page.more || messages.length === 0) break;
        after = messages[messages.length - 1].id;
      }
      const lost = acked.filter((id) => !stored.has(id));
      assert.deepEqual(lost, [], `${lost.length} of ${acked.length} acknowledged messages lost`);
      assert.ok(acked.length >= 150);
    } finally {
      second.child.kill("SIGTERM");
      await second.child.status;
    }
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("persistence: login history survives for whoelse since after a restart", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "chat-since-" });
  try {
    let server = await testServer({ dataDir });
    (await Probe.login(server, "early")).close();
    await delay(50);
    await server.shutdown();
    server = await testServer({ dataDir });
    try {
      await using late = await Probe.login(server, "late");
      assert.deepEqual((await late.ok("whoelse", { since: 60 })).users, ["early"]);
    } finally {
      await server.shutdown();
    }
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});
