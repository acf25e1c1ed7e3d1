/**
 * What the memory store holds per room message, in checkouts in turn: the JavaScript heap
 * and the memory outside it (typed arrays' contents) per held message after a full
 * collection, and, with every room at its bound, what each further message leaves in the
 * old generation (promoted and not yet collected: what brings the next mark-compact
 * nearer) and how many mark-compacts a fixed number of messages causes.
 *
 * ```sh
 * deno run -A --v8-flags=--expose-gc bench/store_heap.ts . /tmp/base
 * deno run -A --v8-flags=--expose-gc bench/store_heap.ts --rooms 4 --history 10000 --messages 400000 .
 * ```
 *
 * A target is the folder of a checkout (its `server/memory_store.ts` is measured), each in a
 * process of its own, one after the other, `--rounds` times (default 2). Messages are the
 * fan-out bench's: request id `SEQ_MS.mmm`, text `bTAG|MS.mmm`, four senders per room.
 *
 * @module
 */

import { cpuUsage } from "node:process";
import { getHeapSpaceStatistics } from "node:v8";

interface Plan {
  rooms: number;
  history: number;
  messages: number;
  rounds: number;
  targets: string[];
}

function parse(args: string[]): Plan {
  const plan: Plan = { rooms: 4, history: 10_000, messages: 400_000, rounds: 2, targets: [] };
  for (let i = 0; i < args.length; i++) {
    const value = () => Number(args[++i]);
    if (args[i] === "--rooms") plan.rooms = value();
    else if (args[i] === "--history") plan.history = value();
    else if (args[i] === "--messages") plan.messages = value();
    else if (args[i] === "--rounds") plan.rounds = value();
    else if (args[i] === "--child") plan.targets = [args[++i]];
    else plan.targets.push(args[i]);
  }
  if (plan.targets.length === 0) plan.targets.push(".");
  return plan;
}

/** The figures of one target, printed as a JSON line by the child. */
interface Figures {
  heapPerHeld: number;
  externalPerHeld: number;
  oldGrowthPerMessage: number;
  markCompacts: number;
  /** CPU (user + system) per message at the bound, µs. */
  cpuUsPerMessage: number;
}

function oldSpaceUsed(): number {
  return getHeapSpaceStatistics().find((s) => s.space_name === "old_space")!.space_used_size;
}

/** Runs in the child: fills the store of checkout `dir` and measures it. */
async function measureChild(dir: string, plan: Plan): Promise<Figures> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error("run with --v8-flags=--expose-gc");
  const { MemoryStore } = await import(
    new URL(`${dir}/server/memory_store.ts`, `file://${Deno.cwd()}/`).href
  );
  const store = new MemoryStore({ roomHistory: plan.history });
  const senders = ["alice", "bob", "carol", "dave"];
  for (let r = 0; r < plan.rooms; r++) {
    await store.createRoom({
      key: `room${r}`,
      name: `room${r}`,
      topic: "",
      topicBy: "",
      createdAt: 0,
    });
    for (const s of senders) await store.addMember(`room${r}`, s);
  }
  let seq = 0;
  const append = async (n: number) => {
    for (let i = 0; i < n; i++) {
      const t = (1_733_000_000_000 + seq * 0.031).toFixed(3);
      const fromKey = senders[seq % senders.length];
      await store.appendMessage({
        fromKey,
        from: fromKey,
        room: `room${seq % plan.rooms}`,
        text: `b${seq % 16}|${t}`,
        ts: Date.now(),
        clientId: `${++seq}_${t}`,
      });
    }
  };
  gc();
  gc();
  const empty = Deno.memoryUsage();
  const held = plan.rooms * plan.history;
  await append(held);
  gc();
  gc();
  const full = Deno.memoryUsage();
  // At the bound: each message now replaces the oldest of its room.
  await append(held);
  gc();
  gc();
  const before = oldSpaceUsed();
  let markCompacts = 0;
  const cpu0 = cpuUsage();
  // Counted by the old space shrinking: a mark-compact ran (scavenges only add to it).
  let last = before;
  let grown = 0;
  for (let done = 0; done < plan.messages; done += 1000) {
    await append(1000);
    const now = oldSpaceUsed();
    if (now < last) markCompacts++;
    else grown += now - last;
    last = now;
  }
  const cpu = cpuUsage(cpu0);
  return {
    heapPerHeld: Math.round((full.heapUsed - empty.heapUsed) / held),
    externalPerHeld: Math.round((full.external - empty.external) / held),
    oldGrowthPerMessage: Math.round(grown / plan.messages),
    markCompacts,
    cpuUsPerMessage: Math.round((cpu.user + cpu.system) / plan.messages * 1000) / 1000,
  };
}

if (import.meta.main) {
  const plan = parse(Deno.args);
  if (Deno.args.includes("--child")) {
    console.log(JSON.stringify(await measureChild(plan.targets[0], plan)));
  } else {
    for (let round = 0; round < plan.rounds; round++) {
      for (const target of plan.targets) {
        const args = [
          "run",
          "-A",
          "--v8-flags=--expose-gc",
          new URL(import.meta.url).pathname,
          "--rooms",
          String(plan.rooms),
          "--history",
          String(plan.history),
          "--messages",
          String(plan.messages),
          "--child",
          target,
        ];
        const out = await new Deno.Command(Deno.execPath(), { args, stderr: "inherit" }).output();
        const line = new TextDecoder().decode(out.stdout).trim().split("\n").at(-1) ?? "";
        const load = (await Deno.readTextFile("/proc/loadavg").catch(() => "?")).split(" ")[0];
        console.log(`${target} (load ${load}): ${line}`);
      }
    }
  }
}
