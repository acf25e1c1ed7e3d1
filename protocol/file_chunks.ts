/**
 * How many file bytes one frame carries: the sizes every side agrees on, with no other
 * import, so that the browser page's bundle takes them without the message schemas
 * (protocol/messages.ts re-exports them).
 *
 * @example
 * ```ts
 * import { LARGE_CHUNKS_FEATURE, largestChunkBytes } from "./file_chunks.ts";
 * largestChunkBytes(["rooms", "dm", LARGE_CHUNKS_FEATURE]); // 1 MiB less 4 KiB
 * largestChunkBytes(["rooms", "dm"]); // 512 KiB
 * ```
 *
 * @module
 */

/**
 * Most file bytes one frame carries: the body of a `file_chunk` or a `file_data`
 * (under the default frame size limit of 1 MiB with its header).
 */
export const MAX_FILE_FRAME_BYTES: number = 512 * 1024;
/**
 * Most file bytes a `file_chunk` carries to a server that shares the
 * {@linkcode LARGE_CHUNKS_FEATURE} (its header and length still fit a frame of 1 MiB):
 * half as many chunks and acknowledgements per file, each costing every side its
 * frame, promise and reply.
 */
export const LARGE_FILE_CHUNK_BYTES: number = 1024 * 1024 - 4096;
/**
 * Least `frame` a `file_read` may ask for (4 KiB): at most 256 `file_data` frames answer
 * one read of 1 MiB. Frames of a byte would make a cheap request cost the server a
 * million frames (their headers, their writes).
 */
export const MIN_FILE_DATA_FRAME_BYTES: number = 4096;

/** The `hello` feature of a server that takes `file_chunk` bodies of {@linkcode LARGE_FILE_CHUNK_BYTES}. */
export const LARGE_CHUNKS_FEATURE = "large_chunks";

/**
 * Most file bytes a `file_chunk` may carry to a server whose `hello` shares `features`:
 * {@linkcode LARGE_FILE_CHUNK_BYTES} when it takes large chunks, else
 * {@linkcode MAX_FILE_FRAME_BYTES} (a smaller `--max-frame` lowers it further: the caller's).
 */
export function largestChunkBytes(features: readonly string[]): number {
  return features.includes(LARGE_CHUNKS_FEATURE) ? LARGE_FILE_CHUNK_BYTES : MAX_FILE_FRAME_BYTES;
}
