/**
 * The pure protocol layer: frame codec, message types, validation, names.
 * Nothing here performs I/O.
 *
 * @module
 */

export * from "./errors.ts";
export * from "./frame.ts";
export * from "./frame_stream.ts";
export * from "./hello.ts";
export * from "./messages.ts";
export * from "./names.ts";
export * from "./replies.ts";
export * from "./bytes.ts";
export * from "./upload_resync.ts";
export * from "./request_id.ts";
