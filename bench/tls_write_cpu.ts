/**
 * CPU of a TLS fan-out's writes through the server's TLS path (`ServerTls`,
 * `NodeSocketChannel`, `OutboundQueue`): FIXED work, `ROUNDS` pushes of one `BYTES` payload
 * to each of `RECEIVERS` TLS connections whose other ends are in a child process that
 * only reads (`Deno.connectTls`); prints the sender process's CPU (user + system) per
 * push. `ROOT` is the checkout whose transport/ is measured: compare two checkouts in
 * turn (e.g. main in a scratch worktree), under the bench lock.
 *
 * ```sh
 * git worktree add --detach /tmp/base main
 * for root in /tmp/base .; do flock /tmp/chat-bench.lock deno run -A bench/tls_write_cpu.ts $root 20 1000 16384; done
 * ```
 *
 * Measured 2026-12-06 (2 shared cores, load 0.8-1.7), main against the write without a
 * copy (issue #16), in turn: 20 receivers x 1,000 x 16 KiB 0.68-0.97x main's CPU per
 * push, 50 x 1,000 x 2 KiB 0.64-0.96x.
 *
 * @module
 */

import { cpuUsage } from "node:process";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";

const fixture = (name: string) =>
  Deno.readTextFileSync(new URL(`../tests/fixtures/${name}`, import.meta.url));

/** The child: `n` TLS connections to `port`, read until closed; prints the bytes read. */
async function receive(port: number, n: number): Promise<void> {
  const ca = fixture("ca.pem");
  const conns: Deno.TlsConn[] = [];
  for (let i = 0; i < n; i++) {
    const conn = await Deno.connectTls({ hostname: "127.0.0.1", port, caCerts: [ca] });
    await conn.handshake();
    conns.push(conn);
  }
  let got = 0;
  await Promise.all(conns.map(async (conn) => {
    const buffer = new Uint8Array(256 * 1024);
    try {
      for (let k = await conn.read(buffer); k !== null; k = await conn.read(buffer)) got += k;
    } catch {
      // reset: the sender is gone
    }
  }));
  console.log(JSON.stringify({ got }));
}

/** The sender: the fixed work over `root`'s transport; prints one line. */
async function send(root: string, n: number, rounds: number, bytes: number): Promise<void> {
  const base = pathToFileURL(resolve(root)).href;
  const { ServerTls } = await import(`${base}/transport/server_tls.ts`);
  const { OutboundQueue } = await import(`${base}/transport/outbound_queue.ts`);
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", import.meta.filename!, "--receive", String(port), String(n)],
    stdout: "piped",
  }).spawn();
  const serverTls = new ServerTls({ cert: fixture("server.pem"), key: fixture("server-key.pem") });
  const conns = [];
  for (let i = 0; i < n; i++) {
    const conn = serverTls.wrap(await listener.accept());
    await conn.handshake(30_000);
    conns.push(conn);
  }
  const failed = (err: unknown) => {
    throw err;
  };
  const queues = conns.map((conn) =>
    new OutboundQueue(conn, { onWriteFailed: failed, maxQueueBytes: 1 << 30 })
  );
  const payload = new Uint8Array(bytes).fill(7);
  const cpu0 = cpuUsage();
  const t0 = performance.now();
  for (let r = 0; r < rounds; r++) {
    for (const queue of queues) queue.push(payload);
    if (r % 10 === 9) { for (const queue of queues) await queue.flush(); }
  }
  for (const queue of queues) await queue.flush();
  const cpu = cpuUsage(cpu0);
  const wall = performance.now() - t0;
  for (const conn of conns) conn.close();
  listener.close();
  const heard = JSON.parse(new TextDecoder().decode((await child.output()).stdout));
  const pushes = n * rounds;
  const us = cpu.user + cpu.system;
  console.log(
    `${root} ${n}x${rounds}x${bytes}B cpu ${(us / 1000).toFixed(0)} ms = ${
      (us / pushes).toFixed(1)
    } µs/push (user ${(cpu.user / pushes).toFixed(1)}) wall ${
      wall.toFixed(0)
    } ms received ${heard.got}/${pushes * bytes}; loadavg ${
      Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ")
    }`,
  );
}

if (import.meta.main) {
  const [first, a, b, c] = Deno.args;
  if (first === "--receive") await receive(Number(a), Number(b));
  else await send(first ?? ".", Number(a ?? 20), Number(b ?? 1000), Number(c ?? 16384));
  Deno.exit(0);
}
