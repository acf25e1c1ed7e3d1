/**
 * Presence announcements, coalesced.
 *
 * Every login and logout is told to every online session, so a storm of n logins is n²
 * events. Changes are gathered until the end of the current event-loop turn (a 0 ms
 * timer) and published as one batch ({@linkcode Broker.publishBatch}): one buffer for all
 * of them, shared by every receiver the whole batch reaches, and one queued write per
 * receiver instead of one per change. Every change is kept, in order, even one undone
 * within the same batch: others are told of each login and each logout.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { ALL_SUBJECT, type Broker, type Publication } from "./broker.ts";

const log = getLogger(["chat", "server", "presence"]);

/**
 * Who changed: an account's key, nick, the keys it blocks and the keys of those that
 * block it (neither is told: a block hides presence both ways).
 */
export interface PresenceSubject {
  /** Account key. */
  readonly key: string;
  /** Display nick. */
  readonly nick: string;
  /** Keys of the accounts it blocks. */
  readonly blocks: ReadonlySet<string>;
  /** Keys of the (online) accounts that block it. */
  readonly blockedBy?: ReadonlySet<string>;
}

/**
 * Gathers presence changes and publishes them together at the end of the turn.
 *
 * @example
 * ```ts
 * import { LocalBroker } from "./broker.ts";
 * import { PresenceBatcher } from "./presence.ts";
 * const presence = new PresenceBatcher(new LocalBroker());
 * presence.announce({ key: "ann", nick: "Ann", blocks: new Set() }, true, Date.now());
 * await presence.flush();
 * ```
 */
export class PresenceBatcher {
  readonly #broker: Broker;
  readonly #subject: string;
  #pending: Publication[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;
  #batches = 0;

  /** Publishes to `subject` of `broker` (default: every session). */
  constructor(broker: Broker, subject: string = ALL_SUBJECT) {
    this.#broker = broker;
    this.#subject = subject;
  }

  /** Changes waiting for the end of the turn. */
  get pending(): number {
    return this.#pending.length;
  }

  /** Batches published so far. */
  get batches(): number {
    return this.#batches;
  }

  /**
   * Queues a change of `who` to `online` at `ts`, for every session but its own, those
   * it blocks and those that block it.
   */
  announce(who: PresenceSubject, online: boolean, ts: number): void {
    this.#pending.push({
      event: { type: "presence", nick: who.nick, online, ts },
      except: new Set([who.key, ...who.blocks, ...who.blockedBy ?? []]),
    });
    this.#timer ??= setTimeout(() => this.flush(), 0);
  }

  /**
   * Publishes every pending change now to this node's sessions (each node tells its own:
   * `cluster_presence.ts`); resolves to how many sessions heard some.
   */
  async flush(): Promise<number> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#pending.length === 0) return 0;
    const batch = this.#pending;
    this.#pending = [];
    this.#batches++;
    try {
      return await this.#broker.publishLocalBatch(this.#subject, batch);
    } catch (err) {
      log.error("publishing {count} presence change(s) failed: {err}", {
        count: batch.length,
        err,
      });
      return 0;
    }
  }

  /** Drops pending changes (the server is stopping). */
  close(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#pending = [];
  }
}
