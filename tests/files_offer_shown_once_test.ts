/**
 * An offer told again is shown once. The server tells a recipient an offer again when its
 * sender offers the same file again before its first byte (a server may have died between
 * recording the offer and telling it, as in a cluster fail-over): the clients know the
 * offer by its file id and show it once, an IRC client's notice and `chat connect --json`'s
 * `file_offer` line alike. A direct message from the sender after the second offer comes
 * after anything that offer told: once it is shown, a second showing would be too.
 */

import assert from "node:assert/strict";
import { ConnectProcess, WAIT_MS } from "./helpers/connect_process.ts";
import { bytesOf, sha256 } from "./helpers/file_requests.ts";
import { Probe, testServer, until } from "./helpers/harness.ts";
import { ircPort, IrcProbe, ircServer } from "./helpers/irc_probe.ts";

const content = bytesOf(5000, 3);

/** Alice offers the same file to bob twice, before its first byte; returns its id. */
async function offeredTwice(alice: Probe): Promise<number> {
  const fields = { to: "bob", name: "twice.bin", size: content.length, sha256: sha256(content) };
  const first = await alice.ok("file_offer", fields);
  const second = await alice.ok("file_offer", fields);
  assert.equal(second.file, first.file, "the second offer resumes the first");
  return first.file as number;
}

Deno.test("irc: an offer told again (the same file offered again before its first byte) is one notice", async () => {
  const server = await ircServer();
  try {
    await using bob = await IrcProbe.register(ircPort(server), "bob");
    await using alice = await Probe.login(server, "alice");
    await offeredTwice(alice);
    await alice.ok("dm", { to: "bob", text: "after the offers" });
    await bob.expect((m) => m.command === "PRIVMSG" && m.params[1] === "after the offers");
    const notices = bob.raw.filter((line) => line.includes("offers the file twice.bin"));
    assert.equal(notices.length, 1, bob.raw.join("\n"));
  } finally {
    await server.shutdown();
  }
});

Deno.test("chat connect --json: an offer told again (the same file offered again before its first byte) is one file_offer line", async () => {
  const server = await testServer();
  const bob = new ConnectProcess(server.addr.port, ["--nick", "bob", "--json", "--follow"], "");
  try {
    await until(() => server.hub.online("bob"), "bob logged in", WAIT_MS);
    await using alice = await Probe.login(server, "alice");
    const file = await offeredTwice(alice);
    await alice.ok("dm", { to: "bob", text: "after the offers" });
    await bob.waitFor((l) => l.type === "dm" && l.text === "after the offers", "alice's dm");
    const offers = bob.json.filter((l) => l.type === "file_offer");
    assert.deepEqual(offers.map((l) => l.file), [file], bob.stdout);
    assert.equal(bob.json.filter((l) => l.type === "file_offered").length, 1, bob.stdout);
  } finally {
    bob.child.kill("SIGTERM");
    await bob.finish().catch(() => {});
    await server.shutdown();
  }
});
