/**
 * The NATS message of a {@linkcode NatsBroker}: publications with their frames encoded,
 * so that a receiving node hands subscribers the bytes as they came, without decoding
 * the event and encoding it again.
 *
 * ```
 * envelope = version:u8 hlen:u32be header[hlen] frame*
 * header   = JSON {n: node, p: [{t: type, i?: id, o?: to, f?: from, x?: except[], s?: exceptSession}]}
 * frame    = one protocol frame (length prefix included) per entry of p, in order
 * ```
 *
 * The header carries what subscribers filter on (the publication's filters and the
 * event's `type`, `id`, `to`: {@linkcode EventBrief}); the event itself is decoded from
 * its frame only when something asks for it.
 *
 * @module
 */

import { decodePayload, HEADER_LENGTH_BYTES, LENGTH_PREFIX_BYTES } from "../protocol/frame.ts";
import type { ServerMessage } from "../protocol/messages.ts";
import type { EventBrief, Publication } from "./broker.ts";

/** The version byte opening every envelope. */
export const NATS_ENVELOPE_VERSION = 1;
/** Bytes before the header: the version and the header length. */
const PREAMBLE_BYTES = 1 + 4;

/** An envelope that cannot be read (another version, truncated, malformed). */
export class NatsEnvelopeError extends Error {
  /** Stable code of the error. */
  readonly code = "bad_envelope";
  constructor(message: string) {
    super(message);
    this.name = "NatsEnvelopeError";
  }
}

/** One publication in the header, short keys. */
interface HeaderEntry {
  t: string;
  i?: number;
  o?: string;
  f?: string;
  x?: string[];
  s?: string;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** Where {@linkcode encodeEnvelope} lays an envelope out before copying it into its array. */
let scratch = new Uint8Array(64 * 1024);

/** `scratch` with room for `size` bytes, keeping its first `keep`. */
function scratchOf(size: number, keep: number): Uint8Array {
  if (size > scratch.length) {
    const grown = new Uint8Array(Math.max(scratch.length * 2, size));
    grown.set(scratch.subarray(0, keep));
    scratch = grown;
  }
  return scratch;
}

/**
 * Encodes publications of `node` into one envelope, each event's frame written in place
 * (or copied when the publication has its `frame` already). `frames` are views of
 * `bytes`: the same frames for this node's sessions, back to back, in order.
 *
 * @example
 * ```ts
 * import { decodeEnvelope, encodeEnvelope } from "./nats_envelope.ts";
 * const event = { type: "notice" as const, code: "info", text: "hi" };
 * const { bytes, frames } = encodeEnvelope("node-1", [{ event }]);
 * frames[0]; // the notice's frame, as a session is sent it
 * decodeEnvelope(bytes).publications[0].event; // the notice, decoded on demand
 * ```
 */
export function encodeEnvelope(
  node: string,
  publications: readonly Publication[],
): { bytes: Uint8Array; frames: Uint8Array[] } {
  // The header as text by hand: cheaper than building objects for JSON.stringify.
  let json = `{"n":${JSON.stringify(node)},"p":[`;
  for (let k = 0; k < publications.length; k++) {
    const publication = publications[k];
    const event = publication.brief ?? (publication.event as EventBrief);
    json += `${k === 0 ? "" : ","}{"t":${JSON.stringify(event.type)}`;
    if (typeof event.id === "number") json += `,"i":${JSON.stringify(event.id)}`;
    if (typeof event.to === "string") json += `,"o":${JSON.stringify(event.to)}`;
    if (publication.from !== undefined) json += `,"f":${JSON.stringify(publication.from)}`;
    if (publication.except !== undefined && publication.except.size > 0) {
      json += `,"x":${JSON.stringify([...publication.except])}`;
    }
    if (publication.exceptSession !== undefined) {
      json += `,"s":${JSON.stringify(publication.exceptSession)}`;
    }
    json += "}";
  }
  json += "]}";
  // Room for the worst case (three bytes per UTF-16 unit), then one exact copy.
  let out = scratchOf(PREAMBLE_BYTES + json.length * 3, 0);
  const headerLength = encoder.encodeInto(json, out.subarray(PREAMBLE_BYTES)).written;
  out[0] = NATS_ENVELOPE_VERSION;
  writeUint32(out, 1, headerLength);
  let at = PREAMBLE_BYTES + headerLength;
  const starts: number[] = [];
  for (const publication of publications) {
    starts.push(at);
    const frame = publication.frame;
    if (frame !== undefined) {
      out = scratchOf(at + frame.length, at);
      out.set(frame, at);
      at += frame.length;
      continue;
    }
    const event = JSON.stringify(publication.event);
    const start = at + LENGTH_PREFIX_BYTES + HEADER_LENGTH_BYTES;
    out = scratchOf(start + event.length * 3, at);
    const written = encoder.encodeInto(event, out.subarray(start)).written;
    writeUint32(out, at, HEADER_LENGTH_BYTES + written);
    writeUint32(out, at + LENGTH_PREFIX_BYTES, written);
    at = start + written;
  }
  const bytes = out.slice(0, at);
  // A burst's large scratch is not kept for ever.
  if (scratch.length > 1024 * 1024) scratch = new Uint8Array(64 * 1024);
  const frames = starts.map((start, k) =>
    bytes.subarray(start, k + 1 < starts.length ? starts[k + 1] : at)
  );
  return { bytes, frames };
}

function writeUint32(bytes: Uint8Array, at: number, value: number): void {
  bytes[at] = value >>> 24;
  bytes[at + 1] = (value >>> 16) & 0xff;
  bytes[at + 2] = (value >>> 8) & 0xff;
  bytes[at + 3] = value & 0xff;
}

/** A publication read from an envelope: its event is decoded from its frame when asked. */
class ReceivedPublication implements Publication {
  readonly frame: Uint8Array;
  readonly brief: EventBrief;
  readonly from?: string;
  readonly except?: ReadonlySet<string>;
  readonly exceptSession?: string;
  #event: ServerMessage | undefined;

  constructor(frame: Uint8Array, entry: HeaderEntry) {
    this.frame = frame;
    const brief: { type: string; id?: number; to?: string } = { type: entry.t };
    if (entry.i !== undefined) brief.id = entry.i;
    if (entry.o !== undefined) brief.to = entry.o;
    this.brief = brief;
    if (entry.f !== undefined) this.from = entry.f;
    if (entry.x !== undefined) this.except = new Set(entry.x);
    if (entry.s !== undefined) this.exceptSession = entry.s;
  }

  /** The event, decoded from the frame on first use. */
  get event(): ServerMessage {
    return this.#event ??= decodePayload(this.frame.subarray(LENGTH_PREFIX_BYTES))
      .header as unknown as ServerMessage;
  }
}

function isStringOrAbsent(value: unknown): boolean {
  return value === undefined || typeof value === "string";
}

function isEntry(value: unknown): value is HeaderEntry {
  if (typeof value !== "object" || value === null) return false;
  const { t, i, o, f, x, s } = value as Partial<HeaderEntry>;
  return typeof t === "string" && (i === undefined || typeof i === "number") &&
    isStringOrAbsent(o) && isStringOrAbsent(f) && isStringOrAbsent(s) &&
    (x === undefined || (Array.isArray(x) && x.every((k) => typeof k === "string")));
}

/**
 * Reads an envelope: its node and publications, whose frames are views of `bytes`.
 * Throws {@linkcode NatsEnvelopeError} when it is not one this version reads.
 */
export function decodeEnvelope(bytes: Uint8Array): { node: string; publications: Publication[] } {
  if (bytes.length < PREAMBLE_BYTES || bytes[0] !== NATS_ENVELOPE_VERSION) {
    throw new NatsEnvelopeError("not a version 1 envelope");
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = view.getUint32(1);
  if (headerLength > bytes.length - PREAMBLE_BYTES) {
    throw new NatsEnvelopeError("header length past the end");
  }
  let header: unknown;
  try {
    header = JSON.parse(
      decoder.decode(bytes.subarray(PREAMBLE_BYTES, PREAMBLE_BYTES + headerLength)),
    );
  } catch {
    throw new NatsEnvelopeError("header is not JSON");
  }
  if (typeof header !== "object" || header === null) {
    throw new NatsEnvelopeError("header is not an object");
  }
  const { n, p } = header as { n?: unknown; p?: unknown };
  if (typeof n !== "string" || !Array.isArray(p) || p.length === 0 || !p.every(isEntry)) {
    throw new NatsEnvelopeError("header is malformed");
  }
  const publications: Publication[] = [];
  let at = PREAMBLE_BYTES + headerLength;
  for (const entry of p) {
    if (bytes.length - at < LENGTH_PREFIX_BYTES + HEADER_LENGTH_BYTES) {
      throw new NatsEnvelopeError("frames are missing");
    }
    const payloadLength = view.getUint32(at);
    const end = at + LENGTH_PREFIX_BYTES + payloadLength;
    if (
      payloadLength < HEADER_LENGTH_BYTES || end > bytes.length ||
      view.getUint32(at + LENGTH_PREFIX_BYTES) > payloadLength - HEADER_LENGTH_BYTES
    ) {
      throw new NatsEnvelopeError("a frame is malformed");
    }
    publications.push(new ReceivedPublication(bytes.subarray(at, end), entry));
    at = end;
  }
  if (at !== bytes.length) throw new NatsEnvelopeError("bytes after the last frame");
  return { node: n, publications };
}
