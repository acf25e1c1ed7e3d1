/**
 * Idle connections cost the server nothing over time: a logged-in, quiet connection
 * waits on no deadline (the deadline wheel does not visit it), while those with a
 * deadline (login, idle timeout, a write under way) are checked.
 */

import assert from "node:assert/strict";
import { Probe, testServer, until } from "./helpers/harness.ts";

const CLIENTS = 20;

Deno.test("idle logged-in connections wait on no deadline; those not logged in yet do", async () => {
  // A login deadline far away: met, it must not stay scheduled until it comes.
  const server = await testServer({ loginTimeoutMs: 600_000 });
  const probes: Probe[] = [];
  try {
    for (let i = 0; i < CLIENTS; i++) {
      const probe = await Probe.dial(server);
      await probe.hello();
      probes.push(probe);
    }
    // Each waits on its login deadline.
    assert.ok(server.deadlinesPending >= CLIENTS, `${server.deadlinesPending} pending`);
    for (const [i, probe] of probes.entries()) {
      await probe.ok("login", { nick: `idle${i}`, password: "password123" });
    }
    await until(() => server.deadlinesPending === 0 ? true : undefined, "no deadline pending");
    // A delivery to everyone: each write is checked until it is done, then nothing again.
    await probes[0].ok("say", { room: "lobby", text: "hello all" });
    for (const probe of probes.slice(1)) await probe.expect({ type: "msg", text: "hello all" });
    await until(() => server.deadlinesPending === 0 ? true : undefined, "none pending again");
  } finally {
    for (const probe of probes) probe.close();
    await server.shutdown();
  }
});

Deno.test("with an idle timeout, each quiet session waits on its one deadline", async () => {
  const server = await testServer({ idleTimeoutSec: 600 });
  const probes: Probe[] = [];
  try {
    for (let i = 0; i < 5; i++) probes.push(await Probe.login(server, `quiet${i}`));
    await until(() => server.deadlinesPending === 5 ? true : undefined, "five deadlines");
    probes[0].close();
    await until(() => server.deadlinesPending === 4 ? true : undefined, "four after a close");
  } finally {
    for (const probe of probes) probe.close();
    await server.shutdown();
  }
});
