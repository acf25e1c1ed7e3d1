/**
 * `chat serve --config`: precedence (flags over the file over the defaults), SIGHUP
 * reloading the file and reopening the log file, and `--metrics-port`, as real processes
 * with the serve task's permissions; a server in a terminal (tmux) stopping when the
 * terminal closes, and reloading on SIGUSR1.
 */

import assert from "node:assert/strict";
import denoJson from "../deno.json" with { type: "json" };
import { permissionFlags } from "../scripts/permissions.ts";
import { delay, Probe } from "./helpers/harness.ts";
import { q, TMUX, Tmux, waitFile } from "./helpers/tmux.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const SERVE_PERMISSIONS = permissionFlags((denoJson.tasks as Record<string, string>).serve);

interface Running {
  child: Deno.ChildProcess;
  lines: string[];
  port: number;
  stop(): Promise<Deno.CommandStatus>;
}

async function serve(args: string[]): Promise<Running> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...SERVE_PERMISSIONS, MAIN, "serve", ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "null",
    env: { NO_COLOR: "1" },
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const lines: string[] = [];
  let buffered = "";
  let port = 0;
  const deadline = Date.now() + 15_000;
  while (port === 0 && Date.now() < deadline) {
    const { value, done } = await reader.read();
    if (done) break;
    buffered += value;
    const parts = buffered.split("\n");
    buffered = parts.pop()!;
    lines.push(...parts);
    const match = lines.map((l) => /listening on [^ ]+:(\d+)/.exec(l)).find((m) => m !== null);
    if (match) port = Number(match[1]);
  }
  (async () => {
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        lines.push(...value.split("\n").filter((l) => l !== ""));
      }
    } catch { /* closed */ }
  })();
  assert.ok(port > 0, `no listening line in: ${lines.join("\n")}`);
  return {
    child,
    lines,
    port,
    stop() {
      child.kill("SIGTERM");
      return child.status;
    },
  };
}

Deno.test("serve --config: the file beats the defaults, flags beat the file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "chat-config-" });
  try {
    const config = `${dir}/chat.json`;
    // The file sets the port (overridden by the flag), the data folder and the auth mode.
    await Deno.writeTextFile(
      config,
      JSON.stringify({ "port": 1, "data": `${dir}/data`, "auth": "none" }),
    );
    const server = await serve(["--config", config, "--port", "0", "--host", "127.0.0.1"]);
    try {
      const target = { addr: { port: server.port } } as Parameters<typeof Probe.dial>[0];
      await using first = await Probe.dial(target);
      await first.hello();
      await first.ok("login", { nick: "solo" }); // no password: auth none, from the file
      await using second = await Probe.dial(target);
      await second.hello();
      await second.fails("login", { nick: "solo" }, "nick_in_use");
    } finally {
      assert.equal((await server.stop()).code, 0);
    }
    const stat = await Deno.stat(`${dir}/data/chat.db`);
    assert.ok(stat.isFile, "the data folder came from the file");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("serve --config: a bad file is one clear line and exit 1", async () => {
  const dir = await Deno.makeTempDir({ prefix: "chat-config-" });
  try {
    const config = `${dir}/chat.json`;
    for (
      const [text, expected] of [
        ["{nope", /not valid JSON/],
        ['{"colour": "blue"}', /unknown setting "colour"/],
        ['{"port": "x"}', /"port": Expected a whole number/],
        ['{"auth": "maybe"}', /"auth" must be one of password, none/],
      ] as const
    ) {
      await Deno.writeTextFile(config, text);
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", ...SERVE_PERMISSIONS, MAIN, "serve", "--config", config, "--port", "0"],
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).output();
      const stderr = new TextDecoder().decode(out.stderr).trim();
      assert.equal(out.code, 1, stderr);
      assert.match(stderr, expected);
      assert.equal(stderr.split("\n").length, 1, stderr);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "serve: SIGHUP re-reads --config and reopens the log file; --metrics-port serves",
  ignore: Deno.build.os === "windows",
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "chat-hup-" });
    try {
      const config = `${dir}/chat.json`;
      const logFile = `${dir}/chat.log`;
      await Deno.writeTextFile(config, JSON.stringify({ "idle-timeout": 0, "metrics-port": 0 }));
      const server = await serve([
        "--config",
        config,
        "--port",
        "0",
        "--host",
        "127.0.0.1",
        "--data",
        `${dir}/data`,
        "--log-file",
        logFile,
      ]);
      try {
        // Printed after the listening line, possibly in a later read of the pipe.
        let metricsLine: string | undefined;
        for (let i = 0; i < 100 && metricsLine === undefined; i++) {
          metricsLine = server.lines.find((l) => l.includes("metrics at:"));
          if (metricsLine === undefined) await delay(20);
        }
        assert.ok(metricsLine, server.lines.join("\n"));
        const url = /http:\/\/\S+/.exec(metricsLine)![0];
        const metrics = await (await fetch(url)).text();
        assert.match(metrics, /chat_connections 0/);

        // Rotate the log, change the file, hang up.
        await Deno.rename(logFile, `${logFile}.1`);
        await Deno.writeTextFile(config, JSON.stringify({ "idle-timeout": 1, "metrics-port": 0 }));
        server.child.kill("SIGHUP");
        let reopened = "";
        for (let i = 0; i < 50 && !/reloaded/.test(reopened); i++) {
          await delay(100);
          reopened = await Deno.readTextFile(logFile).catch(() => "");
        }
        assert.match(reopened, /SIGHUP: reloaded .*idleTimeoutSec 0 -> 1/);
        // The new idle timeout is live: a silent session is logged out.
        const target = { addr: { port: server.port } } as Parameters<typeof Probe.dial>[0];
        await using idle = await Probe.login(target, "idler");
        const notice = await idle.expect({ type: "notice", code: "idle_timeout" }, 4000);
        assert.match(String(notice.text), /1 s/);
      } finally {
        assert.equal((await server.stop()).code, 0);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

/** The pids of the children of `pid`. */
async function childrenOf(pid: number): Promise<number[]> {
  const out = await new Deno.Command("ps", { args: ["-o", "pid=", "--ppid", String(pid)] })
    .output();
  return new TextDecoder().decode(out.stdout).split(/\s+/).filter((w) => w !== "").map(Number);
}

Deno.test({
  name: "serve in a terminal: closing the terminal drains and exits 0; SIGUSR1 reloads",
  ignore: !TMUX,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "chat-tty-serve-" });
    const tmux = new Tmux();
    let serverPid = 0;
    try {
      const config = `${dir}/chat.json`;
      const logFile = `${dir}/chat.log`;
      await Deno.writeTextFile(config, JSON.stringify({ "idle-timeout": 0 }));
      const serve = [
        Deno.execPath(),
        "run",
        ...SERVE_PERMISSIONS,
        MAIN,
        "serve",
        "--config",
        config,
        "--port",
        "0",
        "--host",
        "127.0.0.1",
        "--data",
        `${dir}/data`,
        "--log-file",
        logFile,
      ].map(q).join(" ");
      // As a user would: an interactive shell in a terminal runs the server in the
      // foreground. A wrapper keeps the exit status: it notes its pid, and a hang-up
      // does not end it (its trap runs once the server has exited).
      const wrapped = `echo $$ > ${q(`${dir}/sh.pid`)}; trap : HUP; ${serve}; ` +
        `echo $? > ${q(`${dir}/code`)}`;
      await tmux.start("serve", "env -u NO_COLOR bash --norc --noprofile -i", {
        columns: 200,
        rows: 20,
      });
      await tmux.type("serve", `sh -c ${q(wrapped)}`);
      await tmux.press("serve", "Enter");
      const rows = await tmux.waitScreen(
        "serve",
        (r) => r.some((l) => /listening on 127\.0\.0\.1:\d+/.test(l)),
        "the listening line",
      );
      const port = Number(/listening on 127\.0\.0\.1:(\d+)/.exec(rows.join("\n"))![1]);
      const shPid = Number((await Deno.readTextFile(`${dir}/sh.pid`)).trim());
      [serverPid = 0] = await childrenOf(shPid);
      assert.ok(serverPid > 0, "the server runs under the wrapper");

      // SIGUSR1 reloads a server in a terminal (SIGHUP would stop it).
      await Deno.writeTextFile(config, JSON.stringify({ "idle-timeout": 7 }));
      Deno.kill(serverPid, "SIGUSR1");
      await waitFile(logFile, (t) => /SIGUSR1: reloaded .*idleTimeoutSec 0 -> 7/.test(t), "reload");

      // A session is open when the terminal closes: it is told, the server drains and ends.
      const target = { addr: { port } } as Parameters<typeof Probe.dial>[0];
      await using probe = await Probe.login(target, "watcher");
      await tmux.run("kill-session", "-t", "t");
      await probe.expect({ type: "notice", code: "shutdown" });
      const code = await waitFile(`${dir}/code`, (t) => t.trim() !== "", "the server's exit");
      assert.equal(code.trim(), "0");
      serverPid = 0;
      const log = await Deno.readTextFile(logFile);
      assert.match(log, /terminal closed \(SIGHUP\): shutting down/);
      assert.match(log, /stopped/);
    } finally {
      // A server that outlived its terminal (the bug) must not outlive the test.
      if (serverPid > 0) {
        try {
          Deno.kill(serverPid, "SIGKILL");
        } catch { /* gone */ }
      }
      await tmux.kill();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
