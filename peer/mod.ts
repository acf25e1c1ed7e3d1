/**
 * Direct, end-to-end encrypted peer-to-peer sessions: an X25519 handshake with a short
 * authentication string, ChaCha20-Poly1305 records, and the shared frame codec inside them.
 *
 * @example
 * ```ts ignore
 * import { connectPeer, listenPeer } from "./mod.ts";
 * const waiting = listenPeer({ host: "127.0.0.1", port: 40123, nick: "alice" });
 * const bob = await connectPeer({ host: "127.0.0.1", port: 40123, nick: "bob" });
 * const alice = await waiting;
 * alice.sas === bob.sas; // true
 * ```
 *
 * @module
 */

export * from "./byte_reader.ts";
export * from "./code.ts";
export * from "./connect.ts";
export * from "./cpace.ts";
export * from "./errors.ts";
export * from "./file_transfer.ts";
export * from "./handshake.ts";
export * from "./key_schedule.ts";
export * from "./listen.ts";
export * from "./memory_channel.ts";
export * from "./messages.ts";
export * from "./record_aead.ts";
export * from "./record_aead_choice.ts";
export * from "./record_aead_node.ts";
export * from "./record_aead_openssl.ts";
export * from "./sas.ts";
export * from "./secure_channel.ts";
export * from "./session.ts";
