/**
 * File transfers through the real command lines: `chat connect` scripts (`/send NICK PATH`,
 * `--accept-files DIR` picking up a file held while offline, with the `connect` task's
 * permissions), and `chat peer --send PATH` to `chat peer --listen --accept-files DIR`.
 */

import assert from "node:assert/strict";
import { spawnChat } from "./helpers/process.ts";
import { join } from "node:path";
import { testServer } from "./helpers/harness.ts";
import { ConnectProcess } from "./helpers/connect_process.ts";
import { listDir, sha256Of, writeRandomFile } from "./helpers/files.ts";

Deno.test("chat connect: /send to an offline nick; --accept-files receives it at login", async () => {
  const tmp = await Deno.makeTempDir();
  const server = await testServer();
  try {
    const path = join(tmp, "notes.bin");
    const sha = await writeRandomFile(path, 1024 * 1024 + 3, 21);
    const register = new ConnectProcess(server.addr.port, ["--nick", "bob", "--json"], "");
    assert.equal(await register.finish(), 0, register.stderr);

    const alice = new ConnectProcess(
      server.addr.port,
      ["--nick", "alice", "--json"],
      `/send bob ${path}\n/send bob ${join(tmp, "missing.bin")}\n`,
    );
    assert.equal(await alice.finish(), 1, "the second /send fails the script");
    const sent = alice.json.find((l) => l.type === "file_sent");
    assert.equal(sent?.online, false);
    const refused = alice.json.find((l) => l.type === "error");
    assert.equal(refused?.code, "not_a_file");
    assert.match(String(refused?.message), /no such file/);

    const dl = join(tmp, "downloads");
    const bob = new ConnectProcess(
      server.addr.port,
      ["--nick", "bob", "--json", "--accept-files", dl],
      "",
      { taskPermissions: true },
    );
    assert.equal(await bob.finish(), 0, bob.stderr);
    const offered = bob.json.find((l) => l.type === "file_offered");
    assert.equal(offered?.auto, true);
    assert.equal(offered?.from, "alice");
    const saved = bob.json.find((l) => l.type === "file_saved");
    assert.equal(saved?.path, join(dl, "notes.bin"));
    assert.equal(await sha256Of(join(dl, "notes.bin")), sha);
    assert.deepEqual(await listDir(dl), ["notes.bin"]);
  } finally {
    await server.shutdown();
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("chat peer: --send and /send to a listener with --accept-files", async () => {
  const tmp = await Deno.makeTempDir();
  const spawn = (args: string[]) => spawnChat(["peer", ...args]);
  const listener = spawn([
    "--listen",
    "--host",
    "127.0.0.1",
    "--nick",
    "bob",
    "--json",
    "--accept-files",
    join(tmp, "in"),
  ]);
  let sender: Deno.ChildProcess | null = null;
  try {
    const path = join(tmp, "photo.raw");
    const sha = await writeRandomFile(path, 2 * 1024 * 1024 + 9, 22);
    const second = join(tmp, "notes.txt");
    await Deno.writeTextFile(second, "typed /send");
    const lines = listener.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let out = "";
    while (!out.includes("\n")) {
      const { value, done } = await lines.read();
      if (done) break;
      out += value;
    }
    const { port } = JSON.parse(out.slice(0, out.indexOf("\n")));
    sender = spawn(["--connect", `127.0.0.1:${port}`, "--nick", "alice", "--json", "--send", path]);
    const writer = sender.stdin.getWriter();
    await writer.write(new TextEncoder().encode(`/send ${second}\n`));
    await writer.close();
    const sent = await sender.output();
    const sentText = new TextDecoder().decode(sent.stdout);
    assert.equal(sent.code, 0, new TextDecoder().decode(sent.stderr));
    assert.equal(sentText.match(/"answer":"completed"/g)?.length, 2, sentText);
    // The listener ends when alice leaves, after saving the file.
    while (true) {
      const { value, done } = await lines.read();
      if (done) break;
      out += value;
    }
    await listener.stdin.close();
    const status = await listener.status;
    assert.equal(status.code, 0);
    const events = out.trim().split("\n").map((l) => JSON.parse(l));
    const saved = events.filter((e) => e.type === "file_saved").map((e) => e.path).sort();
    assert.deepEqual(saved, [join(tmp, "in", "notes.txt"), join(tmp, "in", "photo.raw")]);
    // Peer protocol version 5 on computes no SHA-256 (the session authenticates every byte):
    // none is claimed.
    assert.ok(events.every((e) => e.type !== "file_saved" || !("sha256" in e)), out);
    assert.equal(await sha256Of(join(tmp, "in", "photo.raw")), sha);
    assert.equal(await Deno.readTextFile(join(tmp, "in", "notes.txt")), "typed /send");
    assert.ok(events.some((e) => e.type === "left"));
    await listener.stderr.cancel();
  } finally {
    try {
      listener.kill("SIGKILL");
    } catch {
      // exited
    }
    await listener.status;
    await Deno.remove(tmp, { recursive: true });
  }
});
