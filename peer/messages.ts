/**
 * Message types of direct peer sessions and their runtime validation.
 *
 * Two families travel as frame headers (the same frame codec as everything else):
 *
 * - handshake messages, sent before any key exists: `peer_hello` and `peer_error` in
 *   plaintext, then `peer_confirm` as the first encrypted record in each direction;
 * - session messages, sent only inside the encrypted channel: `peer_text`, `peer_bye`,
 *   the keepalive `peer_ping` and `peer_pong` (see `session.ts`), and the file transfer
 *   messages `peer_file_*` (see `file_transfer.ts`), whose data travels in frame bodies.
 *
 * Every header is validated on arrival; a failure is a `PeerError` with code
 * `handshake_failed` (handshake) or `bad_message` (session).
 *
 * @module
 */

import { z } from "zod";
import {
  fileBytesSchema as fileBytes,
  isFileBytes,
  isSha256Hex,
  sha256HexSchema as sha256Hex,
} from "../protocol/field_checks.ts";
import { MAX_OFFERED_NAME_LENGTH } from "../protocol/file_names.ts";
import { MAX_TEXT_LENGTH } from "../protocol/names.ts";
import { PeerError } from "./errors.ts";

/**
 * The peer protocol version this code speaks. Version 7 keeps a session alive: a side
 * that has heard nothing, or said nothing, for a while sends `peer_ping`, answered by
 * `peer_pong`, and a session that hears nothing for longer ends (see `session.ts`).
 * Version 6 let a sender stream a file right after its offer, without waiting a round
 * trip for the accept, when the receiver said at the start of the session that it
 * accepts every offer (`peer_file_policy`); a `peer_file_end` sent before the accept
 * says so (`early`). Version 5 left a file's
 * integrity to the records' AEAD, which authenticates every byte of the session in
 * order: nobody hashes a whole file; a resumed transfer compares the SHA-256 of the
 * bytes the receiver already holds (`peer_file_accept {prefix}`) with the sender's, and
 * starts over from 0 on a mismatch (`peer_file_restart`). Version 4 sent a file's
 * SHA-256 after its last byte (`peer_file_end {sha256}`: both sides hashed every byte);
 * 3 hashed it before the offer. 4 to 7 keep the handshake and records of 3, which seal
 * records with ChaCha20-Poly1305 under per-direction keys and IVs (their labels, kept,
 * say `chat-peer/3`). Version 2 used AES-256-GCM (and carried up to 1 MiB per record,
 * as 3 does; 64 KiB in version 1). Another version is refused at the first message.
 */
export const PEER_PROTOCOL_VERSION = 7;

/** The only cipher suite: X25519, HKDF-SHA256, ChaCha20-Poly1305. */
export const PEER_SUITE = "x25519-hkdf-sha256-chacha20poly1305";

/** The PAKE of sessions with a code: CPace over ristretto255 with SHA-512. */
export const PEER_PAKE = "cpace-ristretto255-sha512";

/** A file's number in a session, chosen by its sender. */
const fileNumber = z.number().int().positive().max(Number.MAX_SAFE_INTEGER);

/** A 32-byte value in unpadded base64url (43 characters). */
const bytes32 = z.string().regex(/^[A-Za-z0-9_-]{43}$/, "expected 32 bytes in base64url");

/** Schemas of the handshake messages, keyed by `type`. */
export const handshakeSchemas = {
  peer_hello: z.object({
    type: z.literal("peer_hello"),
    v: z.number().int(),
    role: z.enum(["initiator", "responder"]),
    nick: z.string().max(64),
    key: bytes32,
    nonce: bytes32,
    suite: z.string().max(64),
    /** Present when this side uses a session code: the PAKE it runs. */
    pake: z.string().max(64).optional(),
    /** This side's CPace share (with `pake`). */
    share: bytes32.optional(),
  }),
  peer_error: z.object({
    type: z.literal("peer_error"),
    code: z.string().max(64),
    message: z.string().max(500),
    v: z.number().int().optional(),
  }),
  peer_confirm: z.object({ type: z.literal("peer_confirm"), mac: bytes32 }),
} as const;

/** Schemas of the messages of an established session, keyed by `type`. */
export const peerSchemas = {
  peer_text: z.object({
    type: z.literal("peer_text"),
    id: z.string().min(1).max(64),
    ts: z.number().nonnegative(),
    text: z.string().max(MAX_TEXT_LENGTH),
  }),
  peer_bye: z.object({ type: z.literal("peer_bye") }),
  /**
   * Are you there? Sent by a side that has heard nothing, or said nothing, for the
   * keepalive interval; answered by `peer_pong` (peer protocol version 7).
   */
  peer_ping: z.object({ type: z.literal("peer_ping") }),
  /** The answer to `peer_ping`. */
  peer_pong: z.object({ type: z.literal("peer_pong") }),
  /**
   * The receiver accepts every offer (`--accept-files DIR`), said once, first thing in
   * the session: a sender that has heard it streams each file right after its offer,
   * from byte 0, without waiting for the accept (the accept still comes, with a resume
   * offset, or a decline).
   */
  peer_file_policy: z.object({ type: z.literal("peer_file_policy"), accept: z.literal("all") }),
  /**
   * The sender offers a file (`fid`: the sender's number for it in this session). `key`
   * (the sender's `FileSource.resumeKey`) names the receiver's `.part` file, so that the
   * same file offered again resumes.
   */
  peer_file_offer: z.object({
    type: z.literal("peer_file_offer"),
    fid: fileNumber,
    name: z.string().min(1).max(MAX_OFFERED_NAME_LENGTH),
    size: fileBytes,
    key: sha256Hex,
  }),
  /**
   * The receiver accepts: send from `offset` (what a `.part` file already holds), whose
   * bytes have the SHA-256 `prefix` (with an `offset` above 0): the sender compares it
   * with its own first `offset` bytes before it sends any.
   */
  peer_file_accept: z.object({
    type: z.literal("peer_file_accept"),
    fid: fileNumber,
    offset: fileBytes,
    prefix: sha256Hex.optional(),
  }),
  /** The receiver declines the offer, or gives up the transfer. */
  peer_file_decline: z.object({
    type: z.literal("peer_file_decline"),
    fid: fileNumber,
    reason: z.string().max(500),
  }),
  /** Bytes of the file at `offset`, in the frame body. */
  peer_file_data: z.object({
    type: z.literal("peer_file_data"),
    fid: fileNumber,
    offset: fileBytes,
  }),
  /**
   * The sender has sent every byte from the accepted offset on (and found the receiver's
   * resumed prefix equal to its own): the receiver saves the file once it is written.
   * `early`: sent before the accept came (after a `peer_file_policy`): every byte from 0;
   * a receiver that accepted from 0 saves on it, one that resumes from further ignores
   * it (the sender checks the prefix first, then ends again or restarts).
   */
  peer_file_end: z.object({
    type: z.literal("peer_file_end"),
    fid: fileNumber,
    early: z.literal(true).optional(),
  }),
  /**
   * The receiver's resumed prefix is not the sender's (its SHA-256 differs): the
   * receiver empties its `.part` file and accepts again from 0.
   */
  peer_file_restart: z.object({ type: z.literal("peer_file_restart"), fid: fileNumber }),
  /** The receiver has written the file up to `offset` (the sender's window moves on). */
  peer_file_ack: z.object({ type: z.literal("peer_file_ack"), fid: fileNumber, offset: fileBytes }),
  /** The receiver saved the file (`ok`; version 4 also sent false on a SHA-256 mismatch). */
  peer_file_done: z.object({ type: z.literal("peer_file_done"), fid: fileNumber, ok: z.boolean() }),
  /** The sender gives up sending the file. */
  peer_file_abort: z.object({
    type: z.literal("peer_file_abort"),
    fid: fileNumber,
    reason: z.string().max(500),
  }),
} as const;

type Schemas<T> = { [K in keyof T]: T[K] extends z.ZodType ? z.infer<T[K]> : never };

/** Every handshake message, keyed by type. */
export type HandshakeMessageMap = Schemas<typeof handshakeSchemas>;
/** A handshake message. */
export type HandshakeMessage = HandshakeMessageMap[keyof HandshakeMessageMap];
/** The opening message of each side. */
export type PeerHello = HandshakeMessageMap["peer_hello"];
/** Every session message, keyed by type. */
export type PeerMessageMap = Schemas<typeof peerSchemas>;
/** A message of an established session. */
export type PeerMessage = PeerMessageMap[keyof PeerMessageMap];
/** A text message. */
export type PeerText = PeerMessageMap["peer_text"];
/** A file transfer message (`peer_file_*`). */
export type PeerFileMessage = Extract<PeerMessage, { type: `peer_file_${string}` }>;

/** A file number as `fileNumber` checks it: a safe integer above 0. */
function isFileNumber(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value > 0;
}

/** Whether `value` is an offered file name as the offer's schema checks it. */
function isOfferedName(value: unknown): value is string {
  return typeof value === "string" && value.length >= 1 &&
    value.length <= MAX_OFFERED_NAME_LENGTH;
}

/**
 * Checks by hand, for the file transfer messages, exactly what their schemas check, and
 * builds the same message (unknown keys dropped): the message, or null to let the
 * schema say what is wrong. A schema validation per chunk (`peer_file_data`, and
 * `peer_file_ack` every few) cost a receiver more than its JSON header did; the first
 * validation by each schema compiles it (zod builds a validator function with `new
 * Function`), 0.4-2.9 ms for the policy, offer, accept, end and done that every transfer
 * starts and ends with, in the way of its first byte and of its last.
 */
const fileMessageChecks: {
  readonly [T in PeerMessage["type"]]?: (header: Record<string, unknown>) => PeerMessage | null;
} = {
  peer_file_offer: ({ fid, name, size, key }) =>
    isFileNumber(fid) && isOfferedName(name) && isFileBytes(size) && isSha256Hex(key)
      ? { type: "peer_file_offer", fid, name, size, key }
      : null,
  peer_file_accept: ({ fid, offset, prefix }) =>
    isFileNumber(fid) && isFileBytes(offset)
      ? prefix === undefined
        ? { type: "peer_file_accept", fid, offset }
        : isSha256Hex(prefix)
        ? { type: "peer_file_accept", fid, offset, prefix }
        : null
      : null,
  peer_file_data: ({ fid, offset }) =>
    isFileNumber(fid) && isFileBytes(offset) ? { type: "peer_file_data", fid, offset } : null,
  peer_file_ack: ({ fid, offset }) =>
    isFileNumber(fid) && isFileBytes(offset) ? { type: "peer_file_ack", fid, offset } : null,
  peer_file_policy: ({ accept }) =>
    accept === "all" ? { type: "peer_file_policy", accept: "all" } : null,
  peer_file_end: ({ fid, early }) =>
    isFileNumber(fid) && (early === undefined || early === true)
      ? early === true ? { type: "peer_file_end", fid, early } : { type: "peer_file_end", fid }
      : null,
  peer_file_done: ({ fid, ok }) =>
    isFileNumber(fid) && typeof ok === "boolean" ? { type: "peer_file_done", fid, ok } : null,
};

let validations = 0;

/**
 * Headers checked by a schema so far in this process (those of file transfers' offers,
 * accepts, chunks, acks, ends and dones are checked by hand, see
 * {@linkcode parsePeerMessage}).
 */
export function schemaValidations(): number {
  return validations;
}

function parseWith<M>(
  schemas: Record<string, z.ZodType>,
  header: Record<string, unknown>,
  code: "handshake_failed" | "bad_message",
): M {
  const type = header.type;
  if (typeof type !== "string") {
    throw new PeerError(code, `peer message has no string "type"`);
  }
  const schema = Object.hasOwn(schemas, type) ? schemas[type] : undefined;
  if (schema === undefined) {
    throw new PeerError(code, `unexpected peer message type "${clip(type)}"`);
  }
  validations++;
  const result = schema.safeParse(header);
  if (!result.success) {
    const issue = result.error.issues[0];
    const where = issue.path.length > 0 ? issue.path.join(".") : "message";
    throw new PeerError(code, `bad "${clip(type)}": ${where}: ${issue.message}`, {
      cause: result.error,
    });
  }
  return result.data as M;
}

/**
 * Validates a frame header received during the handshake.
 *
 * @throws {PeerError} `handshake_failed` when it is not a valid handshake message.
 * @example
 * ```ts
 * import { parseHandshakeMessage } from "./messages.ts";
 * const msg = parseHandshakeMessage({ type: "peer_error", code: "version", message: "v2 only" });
 * ```
 */
export function parseHandshakeMessage(header: Record<string, unknown>): HandshakeMessage {
  return parseWith<HandshakeMessage>(handshakeSchemas, header, "handshake_failed");
}

/**
 * Validates a frame header received inside an established session (the messages of
 * every file transfer by hand, the same checks as their schemas, the rest by schema).
 *
 * @throws {PeerError} `bad_message` when it is not a valid session message.
 * @example
 * ```ts
 * import { parsePeerMessage } from "./messages.ts";
 * const msg = parsePeerMessage({ type: "peer_text", id: "1", ts: 0, text: "hi" });
 * ```
 */
export function parsePeerMessage(header: Record<string, unknown>): PeerMessage {
  const type = header.type;
  const check = typeof type === "string" && Object.hasOwn(fileMessageChecks, type)
    ? fileMessageChecks[type as PeerMessage["type"]]
    : undefined;
  return check?.(header) ?? parseWith<PeerMessage>(peerSchemas, header, "bad_message");
}

/** Clips and neutralises text from the other side for use inside an error message. */
export function clip(s: string, max = 60): string {
  let out = "";
  for (const ch of s.length > max ? s.slice(0, max) : s) {
    const c = ch.codePointAt(0)!;
    out += c < 0x20 || (c >= 0x7f && c <= 0x9f) ? "?" : ch;
  }
  return s.length > max ? `${out}…` : out;
}
