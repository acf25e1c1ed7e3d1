/**
 * Times kept per connection (when it opened, a session's last command) as whole
 * milliseconds of the monotonic clock.
 *
 * V8 keeps a field that holds a fraction (`performance.now()` gives some) in a number box
 * of its own, 16 bytes for each object, once any object of its shape stored one; a whole
 * number below 2³¹ (`performance.now()` for the first 24 days of the process) sits in the
 * field itself. Past that it is boxed again, as before: dearer, not wrong. Every write to
 * such a field must go through {@linkcode wholeMs}: one fraction boxes the field in every
 * object of that shape.
 *
 * @example
 * ```ts
 * import { wholeMs } from "./whole_ms.ts";
 * const openedAt = wholeMs(performance.now()); // 1234, not 1234.5678
 * ```
 *
 * @module
 */

/** `ms` rounded down to a whole millisecond. */
export function wholeMs(ms: number): number {
  return Math.floor(ms);
}
