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

/**
 * Encodes publications of `node` whose `frames` (theirs back to back, as sent to
 * clients) are given.
 *
 * @example
 * ```ts
 * import { encodeFrames } from "../protocol/frame.ts";
 * import { decodeEnvelope, encodeEnvelope } from "./nats_envelope.ts";
 * const event = { type: "notice" as const, code: "info", text: "hi" };
 * const bytes = encodeEnvelope("node-1", [{ event }], encodeFrames([event]).bytes);
 * decodeEnvelope(bytes).publications[0].event; // the notice, decoded on demand
 * ```
 */
export function encodeEnvelope(
  node: string,
  publications: readonly Publication[],
  frames: Uint8Array,
): Uint8Array {
  const entries: HeaderEntry[] = publications.map((publication) => {
    const event = publication.brief ?? (publication.event as EventBrief);
    const entry: HeaderEntry = { t: event.type };
    if (typeof event.id === "number") entry.i = event.id;
    if (typeof event.to === "string") entry.o = event.to;
    if (publication.from !== undefined) entry.f = publication.from;
    if (publication.except !== undefined && publication.except.size > 0) {
      entry.x = [...publication.except];
    }
    if (publication.exceptSession !== undefined) entry.s = publication.exceptSession;
    return entry;
  });
  const header = encoder.encode(JSON.stringify({ n: node, p: entries }));
  const bytes = new Uint8Array(PREAMBLE_BYTES + header.length + frames.length);
  bytes[0] = NATS_ENVELOPE_VERSION;
  new DataView(bytes.buffer).setUint32(1, header.length);
  bytes.set(header, PREAMBLE_BYTES);
  bytes.set(frames, PREAMBLE_BYTES + header.length);
  return bytes;
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
