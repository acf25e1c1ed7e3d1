/**
 * Cheap frame inspection for load generators: the frame type from the header's first
 * bytes and the send timestamp from the end of a message's text, without decoding
 * UTF-8 or parsing JSON. Headers whose `type` is not their first key fall back to
 * {@linkcode FrameKind.Other}.
 *
 * Benchmark message texts look like `b<tag>|<ms since the epoch>` and are the last
 * field of the header (`say` as the load clients build it, `msg` as the server
 * stores it), so the header ends in `b<tag>|<ms>"}`.
 *
 * @module
 */

/** What a frame is, as far as the load generator cares. */
export const FrameKind = {
  /** `msg` (from the server) or `say` (relayed by the ceiling relay). */
  Message: 1,
  /** `ok` reply. */
  Ok: 2,
  /** `error` reply or event. */
  Error: 3,
  /** `presence` event. */
  Presence: 4,
  /** `member` event. */
  Member: 5,
  /** `hello`. */
  Hello: 6,
  /** `notice` event. */
  Notice: 7,
  /** Anything else. */
  Other: 0,
} as const;

/** A value of {@linkcode FrameKind}. */
export type FrameKindValue = (typeof FrameKind)[keyof typeof FrameKind];

// `{"type":"` in bytes
const TYPE_PREFIX = [0x7b, 0x22, 0x74, 0x79, 0x70, 0x65, 0x22, 0x3a, 0x22];

/** Length of `{"type":"`: the type name starts this far into the header. */
export const TYPE_OFFSET: number = TYPE_PREFIX.length;

/**
 * The kind of the frame whose header occupies `bytes[start, end)`.
 *
 * @example
 * ```ts
 * import { frameKind, FrameKind } from "./frame_scan.ts";
 * const header = new TextEncoder().encode('{"type":"ok","re":"1"}');
 * frameKind(header, 0, header.length) === FrameKind.Ok; // true
 * ```
 */
export function frameKind(bytes: Uint8Array, start: number, end: number): FrameKindValue {
  if (end - start < TYPE_OFFSET + 3) return FrameKind.Other;
  for (let i = 0; i < TYPE_OFFSET; i++) {
    if (bytes[start + i] !== TYPE_PREFIX[i]) return FrameKind.Other;
  }
  const t = start + TYPE_OFFSET;
  const c0 = bytes[t];
  const c1 = bytes[t + 1];
  const c2 = bytes[t + 2];
  switch (c0) {
    case 0x6d: // m
      if (c1 === 0x73 && c2 === 0x67) return FrameKind.Message; // msg
      if (c1 === 0x65 && c2 === 0x6d) return FrameKind.Member; // mem(ber)
      return FrameKind.Other;
    case 0x73: // s
      return c1 === 0x61 && c2 === 0x79 ? FrameKind.Message : FrameKind.Other; // say
    case 0x6f: // o
      return c1 === 0x6b && c2 === 0x22 ? FrameKind.Ok : FrameKind.Other; // ok"
    case 0x65: // e
      return c1 === 0x72 ? FrameKind.Error : FrameKind.Other;
    case 0x70: // p
      return c1 === 0x72 && c2 === 0x65 ? FrameKind.Presence : FrameKind.Other;
    case 0x68: // h
      return c1 === 0x65 ? FrameKind.Hello : FrameKind.Other;
    case 0x6e: // n
      return c1 === 0x6f ? FrameKind.Notice : FrameKind.Other;
    default:
      return FrameKind.Other;
  }
}

/** The result of {@linkcode trailingStamp}: sender tag and timestamp; tag -1 when absent. */
export interface Stamp {
  /** The sender's process tag. */
  tag: number;
  /** Milliseconds since the epoch (fractional). */
  ms: number;
}

/**
 * Reads `b<tag>|<ms>` from the end of a header `bytes[start, end)` into `out`;
 * returns false (leaving `out` alone) when the header does not end that way.
 */
export function trailingStamp(bytes: Uint8Array, start: number, end: number, out: Stamp): boolean {
  // ...b<tag>|<digits>[.<digits>]"}
  if (end - start < 8 || bytes[end - 1] !== 0x7d || bytes[end - 2] !== 0x22) return false;
  return stampBefore(bytes, start, end - 2, out);
}

/**
 * Reads `b<tag>|<ms>` from the end of an IRC line `bytes[start, end)` (its CR LF not
 * included): the text of a load client's PRIVMSG. False (`out` left alone) otherwise.
 */
export function lineStamp(bytes: Uint8Array, start: number, end: number, out: Stamp): boolean {
  if (end - start < 6) return false;
  return stampBefore(bytes, start, end, out);
}

/** Reads `b<tag>|<ms>` ending just before `end`. */
function stampBefore(bytes: Uint8Array, start: number, end: number, out: Stamp): boolean {
  let i = end - 1;
  let value = 0;
  let scale = 1;
  let fraction = 1;
  let digits = 0;
  for (; i > start; i--) {
    const c = bytes[i];
    if (c >= 0x30 && c <= 0x39) {
      value += (c - 0x30) * scale;
      scale *= 10;
      digits++;
    } else if (c === 0x2e && fraction === 1) {
      fraction = scale;
    } else {
      break;
    }
  }
  if (digits === 0 || bytes[i] !== 0x7c) return false; // |
  i--;
  let tag = 0;
  let tagScale = 1;
  let tagDigits = 0;
  for (; i > start; i--) {
    const c = bytes[i];
    if (c < 0x30 || c > 0x39) break;
    tag += (c - 0x30) * tagScale;
    tagScale *= 10;
    tagDigits++;
  }
  if (tagDigits === 0 || bytes[i] !== 0x62) return false; // b
  out.tag = tag;
  out.ms = value / fraction;
  return true;
}

/**
 * Reads the request id an `ok`/`error` reply answers, when it is the header's second
 * field (`{"type":"ok","re":"…"`); null otherwise.
 */
export function replyTo(bytes: Uint8Array, start: number, end: number): string | null {
  // {"type":"ok","re":"  or  {"type":"error","re":"
  let i = start + TYPE_OFFSET;
  while (i < end && bytes[i] !== 0x22) i++;
  // expect ","re":"
  const expect = [0x22, 0x2c, 0x22, 0x72, 0x65, 0x22, 0x3a, 0x22];
  for (let k = 0; k < expect.length; k++) {
    if (bytes[i + k] !== expect[k]) return null;
  }
  i += expect.length;
  let s = "";
  for (; i < end && bytes[i] !== 0x22; i++) s += String.fromCharCode(bytes[i]);
  return i < end ? s : null;
}

/** Reads a big-endian u32 at `offset`. */
export function u32(bytes: Uint8Array, offset: number): number {
  return ((bytes[offset] << 24) | (bytes[offset + 1] << 16) | (bytes[offset + 2] << 8) |
    bytes[offset + 3]) >>> 0;
}
