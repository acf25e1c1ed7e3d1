/**
 * One translation per fan-out: the hub encodes an event once and hands the same bytes
 * to every receiving session; an IRC receiver must turn them into IRC lines. Decoding
 * the frames again for each of a room's IRC members (JSON, UTF-8) and formatting the
 * same lines again cost most of an IRC delivery; this cache decodes each frames buffer
 * once and, for events whose lines depend on the receiver's capabilities only
 * ({@linkcode SHARED_EVENT_TYPES}), formats them once per set of capabilities.
 *
 * The hub's frames are never changed once encoded (chat connections queue those very
 * bytes), so a frame's buffer and offset are its key. One buffer at a time: a fan-out
 * hands its buffer to its receivers one after the other, and its senders (never sent
 * their own messages) views of the runs they take, first (a room's senders are often its
 * first members): each frame is decoded the first time any run holds it, and a shared
 * event formatted once per set of capabilities, whichever runs hold it. (Decoding only the
 * run handed first, as this did, decoded a batch again for each sender's view and once
 * more for the others: 4 decodes and formats per message in a room of 10 with 4 senders.)
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
import { eventLines, IRC_CAPABILITIES, type IrcView } from "./irc_events.ts";

/**
 * Event types whose IRC lines depend on the receiver's capabilities only, never on its
 * nick (see the table in `irc_events.ts`): room messages, joins and parts, topics.
 */
export const SHARED_EVENT_TYPES: ReadonlySet<string> = new Set(["msg", "member", "topic"]);

/** A run of frames some receiver was handed (the whole buffer, or a sender's view of it). */
interface Run {
  /** Its frames' events, by index in the cache's tables. */
  readonly indexes: number[];
  /** Whether all of its events are of a shared type (lines by capabilities alone). */
  readonly shared: boolean;
  /** The errors of its frames that did not decode (told to each receiver); null: none. */
  readonly failures: unknown[] | null;
  /** Per capability set: its bytes (null: no line for anyone). */
  readonly byCaps: Map<CapsKey, Uint8Array | null>;
}

/**
 * Decodes each fan-out's frames once, and formats shared events once per capability set,
 * whatever runs of them the receivers are handed and in whatever order: a room's senders
 * (its first members, handed first) get views that leave their own messages out.
 */
export class IrcFanoutCache {
  /** The buffer of the frames decoded (null: none), until the end of the current job. */
  #buffer: ArrayBufferLike | null = null;
  /** Byte offset (in `#buffer`) of each frame decoded -> its index. */
  #index = new Map<number, number>();
  /** Per frame: its event, or null when it did not decode (its error in `#failures`). */
  #events: (ServerMessage | null)[] = [];
  #failures: unknown[] = [];
  /** Per frame: the byte offset (in `#buffer`) where it ends. */
  #frameEnds: number[] = [];
  /** The runs handed out: start offset -> end offset -> run. */
  #runs = new Map<number, Map<number, Run>>();
  /**
   * Per capability set: the lines of the frames of a shared type formatted so far, as
   * bytes. A frame is formatted once per set however many runs hold it.
   */
  #formatted = new Map<CapsKey, Formatted>();
  #expiryQueued = false;
  readonly #expire = () => {
    this.#expiryQueued = false;
    this.#forget();
  };
  /** Frames decoded so far (what a test counts). */
  decodes = 0;
  /** Shared events formatted so far, once per capability set (what a test counts). */
  formats = 0;

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
    if (this.#buffer !== frames.buffer) this.#begin(frames.buffer);
    const start = frames.byteOffset;
    const end = start + frames.length;
    let ends = this.#runs.get(start);
    let run = ends?.get(end);
    if (run === undefined) {
      run = this.#decode(frames);
      if (ends === undefined) this.#runs.set(start, ends = new Map());
      ends.set(end, run);
    }
    if (run.failures !== null) { for (const err of run.failures) onBadFrame(err); }
    if (!run.shared) {
      return linesBytes(run.indexes.map((i) => this.#events[i]), view, onBadFrame);
    }
    const key = capsKey(view.caps);
    let bytes = run.byCaps.get(key);
    if (bytes === undefined) {
      bytes = this.#format(run, key, view, onBadFrame);
      run.byCaps.set(key, bytes);
    }
    return bytes;
  }

  /** Starts on a new buffer: what was kept of another is dropped at the end of the job. */
  #begin(buffer: ArrayBufferLike): void {
    this.#forget();
    this.#buffer = buffer;
    if (!this.#expiryQueued) {
      this.#expiryQueued = true;
      queueMicrotask(this.#expire);
    }
  }

  /**
   * The run of `frames`, decoding those of its frames not decoded yet: kept for the runs
   * of the same buffer handed out until the end of the job (a fan-out hands its buffer to
   * its receivers synchronously, one after the other).
   */
  #decode(frames: Uint8Array): Run {
    const indexes: number[] = [];
    let failures: unknown[] | null = null;
    let shared = true;
    const base = frames.byteOffset;
    for (let at = 0; at + LENGTH_PREFIX_BYTES <= frames.length;) {
      let index = this.#index.get(base + at);
      if (index === undefined) index = this.#decodeFrame(frames, at);
      indexes.push(index);
      const failure = this.#failures[index];
      if (failure !== undefined) (failures ??= []).push(failure);
      const event = this.#events[index];
      if (event === null || !SHARED_EVENT_TYPES.has(event.type)) shared = false;
      at = this.#frameEnds[index] - base;
    }
    return { indexes, shared, failures, byCaps: new Map() };
  }

  /** Decodes the frame at `at` in `frames`; its index. */
  #decodeFrame(frames: Uint8Array, at: number): number {
    const length =
      (frames[at] << 24 | frames[at + 1] << 16 | frames[at + 2] << 8 | frames[at + 3]) >>>
      0;
    const start = at + LENGTH_PREFIX_BYTES;
    const end = Math.min(start + length, frames.length);
    const index = this.#events.length;
    this.#index.set(frames.byteOffset + at, index);
    this.#frameEnds.push(frames.byteOffset + end);
    this.decodes++;
    let event: ServerMessage | null = null;
    try {
      event = decodePayload(frames.subarray(start, end)).header as ServerMessage;
    } catch (err) {
      this.#failures[index] = err;
    }
    this.#events.push(event);
    return index;
  }

  /**
   * The bytes of a shared run for the capability set `key` (`view` has it): a view of the
   * set's bytes when its frames were formatted in the run's order (the whole batch, or the
   * first run asked for), else a copy of their lines.
   */
  #format(
    run: Run,
    key: CapsKey,
    view: IrcView,
    onError: (err: unknown) => void,
  ): Uint8Array | null {
    let formatted = this.#formatted.get(key);
    if (formatted === undefined) this.#formatted.set(key, formatted = new Formatted());
    const { indexes } = run;
    for (const index of indexes) {
      if (formatted.start[index] === undefined) {
        formatted.add(index, this.#events[index], view, onError);
        this.formats++;
      }
    }
    const { start, end } = formatted;
    let contiguous = true;
    let total = 0;
    for (let i = 0; i < indexes.length; i++) {
      if (i > 0 && start[indexes[i]] !== end[indexes[i - 1]]) contiguous = false;
      total += end[indexes[i]] - start[indexes[i]];
    }
    if (total === 0) return null;
    if (contiguous) return formatted.bytes.subarray(start[indexes[0]], end[indexes.at(-1)!]);
    const bytes = new Uint8Array(total);
    let at = 0;
    for (const index of indexes) {
      bytes.set(formatted.bytes.subarray(start[index], end[index]), at);
      at += end[index] - start[index];
    }
    return bytes;
  }

  #forget(): void {
    this.#buffer = null;
    this.#index.clear();
    this.#events = [];
    this.#failures = [];
    this.#frameEnds = [];
    this.#runs.clear();
    this.#formatted.clear();
  }
}

const encoder = new TextEncoder();

/**
 * One capability set's lines for the current job, as bytes written in place, appended to
 * (never changed once written: runs handed out are views of them). Each line's string is
 * garbage as soon as it is written: a job's working set is bytes outside the heap, not
 * its lines, for a scavenge that comes in the middle of it to copy (the lines of a batch
 * kept as strings until its end were most of what the IRC server promoted).
 */
class Formatted {
  bytes: Uint8Array<ArrayBuffer> = new Uint8Array(4096);
  fill = 0;
  /** Per frame index: where its lines start and end in `bytes` (undefined: not formatted). */
  readonly start: number[] = [];
  readonly end: number[] = [];

  /** Formats the frame `index` (its event; null: it did not decode) and appends its lines. */
  add(
    index: number,
    event: ServerMessage | null,
    view: IrcView,
    onError: (err: unknown) => void,
  ): void {
    this.start[index] = this.fill;
    // A frame that did not decode has no lines (told to each receiver already).
    if (event !== null) {
      let lines: string[] = [];
      try {
        lines = eventLines(view, event);
      } catch (err) {
        onError(err); // and no lines
      }
      for (const line of lines) this.#append(line);
    }
    this.end[index] = this.fill;
  }

  /** Appends `line` and its CR LF. */
  #append(line: string): void {
    const most = line.length * 3 + 2;
    if (this.fill + most > this.bytes.length) {
      // A new array: the views handed out keep the old one, unchanged.
      const grown = new Uint8Array(Math.max(this.bytes.length * 2, this.fill + most));
      grown.set(this.bytes.subarray(0, this.fill));
      this.bytes = grown;
    }
    const bytes = this.bytes;
    let at = this.fill;
    // ASCII (most lines) copied as it is: no view and no result object per line.
    let i = 0;
    for (; i < line.length; i++) {
      const code = line.charCodeAt(i);
      if (code >= 0x80) break;
      bytes[at + i] = code;
    }
    at += i === line.length ? i : encoder.encodeInto(line, bytes.subarray(at)).written;
    bytes[at++] = 0x0d;
    bytes[at++] = 0x0a;
    this.fill = at;
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

/** A capability set, as the fan-out groups receivers: a bit mask of those offered, or a string. */
type CapsKey = number | string;

/** A bit per capability offered that can change a line. */
const CAP_BITS: ReadonlyMap<string, number> = new Map(
  IRC_CAPABILITIES.filter((cap) => !LINE_NEUTRAL_CAPS.has(cap)).map((cap, i) => [cap, 1 << i]),
);

/**
 * The grouping key of `caps`: a bit mask (no string made per delivery) when all are
 * offered ones, else their sorted names.
 */
function capsKey(caps: ReadonlySet<string>): CapsKey {
  let mask = 0;
  for (const cap of caps) {
    const bit = CAP_BITS.get(cap);
    if (bit !== undefined) mask |= bit;
    else if (!LINE_NEUTRAL_CAPS.has(cap)) {
      return [...caps].filter((c) => !LINE_NEUTRAL_CAPS.has(c)).sort().join(" ");
    }
  }
  return mask;
}
