/**
 * Look-alike nicks over a real socket: system-like names are reserved, and a nick that
 * reads like a registered one (`aIice` beside `alice`, `alice.`) is refused at
 * registration, while the registered account keeps logging in.
 */

import assert from "node:assert/strict";
import { Probe, withServer } from "./helpers/harness.ts";

async function refused(probe: Probe, nick: string, pattern: RegExp): Promise<void> {
  const reply = await probe.fails("login", { nick, password: "password123" }, "bad_name");
  assert.match(reply.message as string, pattern, nick);
}

Deno.test("system-like nicks are reserved", async () => {
  await withServer(async (server) => {
    const probe = await Probe.dial(server);
    await probe.hello();
    for (const nick of ["server", "SYSTEM", "Server.", "5erver", "admin"]) {
      await refused(probe, nick, /reserved/);
    }
    await probe.ok("login", { nick: "serverless", password: "password123" });
    await probe.close();
  });
});

Deno.test("a nick that reads like a registered one is refused; the owner still logs in", async () => {
  await withServer(async (server) => {
    const alice = await Probe.login(server, "alice");
    await alice.close();
    const probe = await Probe.dial(server);
    await probe.hello();
    for (const nick of ["aIice", "ALlCE", "al1ce", "alice.", "_alice"]) {
      await refused(probe, nick, /reads like "alice"/);
    }
    await probe.ok("login", { nick: "Alice", password: "password123" });
    await probe.close();
    // A refused look-alike is not registered: it stays refused, and no account exists.
    const other = await Probe.login(server, "bob");
    await other.fails("dm", { to: "aIice", text: "hi" }, "unknown_user");
    await other.close();
  });
});

Deno.test("auth none: reserved and look-alike nicks are refused too", async () => {
  await withServer(async (server) => {
    const first = await Probe.dial(server);
    await first.hello();
    await first.ok("login", { nick: "alice" });
    const second = await Probe.dial(server);
    await second.hello();
    await second.fails("login", { nick: "SYSTEM" }, "bad_name");
    await second.fails("login", { nick: "aIice" }, "bad_name");
    await first.close();
    await second.close();
  }, { auth: "none" });
});
