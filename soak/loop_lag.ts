/**
 * Load of the current process: its CPU time, and its event-loop lag (how late a short periodic timer fires. A
 * process whose loop stalls for seconds answers nobody meanwhile; the soak reports
 * this for the server and for the well-behaved clients, so that a failure can be
 * told apart from an overloaded machine.
 *
 * @module
 */

import process from "node:process";

/** CPU seconds (user and system) this process has used so far. */
export function cpuSeconds(): number {
  const { user, system } = process.cpuUsage();
  return Math.round((user + system) / 1e5) / 10;
}

/**
 * Watches the event loop with a timer every `intervalMs`.
 *
 * @example
 * ```ts
 * import { LoopLag } from "./loop_lag.ts";
 * const lag = new LoopLag();
 * lag.stop();
 * lag.take(); // { maxMs: 0, stallsOver1s: 0 }
 * ```
 */
export class LoopLag {
  #maxMs = 0;
  #stalls = 0;
  #last = performance.now();
  readonly #intervalMs: number;
  readonly #timer: ReturnType<typeof setInterval>;

  /** Starts watching. */
  constructor(intervalMs = 50) {
    this.#intervalMs = intervalMs;
    this.#timer = setInterval(() => this.#tick(), intervalMs);
    Deno.unrefTimer(this.#timer);
  }

  /** The longest lag and the stalls over 1 s since the last call, then starts over. */
  take(): { maxMs: number; stallsOver1s: number } {
    this.#tick();
    const out = { maxMs: Math.round(this.#maxMs), stallsOver1s: this.#stalls };
    this.#maxMs = 0;
    this.#stalls = 0;
    return out;
  }

  /** Stops watching. */
  stop(): void {
    clearInterval(this.#timer);
  }

  #tick(): void {
    const now = performance.now();
    const lag = Math.max(0, now - this.#last - this.#intervalMs);
    this.#last = now;
    if (lag > this.#maxMs) this.#maxMs = lag;
    if (lag > 1000) this.#stalls++;
  }
}
