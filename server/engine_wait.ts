/**
 * Waiting for an engine (PostgreSQL, NATS) when a node starts: it may be starting too (a
 * machine's boot, `docker compose up`), so a node tries again with a growing pause, for a
 * bounded time, then gives up with what to check.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";

const log = getLogger(["chat", "server", "engines"]);

/** Raised when an engine could not be reached at start within the wait. */
export class EngineUnavailableError extends Error {
  /** Stable error code. */
  readonly code = "engine_unavailable";

  /** Creates the error with a one-line message. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "EngineUnavailableError";
  }
}

/** How {@linkcode waitForEngine} waits. */
export interface EngineWait {
  /** The engine and where, for messages: `PostgreSQL at postgres://chat@db/chat`. */
  readonly what: string;
  /** Longest wait in all, in ms. */
  readonly timeoutMs: number;
  /** What to check when it fails, ending the error message. */
  readonly hint: string;
  /** First pause between two tries, in ms (doubles up to 2 s; default 250). */
  readonly retryMs?: number;
  /** Whether a failure will not go away by waiting (a wrong password): no more tries. */
  readonly permanent?: (err: unknown) => boolean;
}

/**
 * Calls `open` until it resolves, pausing between tries, for at most `timeoutMs`.
 *
 * @throws {EngineUnavailableError} saying what failed last and what to check.
 * @example
 * ```ts ignore
 * import { waitForEngine } from "./engine_wait.ts";
 * const link = await waitForEngine(() => NatsLink.open(url), {
 *   what: `NATS at ${url}`,
 *   timeoutMs: 30_000,
 *   hint: "that nats-server runs there",
 * });
 * ```
 */
export async function waitForEngine<T>(open: () => Promise<T>, wait: EngineWait): Promise<T> {
  const started = Date.now();
  let pause = wait.retryMs ?? 250;
  let tries = 0;
  for (;;) {
    tries++;
    try {
      const opened = await open();
      if (tries > 1) log.info("{what} answered after {tries} tries", { what: wait.what, tries });
      return opened;
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      const waited = Date.now() - started;
      if (wait.permanent?.(err) === true || waited + pause > wait.timeoutMs) {
        const after = tries === 1 ? "" : ` after ${Math.round(waited / 1000)} s (${tries} tries)`;
        throw new EngineUnavailableError(
          `cannot reach ${wait.what}${after}: ${why}; check ${wait.hint}`,
          { cause: err },
        );
      }
      log.warn("{what} does not answer ({why}); trying again in {pause} ms", {
        what: wait.what,
        why,
        pause,
      });
      await new Promise((resolve) => setTimeout(resolve, pause));
      pause = Math.min(2000, pause * 2);
    }
  }
}
