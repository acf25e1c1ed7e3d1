import assert from "node:assert/strict";
import denoJson from "../deno.json" with { type: "json" };
import { UsageError } from "./errors.ts";
import {
  engineSettings,
  natsSettings,
  postgresSettings,
  redact,
  refuseSecretsInArguments,
  SERVE_ENVIRONMENT,
  withEngineEnvironment,
} from "./serve_engines.ts";

const noEnv = () => undefined;
const secrets: Record<string, string> = { "/pg": "s3cret", "/nats": "tok" };
const readSecret = (path: string) => Promise.resolve(secrets[path]!);

Deno.test("a password or token on the command line is refused, saying where to put it", () => {
  const cli = new Set(["postgres", "nats"]);
  assert.throws(
    () => refuseSecretsInArguments({ postgres: "postgres://chat:pw@db/chat", nats: "n:1" }, cli),
    (err: Error) =>
      err instanceof UsageError && /--postgres-password-file/.test(err.message) &&
      /PGPASSWORD/.test(err.message) && !err.message.includes("pw@"),
  );
  assert.throws(
    () => refuseSecretsInArguments({ postgres: "postgres://db/chat?password=pw" }, cli),
    UsageError,
  );
  assert.throws(
    () => refuseSecretsInArguments({ nats: "nats://u:pw@n1:4222" }, cli),
    /--nats-password-file/,
  );
  // A user name alone is a token, unless a password file gives the password.
  assert.throws(() => refuseSecretsInArguments({ nats: "nats://tok@n1:4222" }, cli), /token/);
  refuseSecretsInArguments({ nats: "nats://u@n1:4222", natsPasswordFile: "/nats" }, cli);
  refuseSecretsInArguments({ postgres: "postgres://chat@db/chat", nats: "n1:4222" }, cli);
  // The same URLs from the config file or the environment are fine.
  refuseSecretsInArguments({ postgres: "postgres://chat:pw@db/chat" }, new Set());
});

Deno.test("the environment beats the config file, flags beat the environment", () => {
  const env: Record<string, string> = {
    CHAT_POSTGRES_URL: "postgres://env@db/chat",
    CHAT_NATS_URL: "nats://env:4222",
  };
  const options = { postgres: "postgres://file@db/chat", nats: "nats://cli:4222" };
  assert.deepEqual(withEngineEnvironment(options, new Set(["nats"]), (n) => env[n]), {
    postgres: "postgres://env@db/chat",
    nats: "nats://cli:4222",
  });
});

Deno.test("--postgres and --nats go together, and --data is refused beside them", async () => {
  assert.deepEqual(await engineSettings({}, noEnv), {});
  await assert.rejects(() => engineSettings({ postgres: "postgres://db/c" }, noEnv), /--nats/);
  await assert.rejects(() => engineSettings({ nats: "n1:4222" }, noEnv), /needs --postgres/);
  await assert.rejects(
    () => engineSettings({ postgres: "postgres://db/c", nats: "n:1", data: "./d" }, noEnv),
    (err: Error) => err instanceof UsageError && /leave --data out/.test(err.message),
  );
  await assert.rejects(
    () => engineSettings({ postgresPasswordFile: "/pg" }, noEnv),
    /give both/,
  );
});

Deno.test("passwords come from files, else the environment, and leave the URLs", async () => {
  const options = {
    postgres: "postgres://chat@db:5432/chat",
    nats: "nats://n1:4222, n2:4223",
    postgresPasswordFile: "/pg",
  };
  const env: Record<string, string> = { PGPASSWORD: "ignored", CHAT_NATS_PASSWORD: "envtok" };
  assert.deepEqual(await engineSettings(options, (n) => env[n], readSecret), {
    postgres: { url: "postgres://chat@db:5432/chat", password: "s3cret" },
    nats: { servers: ["nats://n1:4222", "nats://n2:4223"], token: "envtok" },
    dataDir: null,
  });
  assert.deepEqual(postgresSettings("postgres://chat:p%40ss@db/chat"), {
    url: "postgres://chat@db/chat",
    password: "p@ss",
  });
  assert.deepEqual(natsSettings("nats://ann:pw@n1:4222,nats://n2:4222"), {
    servers: ["nats://n1:4222", "nats://n2:4222"],
    user: "ann",
    pass: "pw",
  });
  assert.deepEqual(natsSettings("nats://ann@n1:4222", "filepw"), {
    servers: ["nats://n1:4222"],
    user: "ann",
    pass: "filepw",
  });
  assert.throws(() => postgresSettings("mysql://db/chat"), UsageError);
  assert.throws(() => natsSettings("http://n1:4222"), UsageError);
  assert.equal(redact("postgres://chat:secret@db/chat"), "postgres://chat:***@db/chat");
});

Deno.test("the serve task may read every variable chat serve reads", () => {
  const task = (denoJson.tasks as Record<string, string>).serve;
  const allowed = /--allow-env=(\S+)/.exec(task)?.[1].split(",") ?? [];
  // PG*: the PostgreSQL client (postgres.js) reads PGHOST, PGPORT, PGSSLMODE... itself.
  const covered = (name: string) =>
    allowed.some((item) =>
      item === name || item.endsWith("*") && name.startsWith(item.slice(0, -1))
    );
  for (const name of SERVE_ENVIRONMENT) assert.ok(covered(name), `${name} not allowed`);
  assert.ok(covered("PGSSLMODE"));
});
