/**
 * Web Streams wrappers around the frame codec.
 *
 * @module
 */

import { decodePayload, encodeFrame, type Frame, FrameDecoder } from "./frame.ts";

/** Options of {@linkcode FrameDecoderStream}. */
export interface FrameDecoderStreamOptions {
  /** Largest payload accepted, in bytes. */
  maxFrameSize?: number;
}

/**
 * Transforms a byte stream into decoded {@linkcode Frame}s.
 * Errors the stream with a `ProtocolError` on malformed input or a truncated end.
 *
 * @example
 * ```ts
 * import { FrameDecoderStream } from "./frame_stream.ts";
 * const bytes = ReadableStream.from([new Uint8Array([0, 0, 0, 6, 0, 0, 0, 2, 123, 125])]);
 * for await (const frame of bytes.pipeThrough(new FrameDecoderStream())) {
 *   console.log(frame.header); // {}
 * }
 * ```
 */
export class FrameDecoderStream extends TransformStream<Uint8Array, Frame> {
  /** Creates the stream. */
  constructor(options: FrameDecoderStreamOptions = {}) {
    const decoder = new FrameDecoder(options);
    super({
      transform(chunk, controller) {
        for (const payload of decoder.push(chunk)) controller.enqueue(decodePayload(payload));
      },
      flush() {
        decoder.end();
      },
    });
  }
}

/** A frame to encode: a header object and an optional body. */
export interface OutgoingFrame {
  /** The JSON header. */
  header: object;
  /** Optional raw body bytes. */
  body?: Uint8Array;
}

/**
 * Transforms {@linkcode OutgoingFrame}s into encoded bytes.
 *
 * @example
 * ```ts
 * import { FrameEncoderStream } from "./frame_stream.ts";
 * const frames = ReadableStream.from([{ header: { type: "ping", id: "1" } }]);
 * const bytes = frames.pipeThrough(new FrameEncoderStream());
 * ```
 */
export class FrameEncoderStream extends TransformStream<OutgoingFrame, Uint8Array> {
  /** Creates the stream. */
  constructor() {
    super({
      transform(frame, controller) {
        controller.enqueue(encodeFrame(frame.header, frame.body));
      },
    });
  }
}
