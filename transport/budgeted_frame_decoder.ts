/**
 * A frame decoder whose large payloads are reserved in a {@linkcode PartialFrameBudget}
 * shared by every connection of a server, from the moment their length is known until
 * they are complete (or the connection ends).
 *
 * @module
 */

import { FrameDecoder, type FrameDecoderOptions } from "../protocol/frame.ts";
import { ProtocolError } from "../protocol/errors.ts";
import type { PartialFrameBudget } from "./partial_frame_budget.ts";

/**
 * Incoming frames smaller than this are not counted against a
 * {@linkcode PartialFrameBudget}: chat requests stay possible when large frames have
 * filled it, and what they hold is bounded by the connections.
 */
export const UNBUDGETED_FRAME_BYTES: number = 16 * 1024;

/**
 * A {@linkcode FrameDecoder} that reserves each payload of at least
 * {@linkcode UNBUDGETED_FRAME_BYTES} in a shared budget before allocating it, and gives
 * the reservation back once the payload is complete ({@linkcode release} gives it back
 * earlier: the connection ended).
 *
 * @example
 * ```ts
 * import { BudgetedFrameDecoder, UNBUDGETED_FRAME_BYTES } from "./budgeted_frame_decoder.ts";
 * import { PartialFrameBudget } from "./partial_frame_budget.ts";
 * import { encodeFrame } from "../protocol/frame.ts";
 * const budget = new PartialFrameBudget(() => 1024 * 1024);
 * const decoder = new BudgetedFrameDecoder(budget, {});
 * const frame = encodeFrame({ type: "x" }, new Uint8Array(UNBUDGETED_FRAME_BYTES));
 * decoder.push(frame.subarray(0, 100));
 * budget.held > UNBUDGETED_FRAME_BYTES; // true: the payload under way is reserved
 * decoder.push(frame.subarray(100));
 * budget.held; // 0
 * ```
 */
export class BudgetedFrameDecoder extends FrameDecoder {
  readonly #budget: PartialFrameBudget;
  /** Bytes reserved for the payload under way. */
  #reserved = 0;

  /** A decoder reserving in `budget`. */
  constructor(budget: PartialFrameBudget, options: FrameDecoderOptions) {
    super(options);
    this.#budget = budget;
  }

  /** Bytes reserved now (for the payload under way). */
  get reserved(): number {
    return this.#reserved;
  }

  /**
   * Reserves a new payload's bytes (the one before it is complete: its reservation is
   * given back first), then allocates it.
   *
   * @throws {ProtocolError} `server_busy` when the budget cannot hold it.
   */
  protected override allocatePayload(length: number): Uint8Array {
    this.release();
    if (length >= UNBUDGETED_FRAME_BYTES) {
      const budget = this.#budget;
      if (!budget.tryReserve(length)) {
        throw new ProtocolError(
          "server_busy",
          `the server holds ${budget.held} bytes of unfinished frames, its limit of ${budget.limit}: cannot take a frame of ${length} bytes now`,
        );
      }
      this.#reserved = length;
    }
    return super.allocatePayload(length);
  }

  /** See {@linkcode FrameDecoder.push}; a payload it completes is no longer reserved. */
  override push(chunk: Uint8Array): Uint8Array[] {
    const payloads = super.push(chunk);
    if (this.#reserved > 0 && this.partialLength === 0) this.release();
    return payloads;
  }

  /** See {@linkcode FrameDecoder.filled}; a payload it completes is no longer reserved. */
  override filled(n: number): Uint8Array[] {
    const payloads = super.filled(n);
    if (this.#reserved > 0 && this.partialLength === 0) this.release();
    return payloads;
  }

  /** Gives the reservation back, if any (the payload completed, or the connection ends). */
  release(): void {
    if (this.#reserved === 0) return;
    this.#budget.release(this.#reserved);
    this.#reserved = 0;
  }
}
