/**
 * The handshake of a direct peer session: an ephemeral X25519 key agreement over the raw
 * TCP connection, turned into a {@linkcode SecureChannel} and a short authentication
 * string.
 *
 * ## Design (peer protocol version 3)
 *
 * The dialling side is the *initiator*, the listening side the *responder*. Everything on
 * the wire is a sequence of u32be-length-prefixed units: first plaintext frames of the
 * shared frame codec (`protocol/frame.ts`), then encrypted records (`secure_channel.ts`).
 *
 * ```text
 * initiator                                      responder
 *   peer_hello {v, role:"initiator", nick, key, nonce, suite}  ->   (plaintext frame)
 *                                                  checks v, suite, role, nick; on failure
 *                                   <-  peer_error {code, message[, v]} and closes
 *   <-  peer_hello {v, role:"responder", nick, key, nonce, suite}   (plaintext frame)
 *   both: dh = X25519(own private key, other's key)
 *   record 0 in each direction (encrypted):  peer_confirm {mac}   (sent at once by both)
 *   both: check the other's mac; then session frames follow as records 1, 2, ...
 * ```
 *
 * `key` is the 32-byte X25519 public key and `nonce` 32 fresh random bytes (both unpadded
 * base64url), `suite` is `x25519-hkdf-sha256-chacha20poly1305`. A plaintext handshake frame is at
 * most {@linkcode MAX_HELLO_BYTES}; a larger length prefix (an HTTP request, say) fails at
 * once, and the whole handshake is bounded in time.
 *
 * **Transcript.** `th = SHA-256("chat-peer/3 transcript" || u32be(len(Hi)) || Hi ||
 * u32be(len(Hr)) || Hr)`, where `Hi`, `Hr` are the initiator's and the responder's
 * `peer_hello` frame payloads exactly as they travelled (the receiver hashes the bytes it
 * received, never a re-encoding). The hellos carry both public keys, both nonces, both
 * roles, both nicks, the version and the suite, so changing any of them on the way
 * changes `th`.
 *
 * **Key schedule** (`key_schedule.ts`), all HKDF-SHA256 with `ikm = dh || psk` (`psk` is
 * empty today; the PAKE secret of a later version goes there) and `salt = th`:
 *
 * | label (HKDF info)                 | use                                            |
 * | --------------------------------- | ---------------------------------------------- |
 * | `chat-peer/3 key i2r`             | ChaCha20-Poly1305 key, initiator → responder   |
 * | `chat-peer/3 key r2i`             | ChaCha20-Poly1305 key, responder → initiator   |
 * | `chat-peer/3 iv i2r` (12 bytes)   | record IV, initiator → responder               |
 * | `chat-peer/3 iv r2i` (12 bytes)   | record IV, responder → initiator               |
 * | `chat-peer/3 confirm initiator`   | HMAC key: initiator's `mac = HMAC(key, th)`    |
 * | `chat-peer/3 confirm responder`   | HMAC key: responder's `mac = HMAC(key, th)`    |
 * | `chat-peer/3 sas` (ikm = th, no salt) | 16 bytes → 25-digit SAS (`sas.ts`)         |
 *
 * **Session codes (CPace).** When the users share a code (`chat peer --code-file`), both
 * hellos also carry `pake: "cpace-ristretto255-sha512"` and `share`, a CPace share
 * (`cpace.ts`): the initiator's is `Ya = g^ya` with `g` derived from the code, the
 * channel identifier `chat-peer/3 cpace` and `sid` = the initiator's nonce (fresh, and
 * sent before anything else, as the draft allows); the responder answers with `Yb`.
 * Associated data: `initiator` / `responder`. Both compute the CPace ISK and use it as
 * `psk` above, so the session keys depend on the X25519 secret *and* on the code: a man
 * in the middle who runs two handshakes without the code derives keys that fail key
 * confirmation on both sides (`pake_failed`), and what he saw (shares, hellos, MACs)
 * lets him test no code guess offline; each live attempt tests one guess. When one side
 * has a code and the other none, the responder refuses with `peer_error` code
 * `pake_failed` (the initiator checks the responder's hello the same way). The shares
 * are in the hellos, hence in the transcript and the SAS.
 *
 * **Nonces.** Record n of a direction uses nonce `iv XOR (0x00000000 || u64be(n))` under
 * that direction's key and IV; n starts at 0 (the `peer_confirm`) and never repeats; the counter
 * reaching its limit ends the session. The record's 4 length bytes are the AEAD's
 * additional data; its sequence number is authenticated implicitly through the nonce.
 *
 * **Key confirmation.** The first encrypted record each way is `peer_confirm`. If the
 * hellos were tampered with, or the sides derived different keys, it fails to decrypt or
 * its MAC does not verify, and the handshake fails with `handshake_failed` before any
 * session message is read.
 *
 * **Man in the middle.** X25519 without authentication cannot stop an active attacker
 * who runs two handshakes; it ends up with two different transcripts, so the two users
 * see different SAS strings. Comparing the SAS is what authenticates the session.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { decodeFrame, decodePayload, encodeFrame, type Frame } from "../protocol/frame.ts";
import { ProtocolError } from "../protocol/errors.ts";
import { nameProblem } from "../protocol/names.ts";
import type { ByteChannel } from "../transport/framed_connection.ts";
import { ByteReader } from "./byte_reader.ts";
import { findPeerError, PeerError } from "./errors.ts";
import {
  confirmationMac,
  deriveSessionSecrets,
  transcriptHash,
  verifyConfirmation,
} from "./key_schedule.ts";
import {
  clip,
  parseHandshakeMessage,
  PEER_PAKE,
  PEER_PROTOCOL_VERSION,
  PEER_SUITE,
  type PeerHello,
} from "./messages.ts";
import { deriveSas } from "./sas.ts";
import { normalizeCode } from "./code.ts";
import { type CpaceState, finishCpace, startCpace } from "./cpace.ts";
import { concatBytes } from "../protocol/bytes.ts";
import { SecureChannel } from "./secure_channel.ts";
import type { RecordAead } from "./record_aead.ts";

const log = getLogger(["chat", "peer"]);

/** Largest plaintext handshake frame (payload bytes). */
export const MAX_HELLO_BYTES = 4096;
/** Default bound on the whole handshake, in milliseconds. */
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;

/** Which end of the connection this side is: the dialler initiates. */
export type PeerRole = "initiator" | "responder";

/** Options of {@linkcode performHandshake}. */
export interface HandshakeOptions {
  /** This side's role. */
  role: PeerRole;
  /** This side's nick (shown to the other side). */
  nick: string;
  /** Bound on the whole handshake. Default {@linkcode DEFAULT_HANDSHAKE_TIMEOUT_MS}. */
  timeoutMs?: number;
  /** A secret both sides already share, mixed into the key schedule. Default none. */
  psk?: Uint8Array;
  /**
   * A session code both users know (normalised with `normalizeCode`): runs CPace and
   * binds the session keys to it. Both sides must give the same code, or neither.
   */
  code?: string;
  /** Records allowed per direction (see {@linkcode SecureChannel}); for tests. */
  maxRecords?: bigint;
  /** The records' ChaCha20-Poly1305 implementation. Default: the process's (`recordAead`). */
  aead?: RecordAead;
  /**
   * Bound on waiting for the other side's hello, in milliseconds, within the whole
   * handshake's bound: a listener closes a silent connection after this. Default: the
   * whole handshake's bound.
   */
  helloTimeoutMs?: number;
  /**
   * Responder with a code: called once the initiator's hello is valid, just before this
   * side answers with its CPace share (from then on the attempt tests one guess of the
   * code). Throwing a {@linkcode PeerError} refuses the attempt: the initiator is told
   * why, and no share is sent.
   */
  onCodeAttempt?: () => void;
}

/** What a successful handshake yields. */
export interface HandshakeResult {
  /** The encrypted channel; its next records are session frames. */
  channel: SecureChannel;
  /** The other side's nick (valid by the naming rules). */
  remoteNick: string;
  /** The short authentication string both sides show. */
  sas: string;
  /** The transcript hash (for binding later protocol steps to this session). */
  transcriptHash: Uint8Array;
}

/**
 * Runs the handshake on a fresh connection. On failure the connection is closed and a
 * {@linkcode PeerError} is thrown; the responder first tells the other side why (in a
 * plaintext `peer_error`) when the failure is in the other side's hello.
 *
 * @throws {PeerError} `handshake_failed`, `version`, `timeout`, `pake_failed` (codes differ,
 * or only one side has one) or `invalid_code`.
 * @example
 * ```ts ignore
 * import { performHandshake } from "./handshake.ts";
 * const conn = await Deno.connect({ hostname: "127.0.0.1", port: 40123 });
 * const { channel, sas, remoteNick } = await performHandshake(conn, {
 *   role: "initiator",
 *   nick: "alice",
 * });
 * ```
 */
export async function performHandshake(
  transport: ByteChannel,
  options: HandshakeOptions,
): Promise<HandshakeResult> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
  let timedOut: "hello" | "handshake" | null = null;
  const timer = setTimeout(() => {
    timedOut = "handshake";
    closeQuietly(transport);
  }, timeoutMs);
  const helloTimeoutMs = options.helloTimeoutMs;
  const helloTimer = helloTimeoutMs !== undefined && helloTimeoutMs < timeoutMs
    ? setTimeout(() => {
      timedOut = "hello";
      closeQuietly(transport);
    }, helloTimeoutMs)
    : undefined;
  try {
    return await run(transport, options, () => clearTimeout(helloTimer));
  } catch (err) {
    closeQuietly(transport);
    if (timedOut === "hello") {
      throw new PeerError(
        "timeout",
        `the other side sent no hello within ${helloTimeoutMs} ms (a silent connection)`,
        { cause: err },
      );
    }
    if (timedOut === "handshake") {
      throw new PeerError("timeout", `the handshake did not finish within ${timeoutMs} ms`, {
        cause: err,
      });
    }
    const peerError = findPeerError(err);
    if (peerError && peerError.code !== "connection_lost") throw peerError;
    throw new PeerError(
      "handshake_failed",
      `the handshake failed: ${err instanceof Error ? err.message : String(err)}`,
      { cause: err },
    );
  } finally {
    clearTimeout(timer);
    clearTimeout(helloTimer);
  }
}

async function run(
  transport: ByteChannel,
  options: HandshakeOptions,
  helloReceived: () => void,
): Promise<HandshakeResult> {
  const { role } = options;
  const nickProblem = nameProblem(options.nick);
  if (nickProblem !== null) throw new PeerError("invalid_nick", `nick ${nickProblem}`);
  const code = options.code === undefined ? undefined : normalizeCode(options.code);
  const reader = new ByteReader(transport);
  const keyPair = await crypto.subtle.generateKey({ name: "X25519" }, false, [
    "deriveBits",
  ]) as CryptoKeyPair;
  const publicKey = new Uint8Array(await crypto.subtle.exportKey("raw", keyPair.publicKey));
  const nonce = crypto.getRandomValues(new Uint8Array(32));
  const makeHello = (cpace: CpaceState | null): PeerHello => ({
    type: "peer_hello",
    v: PEER_PROTOCOL_VERSION,
    role,
    nick: options.nick,
    key: toBase64Url(publicKey),
    nonce: toBase64Url(nonce),
    suite: PEER_SUITE,
    ...(cpace ? { pake: PEER_PAKE, share: toBase64Url(cpace.share) } : {}),
  });

  let ownFrame: Uint8Array;
  let remotePayload: Uint8Array;
  let remote: PeerHello;
  let sharedSecret: Uint8Array;
  let cpace: CpaceState | null = null;
  if (role === "initiator") {
    // The initiator's nonce is the CPace session id: fresh, and sent first.
    if (code !== undefined) cpace = await startCpace(cpaceInput(code, nonce, "initiator"));
    ownFrame = encodeFrame(makeHello(cpace));
    await writeAll(transport, ownFrame);
    remotePayload = await readHandshakeFrame(reader, "the responder's hello");
    helloReceived();
    remote = checkHello(decodeHandshakePayload(remotePayload), "responder");
    checkPake(remote, code, "initiator");
    sharedSecret = await agree(keyPair.privateKey, remote.key);
  } else {
    try {
      remotePayload = await readHandshakeFrame(reader, "the initiator's hello");
      helloReceived();
      remote = checkHello(decodeHandshakePayload(remotePayload), "initiator");
      checkPake(remote, code, "responder");
      sharedSecret = await agree(keyPair.privateKey, remote.key);
      if (code !== undefined) {
        options.onCodeAttempt?.();
        cpace = await startCpace(cpaceInput(code, fromBase64Url(remote.nonce), "responder"));
      }
    } catch (err) {
      await refuse(transport, err);
      throw err;
    }
    ownFrame = encodeFrame(makeHello(cpace));
    await writeAll(transport, ownFrame);
  }
  const ownPayload = ownFrame.subarray(4);
  let psk = options.psk;
  if (cpace !== null) {
    const isk = await finishCpace(
      cpace,
      role,
      fromBase64Url(remote.share!),
      role === "initiator" ? "responder" : "initiator",
    );
    psk = concatBytes([isk, options.psk ?? new Uint8Array(0)]);
    isk.fill(0);
  }

  const th = await transcriptHash(
    role === "initiator" ? ownPayload : remotePayload,
    role === "initiator" ? remotePayload : ownPayload,
  );
  const secrets = await deriveSessionSecrets({
    sharedSecret,
    transcriptHash: th,
    ...(psk ? { psk } : {}),
  });
  sharedSecret.fill(0);
  if (cpace !== null) psk!.fill(0);
  const initiator = role === "initiator";
  const i2r = { key: secrets.initiatorToResponder, iv: secrets.ivInitiatorToResponder };
  const r2i = { key: secrets.responderToInitiator, iv: secrets.ivResponderToInitiator };
  const channel = SecureChannel.create(
    transport,
    initiator ? i2r : r2i,
    initiator ? r2i : i2r,
    {
      reader,
      ...(options.maxRecords ? { maxRecords: options.maxRecords } : {}),
      ...(options.aead ? { aead: options.aead } : {}),
    },
  );
  const ownConfirmKey = initiator ? secrets.confirmInitiator : secrets.confirmResponder;
  const remoteConfirmKey = initiator ? secrets.confirmResponder : secrets.confirmInitiator;
  const mac = await confirmationMac(ownConfirmKey, th);
  await channel.writeRecord(encodeFrame({ type: "peer_confirm", mac: toBase64Url(mac) }));

  let record: Uint8Array | null;
  try {
    record = await channel.readRecord();
  } catch (err) {
    const peerError = findPeerError(err);
    if (peerError?.code === "decrypt_failed" || peerError?.code === "bad_record") {
      if (cpace !== null) {
        throw new PeerError(
          "pake_failed",
          "key confirmation failed: the two sides do not have the same code " +
            "(or someone without the code is in the middle)",
          { cause: err },
        );
      }
      throw new PeerError(
        "handshake_failed",
        "key confirmation failed: the connection was tampered with, " +
          "or the two sides derived different keys",
        { cause: err },
      );
    }
    throw err;
  }
  if (record === null) {
    throw new PeerError("handshake_failed", "the other side closed during key confirmation");
  }
  let confirmFrame: Frame;
  try {
    confirmFrame = decodeFrame(record, MAX_HELLO_BYTES);
  } catch (cause) {
    throw new PeerError("handshake_failed", "the key confirmation record is malformed", {
      cause,
    });
  }
  const confirm = parseHandshakeMessage(confirmFrame.header);
  if (confirm.type !== "peer_confirm") {
    throw new PeerError("handshake_failed", `expected peer_confirm, got ${confirm.type}`);
  }
  if (!await verifyConfirmation(remoteConfirmKey, th, fromBase64Url(confirm.mac))) {
    throw new PeerError(
      cpace !== null ? "pake_failed" : "handshake_failed",
      "key confirmation failed: the other side's MAC does not match the transcript",
    );
  }
  for (const key of [ownConfirmKey, remoteConfirmKey]) key.fill(0);
  const sas = await deriveSas(th);
  log.debug("handshake done as {role} with {nick}", { role, nick: remote.nick });
  return { channel, remoteNick: remote.nick, sas, transcriptHash: th };
}

/** The channel identifier of the CPace runs of peer sessions. */
const CPACE_CI = "chat-peer/3 cpace";

function cpaceInput(code: string, sid: Uint8Array, ad: PeerRole) {
  return { prs: code, ci: CPACE_CI, sid, ad };
}

/** Both sides use a code, or neither; the PAKE must be the one this side runs. */
function checkPake(remote: PeerHello, code: string | undefined, self: PeerRole): void {
  if (remote.pake === undefined) {
    if (code === undefined) return;
    throw new PeerError(
      "pake_failed",
      self === "responder"
        ? "this side requires a session code and the other side gave none: " +
          "both sides must use the same code"
        : "the other side did not use the session code: both sides must use the same code",
    );
  }
  if (code === undefined) {
    throw new PeerError(
      "pake_failed",
      "the other side uses a session code and this side has none: " +
        "both sides must use the same code",
    );
  }
  if (remote.pake !== PEER_PAKE || remote.share === undefined) {
    throw new PeerError(
      "pake_failed",
      `the other side runs the PAKE "${clip(remote.pake)}"${
        remote.share === undefined ? " without a share" : ""
      }; this side runs ${PEER_PAKE}`,
    );
  }
}

/** X25519 with the other side's public key; refuses low-order points (an all-zero result). */
async function agree(privateKey: CryptoKey, remoteKey: string): Promise<Uint8Array> {
  try {
    const publicKey = await crypto.subtle.importKey(
      "raw",
      fromBase64Url(remoteKey),
      { name: "X25519" },
      true,
      [],
    );
    const shared = new Uint8Array(
      await crypto.subtle.deriveBits({ name: "X25519", public: publicKey }, privateKey, 256),
    );
    if (shared.every((byte) => byte === 0)) throw new Error("all-zero shared secret");
    return shared;
  } catch (cause) {
    throw new PeerError("handshake_failed", "the other side's public key is not usable", {
      cause,
    });
  }
}

/** Reads one plaintext handshake frame's payload, bounded by {@linkcode MAX_HELLO_BYTES}. */
async function readHandshakeFrame(reader: ByteReader, what: string): Promise<Uint8Array> {
  const prefix = await reader.readExact(4);
  if (prefix === null) {
    throw new PeerError("handshake_failed", `the other side closed before sending ${what}`);
  }
  const length = new DataView(prefix.buffer).getUint32(0);
  if (length > MAX_HELLO_BYTES) {
    throw new PeerError(
      "handshake_failed",
      `the other side does not speak the chat peer protocol ` +
        `(its first frame announces ${length} bytes; a hello is at most ${MAX_HELLO_BYTES})`,
    );
  }
  const payload = await reader.readExact(length);
  if (payload === null) {
    throw new PeerError("handshake_failed", `the other side closed inside ${what}`);
  }
  return payload;
}

function decodeHandshakePayload(payload: Uint8Array): Record<string, unknown> {
  try {
    return decodePayload(payload).header;
  } catch (cause) {
    const reason = cause instanceof ProtocolError ? cause.message : "malformed frame";
    throw new PeerError(
      "handshake_failed",
      `the other side does not speak the chat peer protocol (${reason})`,
      { cause },
    );
  }
}

/** Validates the other side's hello (version first, so a newer hello is refused clearly). */
function checkHello(header: Record<string, unknown>, expectedRole: PeerRole): PeerHello {
  if (
    header.type === "peer_hello" && typeof header.v === "number" &&
    header.v !== PEER_PROTOCOL_VERSION
  ) {
    throw new PeerError(
      "version",
      `the other side speaks peer protocol version ${clip(String(header.v))}; ` +
        `this side speaks ${PEER_PROTOCOL_VERSION}: run the same version of chat on both sides`,
    );
  }
  const message = parseHandshakeMessage(header);
  if (message.type === "peer_error") {
    throw new PeerError(
      message.code === "version"
        ? "version"
        : message.code === "pake_failed"
        ? "pake_failed"
        : "handshake_failed",
      `the other side refused the handshake (${clip(message.code, 32)}): ${
        clip(message.message, 200)
      }`,
    );
  }
  if (message.type !== "peer_hello") {
    throw new PeerError("handshake_failed", `expected peer_hello, got ${message.type}`);
  }
  if (message.role !== expectedRole) {
    throw new PeerError(
      "handshake_failed",
      `the other side claims the role ${message.role}; expected ${expectedRole}`,
    );
  }
  if (message.suite !== PEER_SUITE) {
    throw new PeerError(
      "handshake_failed",
      `the other side offers the cipher suite "${
        clip(message.suite)
      }"; this side speaks ${PEER_SUITE}`,
    );
  }
  const problem = nameProblem(message.nick);
  if (problem !== null) {
    throw new PeerError("handshake_failed", `the other side's nick ${problem}`);
  }
  return message;
}

/** Tells the initiator why its hello was refused, best effort, in plaintext. */
async function refuse(transport: ByteChannel, err: unknown): Promise<void> {
  const peerError = findPeerError(err);
  const code = peerError?.code ?? "handshake_failed";
  const frame = encodeFrame({
    type: "peer_error",
    code,
    message: (err instanceof Error ? err.message : String(err)).slice(0, 500),
    ...(code === "version" ? { v: PEER_PROTOCOL_VERSION } : {}),
  });
  try {
    await writeAll(transport, frame);
  } catch {
    // the other side is gone already
  }
}

async function writeAll(channel: ByteChannel, bytes: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < bytes.length) offset += await channel.write(bytes.subarray(offset));
}

function closeQuietly(channel: ByteChannel): void {
  try {
    channel.close();
  } catch {
    // already closed
  }
}

function toBase64Url(bytes: Uint8Array): string {
  return bytes.toBase64({ alphabet: "base64url", omitPadding: true });
}

function fromBase64Url(text: string): Uint8Array<ArrayBuffer> {
  return Uint8Array.fromBase64(text, { alphabet: "base64url" }) as Uint8Array<ArrayBuffer>;
}
