/**
 * Trust on first use for `chat connect --tls`, as a real process with only the
 * permissions of the `connect` task: a self-signed server's certificate is refused
 * with its fingerprint, trusted with `--trust-fingerprint` and remembered, accepted
 * from the known-servers file from then on, and refused loudly once the server
 * presents another certificate on the same host and port.
 */

import assert from "node:assert/strict";
import { certificateFingerprint } from "../cli/serve.ts";
import { testServer } from "./helpers/harness.ts";
import { ConnectProcess } from "./helpers/connect_process.ts";
import { CuttableProxy } from "./helpers/cuttable_proxy.ts";
import { cert, key, selfSignedCert, selfSignedKey } from "./helpers/tls.ts";

Deno.test("a changed certificate is refused loudly; the remembered one is kept", async () => {
  const home = await Deno.makeTempDir();
  const knownFile = `${home}/chat/known_servers`;
  const first = (await certificateFingerprint(cert))!;
  const second = (await certificateFingerprint(selfSignedCert))!;
  assert.notEqual(first, second);
  // The clients see the server through a proxy whose port stays when the server is started
  // again below (its own port freed for a moment could be taken by another test meanwhile).
  let server = await testServer({ tls: { cert, key } });
  const proxy = new CuttableProxy(server.addr.port);
  const port = proxy.port;
  const where = `127.0.0.1:${port}`;
  const connect = (args: string[]) =>
    new ConnectProcess(port, ["--nick", "nia", "--tls", "--json", ...args], "hi\n", {
      configHome: home,
      taskPermissions: true,
    });
  try {
    // First contact from a script: refused, with the fingerprint to check and pass.
    const unknown = connect([]);
    assert.equal(await unknown.finish(), 1);
    assert.equal(unknown.stdout, "");
    assert.match(
      unknown.stderr,
      new RegExp(
        `^chat connect: TLS with ${where} failed: .*; the certificate has SHA-256 fingerprint ` +
          `${first}: if that is the server's .* --trust-fingerprint ${first} .*\\n$`,
      ),
    );
    await assert.rejects(Deno.stat(knownFile), Deno.errors.NotFound);

    // Trusted explicitly (any spelling of the fingerprint): remembered.
    const trusting = connect(["--trust-fingerprint", first.replaceAll(":", "").toLowerCase()]);
    assert.equal(await trusting.finish(), 0, trusting.stderr);
    assert.equal(trusting.json[0]!.text, "hi");
    assert.equal(
      trusting.stderr,
      `chat connect: the certificate of ${where} (SHA-256 ${first}) is trusted from now on; ` +
        `remembered in ${knownFile}\n`,
    );
    const remembered = await Deno.readTextFile(knownFile);
    assert.match(remembered, new RegExp(`^${where} ${first}$`, "m"));

    // From then on --tls alone connects, quietly.
    const known = connect([]);
    assert.equal(await known.finish(), 0, known.stderr);
    assert.equal(known.stderr, "");
    assert.equal(known.json[0]!.text, "hi");

    // Same host and port, another certificate: refused before anything is sent.
    await server.shutdown();
    server = await testServer({ tls: { cert: selfSignedCert, key: selfSignedKey } });
    proxy.retarget(server.addr.port);
    const changed = connect([]);
    assert.equal(await changed.finish(), 1);
    assert.equal(changed.stdout, "");
    const lines = changed.stderr.trimEnd().split("\n");
    assert.match(lines[1]!, new RegExp(`^@  WARNING: THE CERTIFICATE OF ${where} HAS CHANGED!$`));
    assert.ok(lines.includes(`    SHA-256 ${first}`), changed.stderr);
    assert.ok(lines.includes(`    SHA-256 ${second}`), changed.stderr);
    assert.equal(
      lines.at(-1),
      `chat connect: refusing to connect to ${where}: its certificate is not the one trusted ` +
        "before (see above)",
    );
    assert.equal(await Deno.readTextFile(knownFile), remembered, "the file is unchanged");
    assert.equal(await server.hub.store.getAccount("nia"), null, "no login reached it");

    // The operator confirms the new certificate: trusting it replaces the old one.
    const replacing = connect(["--trust-fingerprint", second]);
    assert.equal(await replacing.finish(), 0, replacing.stderr);
    assert.match(replacing.stderr, new RegExp(`trusted before \\(SHA-256 ${first}\\) is replaced`));
    assert.match(await Deno.readTextFile(knownFile), new RegExp(`^${where} ${second}$`, "m"));
    const afterwards = connect([]);
    assert.equal(await afterwards.finish(), 0, afterwards.stderr);
    assert.equal(afterwards.stderr, "");
  } finally {
    await proxy.close();
    await server.shutdown();
    await Deno.remove(home, { recursive: true });
  }
});
