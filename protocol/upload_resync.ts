/**
 * Which refusals of an upload's chunk a client recovers from by offering the file again
 * (the server answers with the offset it holds) and carrying on, and how many times.
 * Shared by the terminal client's transfers (`client/file_transfer.ts`) and the browser
 * page's (`web/file_transfer.ts`).
 *
 * @example
 * ```ts
 * import { MAX_UPLOAD_RESYNCS, UPLOAD_RESYNC_CODES } from "./upload_resync.ts";
 * UPLOAD_RESYNC_CODES.has("bad_offset"); // true: offer again, resume at the server's offset
 * UPLOAD_RESYNC_CODES.has("too_large"); // false: the upload ends
 * MAX_UPLOAD_RESYNCS; // 20
 * ```
 *
 * @module
 */

/** Times an upload offers its file again after a refusal before it gives up. */
export const MAX_UPLOAD_RESYNCS = 20;

/** Error codes after which an upload offers its file again and carries on. */
export const UPLOAD_RESYNC_CODES: ReadonlySet<string> = new Set([
  "bad_offset",
  "no_file",
  "file_corrupt",
  "queue_full",
  "rate_limited",
  "shutting_down",
  "connection_lost",
]);
