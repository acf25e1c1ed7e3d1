import assert from "node:assert/strict";
import { EngineUnavailableError, waitForEngine } from "./engine_wait.ts";

const wait = { what: "PostgreSQL at postgres://db/chat", hint: "that it runs", retryMs: 5 };

Deno.test("waitForEngine tries again until the engine answers", async () => {
  let tries = 0;
  const opened = await waitForEngine(() => {
    tries++;
    return tries < 3 ? Promise.reject(new Error("refused")) : Promise.resolve("up");
  }, { ...wait, timeoutMs: 60_000 });
  assert.equal(opened, "up");
  assert.equal(tries, 3);
});

Deno.test("waitForEngine gives up after its wait, saying what failed and what to check", async () => {
  let tries = 0;
  const err = await waitForEngine(() => {
    tries++;
    return Promise.reject(new Error("connection refused"));
  }, { ...wait, timeoutMs: 100 }).catch((e) => e);
  assert.ok(err instanceof EngineUnavailableError);
  assert.equal(err.code, "engine_unavailable");
  assert.match(err.message, /^cannot reach PostgreSQL at postgres:\/\/db\/chat after \d+ s/);
  assert.match(err.message, /connection refused; check that it runs$/);
  assert.ok(tries > 1);
});

Deno.test("waitForEngine stops at once on a failure that waiting cannot cure", async () => {
  let tries = 0;
  const err = await waitForEngine(() => {
    tries++;
    return Promise.reject(new Error("password authentication failed"));
  }, { ...wait, timeoutMs: 60_000, permanent: (e) => /password/.test(String(e)) }).catch((e) => e);
  assert.ok(err instanceof EngineUnavailableError);
  assert.equal(tries, 1);
  assert.match(err.message, /^cannot reach PostgreSQL at postgres:\/\/db\/chat: password/);
});
