/**
 * End-to-end tests of the `chat` command line: help, version, usage errors and exit codes,
 * and `chat serve` as a real process (listening line, SIGTERM, port in use), run with the
 * exact permissions of the deno.json tasks.
 */

import assert from "node:assert/strict";
import denoJson from "../deno.json" with { type: "json" };
import { permissionFlags } from "../scripts/permissions.ts";
import { certificateFingerprint } from "../cli/serve.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const ROOT = new URL("../", import.meta.url);
const TASKS = denoJson.tasks as Record<string, string>;
const FIXTURES = new URL("./fixtures/", import.meta.url);

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `chat` with `args`; `mode` picks the permissions of that deno.json task (default -A). */
async function chat(args: string[], mode?: "serve" | "connect" | "peer"): Promise<Result> {
  const perms = mode === undefined ? ["-A"] : permissionFlags(TASKS[mode]!);
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...perms, MAIN, ...args],
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const decoder = new TextDecoder();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

function lines(text: string): string[] {
  return text.split("\n").filter((line) => line.trim() !== "");
}

/** Asserts a usage error: exit 2, nothing on stdout, first stderr line `first`, then usage. */
function assertUsageError(result: Result, first: RegExp, usage: string): void {
  assert.equal(result.code, 2, result.stderr);
  assert.equal(result.stdout, "");
  const errLines = lines(result.stderr);
  assert.match(errLines[0]!, first);
  assert.equal(errLines[1], usage);
}

Deno.test("chat --help lists the three modes and the global log flags", async () => {
  const result = await chat(["--help"]);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stderr, "");
  for (const mode of ["serve", "connect", "peer"]) {
    assert.match(result.stdout, new RegExp(`^  ${mode} `, "m"), mode);
  }
  for (const flag of ["--log-level", "--log-file", "--log-json", "--version"]) {
    assert.ok(result.stdout.includes(flag), flag);
  }
});

Deno.test("chat --version prints the version from deno.json", async () => {
  for (const flag of ["--version", "-V"]) {
    const result = await chat([flag]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, `${denoJson.version}\n`);
  }
});

Deno.test("chat without a mode prints the help on stderr and exits 2", async () => {
  const result = await chat([]);
  assert.equal(result.code, 2);
  assert.equal(result.stdout, "");
  assert.match(result.stderr, /^Usage: chat /);
});

Deno.test("an unknown mode is one line plus the usage on stderr, exit 2", async () => {
  const result = await chat(["bogus"]);
  assertUsageError(
    result,
    /^chat: error: unknown command 'bogus'$/,
    "Usage: chat [global options] <mode> [options]",
  );
});

Deno.test("bad flags and bad values are usage errors, exit 2", async () => {
  assertUsageError(
    await chat(["serve", "--bogus"]),
    /^chat serve: error: unknown option '--bogus'$/,
    "Usage: chat serve [options]",
  );
  assertUsageError(
    await chat(["serve", "--port", "70000"]),
    /^chat serve: error: option '--port <port>' argument '70000' is invalid\. Expected a whole number from 0 to 65535\.$/,
    "Usage: chat serve [options]",
  );
  assertUsageError(
    await chat(["serve", "--block-duration", "soon"]),
    /^chat serve: error: option '--block-duration <seconds>' argument 'soon' is invalid/,
    "Usage: chat serve [options]",
  );
  assertUsageError(
    await chat(["serve", "--auth", "maybe"]),
    /^chat serve: error: option '--auth <mode>' argument 'maybe' is invalid\. Allowed choices are password, none\.$/,
    "Usage: chat serve [options]",
  );
  assertUsageError(
    await chat(["--log-level", "loud", "serve"]),
    /^chat: error: option '--log-level <level>' argument 'loud' is invalid/,
    "Usage: chat [global options] <mode> [options]",
  );
  assertUsageError(
    await chat(["serve", "--tls-cert", "cert.pem"]),
    /^chat serve: error: --tls-cert and --tls-key must be given together$/,
    "Usage: chat serve [options]",
  );
  assertUsageError(
    await chat(["serve", "extra"]),
    /^chat serve: error: too many arguments for 'serve'/,
    "Usage: chat serve [options]",
  );
});

Deno.test("chat serve --help shows its flags and the global ones", async () => {
  const result = await chat(["serve", "--help"]);
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /^Usage: chat serve \[options\]/);
  for (
    const flag of [
      "--host",
      "--port",
      "--data",
      "--tls-cert",
      "--tls-key",
      "--auth",
      "--credentials",
      "--block-duration",
      "--idle-timeout",
      "--max-frame",
      "--log-level",
      "--log-file",
      "--log-json",
    ]
  ) {
    assert.ok(result.stdout.includes(flag), flag);
  }
  // `deno task serve -- --help` passes the `--` on; it must not change the meaning.
  const viaTask = await chat(["serve", "--", "--help"]);
  assert.equal(viaTask.code, 0, viaTask.stderr);
  assert.equal(viaTask.stdout, result.stdout);
});

Deno.test("every mode's help runs with only that mode's task permissions", async () => {
  for (const mode of ["serve", "connect", "peer"] as const) {
    const result = await chat([mode, "--help"], mode);
    assert.equal(result.code, 0, `${mode}: ${result.stderr}`);
    assert.match(result.stdout, new RegExp(`^Usage: chat ${mode} `), mode);
  }
});

/** A running `chat serve` whose stdout is read line by line. */
class ServeProcess {
  readonly child: Deno.ChildProcess;
  #stdout = "";
  #stderr = "";
  readonly #reading: Promise<void>;

  constructor(args: string[]) {
    this.child = new Deno.Command(Deno.execPath(), {
      args: ["run", ...permissionFlags(TASKS.serve!), MAIN, ...args],
      cwd: ROOT,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).spawn();
    const collect = async (stream: ReadableStream<Uint8Array>, add: (s: string) => void) => {
      for await (const chunk of stream.pipeThrough(new TextDecoderStream())) add(chunk);
    };
    this.#reading = Promise.all([
      collect(this.child.stdout, (s) => this.#stdout += s),
      collect(this.child.stderr, (s) => this.#stderr += s),
    ]).then(() => {});
  }

  get stdout(): string {
    return this.#stdout;
  }

  get stderr(): string {
    return this.#stderr;
  }

  /** Waits until stdout has a complete line matching `pattern` (or the process ends). */
  async waitForLine(pattern: RegExp, timeoutMs = 30_000): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    let ended = false;
    this.child.status.then(() => ended = true);
    while (Date.now() < deadline) {
      for (const line of this.#stdout.split("\n").slice(0, -1)) {
        const match = line.match(pattern);
        if (match !== null) return match;
      }
      if (ended) break;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    this.child.kill("SIGKILL");
    await this.finish();
    throw new Error(
      `no line matching ${pattern} on stdout:\n${this.#stdout}\nstderr:\n${this.#stderr}`,
    );
  }

  /** Waits for the exit and for all output. */
  async finish(): Promise<Deno.CommandStatus> {
    const status = await this.child.status;
    await this.#reading;
    return status;
  }
}

Deno.test({
  name: "chat serve prints the connect line and the page's address, and exits 0 on SIGTERM",
  ignore: Deno.build.os === "windows",
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "chat_cli_test_" });
    const server = new ServeProcess([
      "--log-json",
      "serve",
      "--host",
      "127.0.0.1",
      "--port",
      "0",
      "--data",
      `${dir}/data`,
      "--log-level",
      "debug",
    ]);
    try {
      const listening = await server.waitForLine(
        /^chat serve: listening on 127\.0\.0\.1:(\d+) \(TLS off\)$/,
      );
      const port = Number(listening[1]);
      assert.ok(port > 0);
      // Run from the clone (by deno): the command that works there is the task form.
      await server.waitForLine(
        new RegExp(
          `^  connect with: npx -y deno@\\d+\\.\\d+ task connect --host 127\\.0\\.0\\.1 ` +
            `--port ${port} --nick NAME$`,
        ),
      );
      await server.waitForLine(
        /^ {2}other machines cannot connect: 127\.0\.0\.1 is this machine only; to allow them, start with --host 0\.0\.0\.0 /,
      );
      // The browser client's address, which serves the page.
      const web = await server.waitForLine(/^ {2}open (http:\/\/127\.0\.0\.1:\d+\/) in a browser$/);
      const page = await fetch(web[1]);
      assert.equal(page.status, 200);
      assert.match(await page.text(), /<title>chat<\/title>/);
      // It really listens.
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      conn.close();
      server.child.kill("SIGTERM");
      const status = await server.finish();
      assert.equal(status.code, 0, server.stderr);
      assert.equal(lines(server.stdout).length, 4, server.stdout);
      // --log-json: every stderr line is a JSON log record.
      const records = lines(server.stderr).map((line) => JSON.parse(line));
      assert.ok(records.length > 0);
      for (const record of records) assert.match(record.logger, /^chat\./);
      assert.ok((await Deno.stat(`${dir}/data`)).isDirectory);
    } finally {
      try {
        server.child.kill("SIGKILL");
      } catch {
        // already exited
      }
      await server.finish();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "chat serve with TLS prints the certificate fingerprint",
  ignore: Deno.build.os === "windows",
  async fn() {
    const cert = new URL("server.pem", FIXTURES).pathname;
    const key = new URL("server-key.pem", FIXTURES).pathname;
    const fingerprint = await certificateFingerprint(await Deno.readTextFile(cert));
    assert.ok(fingerprint !== null);
    const dir = await Deno.makeTempDir({ prefix: "chat_cli_test_" });
    const server = new ServeProcess([
      "serve",
      "--host=127.0.0.1",
      "--port=0",
      `--data=${dir}`,
      `--tls-cert=${cert}`,
      `--tls-key=${key}`,
      "--log-level=error",
    ]);
    try {
      const match = await server.waitForLine(
        /^chat serve: listening on 127\.0\.0\.1:(\d+) \(TLS on, certificate SHA-256 ([0-9A-F:]+)\)$/,
      );
      assert.equal(match[2], fingerprint);
      await server.waitForLine(
        new RegExp(` --port ${match[1]} --tls --trust-fingerprint ${fingerprint} --nick NAME$`),
      );
      server.child.kill("SIGINT");
      const status = await server.finish();
      assert.equal(status.code, 0, server.stderr);
      assert.equal(server.stderr, "");
    } finally {
      try {
        server.child.kill("SIGKILL");
      } catch {
        // already exited
      }
      await server.finish();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("chat serve on a port in use fails with one line, exit 1", async () => {
  const dir = await Deno.makeTempDir({ prefix: "chat_cli_test_" });
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const port = listener.addr.port;
    const result = await chat(
      ["serve", "--host", "127.0.0.1", "--port", String(port), "--data", dir, "--log-level=error"],
      "serve",
    );
    assert.equal(result.code, 1, result.stderr);
    assert.equal(result.stdout, "");
    assert.deepEqual(lines(result.stderr), [
      `chat serve: cannot listen on 127.0.0.1:${port}: address already in use (another server running? pick another --port)`,
    ]);
  } finally {
    listener.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("chat serve reports unreadable files in one line, exit 1", async () => {
  const dir = await Deno.makeTempDir({ prefix: "chat_cli_test_" });
  try {
    const missing = await chat(
      ["serve", "--port=0", `--data=${dir}`, `--tls-cert=${dir}/no.pem`, `--tls-key=${dir}/no.pem`],
      "serve",
    );
    assert.equal(missing.code, 1);
    assert.deepEqual(lines(missing.stderr), [
      `chat serve: cannot read TLS certificate ${dir}/no.pem: no such file`,
    ]);

    await Deno.writeTextFile(`${dir}/creds.txt`, "alice password-a\n# note\nbob\n");
    const badCreds = await chat(
      ["serve", "--port=0", `--data=${dir}`, `--credentials=${dir}/creds.txt`],
      "serve",
    );
    assert.equal(badCreds.code, 1);
    assert.deepEqual(lines(badCreds.stderr), [
      `chat serve: ${dir}/creds.txt line 3: expected "username password", found 1 field`,
    ]);

    const badLog = await chat(["serve", "--log-file", `${dir}/missing/chat.log`], "serve");
    assert.equal(badLog.code, 1);
    assert.deepEqual(lines(badLog.stderr), [
      `chat serve: cannot open log file ${dir}/missing/chat.log: its folder does not exist`,
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("chat serve fails in one line when the data folder cannot be created", async () => {
  const dir = await Deno.makeTempDir({ prefix: "chat_cli_test_" });
  try {
    await Deno.writeTextFile(`${dir}/file`, "not a folder");
    const result = await chat(
      ["serve", "--host=127.0.0.1", "--port=0", `--data=${dir}/file/data`, "--log-level=error"],
      "serve",
    );
    assert.equal(result.code, 1, result.stderr);
    assert.equal(result.stdout, "");
    const errLines = lines(result.stderr);
    assert.equal(errLines.length, 1, result.stderr);
    assert.match(errLines[0]!, /^chat serve: .*file\/data/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** A non-loopback IPv4 address of this machine (what a phone on the LAN would dial), or null. */
function lanAddress(): string | null {
  const found = Deno.networkInterfaces().find((i) =>
    i.family === "IPv4" && !i.address.startsWith("127.") && !i.address.startsWith("169.254.")
  );
  return found?.address ?? null;
}

const LAN = lanAddress();

/** Asks a server process to stop (it may have ended already: waitForLine kills it). */
function stop(server: ServeProcess): void {
  try {
    server.child.kill("SIGTERM");
  } catch {
    // already ended
  }
}
if (LAN === null) console.log("LAN address tests skipped: this machine has no non-loopback IPv4");

Deno.test({
  name:
    "chat serve --host 0.0.0.0 prints the page's LAN address, which serves the page; with --host 127.0.0.1 the page is not on the LAN",
  ignore: Deno.build.os === "windows" || LAN === null,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "chat_cli_test_" });
    const all = new ServeProcess([
      "serve",
      "--host",
      "0.0.0.0",
      "--port",
      "0",
      "--data",
      `${dir}/a`,
    ]);
    try {
      const listening = await all.waitForLine(/^chat serve: listening on 0\.0\.0\.0:(\d+) /);
      const open = await all.waitForLine(/^ {2}open (http:\/\/([\d.]+):(\d+)\/) in a browser$/);
      assert.equal(open[2], LAN, "the address to open is this machine's LAN address");
      // Both listeners answer on that address: the page, then the chat port.
      const page = await fetch(open[1]);
      assert.equal(page.status, 200);
      assert.match(await page.text(), /<title>chat<\/title>/);
      (await Deno.connect({ hostname: LAN!, port: Number(listening[1]) })).close();
      assert.ok(!all.stdout.includes("127.0.0.1"), all.stdout);
    } finally {
      stop(all);
      await all.finish();
    }
    // Loopback only: the web listener binds what the chat listener binds.
    const local = new ServeProcess([
      "serve",
      "--host",
      "127.0.0.1",
      "--port",
      "0",
      "--data",
      `${dir}/b`,
    ]);
    try {
      const open = await local.waitForLine(/^ {2}open http:\/\/127\.0\.0\.1:(\d+)\/ in a browser$/);
      const webPort = Number(open[1]);
      (await Deno.connect({ hostname: "127.0.0.1", port: webPort })).close();
      await assert.rejects(
        Deno.connect({ hostname: LAN!, port: webPort }),
        Deno.errors.ConnectionRefused,
      );
    } finally {
      stop(local);
      await local.finish();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
