/**
 * The soak's well-behaved clients, in their own process: `count` ChatClients (from the
 * client library, with its reconnection, resend and catch-up) that log in with a
 * password, join their rooms, then chat and send direct messages at a polite rate,
 * recording every acknowledged message and every message received.
 *
 * ```sh
 * deno run --allow-net=127.0.0.1 soak/good_clients.ts '<GoodClientsArgs as JSON>'
 * ```
 *
 * Prints `{"ready": true, ...}` once every client is logged in and in its rooms (or
 * `{"error": "..."}`), then answers on stdin (see side_channel.ts):
 *
 * - `go`: start chatting;
 * - `status`: clients per state, disconnections so far;
 * - `phase` with a `name`: sends from now on belong to that phase (their
 *   acknowledgement times are reported per phase);
 * - `stop`: stop sending, wait for the replies still due, answer with the acknowledged
 *   messages and the failures;
 * - `verify` with every process's acknowledged messages: wait until each client has
 *   received what it should, then read each client's history with `sync` from 0, and
 *   answer with what is missing, duplicated or different;
 * - `exit`: close the clients.
 *
 * @module
 */

import { ChatClient, type ChatEvent } from "../client/chat_client.ts";
import { ChatError } from "../client/chat_error.ts";
import type { ChatMessage } from "../protocol/messages.ts";
import { GOOD_PASSWORD, goodIndex, goodNick, roomMembers, roomsOf, type SoakPlan } from "./plan.ts";
import { Rng } from "./rng.ts";
import { cpuSeconds, LoopLag } from "./loop_lag.ts";
import { emit, serveSideChannel } from "../tools/side_channel.ts";
import {
  type AckedMessage,
  checkDeliveries,
  checkHistory,
  expectedFor,
  type ReceivedRecord,
} from "./verify.ts";

/** What the process is told on its command line. */
export interface GoodClientsArgs {
  /** The server's port on 127.0.0.1. */
  port: number;
  /** Index of this process's first client. */
  first: number;
  /** Number of clients in this process. */
  count: number;
  /** The whole well-behaved population (all processes). */
  plan: SoakPlan;
  /** Pause between two sends of one client, in ms: from, to. */
  intervalMs: [number, number];
  /** Share of sends that are direct messages (the rest go to a room). */
  dmShare: number;
  /** Requests a client may have waiting for replies before it skips a turn. */
  maxOutstanding: number;
  /** Seed of the random choices. */
  seed: number;
  /**
   * When set, this process also runs the login probe: a fresh connection logging in
   * as `nick` every `intervalMs`, each attempt counted in the phase it started in.
   */
  probe?: { nick: string; intervalMs: number };
  /** The CA certificate (PEM) to trust when the server serves TLS; absent for plain TCP. */
  tlsCa?: string;
}

/** The login probe's attempts in one phase. */
export interface ProbeStats {
  /** Logins tried. */
  tries: number;
  /** Logins that failed. */
  failures: number;
  /** The slowest login, in ms (failures included). */
  maxMs: number;
  /** The first few failures' reasons. */
  errors: string[];
}

/** The answer to `stop`. */
export interface StopAnswer {
  /** Every message acknowledged to a client of this process. */
  acked: AckedMessage[];
  /** Sends refused or failed, by error code. */
  failures: Record<string, number>;
  /** Sends still without a reply when the wait ended. */
  unanswered: number;
  /** Acknowledgements the server marked as duplicates (resends of stored messages). */
  resentDuplicates: number;
  /** Acknowledgements whose text differs from the text sent. */
  ackMismatches: number;
  /** Sends skipped because the client already had enough requests waiting. */
  skipped: number;
  /** Disconnections seen by the clients. */
  disconnects: number;
  /** Reconnections completed by the clients. */
  reconnects: number;
  /** Clients closed for good, with the reason. */
  closed: string[];
  /** Notices received, by code. */
  notices: Record<string, number>;
  /** The first few notices' texts, with the nick. */
  noticeTexts: string[];
  /** This process's longest event-loop lag, in ms, and its stalls over 1 s. */
  lag: { maxMs: number; stallsOver1s: number };
  /** CPU seconds this process used so far. */
  cpuSeconds: number;
  /** Error events not tied to a request, by code. */
  serverErrors: Record<string, number>;
  /** Clients per state. */
  states: Record<string, number>;
  /** Room and direct messages received from others than well-behaved clients. */
  otherReceived: number;
  /** Per phase: the acknowledgement time of each say and dm sent in it, in ms. */
  latencies: Record<string, number[]>;
  /** Per phase: sends refused or failed, by error code. */
  phaseFailures: Record<string, Record<string, number>>;
  /** Per phase: the login probe's attempts (this process runs it when `probe` is set). */
  probe: Record<string, ProbeStats>;
}

/** The answer to `verify`. */
export interface VerifyAnswer {
  /** Deliveries due to this process's clients. */
  expected: number;
  /** Of those, received exactly once as acknowledged. */
  delivered: number;
  /** Ids due but not received (first few thousand). */
  missing: number[];
  /** How many deliveries were missing. */
  missingCount: number;
  /** Ids received more than once, per client (first few thousand). */
  duplicates: number[];
  /** How many duplicate deliveries. */
  duplicateCount: number;
  /** Own messages that came back as events. */
  echoes: number;
  /** Deliveries with another sender or text than acknowledged. */
  mismatched: number;
  /** History: messages that had to be there, missing ids, mismatches, duplicates. */
  history: {
    expected: number;
    missing: number[];
    missingCount: number;
    mismatched: number;
    duplicates: number;
  };
  /** Milliseconds spent waiting for the last deliveries. */
  waitedMs: number;
}

/** At most this many ids are listed in an answer; counts are always whole. */
const ID_LIST_LIMIT = 2000;
/** Clients logging in or reading history at once. */
const PARALLEL = 20;

interface Tracked {
  readonly index: number;
  readonly nick: string;
  readonly rooms: string[];
  readonly client: ChatClient;
  readonly rng: Rng;
  readonly received: Map<number, ReceivedRecord>;
  readonly acked: AckedMessage[];
  readonly outstanding: Set<Promise<void>>;
  seq: number;
}

class GoodClients {
  readonly #args: GoodClientsArgs;
  readonly #tracked: Tracked[] = [];
  readonly #failures: Record<string, number> = {};
  readonly #notices: Record<string, number> = {};
  readonly #serverErrors: Record<string, number> = {};
  readonly #closed: string[] = [];
  readonly #noticeTexts: string[] = [];
  readonly #lag = new LoopLag();
  #lagMaxMs = 0;
  #stalls = 0;
  #disconnects = 0;
  #reconnects = 0;
  #resentDuplicates = 0;
  #ackMismatches = 0;
  #skipped = 0;
  #otherReceived = 0;
  #stopping = false;
  #wakers = new Set<() => void>();
  #loops: Promise<void>[] = [];
  #phase = "setup";
  readonly #latencies: Record<string, number[]> = {};
  readonly #phaseFailures: Record<string, Record<string, number>> = {};
  readonly #probe: Record<string, ProbeStats> = {};

  constructor(args: GoodClientsArgs) {
    this.#args = args;
  }

  /** Logs every client in and joins its rooms. */
  async setUp(): Promise<void> {
    const indexes = Array.from({ length: this.#args.count }, (_, k) => this.#args.first + k);
    const seedRng = new Rng(this.#args.seed);
    const rngs = new Map(indexes.map((i) => [i, seedRng.fork(i)]));
    await inBatches(indexes, PARALLEL, async (index) => {
      const tracked = await this.#connect(index, rngs.get(index)!);
      this.#tracked.push(tracked);
      for (const room of tracked.rooms) await tracked.client.join(room);
    });
    this.#tracked.sort((a, b) => a.index - b.index);
  }

  go(): void {
    for (const tracked of this.#tracked) this.#loops.push(this.#chat(tracked));
    if (this.#args.probe !== undefined) this.#loops.push(this.#runProbe(this.#args.probe));
  }

  /** Sends (and probe logins) from now on belong to phase `name`. */
  setPhase(name: string): void {
    this.#phase = name;
  }

  status(): Record<string, unknown> {
    return {
      states: this.#states(),
      disconnects: this.#disconnects,
      reconnects: this.#reconnects,
      lag: this.#takeLag(),
    };
  }

  async stop(timeoutMs: number): Promise<StopAnswer> {
    this.#stopping = true;
    for (const wake of [...this.#wakers]) wake();
    await Promise.allSettled(this.#loops);
    const outstanding = this.#tracked.flatMap((t) => [...t.outstanding]);
    await withTimeout(Promise.allSettled(outstanding), timeoutMs);
    return {
      acked: this.#tracked.flatMap((t) => t.acked),
      failures: this.#failures,
      unanswered: this.#tracked.reduce((n, t) => n + t.outstanding.size, 0),
      resentDuplicates: this.#resentDuplicates,
      ackMismatches: this.#ackMismatches,
      skipped: this.#skipped,
      disconnects: this.#disconnects,
      reconnects: this.#reconnects,
      closed: this.#closed,
      notices: this.#notices,
      noticeTexts: this.#noticeTexts,
      lag: this.#runLag(),
      cpuSeconds: cpuSeconds(),
      serverErrors: this.#serverErrors,
      states: this.#states(),
      otherReceived: this.#otherReceived,
      latencies: this.#latencies,
      phaseFailures: this.#phaseFailures,
      probe: this.#probe,
    };
  }

  async verify(acked: AckedMessage[], timeoutMs: number): Promise<VerifyAnswer> {
    const plan = this.#args.plan;
    const members = roomMembers(plan);
    const due = new Map<Tracked, AckedMessage[]>();
    for (const t of this.#tracked) due.set(t, expectedFor(t.nick, acked, plan, members));
    const started = performance.now();
    const complete = (): boolean =>
      [...due].every(([t, expected]) => expected.every((m) => t.received.has(m.id)));
    while (!complete() && performance.now() - started < timeoutMs) await delay(100);
    const waitedMs = Math.round(performance.now() - started);

    const answer: VerifyAnswer = {
      expected: 0,
      delivered: 0,
      missing: [],
      missingCount: 0,
      duplicates: [],
      duplicateCount: 0,
      echoes: 0,
      mismatched: 0,
      history: { expected: 0, missing: [], missingCount: 0, mismatched: 0, duplicates: 0 },
      waitedMs,
    };
    const sentByNick = new Map<string, AckedMessage[]>();
    for (const message of acked) {
      const key = message.from.toLowerCase();
      if (!sentByNick.has(key)) sentByNick.set(key, []);
      sentByNick.get(key)!.push(message);
    }
    for (const [t, expected] of due) {
      const own = sentByNick.get(t.nick.toLowerCase()) ?? [];
      const result = checkDeliveries(expected, t.received, new Set(own.map((m) => m.id)));
      answer.expected += result.expected;
      answer.delivered += result.delivered;
      answer.missingCount += result.missing.length;
      pushCapped(answer.missing, result.missing);
      answer.duplicateCount += result.duplicates.length;
      pushCapped(answer.duplicates, result.duplicates);
      answer.echoes += result.echoes.length;
      answer.mismatched += result.mismatched.length;
    }
    await inBatches([...due], PARALLEL, async ([t, expected]) => {
      const own = sentByNick.get(t.nick.toLowerCase()) ?? [];
      const history = await syncAll(t.client);
      const result = checkHistory([...own, ...expected], history);
      answer.history.expected += result.expected;
      answer.history.missingCount += result.missing.length;
      pushCapped(answer.history.missing, result.missing);
      answer.history.mismatched += result.mismatched.length;
      answer.history.duplicates += result.duplicates.length;
    });
    return answer;
  }

  /** The event-loop lag since the last call (added to the run's figures). */
  #takeLag(): { maxMs: number; stallsOver1s: number } {
    const lag = this.#lag.take();
    this.#lagMaxMs = Math.max(this.#lagMaxMs, lag.maxMs);
    this.#stalls += lag.stallsOver1s;
    return lag;
  }

  /** The run's longest event-loop lag and its stalls over 1 s. */
  #runLag(): { maxMs: number; stallsOver1s: number } {
    this.#takeLag();
    return { maxMs: this.#lagMaxMs, stallsOver1s: this.#stalls };
  }

  async close(): Promise<void> {
    this.#lag.stop();
    this.#stopping = true;
    for (const wake of [...this.#wakers]) wake();
    await withTimeout(Promise.allSettled(this.#tracked.map((t) => t.client.close())), 5000);
  }

  async #connect(index: number, rng: Rng): Promise<Tracked> {
    const nick = goodNick(index);
    let client: ChatClient | undefined;
    let lastError: unknown;
    for (let attempt = 1; attempt <= 5 && client === undefined; attempt++) {
      try {
        client = await ChatClient.connect({
          port: this.#args.port,
          nick,
          password: GOOD_PASSWORD,
          reconnect: { maxDelayMs: 4000 },
          ...this.#tls(),
        });
      } catch (err) {
        lastError = err;
        await delay(300 * attempt);
      }
    }
    if (client === undefined) throw new Error(`${nick} could not log in: ${describe(lastError)}`);
    const tracked: Tracked = {
      index,
      nick,
      rooms: roomsOf(index, this.#args.plan),
      client,
      rng,
      received: new Map(),
      acked: [],
      outstanding: new Set(),
      seq: 0,
    };
    client.onEvent((event) => this.#onEvent(tracked, event));
    // The listener records everything; this reader only keeps the queue empty.
    (async () => {
      for await (const _ of client.events) { /* drained */ }
    })();
    return tracked;
  }

  #onEvent(t: Tracked, event: ChatEvent): void {
    switch (event.type) {
      case "msg":
      case "dm": {
        if (goodIndex(event.from) < 0) {
          this.#otherReceived++;
          return;
        }
        const got = t.received.get(event.id);
        if (got === undefined) {
          t.received.set(event.id, { count: 1, from: event.from, text: event.text });
        } else got.count++;
        return;
      }
      case "disconnected":
        this.#disconnects++;
        return;
      case "reconnected":
        this.#reconnects++;
        return;
      case "closed":
        if (!this.#stopping) {
          this.#closed.push(`${t.nick}: ${event.reason ?? event.code ?? "closed"}`);
        }
        return;
      case "notice":
        count(this.#notices, event.code);
        if (this.#noticeTexts.length < 5) {
          this.#noticeTexts.push(`${t.nick} ${event.code}: ${event.text}`);
        }
        return;
      case "error":
        count(this.#serverErrors, event.code);
        return;
    }
  }

  async #chat(t: Tracked): Promise<void> {
    const [min, max] = this.#args.intervalMs;
    while (!this.#stopping && !t.client.closed) {
      await this.#sleep(t.rng.int(min, max));
      if (this.#stopping || t.client.closed) break;
      if (t.client.pendingRequests >= this.#args.maxOutstanding) {
        this.#skipped++;
        continue;
      }
      this.#send(t);
    }
  }

  /** The TLS options of every connection: none for plain TCP. */
  #tls(): { tls?: { caCerts: string[] } } {
    const ca = this.#args.tlsCa;
    return ca === undefined ? {} : { tls: { caCerts: [ca] } };
  }

  /** Logs in as the probe's nick on a fresh connection, again and again. */
  async #runProbe(probe: { nick: string; intervalMs: number }): Promise<void> {
    while (!this.#stopping) {
      const phase = this.#phase;
      const stats = this.#probe[phase] ??= { tries: 0, failures: 0, maxMs: 0, errors: [] };
      const started = performance.now();
      stats.tries++;
      try {
        const client = await ChatClient.connect({
          port: this.#args.port,
          nick: probe.nick,
          password: GOOD_PASSWORD,
          reconnect: false,
          connectTimeoutMs: 15_000,
          ...this.#tls(),
        });
        await client.close();
      } catch (err) {
        stats.failures++;
        if (stats.errors.length < 3) {
          stats.errors.push(
            err instanceof ChatError ? `${err.code}: ${err.message}` : describe(err),
          );
        }
      }
      stats.maxMs = Math.max(stats.maxMs, Math.round(performance.now() - started));
      await this.#sleep(probe.intervalMs);
    }
  }

  #send(t: Tracked): void {
    const { plan, dmShare } = this.#args;
    const phase = this.#phase;
    const sentAt = performance.now();
    t.seq++;
    const text = `${t.nick} says #${t.seq} (${t.rng.int(0, 0xffffff).toString(16)})`;
    let reply: Promise<{ msg: ChatMessage; duplicate: boolean }>;
    if (t.rng.chance(dmShare)) {
      let other = t.rng.int(0, plan.clients - 2);
      if (other >= t.index) other++;
      reply = t.client.dm(goodNick(other), text);
    } else {
      reply = t.client.say(t.rng.pick(t.rooms), text);
    }
    const done = reply.then(
      ({ msg, duplicate }) => {
        (this.#latencies[phase] ??= []).push(Math.round((performance.now() - sentAt) * 10) / 10);
        if (duplicate) this.#resentDuplicates++;
        if (msg.text !== text) this.#ackMismatches++;
        t.acked.push(
          msg.type === "msg"
            ? { id: msg.id, from: msg.from, room: msg.room, text: msg.text, phase }
            : { id: msg.id, from: msg.from, to: msg.to, text: msg.text, phase },
        );
      },
      (err) => {
        const code = err instanceof ChatError ? err.code : describe(err);
        count(this.#failures, code);
        count(this.#phaseFailures[phase] ??= {}, code);
      },
    );
    t.outstanding.add(done);
    done.finally(() => t.outstanding.delete(done));
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        this.#wakers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.#wakers.add(wake);
    });
  }

  #states(): Record<string, number> {
    const states: Record<string, number> = {};
    for (const t of this.#tracked) count(states, t.client.state);
    return states;
  }
}

/** Reads every message a client may see, with `sync` from id 0, page by page. */
async function syncAll(client: ChatClient): Promise<ChatMessage[]> {
  const all: ChatMessage[] = [];
  let after = 0;
  for (let page = 0; page < 100_000; page++) {
    const { messages, more } = await client.sync(after, 500);
    all.push(...messages);
    if (!more || messages.length === 0) break;
    for (const m of messages) after = Math.max(after, m.id);
  }
  return all;
}

async function inBatches<T>(items: T[], parallel: number, fn: (item: T) => Promise<void>) {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(parallel, items.length) }, worker));
}

function count(record: Record<string, number>, key: string): void {
  record[key] = (record[key] ?? 0) + 1;
}

function pushCapped(into: number[], ids: number[]): void {
  for (const id of ids) {
    if (into.length >= ID_LIST_LIMIT) return;
    into.push(id);
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function withTimeout(work: Promise<unknown>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([work, new Promise((resolve) => timer = setTimeout(resolve, ms))]);
  clearTimeout(timer);
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

if (import.meta.main) {
  let clients: GoodClients;
  try {
    const args = JSON.parse(Deno.args[0] ?? "") as GoodClientsArgs;
    clients = new GoodClients(args);
    await clients.setUp();
  } catch (err) {
    emit({ error: describe(err) });
    Deno.exit(1);
  }
  emit({ ready: true, pid: Deno.pid });
  await serveSideChannel({
    go: () => {
      clients.go();
      return {};
    },
    status: () => clients.status(),
    phase: (request) => {
      clients.setPhase(String(request.name));
      return {};
    },
    stop: (request) => clients.stop(Number(request.timeoutMs ?? 20_000)),
    verify: (request) =>
      clients.verify(request.acked as AckedMessage[], Number(request.timeoutMs ?? 20_000)),
    exit: () => clients.close(),
  });
  Deno.exit(0);
}
