/**
 * What the server holds per `say` in flight: one client pipelines says into a room while
 * the SQLite store's WAL sync is held (so none is acknowledged), and heap snapshots of
 * this process (server and client in it), taken with `first + more` and
 * `first + 2 × more` says in flight (after a first one at `first`, not counted: what a
 * snapshot itself loads and compiles), are compared by kind ({@linkcode diffCensus}):
 * bytes and objects per say.
 *
 * ```sh
 * deno run -A bench/heap_inflight.ts [first 50] [more 200] [--top 25] [--retainers 0] [--irc]
 * ```
 *
 * @module
 */

import { writeHeapSnapshot } from "node:v8";
import { type CensusDelta, censusOf, diffCensus, type HeapSnapshot } from "./heap_census.ts";
import { Probe, testServer, until } from "../tests/helpers/harness.ts";
import { HeldSync } from "../tests/helpers/held_sync.ts";
import { ircPort, IrcProbe } from "../tests/helpers/irc_probe.ts";
import { SqliteStore } from "../server/sqlite_store.ts";
import { MAX_IN_FLIGHT } from "../server/connection.ts";

/** Options of {@linkcode heapPerSay}. */
export interface HeapPerSayOptions {
  /** Says sent before the first counted snapshot. Default 50. */
  first?: number;
  /** Says between the two counted snapshots. Default 200. */
  more?: number;
  /** Retainer levels in each kind (see {@linkcode censusOf}). Default 0. */
  retainers?: number;
  /** The client's listener: `say` frames (default) or IRC PRIVMSG lines. */
  listener?: "chat" | "irc";
}

/** Bytes and objects held per say in flight. */
export interface HeapPerSay {
  /** Bytes per say, all kinds. */
  bytes: number;
  /** Per kind, largest first. */
  rows: CensusDelta[];
}

/** Objects of `kind` per say (0 when none). */
export function countOf(result: HeapPerSay, kind: string): number {
  return result.rows.find((row) => row.kind === kind)?.count ?? 0;
}

/** Measures what a server in this process holds per say waiting for its sync. */
export async function heapPerSay(options: HeapPerSayOptions = {}): Promise<HeapPerSay> {
  const first = options.first ?? 50;
  const more = options.more ?? 200;
  if (first + 2 * more >= MAX_IN_FLIGHT) {
    throw new Error(`at most ${MAX_IN_FLIGHT - 1} says in flight`);
  }
  // A heap snapshot collects garbage first; an exposed `gc` also settles what is pending.
  const gc = (globalThis as { gc?: () => void }).gc;
  const dir = await Deno.makeTempDir({ prefix: "heap_inflight_" });
  const held = new HeldSync();
  const sqlite = await SqliteStore.open(dir, { syncWal: held.syncWal });
  held.commits = () => sqlite.stats.commits;
  const irc = options.listener === "irc";
  const server = await testServer({ dataDir: dir, ...(irc ? { ircPort: 0 } : {}) }, {
    store: sqlite,
  });
  // Snapshots are read after the last one is written: a census read earlier would be in them.
  const snapshot = async (sent: number): Promise<string> => {
    await until(
      () => server.hub.metrics.counters.messagesIn >= sent ? true : undefined,
      `${sent} says received`,
      30_000,
    );
    for (let i = 0; i < 3; i++) {
      gc?.();
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const path = `${dir}/${sent}.heapsnapshot`;
    writeHeapSnapshot(path);
    return path;
  };
  const census = async (path: string) =>
    censusOf(JSON.parse(await Deno.readTextFile(path)) as HeapSnapshot, {
      retainers: options.retainers ?? 0,
    });
  try {
    await using alice = irc ? null : await Probe.login(server, "alice");
    await using ircAlice = irc ? await IrcProbe.register(ircPort(server), "alice") : null;
    if (alice !== null) await alice.ok("join", { room: "inflight" });
    if (ircAlice !== null) {
      await ircAlice.send("JOIN #inflight");
      await ircAlice.expectCommand("366", "alice", "#inflight");
    }
    await until(
      () => held.started.length === sqlite.stats.walSyncs ? true : undefined,
      "the syncs of the login and join",
      30_000,
    );
    held.hold();
    const text = "x".repeat(100);
    let sent = 0;
    const say = (n: number) => {
      if (ircAlice !== null) {
        ircAlice.send(...Array.from({ length: n }, () => `PRIVMSG #inflight :${text}`));
        sent += n;
        return;
      }
      for (let i = 0; i < n; i++, sent++) {
        alice!.send({ type: "say", id: `s${sent}`, room: "inflight", text });
      }
    };
    say(first);
    await snapshot(sent);
    say(more);
    const before = await snapshot(sent);
    say(more);
    const after = await snapshot(sent);
    if (alice?.received.some((m) => m.type === "ok" && String(m.re).startsWith("s"))) {
      throw new Error("a say was acknowledged while its sync was held");
    }
    const rows = diffCensus(await census(before), await census(after), more);
    held.release();
    await until(
      () =>
        (alice === null
            ? sqlite.stats.appends >= sent
            : alice.received.some((m) => m.re === `s${sent - 1}`))
          ? true
          : undefined,
      "the last say's reply",
      30_000,
    );
    return { bytes: rows.reduce((sum, row) => sum + row.bytes, 0), rows };
  } finally {
    held.release();
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) {
  const flag = (name: string) => {
    const at = Deno.args.indexOf(name);
    return at < 0 ? undefined : Deno.args[at + 1];
  };
  const numbers = Deno.args.filter((a, i) =>
    !a.startsWith("--") && !Deno.args[i - 1]?.startsWith("--")
  );
  const first = Number(numbers[0] ?? 50);
  const more = Number(numbers[1] ?? 200);
  const top = Number(flag("--top") ?? 25);
  const result = await heapPerSay({
    first,
    more,
    retainers: Number(flag("--retainers") ?? 0),
    listener: Deno.args.includes("--irc") ? "irc" : "chat",
  });
  console.log(
    `per say in flight (${first + more} → ${first + 2 * more}): ${result.bytes.toFixed(0)} B`,
  );
  for (const row of result.rows.slice(0, top)) {
    if (Math.abs(row.bytes) < 1) continue;
    console.log(
      `${row.bytes.toFixed(1).padStart(8)} B ${row.count.toFixed(2).padStart(6)}  ${row.kind}`,
    );
  }
}
