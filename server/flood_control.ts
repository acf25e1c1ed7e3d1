/**
 * Per-connection flood control: token buckets for messages, requests and bytes, a
 * byte budget that paces file and relay traffic, a count of refusals that marks a
 * persistent flooder, and a count of errors in a row that marks a session producing
 * nothing but errors. Every frame after `hello` costs something, before login too,
 * and a request answered with an error costs more.
 *
 * @module
 */

import type { ServerConfig } from "./config.ts";
import { TokenBucket } from "./rate_limit.ts";

/** Request types that send a message to others. */
export const MESSAGE_TYPES: ReadonlySet<string> = new Set(["say", "dm", "broadcast"]);
/**
 * Request types that take from the message bucket: the messages, and `away`, whose every
 * change is told to everyone online (a status flipped in a loop would be a broadcast).
 */
export const TOLD_TO_OTHERS: ReadonlySet<string> = new Set([...MESSAGE_TYPES, "away"]);
/**
 * Request types that carry file or peer bytes: relayed peer records, file chunks (bytes
 * in) and file reads (bytes out). They are paced, not refused: each takes a request
 * token and its bytes from the session's file byte budget, and when the budget is spent
 * the connection waits before running it (and reading on), so a transfer slows down
 * instead of failing.
 */
export const PACED_TYPES: ReadonlySet<string> = new Set(["relay", "file_chunk", "file_read"]);

/** Request tokens an error reply costs on top of its request's: errors cost more. */
export const ERROR_COST = 4;
/** Request tokens a login costs: it runs a password hash. */
export const LOGIN_COST = 10;

/** Seconds over which refusals count towards a flood disconnect. */
export const STRIKE_WINDOW_SEC = 10;

/**
 * Request tokens a request costs: one, or one per 50 messages a history or sync page
 * may return, so that a burst of long pages cannot monopolise the server.
 */
export function requestCost(request: { type: string; limit?: number }): number {
  if (request.type === "login") return LOGIN_COST;
  if (request.type === "history") return Math.max(1, Math.ceil((request.limit ?? 50) / 50));
  if (request.type === "sync") return Math.max(1, Math.ceil((request.limit ?? 500) / 50));
  return 1;
}

/**
 * The bytes a paced request moves: what it sent (`frameBytes`), plus what a `file_read`
 * asks to be sent back.
 */
export function pacedBytes(request: { type: string; length?: number }, frameBytes: number): number {
  return frameBytes + (request.type === "file_read" ? request.length ?? 0 : 0);
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
  readonly #config: ServerConfig;
  /**
   * The buckets, each created full on its first use (an untouched bucket would be full
   * anyway): an idle session holds none. `null`: not used yet.
   */
  #messages: TokenBucket | null = null;
  #requestBucket: TokenBucket | null = null;
  #byteBucket: TokenBucket | null = null;
  #fileBytes: TokenBucket | null = null;
  /** Errors in a row that mark a session producing only errors; 0: never. */
  readonly #maxErrors: number;
  #errorsInARow = 0;
  /** Refusals still tolerated: drained by each refusal, refilled over {@linkcode STRIKE_WINDOW_SEC}. */
  #strikes: TokenBucket | null = null;

  /**
   * Starts with full buckets from the config's rates, at time `now` (ms). (Each is
   * created on its first use, full: the same as one created now and left untouched.)
   */
  constructor(config: ServerConfig, _now: number) {
    this.#config = config;
    this.#maxErrors = config.floodStrikes;
  }

  get #requests(): TokenBucket {
    const c = this.#config;
    return this.#requestBucket ??= new TokenBucket(
      c.rateRequestsPerSec,
      c.rateRequestsBurst,
      0,
    );
  }

  get #bytes(): TokenBucket {
    const c = this.#config;
    return this.#byteBucket ??= new TokenBucket(c.rateBytesPerSec, c.rateBytesBurst, 0);
  }

  /**
   * Admits or refuses a request of `type` that took `bytes` on the wire and costs
   * `cost` request tokens (expensive requests, such as long history pages, cost more).
   */
  admit(type: string, bytes: number, now: number, cost = 1): Admission {
    const refusal = this.#refusal(type, bytes, now, cost);
    if (refusal === null) return { admitted: true };
    // Persistent: more refusals within the window than the strikes allowed, whether in a
    // row or spread between the requests that the refilling buckets let through.
    const strikes = this.#maxErrors;
    if (strikes > 0) {
      this.#strikes ??= new TokenBucket(strikes / STRIKE_WINDOW_SEC, strikes, now);
    }
    const persistent = this.#strikes !== null && !this.#strikes.take(1, now);
    return {
      admitted: false,
      retryAfter: Math.max(0.1, Math.ceil(refusal.wait * 10) / 10),
      what: refusal.what,
      persistent,
    };
  }

  /**
   * Takes a paced request's token and `bytes` from the file byte budget, in advance;
   * returns the seconds to wait before running it (0: now).
   */
  pace(bytes: number, now: number): number {
    const rate = this.#config.rateFileBytesPerSec;
    this.#fileBytes ??= new TokenBucket(rate, rate, now);
    return Math.max(this.#requests.reserve(1, now), this.#fileBytes.reserve(bytes, now));
  }

  /**
   * Records a request answered with an error: it costs {@linkcode ERROR_COST} more
   * request tokens. Returns true when the last `floodStrikes` requests all failed: a
   * session that only produces errors, to be disconnected like a flooder.
   */
  failed(now: number): boolean {
    this.#requests.reserve(ERROR_COST, now);
    this.#errorsInARow++;
    return this.#maxErrors > 0 && this.#errorsInARow >= this.#maxErrors;
  }

  /** Records a request answered with `ok`: the errors in a row start over. */
  succeeded(): void {
    this.#errorsInARow = 0;
  }

  #refusal(
    type: string,
    bytes: number,
    now: number,
    cost: number,
  ): { wait: number; what: string } | null {
    // Check every bucket before taking from any, so a refusal costs nothing.
    const isMessage = TOLD_TO_OTHERS.has(type);
    let wait = this.#requests.waitSeconds(cost, now);
    if (wait > 0) return { wait, what: "requests" };
    wait = this.#bytes.waitSeconds(bytes, now);
    if (wait > 0) return { wait, what: "bytes" };
    if (isMessage) {
      const c = this.#config;
      this.#messages ??= new TokenBucket(c.rateMessagesPerSec, c.rateMessagesBurst, now);
      wait = this.#messages.waitSeconds(1, now);
      if (wait > 0) return { wait, what: "messages" };
      this.#messages.take(1, now);
    }
    this.#requests.take(cost, now);
    this.#bytes.take(bytes, now);
    return null;
  }
}
