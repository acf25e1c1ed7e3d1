/**
 * Exponential backoff with jitter, for reconnecting.
 *
 * @module
 */

/** How reconnection attempts are spaced. */
export interface BackoffPolicy {
  /** Delay before the first attempt, in ms. Default 1000. */
  initialDelayMs?: number;
  /** Largest delay, in ms. Default 30000. */
  maxDelayMs?: number;
  /** Attempts before giving up. Default `Infinity`. */
  maxAttempts?: number;
  /**
   * Fraction of each delay that is random, from 0 (none) to 1 (anywhere between 0
   * and the full delay), so that many clients cut off at once do not come back in
   * lockstep. `true` means 0.5, `false` 0. Default 0.5.
   */
  jitter?: number | boolean;
}

/** A {@linkcode BackoffPolicy} with every field filled in. */
export type ResolvedBackoffPolicy = Required<Omit<BackoffPolicy, "jitter">> & { jitter: number };

/** The defaults of {@linkcode BackoffPolicy}. */
export const DEFAULT_BACKOFF: Readonly<ResolvedBackoffPolicy> = Object.freeze({
  initialDelayMs: 1000,
  maxDelayMs: 30_000,
  maxAttempts: Infinity,
  jitter: 0.5,
});

/**
 * Fills in the defaults of a policy and checks its values.
 *
 * @throws {RangeError} on negative delays, a maximum below the initial delay, fewer
 * than one attempt, or a jitter outside 0..1.
 */
export function resolveBackoff(policy: BackoffPolicy = {}): ResolvedBackoffPolicy {
  const jitter = policy.jitter === true
    ? 0.5
    : policy.jitter === false
    ? 0
    : policy.jitter ?? DEFAULT_BACKOFF.jitter;
  const resolved = {
    initialDelayMs: policy.initialDelayMs ?? DEFAULT_BACKOFF.initialDelayMs,
    maxDelayMs: policy.maxDelayMs ??
      Math.max(DEFAULT_BACKOFF.maxDelayMs, policy.initialDelayMs ?? 0),
    maxAttempts: policy.maxAttempts ?? DEFAULT_BACKOFF.maxAttempts,
    jitter,
  };
  if (!(resolved.initialDelayMs >= 0)) {
    throw new RangeError(`initialDelayMs must be >= 0, got ${resolved.initialDelayMs}`);
  }
  if (!(resolved.maxDelayMs >= resolved.initialDelayMs)) {
    throw new RangeError(
      `maxDelayMs (${resolved.maxDelayMs}) must be >= initialDelayMs (${resolved.initialDelayMs})`,
    );
  }
  if (!(resolved.maxAttempts >= 1)) {
    throw new RangeError(`maxAttempts must be >= 1, got ${resolved.maxAttempts}`);
  }
  if (!(jitter >= 0 && jitter <= 1)) {
    throw new RangeError(`jitter must be between 0 and 1, got ${jitter}`);
  }
  return resolved;
}

/**
 * The delay before attempt number `attempt` (1 for the first): the initial delay
 * doubled for each earlier attempt, capped at the maximum, minus a random part of
 * at most `jitter` of it.
 *
 * @example
 * ```ts
 * import { backoffDelay, resolveBackoff } from "./backoff.ts";
 * const policy = resolveBackoff({ initialDelayMs: 100, maxDelayMs: 1000, jitter: 0 });
 * backoffDelay(1, policy); // 100
 * backoffDelay(3, policy); // 400
 * backoffDelay(9, policy); // 1000
 * ```
 */
export function backoffDelay(
  attempt: number,
  policy: ResolvedBackoffPolicy,
  random: () => number = Math.random,
): number {
  const exponent = Math.min(Math.max(attempt - 1, 0), 52);
  const base = Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** exponent);
  return Math.round(base * (1 - policy.jitter * random()));
}
