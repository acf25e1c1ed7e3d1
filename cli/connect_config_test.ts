import assert from "node:assert/strict";
import { Command, Option } from "commander";
import {
  applyConnectConfig,
  ConnectConfigError,
  loadConnectConfig,
  parseConnectConfig,
} from "./connect_config.ts";

const FILE = "/home/ada/.config/chat/config.json";

Deno.test("parseConnectConfig reads every key, resolving paths against the file's folder", () => {
  const config = parseConnectConfig(
    JSON.stringify({
      host: "chat.example.org",
      port: 4000,
      nick: "ada",
      room: "rust",
      tls: true,
      ca: "certs/ca.pem",
      "password-file": "/run/secrets/chat",
      "no-color": true,
      retries: "3",
    }),
    FILE,
  );
  assert.deepEqual(config, {
    host: "chat.example.org",
    port: 4000,
    nick: "ada",
    room: "rust",
    tls: true,
    ca: "/home/ada/.config/chat/certs/ca.pem",
    passwordFile: "/run/secrets/chat",
    color: false,
    retries: 3,
  });
  assert.deepEqual(parseConnectConfig("\uFEFF{}", FILE), {});
  assert.deepEqual(parseConnectConfig('{"no-color": false}', FILE), { color: true });
  assert.deepEqual(
    parseConnectConfig('{"host": "a:1,[::1]:2", "no-randomize": true}', FILE),
    { host: "a:1,[::1]:2", randomize: false },
  );
});

Deno.test("parseConnectConfig names the file and the key in every error", () => {
  const cases: [string, RegExp][] = [
    ["{", /^config \/home\/ada\/\.config\/chat\/config\.json: not valid JSON/],
    ["[]", /expected a JSON object of settings/],
    ['{"json": true}', /unknown setting "json" \(settings: host, port, nick/],
    ['{"port": 0}', /"port": Expected a whole number from 1 to 65535/],
    ['{"port": "x"}', /"port": Expected a whole number/],
    ['{"port": true}', /"port" must be a number/],
    ['{"tls": "yes"}', /"tls" must be true or false/],
    ['{"host": ""}', /"host" must be a non-empty string/],
    ['{"nick": 5}', /"nick" must be a non-empty string/],
    ['{"retries": -1}', /"retries": Expected a whole number from 0/],
  ];
  for (const [text, message] of cases) {
    assert.throws(() => parseConnectConfig(text, FILE), (err: unknown) => {
      assert.ok(err instanceof ConnectConfigError, text);
      assert.equal(err.code, "bad_config");
      assert.match(err.message, message, text);
      return true;
    });
  }
});

Deno.test("loadConnectConfig: a missing file is no settings; a folder is an error", async () => {
  const dir = await Deno.makeTempDir();
  try {
    assert.deepEqual(await loadConnectConfig(`${dir}/config.json`), {});
    await Deno.writeTextFile(`${dir}/config.json`, '{"nick": "ada"}');
    assert.deepEqual(await loadConnectConfig(`${dir}/config.json`), { nick: "ada" });
    await assert.rejects(loadConnectConfig(dir), ConnectConfigError);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

function command(): Command {
  return new Command("connect")
    .exitOverride()
    .addOption(new Option("--host <host>").default("127.0.0.1").env("TEST_CHAT_HOST"))
    .option("--room <room>", "room", "lobby")
    .option("--nick <nick>")
    .option("--tls")
    .option("--no-color");
}

Deno.test("applyConnectConfig: flags win, then the environment, then the file, then defaults", () => {
  const config = { host: "file-host", room: "file-room", nick: "file-nick", tls: true };
  const fromDefaults = command();
  fromDefaults.parse([], { from: "user" });
  applyConnectConfig(fromDefaults, { ...config, color: false });
  assert.deepEqual(fromDefaults.opts(), {
    host: "file-host",
    room: "file-room",
    nick: "file-nick",
    tls: true,
    color: false,
  });

  const fromFlags = command();
  fromFlags.parse(["--room", "flag-room", "--nick", "flag-nick"], { from: "user" });
  applyConnectConfig(fromFlags, config);
  assert.equal(fromFlags.opts().room, "flag-room");
  assert.equal(fromFlags.opts().nick, "flag-nick");
  assert.equal(fromFlags.opts().host, "file-host");

  Deno.env.set("TEST_CHAT_HOST", "env-host");
  try {
    const fromEnv = command();
    fromEnv.parse([], { from: "user" });
    applyConnectConfig(fromEnv, config);
    assert.equal(fromEnv.opts().host, "env-host");
    const flagOverEnv = command();
    flagOverEnv.parse(["--host", "flag-host"], { from: "user" });
    applyConnectConfig(flagOverEnv, config);
    assert.equal(flagOverEnv.opts().host, "flag-host");
  } finally {
    Deno.env.delete("TEST_CHAT_HOST");
  }
});
