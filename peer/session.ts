/**
 * An established, end-to-end encrypted peer session: the shared frame codec carried
 * inside a {@linkcode SecureChannel}, with text messages, a keepalive and a goodbye.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { ProtocolError } from "../protocol/errors.ts";
import { textProblem } from "../protocol/names.ts";
import { encodeFrameWithBody } from "../protocol/frame.ts";
import { BufferPool, SentBufferPool } from "../transport/buffer_pool.ts";
import { FramedConnection } from "../transport/framed_connection.ts";
import { ConnectionClosedError, QueueOverflowError } from "../transport/errors.ts";
import { findPeerError, PeerError } from "./errors.ts";
import type { PeerRole } from "./handshake.ts";
import { parsePeerMessage, type PeerFileMessage, type PeerText } from "./messages.ts";
import { SEALABLE_ROOM, type SecureChannel, TAG_BYTES } from "./secure_channel.ts";

const log = getLogger(["chat", "peer"]);

/** Pooled payload size: a file data chunk and its header. */
const FILE_DATA_PAYLOAD_BYTES = 1024 * 1024;

/** Largest frame accepted inside a session (room for file chunks). */
export const PEER_MAX_FRAME_SIZE: number = 1024 * 1024;

/**
 * Bound of a session's outbound queue: a file sender keeps up to 2 MiB and a chunk
 * queued (`QUEUE_BYTES` in `file_transfer.ts`), with room beside them for texts and
 * the other file messages.
 */
export const PEER_MAX_QUEUE_BYTES: number = 8 * 1024 * 1024;

/** Default keepalive interval: a ping after 15 s without a byte from, or to, the other side. */
export const DEFAULT_KEEPALIVE_INTERVAL_MS = 15_000;

/** Default keepalive timeout: the session ends after 45 s without a byte from the other side. */
export const DEFAULT_KEEPALIVE_TIMEOUT_MS = 45_000;

/** The keepalive of a session (see {@linkcode PeerSession}). */
export interface PeerKeepaliveOptions {
  /**
   * A `peer_ping` goes out after this long without a byte received from the other side
   * or written to it. Default {@linkcode DEFAULT_KEEPALIVE_INTERVAL_MS}.
   */
  intervalMs?: number;
  /**
   * The session ends with a `timeout` error after this long without a byte received
   * from the other side (at least `intervalMs`). Default
   * {@linkcode DEFAULT_KEEPALIVE_TIMEOUT_MS}.
   */
  timeoutMs?: number;
}

/** What a session's keepalive has done so far. */
export interface PeerKeepaliveStats {
  /** Pings this side sent. */
  pingsSent: number;
  /** Pings the other side sent (each answered with a pong). */
  pingsReceived: number;
  /** Pongs the other side sent. */
  pongsReceived: number;
}

/** A text message from the other side. */
export interface PeerTextEvent {
  /** Discriminant. */
  type: "text";
  /** The sender's message id. */
  id: string;
  /** The sender's clock when it sent the message, in ms since the epoch. */
  ts: number;
  /** The text, exactly as sent; neutralise control characters before printing it. */
  text: string;
  /** The sender's nick. */
  from: string;
}

/** The other side said goodbye; the session is over. */
export interface PeerLeftEvent {
  /** Discriminant. */
  type: "left";
  /** The nick of the side that left. */
  from: string;
}

/** A file transfer message from the other side (see `file_transfer.ts`). */
export interface PeerFileEvent {
  /** Discriminant. */
  type: "file";
  /** The validated message. */
  message: PeerFileMessage;
  /** The frame body: file bytes for `peer_file_data`, empty otherwise. */
  body: Uint8Array;
}

/** What a {@linkcode PeerSession} yields. */
export type PeerEvent = PeerTextEvent | PeerLeftEvent | PeerFileEvent;

/** What {@linkcode PeerSession} is made from (the outcome of a handshake). */
export interface PeerSessionInit {
  /** The encrypted channel after key confirmation. */
  channel: SecureChannel;
  /** This side's role in the handshake. */
  role: PeerRole;
  /** This side's nick. */
  localNick: string;
  /** The other side's nick. */
  remoteNick: string;
  /** The short authentication string. */
  sas: string;
  /** The other side's address, when known. */
  remoteAddr?: Deno.Addr;
  /** The keepalive's interval and timeout. Default: 15 s and 45 s. */
  keepalive?: PeerKeepaliveOptions;
}

/**
 * A peer session. Iterate it (once) for the other side's messages: it yields `text`
 * events, then a `left` event when the other side says goodbye, and ends. It throws a
 * {@linkcode PeerError} when the session fails: `connection_lost` when the other side
 * vanished without a goodbye, `timeout` when nothing came from it for the keepalive's
 * timeout, `decrypt_failed` or `bad_record` when a record did not authenticate,
 * `bad_message` for an invalid message. Nothing is yielded from a record that did not
 * authenticate.
 *
 * The keepalive (as SSH's `ServerAliveInterval` and `ServerAliveCountMax`): a side that
 * has received no byte from the other, or written none to it, for the interval (15 s)
 * sends a `peer_ping`, which the other answers with a `peer_pong`. Any byte received
 * counts as life (a busy transfer sends no pings; a large record counts as its bytes
 * arrive, not once whole), and a side that writes nothing for an interval pings too:
 * the other side hears it even when its own ping waits behind a file's bytes on a slow
 * link. A session that receives nothing for the timeout (45 s) while it is iterated and
 * waiting for the network ends with `timeout` (the other machine went to sleep, lost its
 * network, or a NAT dropped the mapping: nothing closes the connection, nothing arrives).
 * The time the iteration's consumer holds an event, or the process does not run (its
 * event loop blocked), is not the other side's silence and does not count. One timer per
 * session, cleared when the session ends, never keeping the process alive.
 *
 * @example
 * ```ts ignore
 * import { connectPeer } from "./connect.ts";
 * const session = await connectPeer({ host: "192.168.1.5", port: 40123, nick: "bob" });
 * console.log("Compare with your peer:", session.sas);
 * await session.sendText("hello");
 * for await (const event of session) {
 *   if (event.type === "text") console.log(event.from, event.text);
 * }
 * await session.close();
 * ```
 */
export class PeerSession implements AsyncIterable<PeerEvent>, AsyncDisposable {
  readonly #conn: FramedConnection;
  readonly #role: PeerRole;
  readonly #localNick: string;
  readonly #remoteNick: string;
  readonly #sas: string;
  readonly #remoteAddr: Deno.Addr | undefined;
  /** Buffers for file data frames, handed back once their bytes are written. */
  readonly #payloads = new BufferPool(FILE_DATA_PAYLOAD_BYTES, 4);
  /** Buffers for outgoing file data frames, taken again once the frame is written. */
  readonly #outgoingFrames: SentBufferPool;
  #iterated = false;
  #closedLocally = false;
  #ended = false;
  readonly #channel: SecureChannel;
  readonly #intervalMs: number;
  readonly #timeoutMs: number;
  /** The keepalive's timer; undefined once the session is over. */
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** When the keepalive's timer is due. */
  #dueAt = 0;
  /** The iteration waits for the network (not for its consumer): silence counts. */
  #listening = false;
  /** When the keepalive last saw a byte received (or started counting silence afresh). */
  #heardAt: number;
  #heardBytes: number;
  /** When the keepalive last saw a byte written. */
  #saidAt: number;
  #saidBytes: number;
  #pingedAt = -Infinity;
  /** Why the session failed here (the keepalive's timeout), for the iteration to throw. */
  #failure: PeerError | undefined;
  readonly #keepaliveStats: PeerKeepaliveStats = {
    pingsSent: 0,
    pingsReceived: 0,
    pongsReceived: 0,
  };

  /**
   * Wraps an established channel; the session owns it from now on.
   *
   * @throws {RangeError} when the keepalive's interval is not a positive number of
   * milliseconds, or its timeout is shorter than its interval.
   */
  constructor(init: PeerSessionInit) {
    const intervalMs = init.keepalive?.intervalMs ?? DEFAULT_KEEPALIVE_INTERVAL_MS;
    const timeoutMs = init.keepalive?.timeoutMs ?? DEFAULT_KEEPALIVE_TIMEOUT_MS;
    if (!Number.isFinite(intervalMs) || intervalMs <= 0) {
      throw new RangeError(`the keepalive interval must be a positive number of ms`);
    }
    if (!Number.isFinite(timeoutMs) || timeoutMs < intervalMs) {
      throw new RangeError(`the keepalive timeout must be at least its interval`);
    }
    this.#conn = new FramedConnection(init.channel, {
      maxFrameSize: PEER_MAX_FRAME_SIZE,
      maxQueueBytes: PEER_MAX_QUEUE_BYTES,
      allocatePayload: (length) => this.#payloads.take(length),
    });
    // Frames laid out where the channel seals them in place: no buffer of its own to seal
    // a megabyte into (fresh memory to fault in), no second pass over the bytes. Never
    // given back (the pool is not released): garbage with the session.
    const channel = init.channel;
    this.#outgoingFrames = new SentBufferPool(
      4 + FILE_DATA_PAYLOAD_BYTES,
      6,
      () => ({ written: this.#conn.stats.bytesOut, queued: this.#conn.queuedBytes }),
      { take: (length) => channel.sealable(length), give: () => {} },
    );
    this.#role = init.role;
    this.#localNick = init.localNick;
    this.#remoteNick = init.remoteNick;
    this.#sas = init.sas;
    this.#remoteAddr = init.remoteAddr;
    this.#channel = channel;
    this.#intervalMs = intervalMs;
    this.#timeoutMs = timeoutMs;
    this.#heardAt = this.#saidAt = performance.now();
    this.#heardBytes = channel.bytesReceived;
    this.#saidBytes = 0;
    this.#schedule(intervalMs);
    this.#conn.done.then(() => this.#stopKeepalive());
  }

  /** The short authentication string; both sides must show the same one. */
  get sas(): string {
    return this.#sas;
  }

  /** The other side's nick. */
  get remoteNick(): string {
    return this.#remoteNick;
  }

  /** This side's nick. */
  get localNick(): string {
    return this.#localNick;
  }

  /** This side's role: `initiator` when it dialled, `responder` when it listened. */
  get role(): PeerRole {
    return this.#role;
  }

  /** The other side's address, when known. */
  get remoteAddr(): Deno.Addr | undefined {
    return this.#remoteAddr;
  }

  /** What the keepalive has done so far: pings sent and received, pongs received. */
  get keepaliveStats(): PeerKeepaliveStats {
    return { ...this.#keepaliveStats };
  }

  /** Whether the session is over (closed here, left, lost or failed). */
  get closed(): boolean {
    return this.#ended || this.#closedLocally || this.#conn.closed;
  }

  /**
   * Sends a text message; resolves once it is handed to the network.
   *
   * @returns the message as sent (its id and timestamp).
   * @throws {PeerError} `invalid_text` (nothing sent) or `closed`.
   */
  async sendText(text: string): Promise<PeerText> {
    const problem = textProblem(text);
    if (problem !== null) throw new PeerError("invalid_text", problem);
    const message: PeerText = {
      type: "peer_text",
      id: crypto.randomUUID(),
      ts: Date.now(),
      text,
    };
    this.#send(message);
    await this.#conn.flush();
    const failure = this.#conn.error;
    if (failure !== undefined && !this.#closedLocally) {
      throw findPeerError(failure) ??
        new PeerError("closed", "the message could not be sent: the connection failed", {
          cause: failure,
        });
    }
    return message;
  }

  /**
   * Queues a file transfer message, with file bytes in `body` for `peer_file_data`
   * (see `file_transfer.ts`, which keeps the bytes in flight bounded).
   *
   * @throws {PeerError} `closed`.
   */
  sendFileMessage(message: PeerFileMessage, body?: Uint8Array): void {
    try {
      this.#conn.send(message, body);
    } catch (err) {
      if (err instanceof ConnectionClosedError) {
        throw new PeerError("closed", "the session is closed", { cause: err });
      }
      throw err;
    }
  }

  /**
   * Lays out a `peer_file_data` frame for `message` with room for `length` body bytes,
   * in a buffer that no queued frame uses: read the file straight into `body`, then queue
   * `frame` with {@linkcode sendEncodedFileData} (no copy of the bytes on the way; the
   * channel seals them where they lie, so the frame holds ciphertext once written).
   */
  encodeFileData(
    message: PeerFileMessage,
    length: number,
  ): { frame: Uint8Array<ArrayBuffer>; body: Uint8Array<ArrayBuffer> } {
    return encodeFrameWithBody(message, length, this.#outgoingFrames.take());
  }

  /**
   * Queues a frame from {@linkcode encodeFileData}; its buffer is taken again only once
   * the frame is written.
   *
   * @throws {PeerError} `closed`.
   */
  sendEncodedFileData(frame: Uint8Array<ArrayBuffer>): void {
    try {
      // The body queued as a piece of its own: it travels in records of its own, which
      // the other side decrypts straight into the frame's payload (see SecureChannel).
      // Both pieces or neither: a full queue refuses the frame whole.
      const bodyStart = 8 + new DataView(frame.buffer, frame.byteOffset + 4, 4).getUint32(0);
      if (
        bodyStart < frame.length &&
        this.#conn.queuedBytes + frame.length <= PEER_MAX_QUEUE_BYTES
      ) {
        this.#conn.sendEncoded(frame.subarray(0, bodyStart));
        this.#conn.sendEncoded(frame.subarray(bodyStart));
      } else {
        this.#conn.sendEncoded(frame);
      }
    } catch (err) {
      if (err instanceof ConnectionClosedError) {
        throw new PeerError("closed", "the session is closed", { cause: err });
      }
      throw err;
    }
    if (
      frame.byteOffset === SEALABLE_ROOM &&
      frame.buffer.byteLength === SEALABLE_ROOM + 4 + FILE_DATA_PAYLOAD_BYTES + TAG_BYTES
    ) {
      this.#outgoingFrames.queued(
        new Uint8Array(frame.buffer, frame.byteOffset, 4 + FILE_DATA_PAYLOAD_BYTES),
      );
    }
  }

  /**
   * Hands back the body of a `peer_file_data` message once nothing uses it any more (it
   * is written to disk): its memory receives a later message. Only the one user of the
   * body may hand it back, once.
   */
  recycleFileData(body: Uint8Array): void {
    this.#payloads.give(body);
  }

  /** Bytes queued for the other side and not yet written. */
  get queuedBytes(): number {
    return this.#conn.queuedBytes;
  }

  /**
   * Resolves once at most `bytes` are queued for the other side (at once when they
   * already are, or when the session is closed: sending then fails).
   */
  async whenQueuedBelow(bytes: number): Promise<void> {
    const queued = this.#conn.queuedBytes;
    if (queued <= bytes || this.closed) return;
    await this.#conn.whenWritten(this.#conn.stats.bytesOut + queued - bytes);
  }

  /**
   * Says goodbye (the other side reports that this side left) and closes. Waits at most
   * `timeoutMs` for queued messages to be written.
   */
  async close(timeoutMs = 2000): Promise<void> {
    if (this.#closedLocally) return;
    this.#closedLocally = true;
    this.#stopKeepalive();
    if (!this.#ended && !this.#conn.closed) {
      try {
        this.#conn.send({ type: "peer_bye" });
      } catch {
        // the connection ended meanwhile
      }
    }
    await this.#conn.close(timeoutMs);
  }

  /** Closes at once without a goodbye (the other side reports a lost connection). */
  abort(): void {
    this.#closedLocally = true;
    this.#stopKeepalive();
    this.#conn.abort();
  }

  /** Closes with a goodbye; for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /**
   * Yields the other side's messages until it leaves; see {@linkcode PeerSession}.
   * Ends quietly after a local {@linkcode close}.
   *
   * @throws {PeerError} when the session fails.
   */
  async *[Symbol.asyncIterator](): AsyncIterator<PeerEvent> {
    if (this.#iterated) throw new TypeError("a PeerSession can be iterated only once");
    this.#iterated = true;
    try {
      this.#listening = true;
      for await (const frame of this.#conn) {
        const message = parsePeerMessage(frame.header);
        if (message.type.startsWith("peer_file_")) {
          this.#listening = false;
          yield { type: "file", message: message as PeerFileMessage, body: frame.body };
          this.#listening = true;
        } else if (message.type === "peer_text") {
          this.#listening = false;
          yield {
            type: "text",
            id: message.id,
            ts: message.ts,
            text: message.text,
            from: this.#remoteNick,
          };
          this.#listening = true;
        } else if (message.type === "peer_ping") {
          this.#keepaliveStats.pingsReceived++;
          this.#sendKeepalive({ type: "peer_pong" });
        } else if (message.type === "peer_pong") {
          this.#keepaliveStats.pongsReceived++;
        } else if (message.type === "peer_bye") {
          this.#ended = true;
          this.#stopKeepalive();
          this.#conn.abort();
          log.debug("{nick} left", { nick: this.#remoteNick });
          this.#listening = false;
          yield { type: "left", from: this.#remoteNick };
          return;
        }
      }
    } catch (err) {
      if (this.#closedLocally) return;
      throw this.#fail(this.#failure ?? this.#toPeerError(err));
    } finally {
      this.#listening = false;
    }
    if (this.#closedLocally) return;
    const cause = this.#conn.error;
    throw this.#fail(
      this.#failure ?? findPeerError(cause) ??
        new PeerError(
          "connection_lost",
          `connection to ${this.#remoteNick} lost (closed without saying goodbye)`,
          cause === undefined ? undefined : { cause },
        ),
    );
  }

  #send(message: object): void {
    try {
      this.#conn.send(message);
    } catch (err) {
      if (err instanceof ConnectionClosedError) {
        throw new PeerError("closed", "the session is closed", { cause: err });
      }
      throw err;
    }
  }

  #fail(error: PeerError): PeerError {
    this.#ended = true;
    this.#stopKeepalive();
    log.debug("session with {nick} failed: {error}", { nick: this.#remoteNick, error });
    this.#conn.abort(error);
    return error;
  }

  /** Arms the keepalive's timer `delayMs` from now; it never keeps the process alive. */
  #schedule(delayMs: number): void {
    const delay = Math.max(1, Math.ceil(delayMs));
    this.#dueAt = performance.now() + delay;
    const timer = setTimeout(() => this.#keepalive(), delay);
    Deno.unrefTimer(timer);
    this.#timer = timer;
  }

  #stopKeepalive(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /**
   * The keepalive's timer: notes whether bytes came and went since it last ran, ends the
   * session after the timeout of silence, pings after an interval of it, and arms itself
   * for the next of these.
   */
  #keepalive(): void {
    if (this.#timer === undefined || this.closed) return;
    const now = performance.now();
    const heard = this.#channel.bytesReceived;
    // Silence counts only while the iteration waits for the network and the process
    // runs: held by its consumer, or run late (the event loop blocked, the machine
    // asleep), bytes may be waiting unread.
    if (heard !== this.#heardBytes || !this.#listening || now - this.#dueAt > this.#intervalMs) {
      this.#heardBytes = heard;
      this.#heardAt = now;
    }
    const said = this.#conn.stats.bytesOut;
    if (said !== this.#saidBytes) {
      this.#saidBytes = said;
      this.#saidAt = now;
    }
    if (now - this.#heardAt >= this.#timeoutMs) {
      this.#timer = undefined;
      const error = new PeerError(
        "timeout",
        `${this.#remoteNick} stopped answering: nothing received for ${
          describeMs(this.#timeoutMs)
        }`,
      );
      this.#failure = error;
      this.#fail(error);
      return;
    }
    const quietSince = Math.max(Math.min(this.#heardAt, this.#saidAt), this.#pingedAt);
    if (now - quietSince >= this.#intervalMs) {
      this.#pingedAt = now;
      // Bytes still queued reach the other side before a ping would.
      if (this.#conn.queuedBytes === 0 && this.#sendKeepalive({ type: "peer_ping" })) {
        this.#keepaliveStats.pingsSent++;
      }
    }
    const next = Math.min(
      this.#heardAt + this.#timeoutMs,
      Math.max(Math.min(this.#heardAt, this.#saidAt), this.#pingedAt) + this.#intervalMs,
    );
    this.#schedule(next - now);
  }

  /** Queues a ping or a pong; false when it could not be (closed, or the queue full). */
  #sendKeepalive(message: { type: "peer_ping" | "peer_pong" }): boolean {
    try {
      this.#conn.send(message);
      return true;
    } catch (err) {
      if (err instanceof ConnectionClosedError || err instanceof QueueOverflowError) return false;
      throw err;
    }
  }

  #toPeerError(err: unknown): PeerError {
    const found = findPeerError(err);
    if (found) return found;
    if (err instanceof ProtocolError) {
      if (err.code === "truncated_frame") {
        return new PeerError(
          "connection_lost",
          `connection to ${this.#remoteNick} lost in the middle of a message`,
          { cause: err },
        );
      }
      return new PeerError("bad_message", `invalid data from ${this.#remoteNick}: ${err.message}`, {
        cause: err,
      });
    }
    return new PeerError(
      "connection_lost",
      `connection to ${this.#remoteNick} lost: ${err instanceof Error ? err.message : String(err)}`,
      { cause: err },
    );
  }
}

/** `ms` in words: `45 s`, or `150 ms` below a second or for a fraction of one. */
function describeMs(ms: number): string {
  return ms >= 1000 && ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}
