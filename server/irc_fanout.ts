/**
 * One translation per fan-out: the hub encodes an event once and hands the same bytes
 * to every receiving session; an IRC receiver must turn them into IRC lines. Decoding
 * the frames again for each of a room's IRC members (JSON, UTF-8) and formatting the
 * same lines again cost most of an IRC delivery; this cache decodes each frames buffer
 * once and, for events whose lines depend on the receiver's capabilities only
 * ({@linkcode SHARED_EVENT_TYPES}), formats them once per set of capabilities.
 *
 * The hub's frames are never changed once encoded (chat connections queue those very
 * bytes), so the buffer's identity is the key. One entry: a fan-out hands its buffer to
 * its receivers one after the other.
 *
 * @example
 * ```ts ignore
 * const bytes = ircFanout.bytesFor(frames, connection); // null: nothing for this client
 * ```
 *
 * @module
 */

import { decodePayload, LENGTH_PREFIX_BYTES } from "../protocol/frame.ts";
import { encodeIrcLine } from "../protocol/irc_line.ts";
import type { ServerMessage } from "../protocol/messages.ts";
import { eventLines, type IrcView } from "./irc_events.ts";

/**
 * Event types whose IRC lines depend on the receiver's capabilities only, never on its
 * nick (see the table in `irc_events.ts`): room messages, joins and parts, topics.
 */
export const SHARED_EVENT_TYPES: ReadonlySet<string> = new Set(["msg", "member", "topic"]);

/** Decodes each fan-out's frames once, and formats shared events once per capability set. */
export class IrcFanoutCache {
  /** The buffer of the frames decoded (null: none), until the end of the current job. */
  #buffer: ArrayBufferLike | null = null;
  /** Byte offset (in `#buffer`) of each frame decoded -> its index; of each frame's end -> index + 1. */
  #starts = new Map<number, number>();
  #ends = new Map<number, number>();
  /** Per frame: its event, or null when it did not decode (its error in `#failures`). */
  #events: (ServerMessage | null)[] = [];
  #failures: unknown[] = [];
  /** Per frame boundary i: how many of the frames before it are not of a shared type. */
  #unshared: number[] = [0];
  /** Per capability set: the bytes made of all the frames decoded. */
  #wholeByCaps = new Map<string, Uint8Array | null>();
  /** Per run of frames (a sender's view) and capability set: the bytes made. */
  #byKey = new Map<string, Uint8Array | null>();
  #expiryQueued = false;
  readonly #expire = () => {
    this.#expiryQueued = false;
    this.#forget();
  };
  /** Frames decoded so far (what a test counts). */
  decodes = 0;

  /**
   * The IRC bytes of `frames` (whole encoded frames) for `view`; null when none of the
   * events has a line for it. `onBadFrame` hears of a frame that does not decode (once
   * per receiver) or an event that cannot be translated.
   */
  bytesFor(
    frames: Uint8Array,
    view: IrcView,
    onBadFrame: (err: unknown) => void,
  ): Uint8Array | null {
    let from = this.#buffer === frames.buffer ? this.#starts.get(frames.byteOffset) : undefined;
    let to = from === undefined ? undefined : this.#ends.get(frames.byteOffset + frames.length);
    if (from === undefined || to === undefined || to <= from) {
      this.#decode(frames);
      from = 0;
      to = this.#events.length;
    }
    let events = this.#events;
    if (from !== 0 || to !== events.length) events = events.slice(from, to);
    for (let i = from; i < to; i++) {
      if (this.#failures[i] !== undefined) onBadFrame(this.#failures[i]);
    }
    if (this.#unshared[to] - this.#unshared[from] > 0) return linesBytes(events, view, onBadFrame);
    // The whole buffer (every receiver but the senders): keyed by the capabilities alone,
    // no key string made per delivery.
    const whole = from === 0 && to === this.#events.length;
    const key = whole ? capsKey(view.caps) : `${from} ${to} ${capsKey(view.caps)}`;
    const cache = whole ? this.#wholeByCaps : this.#byKey;
    let bytes = cache.get(key);
    if (bytes === undefined) {
      bytes = linesBytes(events, view, onBadFrame);
      cache.set(key, bytes);
    }
    return bytes;
  }

  /**
   * Decodes `frames`, kept for the views of its buffer given until the end of the job: a
   * fan-out hands its buffer to its receivers synchronously, one after the other, and its
   * senders (never sent their own messages) views of the runs they take, in between.
   */
  #decode(frames: Uint8Array): void {
    this.#forget();
    this.#buffer = frames.buffer;
    if (!this.#expiryQueued) {
      this.#expiryQueued = true;
      queueMicrotask(this.#expire);
    }
    const view = new DataView(frames.buffer, frames.byteOffset, frames.byteLength);
    let unshared = 0;
    for (let at = 0; at + LENGTH_PREFIX_BYTES <= frames.length;) {
      const length = view.getUint32(at);
      const start = at + LENGTH_PREFIX_BYTES;
      const index = this.#events.length;
      this.#starts.set(frames.byteOffset + at, index);
      at = start + length;
      this.#ends.set(frames.byteOffset + at, index + 1);
      this.decodes++;
      let event: ServerMessage | null = null;
      try {
        event = decodePayload(frames.subarray(start, at)).header as ServerMessage;
      } catch (err) {
        this.#failures[index] = err;
      }
      this.#events.push(event);
      if (event === null || !SHARED_EVENT_TYPES.has(event.type)) unshared++;
      this.#unshared.push(unshared);
    }
  }

  #forget(): void {
    this.#buffer = null;
    this.#starts.clear();
    this.#ends.clear();
    this.#events = [];
    this.#failures = [];
    this.#unshared = [0];
    this.#wholeByCaps.clear();
    this.#byKey.clear();
  }
}

/** The cache the IRC connections of this process share. */
export const ircFanout: IrcFanoutCache = new IrcFanoutCache();

function linesBytes(
  events: readonly (ServerMessage | null)[],
  view: IrcView,
  onError: (err: unknown) => void,
): Uint8Array | null {
  const lines: string[] = [];
  for (const event of events) {
    if (event === null) continue; // did not decode: told to `onError` already
    try {
      lines.push(...eventLines(view, event));
    } catch (err) {
      onError(err);
    }
  }
  return lines.length === 0 ? null : encodeIrcLine(lines.join("\r\n"));
}

/** Capabilities that change no line an event is formatted into: left out of the grouping. */
const LINE_NEUTRAL_CAPS: ReadonlySet<string> = new Set(["cap-notify", "sasl"]);

function capsKey(caps: ReadonlySet<string>): string {
  if (caps.size === 0) return "";
  return [...caps].filter((cap) => !LINE_NEUTRAL_CAPS.has(cap)).sort().join(" ");
}
