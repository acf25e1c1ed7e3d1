/**
 * How many of N socket writes started in one turn settle per event-loop iteration: the
 * fan-out of one message to a room of N members over N loopback connections, without a
 * server. Each round starts one small write on every connection at once and counts, for
 * each write, the `setTimeout(0)` hops that passed before it settled.
 *
 * ```sh
 * deno run -A bench/write_budget.ts               # 1,000 connections, Deno.TcpConn then node:net
 * deno run -A bench/write_budget.ts --connections 300 --rounds 5
 * ```
 *
 * Measured with Deno 2.9 (2026-12-05): `Deno.TcpConn.write` settles at most 128 writes per
 * iteration (128, 128, … 104 for 1,000), whatever the payload: the runtime runs every op
 * in one task, and its scheduler gives a task 128 socket operations per poll. A fan-out
 * to 1,000 receivers therefore needs 8 iterations, and a server that is never idle
 * (each iteration also reads and fans out more) leaves some writes waiting hundreds of
 * milliseconds to seconds with nothing queued in the kernel (issue #16, the 1,000-member
 * room). `node:net` writes settle in one iteration. Prints one line per round and way.
 *
 * @module
 */

import net from "node:net";

/** A way to write one payload to each of N connected sockets. */
interface Way {
  name: string;
  /** Connects `n` pairs; resolves to a function that writes `payload` on every server side. */
  open(n: number): Promise<{ writeAll(payload: Uint8Array): Promise<number>[]; close(): void }>;
}

const denoWay: Way = {
  name: "Deno.TcpConn",
  async open(n) {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (listener.addr as Deno.NetAddr).port;
    const servers: Deno.TcpConn[] = [];
    // Leaving the loop closes the listener.
    const accepted = (async () => {
      for await (const c of listener) {
        c.setNoDelay(true);
        servers.push(c);
        if (servers.length === n) break;
      }
    })();
    const clients: Deno.TcpConn[] = [];
    for (let i = 0; i < n; i++) clients.push(await Deno.connect({ hostname: "127.0.0.1", port }));
    await accepted;
    for (const c of clients) drain(c);
    return {
      writeAll: (payload) => servers.map((s) => s.write(payload)),
      close() {
        for (const c of [...servers, ...clients]) tryClose(c);
      },
    };
  },
};

const nodeWay: Way = {
  name: "node:net",
  async open(n) {
    const servers: net.Socket[] = [];
    const server = net.createServer((s) => {
      s.setNoDelay(true);
      servers.push(s);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as net.AddressInfo).port;
    const clients: net.Socket[] = [];
    for (let i = 0; i < n; i++) {
      const c = net.connect(port, "127.0.0.1");
      c.on("data", () => {});
      c.on("error", () => {});
      clients.push(c);
      await new Promise((resolve) => c.once("connect", resolve));
    }
    const deadline = performance.now() + 10_000;
    while (servers.length < n && performance.now() < deadline) await sleep(5);
    return {
      writeAll: (payload) =>
        servers.map((s) =>
          new Promise<number>((resolve) => s.write(payload, () => resolve(payload.length)))
        ),
      close() {
        server.close();
        for (const c of [...servers, ...clients]) c.destroy();
      },
    };
  },
};

async function drain(conn: Deno.TcpConn): Promise<void> {
  const buffer = new Uint8Array(64 * 1024);
  try {
    while ((await conn.read(buffer)) !== null) { /* discard */ }
  } catch {
    // closed
  }
}

/** Closes a connection that may be closed already. */
function tryClose(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // already closed
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Starts one write per connection and counts how many settled at each `setTimeout(0)` hop
 * (an event-loop iteration at least). Resolves to those counts, in hop order.
 */
export async function settlePerHop(writes: () => Promise<number>[]): Promise<number[]> {
  let hop = 0;
  let ticking = true;
  const tick = () => {
    hop++;
    if (ticking) setTimeout(tick, 0);
  };
  setTimeout(tick, 0);
  const settledAt: number[] = [];
  await Promise.all(writes().map((w) => w.then(() => settledAt.push(hop))));
  ticking = false;
  const counts = new Map<number, number>();
  for (const at of settledAt) counts.set(at, (counts.get(at) ?? 0) + 1);
  return [...counts.keys()].sort((a, b) => a - b).map((k) => counts.get(k)!);
}

if (import.meta.main) {
  const flag = (name: string, fallback: number) => {
    const i = Deno.args.indexOf(name);
    return i >= 0 ? Number(Deno.args[i + 1]) : fallback;
  };
  const connections = flag("--connections", 1000);
  const rounds = flag("--rounds", 3);
  const payload = new Uint8Array(170); // about one chat message frame
  for (const way of [denoWay, nodeWay]) {
    const sockets = await way.open(connections);
    for (let round = 0; round < rounds; round++) {
      const t0 = performance.now();
      const perHop = await settlePerHop(() => sockets.writeAll(payload));
      console.log(
        `${way.name}: ${connections} writes settled over ${perHop.length} iteration(s) in ${
          (performance.now() - t0).toFixed(1)
        } ms; per iteration: ${perHop.slice(0, 16).join(", ")}${perHop.length > 16 ? ", …" : ""}`,
      );
      await sleep(50);
    }
    sockets.close();
  }
  Deno.exit(0);
}
