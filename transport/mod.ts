/**
 * The framed connection layer shared by the server, the client and peer sessions.
 *
 * @module
 */

export * from "./errors.ts";
export * from "./framed_connection.ts";
export * from "./net.ts";
export * from "./buffer_pool.ts";
export * from "./byte_queue.ts";
export * from "./file_io.ts";
export * from "./file_transfer_events.ts";
