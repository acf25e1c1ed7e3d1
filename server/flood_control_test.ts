import assert from "node:assert/strict";
import { resolveServerConfig } from "./config.ts";
import { ERROR_COST, FloodControl, pacedBytes } from "./flood_control.ts";
import { TokenBucket } from "./rate_limit.ts";

Deno.test("TokenBucket.reserve: takes tokens into debt and says how long it is", () => {
  const bucket = new TokenBucket(10, 10, 0);
  assert.equal(bucket.reserve(5, 0), 0);
  assert.equal(bucket.reserve(10, 0), 0.5); // 5 in debt at 10 a second
  assert.equal(bucket.reserve(100, 0), 1); // at most one burst deep
  assert.equal(new TokenBucket(0, 1, 0).reserve(1000, 0), 0, "a rate of 0 is unlimited");
});

Deno.test("FloodControl: pings cost a request, errors cost more, only errors add up", () => {
  const config = resolveServerConfig({
    rateRequestsPerSec: 1,
    rateRequestsBurst: 10,
    floodStrikes: 3,
  });
  const flood = new FloodControl(config, 0);
  assert.deepEqual(flood.admit("ping", 10, 0), { admitted: true });
  assert.equal(flood.failed(0), false); // 1 + ERROR_COST spent of 10
  let admitted = 0;
  while (flood.admit("nope", 10, 0).admitted) admitted++;
  assert.equal(admitted, 10 - 1 - ERROR_COST);
  assert.equal(flood.failed(0), false);
  flood.succeeded();
  assert.equal(flood.failed(0), false);
  assert.equal(flood.failed(0), false);
  assert.equal(flood.failed(0), true, "three errors in a row");
});

Deno.test("FloodControl.pace: file bytes wait for the budget instead of being refused", () => {
  const config = resolveServerConfig({ rateFileBytesPerSec: 1000 });
  const flood = new FloodControl(config, 0);
  assert.equal(flood.pace(600, 0), 0);
  assert.equal(flood.pace(600, 0), 0.2);
  assert.equal(pacedBytes({ type: "file_read", length: 4096 }, 50), 4146);
  assert.equal(pacedBytes({ type: "relay" }, 50), 50);
});
