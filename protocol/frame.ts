/**
 * The frame codec shared by the server, the client and peer sessions.
 *
 * ## Wire layout
 *
 * ```text
 * frame   = length:u32be payload            ; length = byte length of payload
 * payload = hlen:u32be header[hlen] body    ; body = the remaining length - 4 - hlen bytes
 * header  = UTF-8 JSON object               ; always has a string "type"
 * body    = raw bytes (file chunks), possibly empty; never base64
 * ```
 *
 * The maximum frame size bounds `length` (the payload); it is checked from the four
 * length bytes alone, before anything is buffered or allocated. The decoder is
 * resumable: any split of the byte stream (one byte at a time, many frames in one
 * chunk) decodes to the same frames.
 *
 * @module
 */

import { ProtocolError } from "./errors.ts";

/** Bytes of the length prefix in front of every frame. */
export const LENGTH_PREFIX_BYTES = 4;
/** Bytes of the header-length field at the start of every payload. */
export const HEADER_LENGTH_BYTES = 4;
/** Default maximum payload size of a frame: 1 MiB. */
export const DEFAULT_MAX_FRAME_SIZE: number = 1024 * 1024;
/** Largest maximum that can be configured (the u32 length field's range). */
export const MAX_FRAME_SIZE_LIMIT = 0xffff_ffff;

/** A decoded frame: its JSON header and its binary body (empty when absent). */
export interface Frame {
  /** The parsed JSON header; validate it with the message schemas before use. */
  readonly header: Record<string, unknown>;
  /** The raw body bytes; zero-length when the frame carries none. */
  readonly body: Uint8Array;
}

const encoder = new TextEncoder();
const strictDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const EMPTY = new Uint8Array(0);
/** Where headers are encoded before being copied into their frame: one allocation, not two. */
const scratch = new Uint8Array(16 * 1024);

/** UTF-8 of `text`; a view of {@linkcode scratch} (valid until the next call) when it fits. */
function encodeText(text: string): Uint8Array {
  if (text.length * 3 > scratch.length) return encoder.encode(text);
  return scratch.subarray(0, encoder.encodeInto(text, scratch).written);
}

/**
 * Encodes one frame from a header object (serialised as JSON) and an optional body.
 *
 * @example
 * ```ts
 * import { encodeFrame } from "./frame.ts";
 * const bytes = encodeFrame({ type: "ping", id: "1" });
 * ```
 */
export function encodeFrame(header: object, body: Uint8Array = EMPTY): Uint8Array {
  if (body.length === 0) return encodeHeaderFrame(header);
  const encoded = encodeFrameWithBody(header, body.length);
  encoded.body.set(body);
  return encoded.frame;
}

/** Where {@linkcode encodeHeaderFrame} writes a header's JSON: after the eight bytes of lengths. */
const scratchJson = scratch.subarray(LENGTH_PREFIX_BYTES + HEADER_LENGTH_BYTES);

/**
 * A body-less frame (a reply, an event): laid out in {@linkcode scratch} and copied once
 * into its own array, with no view, `DataView` or second object made for it.
 */
function encodeHeaderFrame(header: object): Uint8Array {
  const json = JSON.stringify(header);
  if (json.length * 3 > scratchJson.length) return encodeFrameWithBody(header, 0).frame;
  return scratch.slice(0, layOutHeaderFrame(json));
}

/** Lays a body-less frame of `json` out at the start of {@linkcode scratch}; its length. */
function layOutHeaderFrame(json: string): number {
  const written = encoder.encodeInto(json, scratchJson).written;
  setUint32(scratch, 0, HEADER_LENGTH_BYTES + written);
  setUint32(scratch, LENGTH_PREFIX_BYTES, written);
  return LENGTH_PREFIX_BYTES + HEADER_LENGTH_BYTES + written;
}

/**
 * Encodes a body-less frame as {@linkcode encodeFrame} does, into a scratch buffer shared
 * by every call: the bytes are valid only until the next encode, so the caller copies
 * them at once (an outbound queue appending them to its pending bytes). No array is made
 * for the frame, except for a header too large for the scratch.
 *
 * @example
 * ```ts
 * import { encodeFrameTransient } from "./frame.ts";
 * const copy = encodeFrameTransient({ type: "ok", re: "1" }).slice();
 * ```
 */
export function encodeFrameTransient(header: object): Uint8Array {
  const json = JSON.stringify(header);
  if (json.length * 3 > scratchJson.length) return encodeFrameWithBody(header, 0).frame;
  return scratch.subarray(0, layOutHeaderFrame(json));
}

/** Reads the big-endian u32 at `at` (no `DataView` made for four bytes). */
function getUint32(bytes: Uint8Array, at: number): number {
  return ((bytes[at] << 24) | (bytes[at + 1] << 16) | (bytes[at + 2] << 8) | bytes[at + 3]) >>> 0;
}

/** Writes `value` big-endian at `at` (no `DataView` made for four bytes). */
function setUint32(bytes: Uint8Array, at: number, value: number): void {
  bytes[at] = value >>> 24;
  bytes[at + 1] = value >>> 16;
  bytes[at + 2] = value >>> 8;
  bytes[at + 3] = value;
}

/**
 * Encodes one frame whose body is filled in afterwards: returns the whole frame, and
 * its body (`bodyLength` bytes, a view into the frame) to write into. Large bodies
 * (file data read from disk) are so read straight into place instead of being copied by
 * {@linkcode encodeFrame}. The frame is laid out at the start of `into` when it is
 * large enough (a buffer reused for frame after frame: its body bytes are left as they
 * were), else in a new array (its body zeroed).
 *
 * @example
 * ```ts
 * import { encodeFrameWithBody } from "./frame.ts";
 * const { frame, body } = encodeFrameWithBody({ type: "file_data", file: 1, offset: 0 }, 3);
 * body.set([1, 2, 3]); // frame now ends with the bytes 1, 2, 3
 * ```
 */
export function encodeFrameWithBody(
  header: object,
  bodyLength: number,
  into?: Uint8Array<ArrayBuffer>,
): { frame: Uint8Array<ArrayBuffer>; body: Uint8Array<ArrayBuffer> } {
  const json = encodeText(JSON.stringify(header));
  const payloadLength = HEADER_LENGTH_BYTES + json.length + bodyLength;
  if (payloadLength > MAX_FRAME_SIZE_LIMIT) {
    throw new ProtocolError("frame_too_large", `frame of ${payloadLength} bytes cannot be encoded`);
  }
  const total = LENGTH_PREFIX_BYTES + payloadLength;
  const frame = into !== undefined && into.length >= total
    ? into.subarray(0, total)
    : new Uint8Array(total);
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  view.setUint32(0, payloadLength);
  view.setUint32(LENGTH_PREFIX_BYTES, json.length);
  const bodyStart = LENGTH_PREFIX_BYTES + HEADER_LENGTH_BYTES + json.length;
  frame.set(json, LENGTH_PREFIX_BYTES + HEADER_LENGTH_BYTES);
  return { frame, body: frame.subarray(bodyStart) };
}

/**
 * Lays a frame out around a body already in place: its length prefix and header go just
 * before the `bodyLength` bytes at `bodyStart` of `buffer`, and the frame (a view of
 * `buffer`, ending with them) is returned. For a body read before its header is known
 * (a file's last chunk carries the SHA-256 of every byte, this one's too): it is neither
 * copied nor laid out twice.
 *
 * @throws {RangeError} when the header does not fit before `bodyStart`, or the body past
 * the buffer's end.
 * @example
 * ```ts
 * import { encodeFrameAround } from "./frame.ts";
 * const buffer = new Uint8Array(64 + 3);
 * buffer.set([1, 2, 3], 64);
 * const frame = encodeFrameAround({ type: "file_chunk", file: 1 }, buffer, 64, 3);
 * frame.at(-1); // 3: the frame ends with the body, where it was
 * ```
 */
export function encodeFrameAround(
  header: object,
  buffer: Uint8Array<ArrayBuffer>,
  bodyStart: number,
  bodyLength: number,
): Uint8Array<ArrayBuffer> {
  const json = encodeText(JSON.stringify(header));
  const start = bodyStart - json.length - HEADER_LENGTH_BYTES - LENGTH_PREFIX_BYTES;
  if (start < 0) {
    throw new RangeError(`a header of ${json.length} bytes does not fit before byte ${bodyStart}`);
  }
  if (bodyLength < 0 || bodyStart + bodyLength > buffer.length) {
    throw new RangeError(`a body of ${bodyLength} bytes at ${bodyStart} is past the buffer's end`);
  }
  setUint32(buffer, start, HEADER_LENGTH_BYTES + json.length + bodyLength);
  setUint32(buffer, start + LENGTH_PREFIX_BYTES, json.length);
  buffer.set(json, start + LENGTH_PREFIX_BYTES + HEADER_LENGTH_BYTES);
  return buffer.subarray(start, bodyStart + bodyLength);
}

/** Where {@linkcode encodeFrames} lays frames out before copying them into their array. */
let batchScratch = new Uint8Array(64 * 1024);

/**
 * Encodes several body-less frames back to back into one new array, exactly as
 * {@linkcode encodeFrame} would one by one, with one allocation for them all (a
 * fan-out hands the same array to every receiver). `ends[i]` is where frame `i` ends.
 *
 * @example
 * ```ts
 * import { encodeFrames } from "./frame.ts";
 * const { bytes, ends } = encodeFrames([{ type: "ping", id: "1" }, { type: "ping", id: "2" }]);
 * bytes.subarray(ends[0], ends[1]); // the second frame
 * ```
 */
export function encodeFrames(
  headers: readonly object[],
): { bytes: Uint8Array<ArrayBuffer>; ends: number[] } {
  const ends: number[] = [];
  let at = 0;
  for (const header of headers) {
    const json = JSON.stringify(header);
    const start = at + LENGTH_PREFIX_BYTES + HEADER_LENGTH_BYTES;
    // Room for the worst case (three bytes per UTF-16 unit), keeping what is laid out.
    if (start + json.length * 3 > batchScratch.length) {
      const grown = new Uint8Array(Math.max(batchScratch.length * 2, start + json.length * 3));
      grown.set(batchScratch.subarray(0, at));
      batchScratch = grown;
    }
    const written = encoder.encodeInto(json, batchScratch.subarray(start)).written;
    setUint32(batchScratch, at, HEADER_LENGTH_BYTES + written);
    setUint32(batchScratch, at + LENGTH_PREFIX_BYTES, written);
    at = start + written;
    ends.push(at);
  }
  const bytes = batchScratch.slice(0, at);
  // A burst's large scratch is not kept for ever.
  if (batchScratch.length > 1024 * 1024) batchScratch = new Uint8Array(64 * 1024);
  return { bytes, ends };
}

/**
 * Splits a payload (the bytes after the length prefix) into its header and body.
 *
 * @throws {ProtocolError} `bad_frame`, `bad_utf8` or `bad_json`.
 */
export function decodePayload(payload: Uint8Array): Frame {
  if (payload.length < HEADER_LENGTH_BYTES) {
    throw new ProtocolError("bad_frame", `payload of ${payload.length} bytes has no header length`);
  }
  // Read by hand: no DataView per frame (a server decodes hundreds of thousands a second).
  const headerLength = getUint32(payload, 0);
  if (headerLength > payload.length - HEADER_LENGTH_BYTES) {
    throw new ProtocolError(
      "bad_frame",
      `header length ${headerLength} exceeds the ${payload.length}-byte payload`,
    );
  }
  const headerBytes = payload.subarray(HEADER_LENGTH_BYTES, HEADER_LENGTH_BYTES + headerLength);
  let text: string;
  try {
    text = strictDecoder.decode(headerBytes);
  } catch (cause) {
    throw new ProtocolError("bad_utf8", "frame header is not valid UTF-8", { cause });
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (cause) {
    throw new ProtocolError("bad_json", "frame header is not valid JSON", { cause });
  }
  if (header === null || typeof header !== "object" || Array.isArray(header)) {
    throw new ProtocolError("bad_json", "frame header must be a JSON object");
  }
  const bodyStart = HEADER_LENGTH_BYTES + headerLength;
  // A body-less frame (nearly every request) shares one empty array: no view made for it.
  const body = bodyStart === payload.length ? EMPTY : payload.subarray(bodyStart);
  return new DecodedFrame(header as Record<string, unknown>, body);
}

/**
 * A decoded frame. Made with `new`, not as an object literal: V8 keeps an allocation site
 * per literal and may decide, from the first few hundred objects it made, to allocate all
 * later ones straight in the old generation ("pretenuring"). The frames of the login burst
 * (held while each login awaits the store) outlived a scavenge often enough for that, and
 * then every frame a client sent afterwards went to the old generation: ~5-6 MB/s of it
 * at 3.2M deliveries/s, and mark-compacts (the fan-out p99) in about half the runs. An
 * object made by `new` has no allocation site.
 */
class DecodedFrame implements Frame {
  readonly header: Record<string, unknown>;
  readonly body: Uint8Array;

  constructor(header: Record<string, unknown>, body: Uint8Array) {
    this.header = header;
    this.body = body;
  }
}

/**
 * The frame with a copy of its body, for a frame whose body is a view of a buffer that
 * will be read into again. Made with `new` as {@linkcode decodePayload}'s frames are, and
 * for the same reason: a literal here was an allocation site V8 could pretenure (every
 * frame with a body under the read buffer's size passes here: a private session's records,
 * a file's last chunk).
 *
 * @example
 * ```ts
 * import { decodePayload, encodeFrame, LENGTH_PREFIX_BYTES, ownBody } from "./frame.ts";
 * const bytes = encodeFrame({ type: "peer_data" }, new Uint8Array([1, 2]));
 * const frame = decodePayload(bytes.subarray(LENGTH_PREFIX_BYTES));
 * const own = ownBody(frame);
 * own.body.buffer === bytes.buffer; // false
 * ```
 */
export function ownBody(frame: Frame): Frame {
  return new DecodedFrame(frame.header, frame.body.slice());
}

/**
 * Decodes a complete frame (length prefix included) in one call.
 *
 * @throws {ProtocolError} when the bytes are not exactly one valid frame.
 */
export function decodeFrame(bytes: Uint8Array, maxFrameSize = DEFAULT_MAX_FRAME_SIZE): Frame {
  const decoder = new FrameDecoder({ maxFrameSize });
  const payloads = decoder.push(bytes);
  decoder.end();
  if (payloads.length !== 1) {
    throw new ProtocolError("bad_frame", `expected one frame, found ${payloads.length}`);
  }
  return decodePayload(payloads[0]);
}

/** Options of {@linkcode FrameDecoder}. */
export interface FrameDecoderOptions {
  /** Largest payload accepted, in bytes. Default {@linkcode DEFAULT_MAX_FRAME_SIZE}. */
  maxFrameSize?: number;
  /**
   * Gives the array a payload of `length` bytes is received into (checked against the
   * maximum first; the decoder fills all of it). Default: a new array. A pool of buffers
   * reused for large payloads (`transport/buffer_pool.ts`) goes here.
   */
  allocate?: (length: number) => Uint8Array;
  /**
   * When true, a payload that lies whole inside one chunk is returned as a view of that
   * chunk instead of a copy: valid only until the caller reuses the chunk. For a reader
   * that decodes each payload before its next read. Default false.
   */
  views?: boolean;
  /**
   * When given, a frame over the maximum is skipped instead of failing the stream: its
   * bytes are read and dropped (the stream stays in step, as its length is known), and
   * this is called once they are, with the frame's length and its first
   * {@linkcode OVERSIZED_HEAD_BYTES} payload bytes (enough to tell whose reply it was).
   * For a client, which must survive a reply larger than it accepts. A length over
   * {@linkcode MAX_SKIPPED_FRAME_SIZE} still fails the stream: that is no reply but
   * another protocol (`HTTP` reads as 1.2 GB).
   */
  onOversized?: (length: number, head: Uint8Array) => void;
}

/** Payload bytes of a skipped oversized frame kept for {@linkcode FrameDecoderOptions.onOversized}. */
export const OVERSIZED_HEAD_BYTES = 256;
/** Longest frame {@linkcode FrameDecoderOptions.onOversized} skips: 64 MiB. */
export const MAX_SKIPPED_FRAME_SIZE: number = 64 * 1024 * 1024;

/**
 * A resumable decoder from a byte stream to frame payloads.
 *
 * Feed it chunks as they arrive; it returns every payload completed by the chunk.
 * The length is checked against {@linkcode FrameDecoder.maxFrameSize} as soon as its
 * four bytes are known, before any payload byte is buffered. After an error the
 * decoder stays failed: the stream is out of sync and must be closed.
 *
 * @example
 * ```ts
 * import { encodeFrame, FrameDecoder, decodePayload } from "./frame.ts";
 * const decoder = new FrameDecoder();
 * const bytes = encodeFrame({ type: "ping", id: "1" });
 * const first = decoder.push(bytes.subarray(0, 3)); // []
 * const rest = decoder.push(bytes.subarray(3)); // [payload]
 * decodePayload(rest[0]).header.type; // "ping"
 * ```
 */
export class FrameDecoder {
  #maxFrameSize: number;
  /** The length prefix read so far (big-endian), and how many of its bytes. */
  #length = 0;
  #lengthFill = 0;
  #payload: Uint8Array | null = null;
  #payloadFill = 0;
  #failed: ProtocolError | null = null;
  readonly #allocate: (length: number) => Uint8Array;
  readonly #views: boolean;
  readonly #onOversized: ((length: number, head: Uint8Array) => void) | undefined;
  /**
   * The oversized frame being skipped, null when none is (one field, not three: a server
   * holds a decoder per connection).
   */
  #skipping: Skipping | null = null;

  /** Creates a decoder with the given maximum frame size. */
  constructor(options: FrameDecoderOptions = {}) {
    this.#maxFrameSize = checkMaxFrameSize(options.maxFrameSize ?? DEFAULT_MAX_FRAME_SIZE);
    this.#allocate = options.allocate ?? newPayload;
    this.#views = options.views ?? false;
    this.#onOversized = options.onOversized;
  }

  /**
   * Gives the array a payload of `length` bytes is received into, once its length is
   * checked: the `allocate` option's. A subclass may reserve it somewhere first (a
   * method, not a closure per decoder: a server holds thousands).
   */
  protected allocatePayload(length: number): Uint8Array {
    return this.#allocate(length);
  }

  /** The largest payload accepted; may be changed between chunks. */
  get maxFrameSize(): number {
    return this.#maxFrameSize;
  }

  set maxFrameSize(value: number) {
    this.#maxFrameSize = checkMaxFrameSize(value);
  }

  /** Bytes received that belong to a frame not yet complete. */
  get pendingBytes(): number {
    return this.#payload === null ? this.#lengthFill : LENGTH_PREFIX_BYTES + this.#payloadFill;
  }

  /** Bytes of the payload under way (allocated, partly received); 0 when none is. */
  get partialLength(): number {
    return this.#payload === null ? 0 : this.#payload.length;
  }

  /**
   * Consumes one chunk and returns the payloads it completes, in order.
   * Returned payloads are fresh copies (the caller may reuse `chunk`), except with the
   * `views` option, where those whole inside `chunk` are views of it.
   *
   * @throws {ProtocolError} `frame_too_large` when a length prefix exceeds the maximum.
   */
  push(chunk: Uint8Array): Uint8Array[] {
    if (this.#failed) throw this.#failed;
    const out: Uint8Array[] = [];
    let offset = 0;
    while (offset < chunk.length) {
      if (this.#skipping !== null) {
        offset += this.#skip(this.#skipping, chunk, offset);
        continue;
      }
      if (this.#payload === null) {
        // Fast path: a whole length prefix available in this chunk.
        if (this.#lengthFill === 0 && chunk.length - offset >= LENGTH_PREFIX_BYTES) {
          const length = ((chunk[offset] << 24) | (chunk[offset + 1] << 16) |
            (chunk[offset + 2] << 8) | chunk[offset + 3]) >>> 0;
          offset += LENGTH_PREFIX_BYTES;
          if (this.#views && chunk.length - offset >= length && length <= this.#maxFrameSize) {
            // Whole inside this chunk: a view, not a copy.
            out.push(chunk.subarray(offset, offset + length));
            offset += length;
            continue;
          }
          this.#startPayload(length);
        } else {
          this.#length = this.#length * 256 + chunk[offset++];
          if (++this.#lengthFill < LENGTH_PREFIX_BYTES) continue;
          const length = this.#length;
          this.#length = 0;
          this.#lengthFill = 0;
          this.#startPayload(length);
        }
        continue;
      }
      const payload = this.#payload;
      const take = Math.min(payload.length - this.#payloadFill, chunk.length - offset);
      payload.set(chunk.subarray(offset, offset + take), this.#payloadFill);
      this.#payloadFill += take;
      offset += take;
      if (this.#payloadFill === payload.length) {
        out.push(payload);
        this.#payload = null;
        this.#payloadFill = 0;
      }
    }
    // A zero-length frame completes with no payload bytes following it.
    if (this.#payload !== null && this.#payload.length === 0) {
      out.push(this.#payload);
      this.#payload = null;
    }
    return out;
  }

  /**
   * The unfilled rest of the payload being received, when one is under way and at
   * least `min` of its bytes are still missing; null otherwise. A reader may read
   * straight into it (never past the frame's end) and then call
   * {@linkcode FrameDecoder.filled}: large bodies are so not copied from a read buffer.
   */
  payloadSpace(min: number): Uint8Array | null {
    const payload = this.#payload;
    if (this.#failed || payload === null || payload.length - this.#payloadFill < min) return null;
    return payload.subarray(this.#payloadFill);
  }

  /**
   * Counts `n` bytes read into {@linkcode FrameDecoder.payloadSpace}; returns the
   * payload when they complete it (an empty list otherwise).
   *
   * @throws {RangeError} when no payload is under way or `n` passes its end.
   */
  filled(n: number): Uint8Array[] {
    if (this.#failed) throw this.#failed;
    const payload = this.#payload;
    if (
      payload === null || !Number.isInteger(n) || n < 0 || this.#payloadFill + n > payload.length
    ) {
      throw new RangeError(`${n} bytes do not fit the payload under way`);
    }
    this.#payloadFill += n;
    if (this.#payloadFill < payload.length) return [];
    this.#payload = null;
    this.#payloadFill = 0;
    return [payload];
  }

  /**
   * Declares the end of the stream.
   *
   * @throws {ProtocolError} `truncated_frame` when the stream ended inside a frame.
   */
  end(): void {
    if (this.#failed) throw this.#failed;
    if (this.#lengthFill > 0 || this.#payload !== null || this.#skipping !== null) {
      this.#failed = new ProtocolError(
        "truncated_frame",
        `stream ended inside a frame (${this.pendingBytes} bytes pending)`,
      );
      throw this.#failed;
    }
  }

  /** Drops bytes of the oversized frame under way from `chunk` at `offset`; how many. */
  #skip(skipping: Skipping, chunk: Uint8Array, offset: number): number {
    const take = Math.min(skipping.left, chunk.length - offset);
    const head = skipping.head;
    const done = skipping.length - skipping.left;
    if (done < head.length) {
      const part = chunk.subarray(offset, offset + Math.min(take, head.length - done));
      head.set(part, done);
    }
    skipping.left -= take;
    if (skipping.left === 0) {
      this.#skipping = null;
      this.#onOversized!(skipping.length, head);
    }
    return take;
  }

  #startPayload(length: number): void {
    if (
      length > this.#maxFrameSize && length <= MAX_SKIPPED_FRAME_SIZE &&
      this.#onOversized !== undefined
    ) {
      this.#skipping = {
        length,
        left: length,
        head: new Uint8Array(Math.min(OVERSIZED_HEAD_BYTES, length)),
      };
      return;
    }
    if (length > this.#maxFrameSize) {
      this.#failed = new ProtocolError(
        "frame_too_large",
        `frame of ${length} bytes exceeds the maximum of ${this.#maxFrameSize}`,
      );
      throw this.#failed;
    }
    const payload = this.allocatePayload(length);
    if (payload.length !== length) {
      throw new RangeError(`allocate(${length}) gave ${payload.length} bytes`);
    }
    this.#payload = payload;
    this.#payloadFill = 0;
  }
}

/** An oversized frame being skipped: its length, bytes still to drop, its first bytes. */
interface Skipping {
  readonly length: number;
  left: number;
  readonly head: Uint8Array;
}

/** The default allocation of a payload: a new array (one function for every decoder). */
function newPayload(length: number): Uint8Array {
  return new Uint8Array(length);
}

function checkMaxFrameSize(value: number): number {
  if (!Number.isInteger(value) || value < HEADER_LENGTH_BYTES || value > MAX_FRAME_SIZE_LIMIT) {
    throw new RangeError(
      `maximum frame size must be an integer from ${HEADER_LENGTH_BYTES} to ${MAX_FRAME_SIZE_LIMIT}`,
    );
  }
  return value;
}
