/**
 * One translation per fan-out: the hub encodes an event once and hands the same bytes
 * to every receiving session; an IRC receiver must turn them into IRC lines. This cache
 * formats each fan-out's events once for all its IRC receivers: for events whose lines
 * depend on the receiver's capabilities only ({@linkcode SHARED_EVENT_TYPES}), once per
 * set of capabilities.
 *
 * The events come from the broker's publications when the delivery hands them over (the
 * broker's fan-outs do): their `event` objects, which the chat receivers' frames were
 * encoded from (or, for a publication that came from another node encoded, decoded from
 * its frame once, on the publication, for every receiver of the node). No copy of the
 * event is decoded per fan-out, to be live (and promoted) while a scavenge comes in the
 * middle of it. A delivery of frames alone (held messages, file chunks) is decoded here,
 * each frame once for whichever receivers are handed it in the same job.
 *
 * A fan-out is known by its publications (or, frames alone, their buffer: the hub's
 * frames are never changed once encoded) and a run by where it starts and ends in it.
 * One fan-out at a time: the broker hands a fan-out to its receivers one after the
 * other, and its senders (never sent their own messages) views of the runs they take,
 * first (a room's senders are often its first members): each event is taken the first
 * time any run holds it, and a shared event formatted once per set of capabilities,
 * whichever runs hold it.
 *
 * @example
 * ```ts ignore
 * // null: nothing for this client
 * const bytes = ircFanout.bytesFor(frames, connection, onBadFrame, count, publications, first);
 * ```
 *
 * @module
 */

import { decodePayload, LENGTH_PREFIX_BYTES } from "../protocol/frame.ts";
import { encodeIrcLine } from "../protocol/irc_line.ts";
import type { ServerMessage } from "../protocol/messages.ts";
import type { Publication } from "./broker.ts";
import { eventLines, IRC_CAPABILITIES, type IrcView } from "./irc_events.ts";

/**
 * Event types whose IRC lines depend on the receiver's capabilities only, never on its
 * nick (see the table in `irc_events.ts`): room messages, joins and parts, topics.
 */
export const SHARED_EVENT_TYPES: ReadonlySet<string> = new Set(["msg", "member", "topic"]);

/**
 * Formats each fan-out's events once per capability set (shared ones) whatever runs of
 * them the receivers are handed and in whatever order: a room's senders (its first
 * members, handed first) get views that leave their own messages out. Takes the events
 * from the publications handed with the frames; decodes frames handed alone.
 *
 * What it keeps from one fan-out to the next is reused, not made again per fan-out
 * (only each capability set's bytes are new): a scavenge that comes in the middle of a
 * fan-out finds little of it young to copy.
 */
export class IrcFanoutCache {
  /** The publications of the current fan-out (null: none), until the end of the job. */
  #key: readonly Publication[] | null = null;
  /** The current fan-out's number: what each capability set's lines were formatted for. */
  #fanout = 0;
  /** Per capability set: its lines (of the fan-out it last served). */
  readonly #byCaps = new Map<CapsKey, CapsLines>();
  #expiryQueued = false;
  readonly #expire = () => {
    this.#expiryQueued = false;
    this.#key = null;
  };
  /** Frames decoded so far (what a test counts): handed without their publications. */
  decodes = 0;
  /** Shared events formatted so far, once per capability set (what a test counts). */
  formats = 0;

  /**
   * The IRC bytes of `frames` (whole encoded frames, `count` of them) for `view`; null
   * when none of the events has a line for it. `publications[first .. first + count)`
   * are those the frames were encoded from, when the delivery has them (never changed
   * once handed: they are a fan-out's, known by the array): their events are formatted,
   * the frames never decoded. `onBadFrame` hears of an event that cannot be read (once
   * per receiver) or translated.
   */
  bytesFor(
    frames: Uint8Array,
    view: IrcView,
    onBadFrame: (err: unknown) => void,
    count = 1,
    publications?: readonly Publication[],
    first = 0,
  ): Uint8Array | null {
    if (publications === undefined) {
      return linesBytes(this.#decode(frames, onBadFrame), view, onBadFrame);
    }
    const end = first + count;
    if (!allShared(publications, first, end)) {
      return linesBytes(eventsOf(publications, first, end, onBadFrame), view, onBadFrame);
    }
    if (publications !== this.#key) this.#begin(publications);
    const key = capsKey(view.caps);
    let lines = this.#byCaps.get(key);
    if (lines === undefined) {
      // Bounded: only capabilities not offered (never granted) make keys beyond the masks.
      if (this.#byCaps.size >= MAX_CAPS_SETS) this.#byCaps.clear();
      this.#byCaps.set(key, lines = new CapsLines());
    }
    if (lines.fanout !== this.#fanout) lines.reset(this.#fanout, publications.length);
    if (lines.runFirst === first && lines.runEnd === end) return lines.runBytes;
    for (let i = first; i < end; i++) {
      if (lines.start[i] < 0) {
        lines.add(i, publications[i].event, view, onBadFrame);
        this.formats++;
      }
    }
    const bytes = lines.bytesOf(first, end);
    lines.runFirst = first;
    lines.runEnd = end;
    lines.runBytes = bytes;
    return bytes;
  }

  /** Starts on a new fan-out: the one before is forgotten (and at the end of the job). */
  #begin(publications: readonly Publication[]): void {
    this.#key = publications;
    this.#fanout++;
    if (!this.#expiryQueued) {
      this.#expiryQueued = true;
      queueMicrotask(this.#expire);
    }
  }

  /**
   * The events of `frames` (handed alone: to one receiver), decoded; null for one that
   * does not decode (told to `onBadFrame`).
   */
  #decode(frames: Uint8Array, onBadFrame: (err: unknown) => void): (ServerMessage | null)[] {
    const events: (ServerMessage | null)[] = [];
    for (let at = 0; at + LENGTH_PREFIX_BYTES <= frames.length;) {
      const length =
        (frames[at] << 24 | frames[at + 1] << 16 | frames[at + 2] << 8 | frames[at + 3]) >>>
        0;
      const start = at + LENGTH_PREFIX_BYTES;
      const end = Math.min(start + length, frames.length);
      this.decodes++;
      try {
        events.push(decodePayload(frames.subarray(start, end)).header as ServerMessage);
      } catch (err) {
        onBadFrame(err);
        events.push(null);
      }
      at = end;
    }
    return events;
  }
}

/** Capability sets whose lines are kept at most (more: the kept ones are dropped). */
const MAX_CAPS_SETS = 64;

/**
 * Whether the events of `publications[first .. end)` are all of a shared type (lines by
 * capabilities alone); false too when one cannot be read.
 */
function allShared(publications: readonly Publication[], first: number, end: number): boolean {
  try {
    for (let i = first; i < end; i++) {
      if (!SHARED_EVENT_TYPES.has(publications[i].event.type)) return false;
    }
  } catch {
    return false; // told to the receiver as the events are read one by one
  }
  return true;
}

/** The events of `publications[first .. end)`; null for one that cannot be read (told to `onError`). */
function eventsOf(
  publications: readonly Publication[],
  first: number,
  end: number,
  onError: (err: unknown) => void,
): (ServerMessage | null)[] {
  const events: (ServerMessage | null)[] = [];
  for (let i = first; i < end; i++) {
    try {
      // One that came encoded from another node decodes its frame here (once: it keeps it).
      events.push(publications[i].event);
    } catch (err) {
      onError(err);
      events.push(null);
    }
  }
  return events;
}

const encoder = new TextEncoder();
const NO_BYTES = new Uint8Array(0);

/**
 * One capability set's lines for the current fan-out, as bytes written in place,
 * appended to (never changed once written: runs handed out are views of them). Each
 * line's string is garbage as soon as it is written: a job's working set is bytes
 * outside the heap, not its lines, for a scavenge that comes in the middle of it to copy
 * (the lines of a batch kept as strings until its end were most of what the IRC server
 * promoted). The object and its tables are reused from one fan-out to the next; its
 * bytes are new for each (the views handed out keep the old ones).
 */
class CapsLines {
  /** The fan-out its lines are of (see `IrcFanoutCache`). */
  fanout = -1;
  bytes: Uint8Array<ArrayBuffer> = NO_BYTES;
  fill = 0;
  /** Per publication index: where its lines start and end in `bytes` (-1: not formatted). */
  start: Int32Array = new Int32Array(64);
  end: Int32Array = new Int32Array(64);
  /** The run last asked for (`runFirst` -1: none) and its bytes: most receivers take the whole fan-out. */
  runFirst = -1;
  runEnd = -1;
  runBytes: Uint8Array | null = null;

  /** Starts on fan-out `fanout` of `count` publications. */
  reset(fanout: number, count: number): void {
    this.fanout = fanout;
    // Room for about what the last one took: not grown (copied) line after line.
    this.bytes = new Uint8Array(Math.max(4096, this.fill + (this.fill >> 2)));
    this.fill = 0;
    if (this.start.length < count) {
      this.start = new Int32Array(Math.max(count, this.start.length * 2));
      this.end = new Int32Array(this.start.length);
    }
    this.start.fill(-1, 0, count);
    this.runFirst = -1;
    this.runEnd = -1;
    this.runBytes = null;
  }

  /** Formats the event of publication `index` and appends its lines. */
  add(index: number, event: ServerMessage, view: IrcView, onError: (err: unknown) => void): void {
    this.start[index] = this.fill;
    let lines: string[] = [];
    try {
      lines = eventLines(view, event);
    } catch (err) {
      onError(err); // and no lines
    }
    for (const line of lines) this.#append(line);
    this.end[index] = this.fill;
  }

  /**
   * The bytes of the publications `first .. end` (formatted): a view of `bytes` when they
   * were formatted in that order (the whole fan-out, or the first run asked for), else a
   * copy of their lines; null when they have none.
   */
  bytesOf(first: number, end: number): Uint8Array | null {
    const { start, end: ends } = this;
    let contiguous = true;
    let total = 0;
    for (let i = first; i < end; i++) {
      if (i > first && start[i] !== ends[i - 1]) contiguous = false;
      total += ends[i] - start[i];
    }
    if (total === 0) return null;
    if (contiguous) return this.bytes.subarray(start[first], ends[end - 1]);
    const bytes = new Uint8Array(total);
    let at = 0;
    for (let i = first; i < end; i++) {
      bytes.set(this.bytes.subarray(start[i], ends[i]), at);
      at += ends[i] - start[i];
    }
    return bytes;
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
    if (event === null) continue; // could not be read: told to `onError` already
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
