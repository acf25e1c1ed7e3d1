import assert from "node:assert/strict";
import {
  certificateFingerprint,
  connectHosts,
  launcher,
  listeningLines,
  serveConfig,
  type ServeOptions,
  signalActions,
  webLines,
} from "./serve.ts";
import { UsageError } from "./errors.ts";
import { formatHostPort } from "./addresses.ts";

function iface(family: "IPv4" | "IPv6", address: string): Deno.NetworkInterfaceInfo {
  return { family, name: "eth0", address, netmask: "", scopeid: null, cidr: "", mac: "" };
}

const INTERFACES = [
  iface("IPv4", "127.0.0.1"),
  iface("IPv4", "192.168.1.5"),
  iface("IPv4", "169.254.3.4"),
  iface("IPv4", "10.0.0.2"),
  iface("IPv4", "192.168.1.5"),
  iface("IPv6", "::1"),
  iface("IPv6", "fe80::1"),
  iface("IPv6", "fd00::5"),
];

Deno.test("connectHosts lists non-loopback addresses for wildcard binds", () => {
  assert.deepEqual(connectHosts("0.0.0.0", INTERFACES), ["192.168.1.5", "10.0.0.2"]);
  assert.deepEqual(connectHosts("::", INTERFACES), ["fd00::5", "192.168.1.5", "10.0.0.2"]);
  assert.deepEqual(connectHosts("0.0.0.0", []), ["127.0.0.1"]);
  assert.deepEqual(connectHosts("::", [iface("IPv6", "::1")]), ["::1"]);
});

Deno.test("connectHosts gives only the bound host for a specific bind", () => {
  assert.deepEqual(connectHosts("127.0.0.1", INTERFACES), ["127.0.0.1"]);
  assert.deepEqual(connectHosts("chat.example.org", INTERFACES), ["chat.example.org"]);
});

Deno.test("listeningLines prints the address and one connect line per host", () => {
  const addr: Deno.NetAddr = { transport: "tcp", hostname: "0.0.0.0", port: 44444 };
  assert.deepEqual(listeningLines({ addr, tls: false }, null, INTERFACES.slice(0, 2)), [
    "chat serve: listening on 0.0.0.0:44444 (TLS off)",
    "  connect with: chat connect --host 192.168.1.5 --port 44444 --nick NAME",
  ]);
  const v6: Deno.NetAddr = { transport: "tcp", hostname: "::1", port: 7 };
  assert.deepEqual(listeningLines({ addr: v6, tls: true }, "AB:CD"), [
    "chat serve: listening on [::1]:7 (TLS on, certificate SHA-256 AB:CD)",
    "  connect with: chat connect --host ::1 --port 7 --tls --trust-fingerprint AB:CD --nick NAME",
    "  other machines cannot connect: ::1 is this machine only; to allow them, start with " +
    "--host :: (e.g. chat serve --host ::)",
  ]);
});

Deno.test("listeningLines names the launcher and says when only this machine can connect", () => {
  const addr: Deno.NetAddr = { transport: "tcp", hostname: "127.0.0.1", port: 44444 };
  assert.deepEqual(listeningLines({ addr, tls: false }, null, [], "npx -y deno@2.9 task"), [
    "chat serve: listening on 127.0.0.1:44444 (TLS off)",
    "  connect with: npx -y deno@2.9 task connect --host 127.0.0.1 --port 44444 --nick NAME",
    "  other machines cannot connect: 127.0.0.1 is this machine only; to allow them, start " +
    "with --host 0.0.0.0 (e.g. npx -y deno@2.9 task serve --host 0.0.0.0)",
  ]);
  assert.equal(launcher("/home/ada/.local/bin/chat", "2.9.1"), "chat");
  assert.equal(launcher("C:\\bin\\chat.exe", "2.9.1"), "chat");
  assert.equal(launcher("/usr/local/bin/deno", "2.9.1"), "npx -y deno@2.9 task");
  assert.equal(launcher("C:\\deno\\deno.exe", "2.10.0"), "npx -y deno@2.10 task");
});

Deno.test("formatHostPort brackets IPv6", () => {
  assert.equal(formatHostPort("10.0.0.1", 1), "10.0.0.1:1");
  assert.equal(formatHostPort("fd00::1", 2), "[fd00::1]:2");
});

Deno.test("certificateFingerprint hashes the DER of the first certificate", async () => {
  const der = new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x05]);
  const pem = `-----BEGIN CERTIFICATE-----\n${
    btoa(String.fromCharCode(...der))
  }\n-----END CERTIFICATE-----\n`;
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", der));
  const expected = Array.from(digest, (b) => b.toString(16).padStart(2, "0").toUpperCase())
    .join(":");
  assert.equal(await certificateFingerprint(pem), expected);
  assert.equal(await certificateFingerprint("no certificate here"), null);
});

const BASE: ServeOptions = {
  host: "127.0.0.1",
  port: 0,
  data: "./chat-data",
  auth: "password",
  blockDuration: 60,
  idleTimeout: 0,
  maxFrame: 1 << 20,
};

Deno.test("serveConfig maps flags onto the server configuration", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const creds = `${dir}/creds.txt`;
    await Deno.writeTextFile(creds, "# accounts\nalice password-a\n");
    const config = await serveConfig({
      ...BASE,
      auth: "none",
      credentials: creds,
      blockDuration: 5,
      idleTimeout: 30,
      maxFrame: 4096,
    });
    assert.equal(config.host, "127.0.0.1");
    assert.equal(config.port, 0);
    assert.equal(config.dataDir, "./chat-data");
    assert.equal(config.auth, "none");
    assert.equal(config.blockDurationSec, 5);
    assert.equal(config.idleTimeoutSec, 30);
    assert.equal(config.maxFrameSize, 4096);
    assert.deepEqual(config.credentials, [{ nick: "alice", password: "password-a" }]);
    assert.equal(config.tls, undefined);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("serveConfig rejects half a TLS setup and unreadable files", async () => {
  await assert.rejects(() => serveConfig({ ...BASE, tlsCert: "cert.pem" }), UsageError);
  await assert.rejects(() => serveConfig({ ...BASE, tlsKey: "key.pem" }), UsageError);
  const dir = await Deno.makeTempDir();
  try {
    await assert.rejects(
      () => serveConfig({ ...BASE, tlsCert: `${dir}/none.pem`, tlsKey: `${dir}/none.pem` }),
      (err: Error) => err.message === `cannot read TLS certificate ${dir}/none.pem: no such file`,
    );
    await Deno.writeTextFile(`${dir}/junk.pem`, "junk");
    await assert.rejects(
      () => serveConfig({ ...BASE, tlsCert: `${dir}/junk.pem`, tlsKey: `${dir}/junk.pem` }),
      /contains no PEM CERTIFICATE block/,
    );
    await assert.rejects(
      () => serveConfig({ ...BASE, credentials: dir }),
      new RegExp(`cannot read credentials file ${dir}: it is a folder`),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("signalActions: SIGHUP stops a server in a terminal, reloads one without", () => {
  assert.deepEqual([...signalActions("linux", true)], [
    ["SIGINT", "stop"],
    ["SIGTERM", "stop"],
    ["SIGHUP", "stop"],
    ["SIGUSR1", "reload"],
  ]);
  assert.equal(signalActions("linux", false).get("SIGHUP"), "reload");
  assert.equal(signalActions("darwin", false).get("SIGUSR1"), "reload");
  assert.deepEqual([...signalActions("windows", true).keys()], ["SIGINT", "SIGBREAK"]);
});

Deno.test("webLines prints the browser client's address per reachable host, none when off", () => {
  const webAddr: Deno.NetAddr = { transport: "tcp", hostname: "0.0.0.0", port: 44445 };
  assert.deepEqual(webLines({ webAddr, tls: false }, INTERFACES.slice(0, 2)), [
    "  open http://192.168.1.5:44445/ in a browser",
  ]);
  assert.deepEqual(webLines({ webAddr: { ...webAddr, hostname: "::1" }, tls: true }), [
    "  open https://[::1]:44445/ in a browser",
  ]);
  assert.deepEqual(webLines({ webAddr: null, tls: false }), []);
});

Deno.test("serveConfig: the browser client on the next port by default, --web-port, --no-web", async () => {
  assert.equal((await serveConfig({ ...BASE, port: 5000 })).webPort, 5001);
  assert.equal((await serveConfig({ ...BASE, port: 0 })).webPort, 0);
  assert.equal((await serveConfig({ ...BASE, webPort: 8080 })).webPort, 8080);
  assert.equal((await serveConfig({ ...BASE, web: false })).webPort, null);
});
