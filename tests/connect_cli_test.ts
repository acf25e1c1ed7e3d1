/**
 * End-to-end tests of `chat connect` as a real process against an in-process server:
 * scripted `--json` clients exchanging room messages and direct messages, `--follow`,
 * human output, and the exit codes.
 */

import assert from "node:assert/strict";
import type { ChatServer } from "../server/server.ts";
import { testServer } from "./helpers/harness.ts";
import { cert, key } from "./helpers/tls.ts";
import { certificateFingerprint } from "../cli/serve.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const ROOT = new URL("../", import.meta.url);
const WAIT_MS = 20_000;
const PASSWORD = "password123";

type Json = Record<string, unknown>;

/** A running `chat connect` with its stdin script written and closed. */
class ConnectProcess {
  readonly child: Deno.ChildProcess;
  stdout = "";
  stderr = "";
  readonly #reading: Promise<void>;

  constructor(server: ChatServer, args: string[], script: string, password = PASSWORD) {
    this.child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", MAIN, "connect", "--port", String(server.addr.port), ...args],
      cwd: ROOT,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1", CHAT_PASSWORD: password },
    }).spawn();
    const writer = this.child.stdin.getWriter();
    writer.write(new TextEncoder().encode(script)).then(() => writer.close()).catch(() => {});
    const collect = async (stream: ReadableStream<Uint8Array>, add: (s: string) => void) => {
      for await (const chunk of stream.pipeThrough(new TextDecoderStream())) add(chunk);
    };
    this.#reading = Promise.all([
      collect(this.child.stdout, (s) => this.stdout += s),
      collect(this.child.stderr, (s) => this.stderr += s),
    ]).then(() => {});
  }

  /** The complete JSON lines printed so far. */
  get json(): Json[] {
    return this.stdout.split("\n").filter((line) => line.trim() !== "").map((line) => {
      try {
        return JSON.parse(line) as Json;
      } catch {
        throw new Error(`stdout line is not JSON: ${line}`);
      }
    });
  }

  /** Waits until a JSON line matches `predicate`. */
  async waitFor(predicate: (line: Json) => boolean, what: string): Promise<Json> {
    const deadline = Date.now() + WAIT_MS;
    while (Date.now() < deadline) {
      const complete = this.stdout.slice(0, this.stdout.lastIndexOf("\n") + 1);
      const found = complete.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l) as Json)
        .find(predicate);
      if (found !== undefined) return found;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    throw new Error(
      `timed out waiting for ${what}; stdout: ${this.stdout}; stderr: ${this.stderr}`,
    );
  }

  /** Waits for the exit; returns the code. */
  async finish(): Promise<number> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const status = await Promise.race([
      this.child.status,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          this.child.kill("SIGKILL");
          reject(new Error(`process did not exit; stdout: ${this.stdout}; stderr: ${this.stderr}`));
        }, WAIT_MS);
      }),
    ]).finally(() => clearTimeout(timer));
    await this.#reading;
    return status.code;
  }
}

async function withServer(fn: (server: ChatServer) => Promise<void>): Promise<void> {
  const server = await testServer();
  try {
    await fn(server);
  } finally {
    await server.shutdown();
  }
}

Deno.test({
  name: "two scripted --json clients exchange room messages and direct messages",
  async fn() {
    await withServer(async (server) => {
      // Bob follows: after his input he keeps printing what arrives.
      const bob = new ConnectProcess(server, ["--nick", "bob", "--json", "--follow"], "/who\n");
      await bob.waitFor((l) => l.type === "reply" && l.request === "who", "bob's /who reply");

      const alice = new ConnectProcess(
        server,
        ["--nick", "alice", "--json"],
        "hello room\n/msg bob hi bob\n/join rust\nin rust\n/who\n",
      );
      assert.equal(await alice.finish(), 0, alice.stderr);
      const out = alice.json;
      const replies = out.filter((l) => l.type === "reply");
      assert.deepEqual(replies.map((l) => l.request), ["say", "dm", "join", "say", "who"]);
      const [say, dm, , sayRust] = replies;
      assert.equal(say.room, "lobby");
      assert.equal(say.text, "hello room");
      assert.equal(say.from, "alice");
      assert.equal(typeof say.id, "number");
      assert.equal(typeof say.ts, "number");
      assert.equal(dm.to, "bob");
      assert.equal(dm.text, "hi bob");
      assert.equal(dm.delivered, true);
      assert.equal(sayRust.room, "rust");
      assert.ok((dm.id as number) > (say.id as number));
      assert.equal(alice.stderr, "");

      const got = await bob.waitFor(
        (l) => l.type === "dm" && l.text === "hi bob",
        "alice's direct message at bob",
      );
      assert.deepEqual(got, {
        type: "dm",
        id: dm.id,
        ts: dm.ts,
        from: "alice",
        to: "bob",
        text: "hi bob",
      });
      const roomMessage = bob.json.find((l) => l.type === "msg");
      assert.deepEqual(roomMessage, {
        type: "msg",
        id: say.id,
        ts: say.ts,
        from: "alice",
        room: "lobby",
        text: "hello room",
      });
      // Bob is not in rust: that message never reaches him.
      assert.equal(bob.json.filter((l) => l.type === "msg").length, 1);

      bob.child.kill("SIGTERM");
      assert.equal(await bob.finish(), 0, bob.stderr);
    });
  },
});

Deno.test("a refused command makes the run exit 1 with a reason; the rest still runs", async () => {
  await withServer(async (server) => {
    const carol = new ConnectProcess(
      server,
      ["--nick", "carol", "--json"],
      "/msg nobody hello\n/frobnicate\nstill sent\n",
    );
    assert.equal(await carol.finish(), 1);
    const out = carol.json;
    assert.deepEqual(out.map((l) => l.type === "error" ? l.code : l.request ?? l.type), [
      "unknown_user",
      "unknown_command",
      "say",
      "closed",
    ]);
    assert.equal(out[0].command, "/msg nobody hello");
    assert.match(carol.stderr, /^chat connect: 2 of 3 commands failed\n$/);
  });
});

Deno.test("a wrong password is one line on stderr and exit 1; no retries", async () => {
  await withServer(async (server) => {
    const first = new ConnectProcess(server, ["--nick", "dave"], "");
    assert.equal(await first.finish(), 0, first.stderr);
    const wrong = new ConnectProcess(server, ["--nick", "dave"], "hello\n", "not-the-password");
    assert.equal(await wrong.finish(), 1);
    assert.equal(wrong.stdout, "");
    assert.equal(
      wrong.stderr,
      `chat connect: wrong password for dave at 127.0.0.1:${server.addr.port}\n`,
    );
  });
});

Deno.test("the password can come from --password-file; human output is HH:MM lines", async () => {
  await withServer(async (server) => {
    const dir = await Deno.makeTempDir();
    try {
      const file = `${dir}/password`;
      await Deno.writeTextFile(file, `${PASSWORD}\n`);
      const erin = new ConnectProcess(
        server,
        ["--nick", "erin", "--password-file", file, "--room", "books"],
        "hello \x1b[31mbooks\n/who\n",
        "ignored-because-the-file-wins",
      );
      assert.equal(await erin.finish(), 0, erin.stderr);
      const lines = erin.stdout.trimEnd().split("\n");
      assert.match(lines[0], /^\* joined books — members: erin$/);
      assert.match(lines[1], /^\d\d:\d\d \[books\] <erin> hello books$/);
      assert.equal(lines[2], "* online: erin");
      assert.equal(lines.length, 3);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});

Deno.test("--follow ends with exit 0 when the server shuts down", async () => {
  const server = await testServer();
  try {
    const frank = new ConnectProcess(server, ["--nick", "frank", "--json", "--follow"], "/who\n");
    await frank.waitFor((l) => l.type === "reply", "frank's /who reply");
    await server.shutdown();
    assert.equal(await frank.finish(), 0, frank.stderr);
    assert.ok(frank.json.some((l) => l.type === "notice" && l.code === "shutdown"), frank.stdout);
  } finally {
    await server.shutdown();
  }
});

Deno.test("--ca connects over TLS; an untrusted certificate fails at once with exit 1", async () => {
  const server = await testServer({ tls: { cert, key } });
  try {
    const caFile = new URL("./fixtures/ca.pem", import.meta.url).pathname;
    const trusted = new ConnectProcess(
      server,
      ["--nick", "gina", "--ca", caFile, "--json"],
      "hi\n",
    );
    assert.equal(await trusted.finish(), 0, trusted.stderr);
    assert.equal(trusted.json[0].text, "hi");
    const untrusted = new ConnectProcess(server, ["--nick", "gina", "--tls"], "hi\n");
    assert.equal(await untrusted.finish(), 1);
    assert.match(untrusted.stderr, /^chat connect: TLS with 127\.0\.0\.1:\d+ failed: .+\n$/);
  } finally {
    await server.shutdown();
  }
});

Deno.test("--trust-fingerprint trusts exactly the certificate chat serve prints", async () => {
  const server = await testServer({ tls: { cert, key } });
  try {
    const fingerprint = (await certificateFingerprint(cert))!;
    const pinned = new ConnectProcess(
      server,
      ["--nick", "hank", "--trust-fingerprint", fingerprint, "--json"],
      "hi\n",
    );
    assert.equal(await pinned.finish(), 0, pinned.stderr);
    assert.equal(pinned.json[0].text, "hi");
    const wrong = new ConnectProcess(
      server,
      ["--nick", "hank", "--trust-fingerprint", "AB".repeat(32)],
      "hi\n",
    );
    assert.equal(await wrong.finish(), 1);
    assert.match(wrong.stderr, /^chat connect: TLS with .* fingerprint .*not the trusted AB:AB/);
    const bad = new ConnectProcess(server, ["--nick", "hank", "--trust-fingerprint", "xyz"], "");
    assert.equal(await bad.finish(), 2);
    assert.match(bad.stderr, /--trust-fingerprint: "xyz" is not a SHA-256 fingerprint/);
  } finally {
    await server.shutdown();
  }
});
