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
  #frames: Uint8Array | null = null;
  #events: ServerMessage[] = [];
  #failures: unknown[] = [];
  #shared = false;
  #byCaps = new Map<string, Uint8Array | null>();

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
    if (frames !== this.#frames) this.#decode(frames);
    for (const err of this.#failures) onBadFrame(err);
    if (!this.#shared) return linesBytes(this.#events, view, onBadFrame);
    const key = capsKey(view.caps);
    let bytes = this.#byCaps.get(key);
    if (bytes === undefined) {
      bytes = linesBytes(this.#events, view, onBadFrame);
      this.#byCaps.set(key, bytes);
    }
    return bytes;
  }

  #decode(frames: Uint8Array): void {
    this.#frames = frames;
    this.#events = [];
    this.#failures = [];
    this.#byCaps.clear();
    const view = new DataView(frames.buffer, frames.byteOffset, frames.byteLength);
    for (let at = 0; at + LENGTH_PREFIX_BYTES <= frames.length;) {
      const length = view.getUint32(at);
      const start = at + LENGTH_PREFIX_BYTES;
      at = start + length;
      try {
        this.#events.push(decodePayload(frames.subarray(start, at)).header as ServerMessage);
      } catch (err) {
        this.#failures.push(err);
      }
    }
    this.#shared = this.#events.every((event) => SHARED_EVENT_TYPES.has(event.type));
  }
}

/** The cache the IRC connections of this process share. */
export const ircFanout: IrcFanoutCache = new IrcFanoutCache();

function linesBytes(
  events: readonly ServerMessage[],
  view: IrcView,
  onError: (err: unknown) => void,
): Uint8Array | null {
  const lines: string[] = [];
  for (const event of events) {
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
