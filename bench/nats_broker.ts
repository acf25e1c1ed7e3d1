/**
 * Throughput and round trip of {@linkcode NatsBroker} between two nodes (two processes)
 * on one local nats-server: publications/s from node A to a subscriber on node B
 * (100-byte events, one at a time and in batches of 10) with node B's CPU per delivery,
 * and the round trip p50/p99
 * A -> B -> A of one publication at a time.
 *
 * ```sh
 * deno run -A bench/nats_broker.ts [--count 200000] [--pings 2000] [--profile-b DIR]
 * ```
 *
 * `--profile-b DIR` writes node B's CPU profile into DIR (summarise it with
 * `bench/profile_summary.ts`).
 *
 * Node B runs this script with `--node-b URL`: it subscribes, answers pings and reports
 * how many publications it received on the cluster bus. Not a test: numbers only.
 *
 * @module
 */

import { cpuSecondsOf } from "./child.ts";
import { encodeFrame } from "../protocol/frame.ts";
import type { ServerMessage } from "../protocol/messages.ts";
import type { Publication, Subscriber } from "../server/broker.ts";
import { NatsBroker } from "../server/nats_broker.ts";
import { NatsClusterBus } from "../server/nats_cluster_bus.ts";
import { NatsLink } from "../server/nats_connection.ts";
import { NatsServer } from "../tests/helpers/nats.ts";

/** A notice whose frame is `bytes` long. */
function eventOf(bytes: number, tag: string): ServerMessage {
  const base = encodeFrame({ type: "notice", code: "info", text: tag }).length;
  return { type: "notice", code: "info", text: tag + "x".repeat(Math.max(0, bytes - base)) };
}

/** A subscriber calling `onText` with each notice's text. */
function subscriberOf(onEvent: (frames: Uint8Array) => void): Subscriber {
  return {
    accountKey: "bench",
    accepts: (_p: Publication) => true,
    sendEncoded(frames: Uint8Array): boolean {
      onEvent(frames);
      return true;
    },
  };
}

/** How many frames `frames` holds (walking the length prefixes). */
function frameCount(frames: Uint8Array): number {
  const view = new DataView(frames.buffer, frames.byteOffset, frames.byteLength);
  let count = 0;
  for (let at = 0; at < frames.length; at += 4 + view.getUint32(at)) count++;
  return count;
}

const decoder = new TextDecoder();
/** The texts of the frames in `frames` (header JSON after two u32 lengths). */
function textsOf(frames: Uint8Array): string[] {
  const texts: string[] = [];
  const view = new DataView(frames.buffer, frames.byteOffset, frames.byteLength);
  for (let at = 0; at < frames.length;) {
    const length = view.getUint32(at);
    const hlen = view.getUint32(at + 4);
    const header = JSON.parse(decoder.decode(frames.subarray(at + 8, at + 8 + hlen)));
    texts.push(header.text);
    at += 4 + length;
  }
  return texts;
}

async function nodeB(url: string): Promise<void> {
  const link = await NatsLink.open(url, { name: "bench-b" });
  const broker = new NatsBroker(link);
  const bus = new NatsClusterBus(link);
  let received = 0;
  await broker.subscribe("room.bench", subscriberOf((frames) => received += frameCount(frames)));
  // The end of a run comes on its own subject, after the run (one publisher, one NATS).
  await broker.subscribe("room.end", subscriberOf(() => bus.send("done", { received })));
  await broker.subscribe(
    "room.ping",
    subscriberOf((frames) => {
      for (const text of textsOf(frames)) {
        broker.publish("room.pong", { event: { type: "notice", code: "info", text } });
      }
    }),
  );
  await bus.listen("reset", () => received = 0);
  console.log("ready");
  await bus.listen("quit", async () => {
    await broker.close();
    await bus.close();
    await link.close();
    Deno.exit(0);
  });
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

async function main(): Promise<void> {
  const args = Deno.args;
  const option = (name: string, fallback: number) => {
    const at = args.indexOf(name);
    return at >= 0 ? Number(args[at + 1]) : fallback;
  };
  if (args[0] === "--node-b") return nodeB(args[1]);
  const count = option("--count", 200_000);
  const pings = option("--pings", 2_000);
  const profileAt = args.indexOf("--profile-b");
  const profileDir = profileAt >= 0 ? args[profileAt + 1] : undefined;

  const nats = await NatsServer.start();
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      ...(profileDir === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${profileDir}`]),
      new URL(import.meta.url).pathname,
      "--node-b",
      nats.url,
    ],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  while (!out.includes("ready")) {
    const { value, done } = await lines.read();
    if (done) throw new Error("node B exited");
    out += value;
  }

  const link = await NatsLink.open(nats.url, { name: "bench-a" });
  const broker = new NatsBroker(link);
  const bus = new NatsClusterBus(link);
  let done: PromiseWithResolvers<{ received: number }> = Promise.withResolvers();
  await bus.listen("done", (m) => done.resolve(m.data as { received: number }));
  const event = eventOf(100, "p");
  console.log(`event frame: ${encodeFrame(event).length} bytes; ${count} publications`);

  for (const batch of [1, 10]) {
    bus.send("reset", null);
    await link.confirm();
    done = Promise.withResolvers();
    const cpuBefore = cpuSecondsOf(child.pid) ?? 0;
    const cpuBeforeA = cpuSecondsOf(Deno.pid) ?? 0;
    const start = performance.now();
    const publications = Array.from({ length: batch }, () => ({ event }));
    for (let sent = 0; sent < count; sent += batch) {
      if (batch === 1) broker.publish("room.bench", publications[0]);
      else broker.publishBatch("room.bench", publications);
      // Let the socket drain now and then instead of buffering everything.
      if (sent % 2_000 < batch) await link.confirm();
    }
    broker.publish("room.end", { event: eventOf(10, `end${batch}`) });
    const { received } = await done.promise;
    const seconds = (performance.now() - start) / 1000;
    const cpu = (cpuSecondsOf(child.pid) ?? 0) - cpuBefore;
    const cpuA = (cpuSecondsOf(Deno.pid) ?? 0) - cpuBeforeA;
    console.log(
      `batch ${batch}: ${received}/${count} received on node B in ${seconds.toFixed(2)} s: ` +
        `${Math.round(received / seconds)} publications/s; node B CPU ${cpu.toFixed(2)} s, ` +
        `${(cpu * 1e6 / Math.max(1, received)).toFixed(2)} µs per delivery ` +
        `(node A ${(cpuA * 1e6 / count).toFixed(2)} µs per publication)`,
    );
  }

  let pong: PromiseWithResolvers<void> = Promise.withResolvers();
  await broker.subscribe("room.pong", subscriberOf(() => pong.resolve()));
  const rtts: number[] = [];
  for (let i = 0; i < pings; i++) {
    pong = Promise.withResolvers();
    const start = performance.now();
    broker.publish("room.ping", { event: eventOf(100, `${i}`) });
    await pong.promise;
    rtts.push(performance.now() - start);
  }
  rtts.sort((a, b) => a - b);
  console.log(
    `round trip A -> B -> A (${pings} sequential): p50 ${
      (percentile(rtts, 0.5) * 1000).toFixed(0)
    } µs, p99 ${(percentile(rtts, 0.99) * 1000).toFixed(0)} µs`,
  );

  bus.send("quit", null);
  await child.status;
  await broker.close();
  await bus.close();
  await link.close();
  await nats.close();
}

if (import.meta.main) await main();
