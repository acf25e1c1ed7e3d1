/**
 * Changes a node tells the others on a {@linkcode ClusterBus} topic and waits for, until
 * every other node has applied them: what a command changed is then seen by a request
 * on any node right after its answer, as on one server (issue 15: no stale caches,
 * limits that hold across nodes). The message carries a `seq`; each node that applies
 * it answers `{t: "applied", to, seq}` on the same topic. The sender waits for the nodes
 * it hears from (`peers`, from the cluster's presence) and no longer than `timeoutMs`:
 * a node that does not answer is taken for dead by then. Alone, nothing is waited for.
 *
 * @example
 * ```ts
 * import { LocalClusterNetwork } from "./cluster_bus.ts";
 * import { ClusterApplied } from "./cluster_applied.ts";
 * const network = new LocalClusterNetwork();
 * const [a, b] = [network.bus("a"), network.bus("b")];
 * const told = new ClusterApplied(a, "rooms", { peers: () => ["b"], timeoutMs: 1000 });
 * const answers = new ClusterApplied(b, "rooms");
 * await a.listen("rooms", (m) => told.receive(m));
 * await b.listen("rooms", (m) => {
 *   if (answers.receive(m)) return;
 *   // ... apply m.data here ...
 *   answers.applied(m);
 * });
 * await told.send({ t: "topic", room: "lobby" }); // resolves once b answered
 * ```
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { ClusterBus, ClusterMessage } from "./cluster_bus.ts";

const log = getLogger(["chat", "server", "cluster"]);

/** How a {@linkcode ClusterApplied} waits. */
export interface ClusterAppliedOptions {
  /** The other nodes taken for alive, whose answers a change waits for (default none). */
  peers?(): Iterable<string>;
  /** The longest a change waits for the answers, in ms (default 6000). */
  readonly timeoutMs?: number;
}

/** An answer: node `to`'s change `seq` is applied. */
interface Applied {
  t: "applied";
  to: string;
  seq: number;
}

/** Sends changes on one topic and waits until the other nodes applied them. */
export class ClusterApplied {
  readonly #bus: ClusterBus;
  readonly #topic: string;
  readonly #options: ClusterAppliedOptions;
  /** Changes sent and waiting for answers, by `seq`: called with each answering node. */
  readonly #waiting = new Map<number, (node: string | null) => void>();
  #seq = 0;

  constructor(bus: ClusterBus, topic: string, options: ClusterAppliedOptions = {}) {
    this.#bus = bus;
    this.#topic = topic;
    this.#options = options;
  }

  /**
   * Sends `change` (an object whose `t` is not `applied`) on the topic; resolves once
   * every peer answered that it applied it, or after the timeout.
   */
  async send(change: Record<string, unknown>): Promise<void> {
    const waiting = new Set(this.#options.peers?.() ?? []);
    if (waiting.size === 0) {
      this.#bus.send(this.#topic, change);
      return;
    }
    const seq = ++this.#seq;
    const done = Promise.withResolvers<void>();
    this.#waiting.set(seq, (node) => {
      if (node !== null) waiting.delete(node);
      if (node === null || waiting.size === 0) done.resolve();
    });
    const timeoutMs = this.#options.timeoutMs ?? 6000;
    const timer = setTimeout(() => {
      log.warn("nodes {nodes} did not apply a change on {topic} within {ms} ms", {
        nodes: [...waiting],
        topic: this.#topic,
        ms: timeoutMs,
      });
      done.resolve();
    }, timeoutMs);
    try {
      this.#bus.send(this.#topic, { ...change, seq });
      await done.promise;
    } finally {
      clearTimeout(timer);
      this.#waiting.delete(seq);
    }
  }

  /** Handles `message` if it is an answer (true); false for a change to apply. */
  receive({ from, data }: ClusterMessage): boolean {
    const answer = data as Partial<Applied> | null;
    if (answer?.t !== "applied") return false;
    if (answer.to === this.#bus.nodeId && typeof answer.seq === "number") {
      this.#waiting.get(answer.seq)?.(from);
    }
    return true;
  }

  /** Answers a change received from another node: it is applied here. */
  applied({ from, data }: ClusterMessage): void {
    const seq = (data as { seq?: unknown } | null)?.seq;
    if (from === this.#bus.nodeId || typeof seq !== "number") return;
    this.#bus.send(this.#topic, { t: "applied", to: from, seq } satisfies Applied);
  }

  /** Stops waiting: every change waiting for answers is done. */
  close(): void {
    for (const done of [...this.#waiting.values()]) done(null);
  }
}
