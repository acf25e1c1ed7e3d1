import assert from "node:assert/strict";
import { KnownServers, KnownServersError, parseKnownServers, serverKey } from "./known_servers.ts";

const A = Array.from({ length: 32 }, () => "AA").join(":");
const B = Array.from({ length: 32 }, () => "BB").join(":");

Deno.test("serverKey lowercases the host and brackets IPv6", () => {
  assert.equal(serverKey("Chat.Example.ORG", 44444), "chat.example.org:44444");
  assert.equal(serverKey("127.0.0.1", 1), "127.0.0.1:1");
  assert.equal(serverKey("FD00::5", 9), "[fd00::5]:9");
  assert.equal(serverKey("[::1]", 9), "[::1]:9");
});

Deno.test("parseKnownServers reads entries, skips comments, normalizes fingerprints", () => {
  const text = `# comment\n\nExample.org:44444 ${"aa".repeat(32)}\r\n[::1]:9  ${B}\n`;
  assert.deepEqual(parseKnownServers(text, "ks"), [
    { server: "example.org:44444", fingerprint: A, line: 3 },
    { server: "[::1]:9", fingerprint: B, line: 4 },
  ]);
});

Deno.test("parseKnownServers names the file and line of a bad entry", () => {
  const cases: [string, RegExp][] = [
    ["example.org 1234", /^ks line 1: expected "HOST:PORT SHA256-FINGERPRINT"$/],
    [`example.org:0 ${A}`, /line 1: expected/],
    [`example.org:70000 ${A}`, /line 1: expected/],
    [`example.org:1 ${A} extra`, /line 1: expected/],
    ["# x\nexample.org:1 AB:CD", /^ks line 2: "AB:CD" is not a SHA-256 fingerprint/],
    [`a:1 ${A}\nA:1 ${B}`, /^ks line 2: a:1 is already on line 1$/],
  ];
  for (const [text, message] of cases) {
    assert.throws(() => parseKnownServers(text, "ks"), (err: unknown) => {
      assert.ok(err instanceof KnownServersError, text);
      assert.equal(err.code, "bad_known_servers");
      assert.match(err.message, message);
      return true;
    });
  }
});

Deno.test("KnownServers: remember creates, keeps other lines, replaces in place", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const known = new KnownServers(`${dir}/sub/known_servers`);
    assert.deepEqual(await known.entries(), []);
    assert.equal(await known.lookup("a", 1), undefined);

    assert.deepEqual(await known.remember("a", 1, A.toLowerCase()), { changed: true });
    assert.deepEqual(await known.remember("B.example", 2, B), { changed: true });
    assert.deepEqual(await known.remember("a", 1, A), { changed: false });
    assert.deepEqual((await known.lookup("A", 1))?.fingerprint, A);

    const before = await Deno.readTextFile(known.path);
    await Deno.writeTextFile(known.path, before.replace("\n", "\n# mine\n"));
    assert.deepEqual(await known.remember("a", 1, B), { changed: true, replaced: A });
    const lines = (await Deno.readTextFile(known.path)).split("\n");
    assert.match(lines[0]!, /^# chat: /);
    assert.deepEqual(lines.slice(1), ["# mine", `a:1 ${B}`, `b.example:2 ${B}`, ""]);
    assert.deepEqual([...Deno.readDirSync(`${dir}/sub`)].map((e) => e.name), ["known_servers"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("KnownServers: an unusable file is a clear error", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/known_servers`, "garbage\n");
    const known = new KnownServers(`${dir}/known_servers`);
    await assert.rejects(known.lookup("a", 1), /known_servers line 1: expected/);
    await assert.rejects(known.remember("a", 1, A), KnownServersError);
    const folder = new KnownServers(dir);
    await assert.rejects(folder.lookup("a", 1), /cannot read/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
