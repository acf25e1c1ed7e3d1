/**
 * Keeps list replies under the frame size a client accepts.
 *
 * A reply is one frame, and a client refuses a frame over its maximum (1 MiB by
 * default), so every list a reply carries is cut to a byte budget measured on its
 * JSON encoding, as it goes on the wire: a control character takes 6 bytes there
 * (`\u0001`), a CJK character 3, so counting characters is not enough. What does not
 * fit is left for the next page (`more`) or reported as cut (`truncated`).
 *
 * @module
 */

import { DEFAULT_MAX_FRAME_SIZE } from "../protocol/frame.ts";
import { encodedSize } from "../protocol/json_size.ts";

/**
 * Bytes the lists of one reply may take together: half of the smaller of the server's
 * frame limit and the default one (what clients accept unless told otherwise), which
 * leaves room for the rest of the reply.
 */
export function replyBudget(maxFrameSize: number): number {
  return Math.floor(Math.min(maxFrameSize, DEFAULT_MAX_FRAME_SIZE) / 2);
}

/**
 * Bytes one item alone may take in a page, over the budget: what a frame holds beside
 * the reply's other fields. A page keeps its first item when it fits so, so that paging
 * always moves on (a long message under a small `--max-frame`).
 */
export function replyFloor(maxFrameSize: number): number {
  return Math.max(0, Math.min(maxFrameSize, DEFAULT_MAX_FRAME_SIZE) - 256);
}

/** What {@linkcode fitFirst} and {@linkcode fitLast} keep, and whether they cut. */
export interface Fitted<T> {
  /** The items kept, in their order. */
  items: T[];
  /** Whether some items were left out. */
  cut: boolean;
  /** Bytes the kept items take (with a separator each). */
  bytes: number;
}

/**
 * Keeps the first items whose encodings (plus a comma each) fit in `budget` bytes; at
 * least the first one when it takes at most `floor` bytes ({@linkcode replyFloor}).
 *
 * @example
 * ```ts
 * import { fitFirst } from "./reply_budget.ts";
 * fitFirst(["aaaa", "bbbb", "cccc"], 14).items; // ["aaaa", "bbbb"]
 * ```
 */
export function fitFirst<T>(items: readonly T[], budget: number, floor = 0): Fitted<T> {
  let used = 0;
  let end = 0;
  while (end < items.length) {
    const size = encodedSize(items[end]) + 1;
    if (used + size > (end === 0 ? Math.max(budget, floor) : budget)) break;
    used += size;
    end++;
  }
  return { items: items.slice(0, end), cut: end < items.length, bytes: used };
}

/**
 * Keeps the last items (the newest) that fit in `budget` bytes, in their order; at
 * least the last one when it takes at most `floor` bytes.
 */
export function fitLast<T>(items: readonly T[], budget: number, floor = 0): Fitted<T> {
  let used = 0;
  let start = items.length;
  while (start > 0) {
    const size = encodedSize(items[start - 1]) + 1;
    if (used + size > (start === items.length ? Math.max(budget, floor) : budget)) break;
    used += size;
    start--;
  }
  return { items: items.slice(start), cut: start > 0, bytes: used };
}
