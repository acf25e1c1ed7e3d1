/**
 * Per-session flood control: token buckets for messages, requests and bytes, and a
 * count of refusals in a row that marks a persistent flooder.
 *
 * @module
 */

import type { ServerConfig } from "./config.ts";
import { TokenBucket } from "./rate_limit.ts";

/** Request types that send a message to others. */
export const MESSAGE_TYPES: ReadonlySet<string> = new Set(["say", "dm", "broadcast"]);
/**
 * Request types never limited: keepalives; relayed peer records, which only reach the
 * one peer of an accepted private session and are paced by its reading; and file
 * chunks and file reads (server/files.ts), which carry file bytes and have their own
 * bounds instead of the per-session byte bucket: a chunk is written to disk before the
 * next frame is read, uploads are capped by the file size limit and the per-account
 * quota, and a read sends at most a quarter of the outbound queue.
 */
const FREE_TYPES: ReadonlySet<string> = new Set(["ping", "relay", "file_chunk", "file_read"]);

/** Seconds over which refusals count towards a flood disconnect. */
export const STRIKE_WINDOW_SEC = 10;

/**
 * Request tokens a request costs: one, or one per 50 messages a history or sync page
 * may return, so that a burst of long pages cannot monopolise the server.
 */
export function requestCost(request: { type: string; limit?: number }): number {
  if (request.type === "history") return Math.max(1, Math.ceil((request.limit ?? 50) / 50));
  if (request.type === "sync") return Math.max(1, Math.ceil((request.limit ?? 500) / 50));
  return 1;
}

/** The outcome of {@linkcode FloodControl.admit}. */
export type Admission =
  | { admitted: true }
  | { admitted: false; retryAfter: number; what: string; persistent: boolean };

/**
 * Decides whether a session's request may run now. Pasting a few lines works (the
 * burst); a steady excess gets `rate_limited` refusals; `floodStrikes` refusals in a row
 * mark the session as a persistent flooder, to be disconnected.
 *
 * @example
 * ```ts
 * import { FloodControl } from "./flood_control.ts";
 * import { resolveServerConfig } from "./config.ts";
 * const flood = new FloodControl(resolveServerConfig(), 0);
 * flood.admit("say", 100, 0); // { admitted: true }
 * ```
 */
export class FloodControl {
  readonly #messages: TokenBucket;
  readonly #requests: TokenBucket;
  readonly #bytes: TokenBucket;
  /** Refusals still tolerated: drained by each refusal, refilled over {@linkcode STRIKE_WINDOW_SEC}. */
  readonly #strikes: TokenBucket | null;

  /** Creates full buckets from the config's rates, at time `now` (ms). */
  constructor(config: ServerConfig, now: number) {
    this.#messages = new TokenBucket(config.rateMessagesPerSec, config.rateMessagesBurst, now);
    this.#requests = new TokenBucket(config.rateRequestsPerSec, config.rateRequestsBurst, now);
    this.#bytes = new TokenBucket(config.rateBytesPerSec, config.rateBytesBurst, now);
    const strikes = config.floodStrikes;
    this.#strikes = strikes > 0 ? new TokenBucket(strikes / STRIKE_WINDOW_SEC, strikes, now) : null;
  }

  /**
   * Admits or refuses a request of `type` that took `bytes` on the wire and costs
   * `cost` request tokens (expensive requests, such as long history pages, cost more).
   */
  admit(type: string, bytes: number, now: number, cost = 1): Admission {
    if (FREE_TYPES.has(type)) return { admitted: true };
    const refusal = this.#refusal(type, bytes, now, cost);
    if (refusal === null) return { admitted: true };
    // Persistent: more refusals within the window than the strikes allowed, whether in a
    // row or spread between the requests that the refilling buckets let through.
    const persistent = this.#strikes !== null && !this.#strikes.take(1, now);
    return {
      admitted: false,
      retryAfter: Math.max(0.1, Math.ceil(refusal.wait * 10) / 10),
      what: refusal.what,
      persistent,
    };
  }

  #refusal(
    type: string,
    bytes: number,
    now: number,
    cost: number,
  ): { wait: number; what: string } | null {
    // Check every bucket before taking from any, so a refusal costs nothing.
    const isMessage = MESSAGE_TYPES.has(type);
    let wait = this.#requests.waitSeconds(cost, now);
    if (wait > 0) return { wait, what: "requests" };
    wait = this.#bytes.waitSeconds(bytes, now);
    if (wait > 0) return { wait, what: "bytes" };
    if (isMessage) {
      wait = this.#messages.waitSeconds(1, now);
      if (wait > 0) return { wait, what: "messages" };
      this.#messages.take(1, now);
    }
    this.#requests.take(cost, now);
    this.#bytes.take(bytes, now);
    return null;
  }
}
