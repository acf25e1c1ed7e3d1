import assert from "node:assert/strict";
import type { ServerConfig } from "../server/config.ts";
import {
  applySettings,
  attributeOf,
  parseByteSize,
  parseConfigFile,
  SERVE_SETTINGS,
} from "./serve_settings.ts";

Deno.test("every setting has a unique flag and lands somewhere in the configuration", () => {
  const flags = SERVE_SETTINGS.map((s) => s.flag);
  assert.equal(new Set(flags).size, flags.length);
  // Read by serve.ts and serve_engines.ts.
  const fileOnly = new Set([
    "tls-cert",
    "tls-key",
    "credentials",
    "postgres",
    "postgres-password-file",
    "nats",
    "nats-password-file",
  ]);
  for (const setting of SERVE_SETTINGS) {
    if (fileOnly.has(setting.flag)) continue;
    assert.ok(setting.apply, `${setting.flag} has no place in the configuration`);
  }
});

Deno.test("parseConfigFile parses values with the flags' own parsers", () => {
  const values = parseConfigFile(
    JSON.stringify({ "port": 4000, "idle-timeout": "30", "auth": "none", "drain-window": 5 }),
    "chat.json",
  );
  assert.deepEqual(values, { port: 4000, idleTimeout: 30, auth: "none", drainWindow: 5 });
  const config: Partial<ServerConfig> = {};
  applySettings(config, values);
  assert.deepEqual(config, { port: 4000, idleTimeoutSec: 30, auth: "none", drainWindowMs: 5000 });
});

Deno.test("parseConfigFile names the file and the setting in every error", () => {
  const cases: [string, RegExp][] = [
    ["[]", /chat\.json: expected a JSON object/],
    ['{"port": 70000}', /chat\.json: "port": Expected a whole number from 0 to 65535/],
    ['{"port": true}', /"port" must be a string or a number/],
    ['{"bogus": 1}', /unknown setting "bogus"/],
  ];
  for (const [text, expected] of cases) {
    assert.throws(() => parseConfigFile(text, "chat.json"), expected);
  }
});

Deno.test("applySettings can keep to the settings a running server may change", () => {
  const config: Partial<ServerConfig> = {};
  applySettings(config, { port: 1, idleTimeout: 5, rateMessages: 2 }, (s) => s.reloadable === true);
  assert.deepEqual(config, { idleTimeoutSec: 5, rateMessagesPerSec: 2 });
  assert.equal(attributeOf("max-connections-per-ip"), "maxConnectionsPerIp");
});

Deno.test("file limits: byte sizes with binary units, in flags and the config file", () => {
  assert.equal(parseByteSize("65536"), 65536);
  assert.equal(parseByteSize("64K"), 64 * 1024);
  assert.equal(parseByteSize("256m"), 256 * 1024 * 1024);
  assert.equal(parseByteSize("1GiB"), 1024 ** 3);
  assert.equal(parseByteSize("2 GB"), 2 * 1024 ** 3);
  for (const bad of ["", "-1", "1.5M", "12X", "M", "99999999999T"]) {
    assert.throws(() => parseByteSize(bad), /byte count|too large/, bad);
  }
  const values = parseConfigFile(
    JSON.stringify({ "max-file-size": "64M", "file-quota": "1G", "file-ttl": 3600 }),
    "chat.json",
  );
  const config: Partial<ServerConfig> = {};
  applySettings(config, values);
  assert.deepEqual(config, {
    maxFileSize: 64 * 1024 * 1024,
    fileQuotaBytes: 1024 ** 3,
    fileTtlSec: 3600,
  });
});

Deno.test("disk limits: the files budget, the free-space reserve, files per sender, their folder", () => {
  const values = parseConfigFile(
    JSON.stringify({
      "files-budget": "8G",
      "min-free-space": "256M",
      "max-held-files": 20,
      "files-dir": "/srv/chat-files",
    }),
    "chat.json",
  );
  const config: Partial<ServerConfig> = {};
  applySettings(config, values);
  assert.deepEqual(config, {
    filesBudgetBytes: 8 * 1024 ** 3,
    minFreeBytes: 256 * 1024 ** 2,
    maxHeldFilesPerSender: 20,
    fileDir: "/srv/chat-files",
  });
  const live: Partial<ServerConfig> = {};
  applySettings(live, values, (s) => s.reloadable === true);
  assert.equal(live.fileDir, undefined, "moving the files needs a restart");
  assert.equal(live.minFreeBytes, 256 * 1024 ** 2);
});

Deno.test("commit-gap: microseconds in the flag or the file, milliseconds in the configuration", () => {
  const values = parseConfigFile(JSON.stringify({ "commit-gap": 1500 }), "chat.json");
  const config: Partial<ServerConfig> = {};
  applySettings(config, values);
  assert.deepEqual(config, { commitGapMs: 1.5 });
  assert.throws(
    () => parseConfigFile('{"commit-gap": 1000001}', "chat.json"),
    /"commit-gap": Expected a whole number from 0 to 1000000/,
  );
});
