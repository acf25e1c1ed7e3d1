import assert from "node:assert/strict";
import { backoffDelay, DEFAULT_BACKOFF, resolveBackoff } from "./backoff.ts";

Deno.test("backoff doubles from the initial delay up to the maximum", () => {
  const policy = resolveBackoff({ initialDelayMs: 100, maxDelayMs: 1000, jitter: 0 });
  assert.deepEqual(
    [1, 2, 3, 4, 5, 6, 100].map((n) => backoffDelay(n, policy)),
    [100, 200, 400, 800, 1000, 1000, 1000],
  );
});

Deno.test("jitter takes up to its fraction off each delay", () => {
  const policy = resolveBackoff({ initialDelayMs: 1000, jitter: 0.5 });
  assert.equal(backoffDelay(1, policy, () => 0), 1000);
  assert.equal(backoffDelay(1, policy, () => 0.999999), 500);
  assert.equal(backoffDelay(2, policy, () => 0.5), 1500);
  const full = resolveBackoff({ jitter: true });
  assert.equal(full.jitter, 0.5);
  assert.equal(resolveBackoff({ jitter: false }).jitter, 0);
});

Deno.test("defaults and bad policies", () => {
  assert.deepEqual(resolveBackoff(), { ...DEFAULT_BACKOFF });
  assert.equal(resolveBackoff({ initialDelayMs: 60_000 }).maxDelayMs, 60_000);
  assert.throws(() => resolveBackoff({ initialDelayMs: -1 }), RangeError);
  assert.throws(() => resolveBackoff({ initialDelayMs: 100, maxDelayMs: 50 }), RangeError);
  assert.throws(() => resolveBackoff({ maxAttempts: 0 }), RangeError);
  assert.throws(() => resolveBackoff({ jitter: 2 }), RangeError);
});
