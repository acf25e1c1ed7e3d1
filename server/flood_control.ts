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
 * Request types never limited: keepalives, and relayed peer records, which only reach
 * the one peer of an accepted private session and are paced by its reading.
 */
const FREE_TYPES: ReadonlySet<string> = new Set(["ping", "relay"]);

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
  readonly #strikesAllowed: number;
  #strikes = 0;

  /** Creates full buckets from the config's rates, at time `now` (ms). */
  constructor(config: ServerConfig, now: number) {
    this.#messages = new TokenBucket(config.rateMessagesPerSec, config.rateMessagesBurst, now);
    this.#requests = new TokenBucket(config.rateRequestsPerSec, config.rateRequestsBurst, now);
    this.#bytes = new TokenBucket(config.rateBytesPerSec, config.rateBytesBurst, now);
    this.#strikesAllowed = config.floodStrikes;
  }

  /** Admits or refuses a request of `type` that took `bytes` on the wire. */
  admit(type: string, bytes: number, now: number): Admission {
    if (FREE_TYPES.has(type)) return { admitted: true };
    const refusal = this.#refusal(type, bytes, now);
    if (refusal === null) {
      this.#strikes = 0;
      return { admitted: true };
    }
    this.#strikes++;
    return {
      admitted: false,
      retryAfter: Math.max(0.1, Math.ceil(refusal.wait * 10) / 10),
      what: refusal.what,
      persistent: this.#strikesAllowed > 0 && this.#strikes >= this.#strikesAllowed,
    };
  }

  #refusal(type: string, bytes: number, now: number): { wait: number; what: string } | null {
    // Check every bucket before taking from any, so a refusal costs nothing.
    const isMessage = MESSAGE_TYPES.has(type);
    let wait = this.#requests.waitSeconds(1, now);
    if (wait > 0) return { wait, what: "requests" };
    wait = this.#bytes.waitSeconds(bytes, now);
    if (wait > 0) return { wait, what: "bytes" };
    if (isMessage) {
      wait = this.#messages.waitSeconds(1, now);
      if (wait > 0) return { wait, what: "messages" };
      this.#messages.take(1, now);
    }
    this.#requests.take(1, now);
    this.#bytes.take(bytes, now);
    return null;
  }
}
