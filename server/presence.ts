/**
 * Presence announcements, coalesced.
 *
 * On a small server every login and logout is told to every online session, so a storm
 * of n logins is n² events. Changes are gathered until the end of the current event-loop
 * turn (a 0 ms timer) and published as one batch ({@linkcode Broker.publishBatch}): one
 * buffer for all of them, shared by every receiver the whole batch reaches, and one
 * queued write per receiver instead of one per change. Every change is kept, in order,
 * even one undone within the same batch: others are told of each login and each logout.
 *
 * Above a size (`--presence-all-max`) a change is told only to the accounts it names
 * (`targets`: those sharing a room with it, or having it as a contact): the batch is
 * regrouped per receiver, one batch to each receiver's sessions. Targets are resolved
 * asynchronously (the store is asked); the batch waits for them, in order, and batches
 * are published one after the other, so that a receiver hears the changes in order.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { ALL_SUBJECT, type Broker, type Publication, userSubject } from "./broker.ts";

const log = getLogger(["chat", "server", "presence"]);

/** A change waiting for the end of the turn, and whom it is for (everyone: none). */
interface Pending {
  readonly publication: Publication;
  readonly targets?: Promise<Iterable<string>>;
}

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
  #pending: Pending[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;
  #batches = 0;
  /** The batch being published (the next waits for it). */
  #publishing: Promise<unknown> = Promise.resolve();

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
   * it blocks and those that block it; with `targets`, only for the sessions of those
   * account keys (but the same ones).
   */
  announce(
    who: PresenceSubject,
    online: boolean,
    ts: number,
    targets?: Promise<Iterable<string>>,
  ): void {
    const publication: Publication = {
      event: { type: "presence", nick: who.nick, online, ts },
      except: new Set([who.key, ...who.blocks, ...who.blockedBy ?? []]),
    };
    // Handled here too: a rejection is reported by the flush that awaits it.
    targets?.catch(() => {});
    this.#pending.push(targets === undefined ? { publication } : { publication, targets });
    this.#timer ??= setTimeout(() => this.flush(), 0);
  }

  /**
   * Publishes every pending change now to this node's sessions (each node tells its own:
   * `cluster_presence.ts`); resolves to how many sessions heard some.
   */
  flush(): Promise<number> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#pending.length === 0) return this.#publishing.then(() => 0);
    const batch = this.#pending;
    this.#pending = [];
    this.#batches++;
    const published = this.#publishing.then(() => this.#publish(batch));
    this.#publishing = published;
    return published;
  }

  /** Publishes a batch: runs for everyone as one, targeted runs per receiver. */
  async #publish(batch: Pending[]): Promise<number> {
    try {
      const targets = await Promise.all(batch.map((p) => p.targets));
      let reached = 0;
      for (let i = 0; i < batch.length;) {
        const everyone = targets[i] === undefined;
        let end = i + 1;
        while (end < batch.length && (targets[end] === undefined) === everyone) end++;
        const run = batch.slice(i, end).map((p) => p.publication);
        reached += everyone
          ? await this.#broker.publishLocalBatch(this.#subject, run)
          : await this.#publishTargeted(run, targets.slice(i, end) as Iterable<string>[]);
        i = end;
      }
      return reached;
    } catch (err) {
      log.error("publishing {count} presence change(s) failed: {err}", {
        count: batch.length,
        err,
      });
      return 0;
    }
  }

  /** Regroups publications per receiving account: one batch to each one's sessions. */
  async #publishTargeted(
    publications: Publication[],
    targets: Iterable<string>[],
  ): Promise<number> {
    const perReceiver = new Map<string, Publication[]>();
    for (let i = 0; i < publications.length; i++) {
      const publication = publications[i];
      for (const key of targets[i]) {
        if (publication.except?.has(key)) continue;
        const list = perReceiver.get(key);
        if (list === undefined) perReceiver.set(key, [publication]);
        else if (list[list.length - 1] !== publication) list.push(publication);
      }
    }
    let reached = 0;
    for (const [key, list] of perReceiver) {
      reached += await this.#broker.publishLocalBatch(userSubject(key), list);
    }
    return reached;
  }

  /** Drops pending changes (the server is stopping). */
  close(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#pending = [];
  }
}
