/**
 * `deno task cluster` (scripts/cluster.ts) as a user runs it: PostgreSQL, NATS and three
 * nodes start, the printed command names the three, clients on two nodes talk, and
 * SIGINT (Ctrl-C) leaves no process and no listening port behind.
 */

import assert from "node:assert/strict";
import denoJson from "../deno.json" with { type: "json" };
import { ChatClient, type ChatEvent } from "../client/chat_client.ts";
import { CLUSTER_SKIP } from "./helpers/cluster_nodes.ts";
import { until } from "./helpers/harness.ts";

const ROOT = new URL("../", import.meta.url).pathname;

interface Started {
  postgresPort: number;
  natsPort: number;
  nodes: { port: number; pid: number }[];
}

async function refuses(port: number): Promise<boolean> {
  try {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    conn.close();
    return false;
  } catch (err) {
    return err instanceof Deno.errors.ConnectionRefused;
  }
}

function processGone(pid: number): boolean {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    return /^State:\s+Z/m.test(status); // a zombie has exited
  } catch {
    return true;
  }
}

Deno.test({
  name: "deno task cluster: three nodes to connect to, all gone after Ctrl-C",
  ignore: CLUSTER_SKIP !== null || Deno.build.os !== "linux",
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  const task = (denoJson.tasks as Record<string, string>).cluster;
  const args = task.split(/\s+/).slice(1); // after "deno"
  const child = new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const lines: string[] = [];
  const errors: string[] = [];
  const drain = async (stream: ReadableStream<Uint8Array>, into: string[]) => {
    let buffered = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      buffered += chunk;
      const parts = buffered.split("\n");
      buffered = parts.pop()!;
      into.push(...parts);
    }
  };
  const drained = Promise.all([drain(child.stdout, lines), drain(child.stderr, errors)]);
  let clients: ChatClient[] = [];
  try {
    const json = await until(
      () => lines.find((l) => l.startsWith("{")),
      `the cluster's started line (${lines.join("\n")} ${errors.join("\n")})`,
      120_000,
    );
    const started = JSON.parse(json) as Started;
    assert.equal(started.nodes.length, 3);
    const hosts = started.nodes.map((n) => `127.0.0.1:${n.port}`).join(",");
    assert.ok(
      lines.some((l) => l.includes(`connect --host ${hosts} --nick NAME`)),
      `no connect line naming the three nodes in:\n${lines.join("\n")}`,
    );
    const connect = (port: number, nick: string) =>
      ChatClient.connect({
        port,
        nick,
        password: "password123",
        reconnect: false,
        connectTimeoutMs: 30_000,
      });
    const ann = await connect(started.nodes[0].port, "ann");
    const bob = await connect(started.nodes[2].port, "bob");
    clients = [ann, bob];
    const got: ChatEvent[] = [];
    bob.onEvent((e) => got.push(e));
    await ann.say("lobby", "hello from node 1");
    await until(
      () => got.find((e) => e.type === "msg" && e.text === "hello from node 1"),
      "ann's message at bob (node 3)",
      30_000,
    );
    await Promise.all(clients.map((c) => c.close()));
    clients = [];

    child.kill("SIGINT");
    const status = await child.status;
    assert.equal(status.code, 0, errors.join("\n"));
    assert.ok(lines.some((l) => l.includes("chat cluster: stopped")));
    for (const node of started.nodes) {
      assert.ok(processGone(node.pid), `node process ${node.pid} left running`);
    }
    for (
      const port of [
        started.postgresPort,
        started.natsPort,
        ...started.nodes.map((n) => n.port),
      ]
    ) {
      assert.ok(await refuses(port), `port ${port} still listening`);
    }
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    try {
      child.kill("SIGINT");
    } catch { /* exited */ }
    await child.status;
    await drained;
  }
});
