/**
 * The chat server's CPU time for a fixed fan-out: 4 senders and `members` receivers in
 * the lobby (memory store), `perSender` 100-byte `say` each, every receiver reading all
 * of them. CPU seconds of the server process (/proc), which a loaded machine disturbs
 * less than deliveries per second; compare two versions of the code in turns.
 *
 * ```sh
 * deno run -A bench/fanout_cpu.ts [members 100] [perSender 2000]
 * ```
 *
 * @module
 */

import { clientHello, SERVER_FEATURES } from "../protocol/hello.ts";
import { FramedConnection } from "../transport/framed_connection.ts";
import { textLines } from "../tools/lines.ts";

const members = Number(Deno.args[0] ?? 100);
const perSender = Number(Deno.args[1] ?? 2000);
const SENDERS = 4;
const here = new URL(".", import.meta.url).pathname;

const child = new Deno.Command(Deno.execPath(), {
  args: ["run", "-A", `${here}server_process.ts`, "--memory", "--room-history", "1000"],
  stdin: "piped",
  stdout: "piped",
  stderr: "inherit",
}).spawn();
const lines = textLines(child.stdout)[Symbol.asyncIterator]();
const info = JSON.parse((await lines.next()).value as string) as { port: number; pid: number };

/** CPU seconds (user + system) of the server so far. */
function cpuSeconds(): number {
  const fields = Deno.readTextFileSync(`/proc/${info.pid}/stat`).split(") ")[1].split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function client(nick: string) {
  const conn = new FramedConnection(await Deno.connect({ hostname: "127.0.0.1", port: info.port }));
  conn.send(clientHello(SERVER_FEATURES, "fanout-cpu"));
  conn.send({ type: "login", id: "l", nick });
  const batches = conn.batches();
  let loggedIn = false;
  while (!loggedIn) {
    const { value, done } = await batches.next();
    if (done) throw new Error(`${nick}: closed before its login`);
    for (const frame of value) if (frame.header.re === "l") loggedIn = true;
  }
  return { conn, batches };
}

const receivers = [];
for (let i = 0; i < members; i++) receivers.push(await client(`r${i}`));
const senders = [];
for (let i = 0; i < SENDERS; i++) senders.push(await client(`s${i}`));
const total = SENDERS * perSender;
const received = receivers.map(async ({ batches }) => {
  let n = 0;
  while (n < total) {
    const { value, done } = await batches.next();
    if (done) throw new Error("a receiver was cut off");
    for (const frame of value) if (frame.header.type === "msg") n++;
  }
});
for (const { batches } of senders) {
  (async () => {
    while (!(await batches.next()).done) { /* replies and echoes: drained */ }
  })().catch(() => {});
}
await new Promise((resolve) => setTimeout(resolve, 500));
const cpu0 = cpuSeconds();
const t0 = performance.now();
const text = "x".repeat(100);
await Promise.all(senders.map(async ({ conn }, s) => {
  for (let i = 0; i < perSender; i++) {
    conn.send({ type: "say", id: `m${s}_${i}`, room: "lobby", text });
    if (i % 50 === 49) {
      await conn.flush();
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }
}));
await Promise.all(received);
const cpu = cpuSeconds() - cpu0;
const deliveries = total * (members + SENDERS);
console.log(JSON.stringify({
  deliveries,
  serverCpuSeconds: Math.round(cpu * 100) / 100,
  wallSeconds: Math.round(performance.now() - t0) / 1000,
  deliveriesPerCpuSecond: Math.round(deliveries / cpu),
}));
for (const c of [...receivers, ...senders]) c.conn.abort();
child.kill("SIGTERM");
await child.status;
Deno.exit(0);
