/**
 * End-to-end tests of `chat connect` as a real process against an in-process server:
 * scripted `--json` clients exchanging room messages and direct messages, offline
 * delivery and receipts, `--follow`, human output, the config file, TLS, and the exit codes.
 */

import assert from "node:assert/strict";
import type { ChatServer } from "../server/server.ts";
import { connectClient, testServer } from "./helpers/harness.ts";
import { DEFAULT_SERVER_CONFIG } from "../server/config.ts";
import { MAX_TEXT_LENGTH } from "../protocol/names.ts";
import { cert, key } from "./helpers/tls.ts";
import { certificateFingerprint } from "../cli/serve.ts";
import {
  ConnectProcess as Connect,
  type ConnectProcessOptions,
  PASSWORD,
} from "./helpers/connect_process.ts";

/** `chat connect` against `server`, with `script` as its stdin. */
class ConnectProcess extends Connect {
  constructor(
    server: ChatServer,
    args: string[],
    script: string,
    options: ConnectProcessOptions = {},
  ) {
    super(server.addr.port, args, script, options);
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

Deno.test("other messengers' habits: did you mean, /me, /send NICK TEXT, /file", async () => {
  await withServer(async (server) => {
    const bob = new ConnectProcess(server, ["--nick", "bob", "--json", "--follow"], "/who\n");
    await bob.waitFor((l) => l.type === "reply" && l.request === "who", "bob in the lobby");
    const alice = new ConnectProcess(
      server,
      ["--nick", "alice"],
      "/jion rust\n/me waves\n/send bob hi there\n/file bob no-such-file.pdf\n",
    );
    assert.equal(await alice.finish(), 1);
    assert.match(alice.stderr, /\/jion rust: unknown command \/jion: did you mean \/join\?/);
    assert.match(alice.stdout, /^\d\d:\d\d \[lobby\] \* alice waves$/m);
    assert.match(
      alice.stderr,
      /no such file: .*hi there \(to send it as a message: \/msg bob hi there\)/,
    );
    assert.match(alice.stderr, /\/file bob no-such-file\.pdf: no such file/);
    const action = await bob.waitFor((l) => l.type === "msg", "the action at bob");
    assert.equal(action.text, "/me waves");
    bob.child.kill("SIGTERM");
    assert.equal(await bob.finish(), 0, bob.stderr);
  });
});

Deno.test("/accept 9 and /accept #999 say what is meant: did you mean #9, no such file", async () => {
  await withServer(async (server) => {
    const alice = new ConnectProcess(
      server,
      ["--nick", "alice"],
      "/accept 9\n/accept #999\n/decline #998\n",
    );
    assert.equal(await alice.finish(), 1);
    assert.equal(alice.stdout, "", "no failed transfer 'from ?'");
    const errors = alice.stderr.split("\n").filter((l) => l !== "").map((l) =>
      l.replace(/^\d\d:\d\d /, "")
    );
    assert.deepEqual(errors, [
      "! /accept 9: 9 has not asked you for a private session; did you mean the file: /accept #9?",
      "! /accept #999: no file #999 is offered to you (/files lists them)",
      "! /decline #998: no file #998 is offered to you (/files lists them)",
      "chat connect: 3 of 3 commands failed",
    ]);
  });
});

Deno.test("an idle logout is told once, as a normal event; exit 0", async () => {
  const server = await testServer({ idleTimeoutSec: 1 });
  try {
    const sleepy = new ConnectProcess(server, ["--nick", "sleepy", "--follow"], "");
    assert.equal(await sleepy.finish(), 0, sleepy.stderr);
    const told = (sleepy.stdout + sleepy.stderr).split("\n").filter((l) =>
      l.includes("without a command")
    );
    assert.equal(told.length, 1, sleepy.stdout + sleepy.stderr);
    assert.match(
      told[0],
      /^\d\d:\d\d \* connection closed: logged out after 1 s without a command$/,
    );
  } finally {
    await server.shutdown();
  }
});

Deno.test("a refused long line is echoed short; an offer names the file as it will be saved", async () => {
  await withServer(async (server) => {
    const dir = await Deno.makeTempDir();
    try {
      const hostile = `${dir}/\x1b[31mevil\x1b[0m.txt`;
      await Deno.writeTextFile(hostile, "boo");
      const bob = new ConnectProcess(server, ["--nick", "bob", "--follow"], "/who\n");
      await bob.waitForLine(/online:/, "bob's /who");
      const alice = new ConnectProcess(
        server,
        ["--nick", "alice"],
        // Long plain text is split, not refused (see the splitting test): a long topic is.
        `/topic ${"y".repeat(5000)}\n/send bob ${hostile}\n`,
      );
      assert.equal(await alice.finish(), 1);
      assert.match(alice.stderr, /^\d\d:\d\d ! .{1,60}…: .*topic.*$/m, alice.stderr);
      assert.ok(alice.stderr.length < 400, alice.stderr);
      const offer = await bob.waitForLine(/offers/, "the offer at bob");
      assert.match(offer, /\* alice offers evil\.txt \(#\d+\) \(its name made safe\), 3 B/);
      bob.child.kill("SIGTERM");
      await bob.finish();
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});

Deno.test("a contact coming online is one line, not two (contact and presence)", async () => {
  await withServer(async (server) => {
    const carol = new ConnectProcess(server, ["--nick", "carol", "--json"], "");
    assert.equal(await carol.finish(), 0, carol.stderr);
    const bob = new ConnectProcess(server, ["--nick", "bob", "--follow"], "/contact add carol\n");
    await bob.waitForLine(/added contact carol/, "bob's contact");
    const back = new ConnectProcess(server, ["--nick", "carol", "--json"], "/who\n");
    assert.equal(await back.finish(), 0, back.stderr);
    await bob.waitForLine(/carol is offline/, "carol gone again");
    bob.child.kill("SIGTERM");
    await bob.finish();
    const told = bob.stdout.split("\n").filter((l) => /carol is (online|offline)/.test(l));
    assert.equal(told.length, 2, bob.stdout);
    assert.match(told[0], /online$/);
    assert.match(told[1], /offline$/);
  });
});

Deno.test("a throttled login says when to try again once", async () => {
  const server = await testServer({ loginFailuresPerMinutePerIp: 1 });
  try {
    const bob = new ConnectProcess(server, ["--nick", "bob"], "");
    assert.equal(await bob.finish(), 0, bob.stderr);
    const wrong = { env: { CHAT_PASSWORD: "not-the-password" } };
    const first = new ConnectProcess(server, ["--nick", "bob", "--retries", "0"], "", wrong);
    assert.equal(await first.finish(), 1);
    const second = new ConnectProcess(server, ["--nick", "bob", "--retries", "0"], "", wrong);
    assert.equal(await second.finish(), 1);
    assert.match(
      second.stderr,
      /^chat connect: too many failed logins from .*; try again in \d+ s\n$/,
    );
  } finally {
    await server.shutdown();
  }
});

Deno.test("a wrong password is one line on stderr and exit 1; no retries", async () => {
  await withServer(async (server) => {
    const first = new ConnectProcess(server, ["--nick", "dave"], "");
    assert.equal(await first.finish(), 0, first.stderr);
    const wrong = new ConnectProcess(server, ["--nick", "dave"], "hello\n", {
      password: "not-the-password",
    });
    assert.equal(await wrong.finish(), 1);
    assert.equal(wrong.stdout, "");
    assert.equal(
      wrong.stderr,
      `chat connect: wrong password for dave at 127.0.0.1:${server.addr.port}\n`,
    );
  });
});

Deno.test("an unreachable server: the reason, retries with backoff, then exit 1", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close(); // nobody listens there now
  const lone = new Connect(port, ["--nick", "lone", "--retries", "1"], "hi\n");
  assert.equal(await lone.finish(), 1);
  assert.equal(lone.stdout, "");
  const lines = lone.stderr.trimEnd().split("\n");
  assert.equal(lines.length, 2, lone.stderr);
  assert.match(
    lines[0]!,
    new RegExp(
      `^chat connect: cannot connect to 127\\.0\\.0\\.1:${port}: .+; retrying in \\d\\.\\d s$`,
    ),
  );
  assert.match(lines[1]!, new RegExp(`^chat connect: cannot connect to 127\\.0\\.0\\.1:${port}: `));
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
        { password: "ignored-because-the-file-wins" },
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

Deno.test("--follow waits out a server shutdown, then gives up after --retries: exit 1", async () => {
  const server = await testServer();
  try {
    const frank = new ConnectProcess(
      server,
      ["--nick", "frank", "--json", "--follow", "--retries", "1"],
      "/who\n",
    );
    await frank.waitFor((l) => l.type === "reply", "frank's /who reply");
    await server.shutdown();
    assert.equal(await frank.finish(), 1, frank.stderr);
    const types = frank.json.map((l) => l.type);
    assert.ok(frank.json.some((l) => l.type === "notice" && l.code === "shutdown"), frank.stdout);
    assert.deepEqual(types.slice(-3), ["disconnected", "reconnecting", "closed"]);
    assert.equal(frank.json.at(-1)!.code, "disconnected");
    assert.match(
      frank.stderr,
      /^chat connect: the connection ended: gave up reconnecting after 1 attempt: .+\n$/,
    );
  } finally {
    await server.shutdown();
  }
});

Deno.test("a direct message to someone offline is delivered at their login, with receipts", async () => {
  await withServer(async (server) => {
    const ivy = new ConnectProcess(server, ["--nick", "ivy", "--json"], "");
    assert.equal(await ivy.finish(), 0, ivy.stderr); // ivy has an account, and is gone
    const jack = new ConnectProcess(
      server,
      ["--nick", "jack", "--json", "--follow"],
      "/msg ivy while you were out\n",
    );
    const sent = await jack.waitFor((l) => l.type === "reply" && l.request === "dm", "the dm");
    assert.equal(sent.delivered, false);

    const back = new ConnectProcess(server, ["--nick", "ivy", "--json"], "");
    assert.equal(await back.finish(), 0, back.stderr);
    const got = back.json.filter((l) => l.type === "dm");
    assert.deepEqual(got, [{
      type: "dm",
      id: sent.id,
      ts: sent.ts,
      from: "jack",
      to: "ivy",
      text: "while you were out",
    }]);
    const receipt = await jack.waitFor((l) => l.type === "receipt", "the delivery receipt");
    assert.deepEqual(Object.keys(receipt).sort(), ["by", "id", "status", "ts", "type"]);
    assert.equal(receipt.id, sent.id);
    assert.equal(receipt.status, "delivered");
    assert.equal(receipt.by, "ivy");
    jack.child.kill("SIGTERM");
    assert.equal(await jack.finish(), 0, jack.stderr);
  });
});

Deno.test("receipts for people quote the message's start, not an id they never saw", async () => {
  await withServer(async (server) => {
    const ivy = new ConnectProcess(server, ["--nick", "ivy", "--json"], "");
    assert.equal(await ivy.finish(), 0, ivy.stderr);
    const jack = new ConnectProcess(
      server,
      ["--nick", "jack", "--follow"],
      "/msg ivy while you were out the parcel came\n",
    );
    await jack.waitForLine(/-> \*ivy\* while you were out/, "the sent line");
    const back = new ConnectProcess(server, ["--nick", "ivy", "--json"], "");
    assert.equal(await back.finish(), 0, back.stderr);
    const line = await jack.waitForLine(/ivy got/, "the delivery receipt");
    assert.match(line, /^\d\d:\d\d ✓ ivy got "while you were out the…"$/);
    assert.doesNotMatch(jack.stdout, /message \d+/);
    jack.child.kill("SIGTERM");
    assert.equal(await jack.finish(), 0, jack.stderr);
  });
});

Deno.test("defaults come from the config file; CHAT_* variables and flags win over it", async () => {
  await withServer(async (server) => {
    const home = await Deno.makeTempDir();
    try {
      await Deno.mkdir(`${home}/chat`);
      await Deno.writeTextFile(
        `${home}/chat/config.json`,
        JSON.stringify({
          host: "127.0.0.1",
          port: server.addr.port,
          nick: "kim",
          room: "garden",
          "password-file": "secret", // relative to the config folder
        }),
      );
      await Deno.writeTextFile(`${home}/chat/secret`, "kims-password\n");
      // No --port flag: the port comes from the file too. No CHAT_PASSWORD: the file's
      // password-file gives it. The task's own permissions are enough to read it all.
      const run = (args: string[], env: Record<string, string> = {}) =>
        new Connect(null, ["--json", ...args], "/who\n", {
          configHome: home,
          password: "",
          env,
          taskPermissions: true,
        });
      const fromFile = run([]);
      assert.equal(await fromFile.finish(), 0, fromFile.stderr);
      assert.equal(fromFile.json[0]!.request, "join");
      assert.equal(fromFile.json[0]!.room, "garden");
      assert.deepEqual(fromFile.json[1]!.users, ["kim"]);
      const fromEnv = run([], { CHAT_NICK: "lee" });
      assert.equal(await fromEnv.finish(), 0, fromEnv.stderr);
      assert.deepEqual(fromEnv.json[1]!.users, ["lee"], "CHAT_NICK wins over the file");
      const fromFlag = run(["--nick", "max", "--room", "pond"], { CHAT_NICK: "lee" });
      assert.equal(await fromFlag.finish(), 0, fromFlag.stderr);
      assert.equal(fromFlag.json[0]!.room, "pond");
      assert.deepEqual(fromFlag.json[1]!.users, ["max"], "--nick wins over CHAT_NICK");
      // CHAT_PASSWORD wins over the file's password-file: kim's password is the file's.
      const envPassword = run([], { CHAT_PASSWORD: "not-kims-password" });
      assert.equal(await envPassword.finish(), 1);
      assert.match(envPassword.stderr, /^chat connect: wrong password for kim at 127\.0\.0\.1:/);

      await Deno.writeTextFile(`${home}/chat/config.json`, '{"nick": "kim", "colour": false}');
      const broken = new Connect(server.addr.port, [], "", { configHome: home });
      assert.equal(await broken.finish(), 1);
      assert.equal(
        broken.stderr,
        `chat connect: config ${home}/chat/config.json: unknown setting "colour" (settings: ` +
          "host, port, nick, room, tls, ca, password-file, no-color, retries, no-randomize)\n",
      );
    } finally {
      await Deno.remove(home, { recursive: true });
    }
  });
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

Deno.test("a TLS mismatch says what to change: add --tls, or drop --tls", async () => {
  const tlsServer = await testServer({ tls: { cert, key } });
  const plainServer = await testServer();
  try {
    const fingerprint = (await certificateFingerprint(cert))!;
    const plain = new ConnectProcess(tlsServer, ["--nick", "ivy"], "hi\n");
    assert.equal(await plain.finish(), 1);
    assert.match(plain.stderr, /^chat connect: 127\.0\.0\.1:\d+ speaks TLS .*: add --tls\n$/);
    for (
      const [flags, drop] of [
        [["--tls"], "--tls"],
        [["--trust-fingerprint", fingerprint], "--trust-fingerprint"],
      ]
    ) {
      const tls = new ConnectProcess(plainServer, ["--nick", "ivy", ...flags], "hi\n");
      assert.equal(await tls.finish(), 1, tls.stderr);
      assert.match(
        tls.stderr,
        new RegExp(`^chat connect: 127\\.0\\.0\\.1:\\d+ does not speak TLS .*: drop ${drop}\\n$`),
      );
    }
  } finally {
    await tlsServer.shutdown();
    await plainServer.shutdown();
  }
});

Deno.test("25 piped lines against the default rate limit: all sent, in order, exit 0", async () => {
  // The server's own defaults (5 messages a second, bursts of 10), not the tests' none.
  const server = await testServer({
    rateMessagesPerSec: DEFAULT_SERVER_CONFIG.rateMessagesPerSec,
    rateMessagesBurst: DEFAULT_SERVER_CONFIG.rateMessagesBurst,
    rateRequestsPerSec: DEFAULT_SERVER_CONFIG.rateRequestsPerSec,
    rateRequestsBurst: DEFAULT_SERVER_CONFIG.rateRequestsBurst,
    rateBytesPerSec: DEFAULT_SERVER_CONFIG.rateBytesPerSec,
    rateBytesBurst: DEFAULT_SERVER_CONFIG.rateBytesBurst,
  });
  try {
    const lines = Array.from({ length: 25 }, (_, i) => `line ${i + 1}`);
    const bot = new ConnectProcess(server, ["--nick", "bot"], lines.join("\n") + "\n");
    assert.equal(await bot.finish(), 0, bot.stderr);
    assert.equal(bot.stderr, "");
    const shown = bot.stdout.split("\n").filter((l) => l.includes("<bot>"));
    assert.deepEqual(shown.map((l) => l.replace(/^.*<bot> /, "")), lines, bot.stdout);
    const stored = await server.hub.store.history({ room: "lobby", limit: 50 });
    assert.deepEqual(stored.map((m) => m.text), lines, "stored once each, in order");
  } finally {
    await server.shutdown();
  }
});

Deno.test("relative paths resolve against INIT_CWD, the folder deno task was run in", async () => {
  await withServer(async (server) => {
    const folder = await Deno.makeTempDir({ prefix: "chat_init_cwd_" });
    try {
      await Deno.writeTextFile(`${folder}/pw.txt`, `${PASSWORD}\n`);
      await Deno.writeTextFile(`${folder}/notes.txt`, "some notes\n");
      const bob = await connectClient(server, "bob");
      await bob.close();
      // The process runs in the repository (as under deno task), with the task's permissions.
      const alice = new ConnectProcess(
        server,
        ["--nick", "alice", "--password-file", "pw.txt", "--json"],
        "/send bob notes.txt\n",
        { taskPermissions: true, env: { INIT_CWD: folder }, password: "" },
      );
      assert.equal(await alice.finish(), 0, alice.stderr);
      assert.ok(
        alice.json.some((l) => l.type === "file_sent" && l.name === "notes.txt"),
        alice.stdout,
      );
    } finally {
      await Deno.remove(folder, { recursive: true });
    }
  });
});

Deno.test("a line over the text limit is sent as several messages, split between words, in order", async () => {
  await withServer(async (server) => {
    const bob = await connectClient(server, "bob"); // an account to write to
    await bob.close();
    const words = Array.from({ length: 2000 }, (_, i) => `w${i}`);
    const long = words.join(" ");
    assert.ok(long.length > 2 * MAX_TEXT_LENGTH, `${long.length} characters`);
    const alice = new ConnectProcess(
      server,
      ["--nick", "alice", "--json"],
      `${long}\nafter\n/msg bob ${long}\n`,
    );
    assert.equal(await alice.finish(), 0, alice.stderr);
    assert.equal(alice.stderr, "");
    const replies = alice.json.filter((l) => l.type === "reply");
    assert.deepEqual(replies.map((l) => l.request), [
      "say",
      "say",
      "say",
      "say",
      "dm",
      "dm",
      "dm",
    ]);
    const room = await server.hub.store.history({ room: "lobby", limit: 50 });
    const dms = await server.hub.store.history({ between: ["alice", "bob"], limit: 50 });
    for (const stored of [room.slice(0, -1), dms]) {
      assert.equal(stored.length, 3, JSON.stringify(stored.map((m) => m.text.length)));
      for (const message of stored) {
        assert.ok(message.text.length <= MAX_TEXT_LENGTH, `${message.text.length}`);
      }
      // Broken only between words: the words, whole and in order, and nothing else.
      assert.deepEqual(stored.map((m) => m.text).join(" ").split(" "), words);
    }
    assert.equal(room.at(-1)!.text, "after", "the next line after every part");
  });
});

Deno.test("--log-dir appends each message shown, once, to its room's or conversation's file", async () => {
  await withServer(async (server) => {
    const dir = await Deno.makeTempDir({ prefix: "chat_local_log_" });
    try {
      const logs = `${dir}/logs`; // created by the client
      const bob = await connectClient(server, "bob");
      try {
        const alice = new ConnectProcess(
          server,
          ["--nick", "alice", "--json", "--follow", "--log-dir", logs],
          "hello room\n/msg Bob hi bob\n",
          { taskPermissions: true },
        );
        await alice.waitFor((l) => l.request === "dm", "alice's direct message stored");
        await bob.say("lobby", "hi alice");
        await bob.dm("alice", "two\nlines \x1b[2J");
        await alice.waitFor((l) => l.type === "dm" && l.from === "bob", "bob's direct message");
        // A replay of history shows old messages again: they are not logged twice.
        alice.child.kill("SIGTERM");
        assert.equal(await alice.finish(), 0, alice.stderr);
        await bob.dm("alice", "while away"); // held, delivered at the next login
        const again = new ConnectProcess(
          server,
          ["--nick", "alice", "--json", "--log-dir", logs],
          "/history\n",
          { taskPermissions: true },
        );
        assert.equal(await again.finish(), 0, again.stderr);
        assert.ok(again.json.some((l) => l.request === "history"), again.stdout);
      } finally {
        await bob.close();
      }
      const read = async (name: string) =>
        (await Deno.readTextFile(`${logs}/${name}`)).split("\n").filter((l) => l !== "").map(
          (l) => {
            assert.match(l, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d </, l);
            return l.slice(20);
          },
        );
      assert.deepEqual(await read("#lobby.log"), ["<alice> hello room", "<bob> hi alice"]);
      assert.deepEqual(await read("@bob.log"), [
        "<alice> hi bob",
        "<bob> two␊lines ",
        "<bob> while away",
      ]);
      assert.deepEqual((await Array.fromAsync(Deno.readDir(logs))).map((e) => e.name).sort(), [
        "#lobby.log",
        "@bob.log",
      ]);
      if (Deno.build.os !== "windows") {
        assert.equal((await Deno.stat(logs)).mode! & 0o777, 0o700);
        assert.equal((await Deno.stat(`${logs}/@bob.log`)).mode! & 0o777, 0o600);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});
