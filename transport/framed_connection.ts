/**
 * A framed connection: a byte channel (TCP, TLS, or an encrypted peer channel)
 * turned into an async iterable of decoded frames plus a `send`.
 *
 * Frames go out through an {@linkcode OutboundQueue}: bounded in bytes, one writer, and
 * every frame pending when the writer wakes coalesced into a single write, so a fan-out
 * that queues one frame for each of many receivers costs one write per receiver per
 * wake-up, not one per message.
 *
 * @module
 */

import {
  decodePayload,
  DEFAULT_MAX_FRAME_SIZE,
  encodeFrame,
  encodeFrameTransient,
  type Frame,
  FrameDecoder,
  ownBody,
} from "../protocol/frame.ts";
import { ConnectionClosedError } from "./errors.ts";
import type { PartialFrameBudget } from "./partial_frame_budget.ts";
import { BudgetedFrameDecoder } from "./budgeted_frame_decoder.ts";

import {
  type ByteChannel,
  DEFAULT_MAX_QUEUE_BYTES,
  OutboundQueue,
  withTimeout,
} from "./outbound_queue.ts";

export { type ByteChannel, DEFAULT_MAX_QUEUE_BYTES } from "./outbound_queue.ts";
export { UNBUDGETED_FRAME_BYTES } from "./budgeted_frame_decoder.ts";

/**
 * What {@linkcode FramedConnection.receive} hands the frames of each read to: the
 * callback form of {@linkcode FramedConnection.batches}, for a server's connections.
 */
export interface FrameReceiver {
  /**
   * The frames completed by one read. Reading goes on at once, or once the promise
   * returned settles; a throw or a rejection ends the reading with that error.
   */
  receiveFrames(frames: Frame[]): Promise<void> | undefined;
  /**
   * The reading ended, once: the stream ended, the connection was closed locally (then
   * at once, whether or not a read is still in flight) or reset by the peer (`error`
   * undefined), or it failed (`error`: a {@linkcode ProtocolError} for a malformed or
   * oversized frame, or what {@linkcode receiveFrames} threw).
   */
  receiveEnd(error: unknown): void;
  /** A frame started to arrive and is not complete yet (its age: `partialFrameMs`). */
  receivePartial?(): void;
}

/** Options of {@linkcode FramedConnection}. */
export interface FramedConnectionOptions {
  /** Largest incoming payload accepted. Default 1 MiB. */
  maxFrameSize?: number;
  /** Bound of the outbound queue in bytes. Default 4 MiB. */
  maxQueueBytes?: number;
  /**
   * Largest read buffer. Default 64 KiB. The buffer starts at
   * {@linkcode MIN_READ_BUFFER} and doubles while reads fill it, so an idle
   * connection holds only a small one.
   */
  readBufferSize?: number;
  /**
   * Gives the array each incoming payload is received into (the `allocate` option of
   * `FrameDecoder`). Default: a new array per frame.
   */
  allocatePayload?: (length: number) => Uint8Array;
  /**
   * A bound on the bytes held for unfinished incoming frames, shared with other
   * connections: a frame that would pass it fails the iteration with a `server_busy`
   * {@linkcode ProtocolError}. Frames under {@linkcode UNBUDGETED_FRAME_BYTES} (requests,
   * chat lines) are not counted, so a full budget never stops a conversation. Default: none.
   */
  partialFrames?: PartialFrameBudget;
  /**
   * When given, an incoming frame over the maximum is skipped (read and dropped) and
   * reported here instead of ending the connection (the `onOversized` option of
   * `FrameDecoder`): for a client, which must survive a reply larger than it accepts.
   */
  onOversized?: (length: number, head: Uint8Array) => void;
}

/**
 * Longest a graceful close waits, after its half-close, for the peer to finish: closing
 * a socket with unread input makes the kernel reset it, and a reset can destroy what the
 * peer has not read yet (our last frames). Reading until the peer's end avoids that.
 */
export const LINGER_MS = 2000;

/**
 * The read buffer an idle or quiet connection holds: enough for the requests of a chat
 * (a login, a line of text); a burst doubles it read by read.
 */
export const MIN_READ_BUFFER = 512;

/**
 * The rest of an incoming frame is read straight into its payload when at least this
 * much of it (and at least the read buffer's size) is still missing.
 */
export const DIRECT_READ_BYTES: number = 16 * 1024;

const CLOSING = Symbol("closing");

const BENIGN_READ_ERRORS = ["BadResource", "Interrupted", "ConnectionReset", "BrokenPipe"];

/**
 * A framed connection over a {@linkcode ByteChannel}. An idle one holds its read buffer,
 * its pending read and its few fields: no closure of its own (its queue and decoder call
 * it back through methods), no array while nothing is queued.
 *
 * @example
 * ```ts ignore
 * import { FramedConnection } from "./framed_connection.ts";
 * const conn = new FramedConnection(await Deno.connect({ port: 44444 }));
 * conn.send({ type: "ping", id: "1" });
 * for await (const frame of conn) console.log(frame.header);
 * ```
 */
export class FramedConnection implements AsyncIterable<Frame>, AsyncDisposable {
  readonly #channel: ByteChannel;
  readonly #decoder: FrameDecoder;
  readonly #out: OutboundQueue;
  readonly #readBufferSize: number;
  #closed = false;
  #closing = false;
  #error: unknown = undefined;
  #closePromise: Promise<void> | null = null;
  #readInFlight: Promise<number | null> | null = null;
  /** Ends the iterator's current wait for a read with CLOSING (set only while it waits). */
  #interruptRead: ((closing: typeof CLOSING) => void) | null = null;
  /** What {@linkcode done} gives, made on its first use (a connection nobody waits on holds none). */
  #closedPromise: Promise<void> | null = null;
  #resolveClosed: (() => void) | null = null;
  #framesIn = 0;
  #bytesIn = 0;
  /** When the frame under way started to arrive (`performance.now()`); 0: none is. */
  #partialSince = 0;
  /** The read buffer: small while reads are, doubled while reads fill it. */
  #readBuffer: Uint8Array | null = null;
  /** Small reads in a row into a grown buffer (many shrink it back). */
  #quietReads = 0;
  /** Who {@linkcode receive} hands frames to, while it reads. */
  #receiver: FrameReceiver | null = null;
  /** Whether {@linkcode receive} was called (once only). */
  #receiveCalled = false;

  /** Wraps `channel`; the connection owns it from now on. */
  constructor(channel: ByteChannel, options: FramedConnectionOptions = {}) {
    this.#channel = channel;
    const decoding = {
      maxFrameSize: options.maxFrameSize ?? DEFAULT_MAX_FRAME_SIZE,
      ...(options.allocatePayload ? { allocate: options.allocatePayload } : {}),
      ...(options.onOversized ? { onOversized: options.onOversized } : {}),
      // Frames whole inside a read are decoded from the read buffer itself (no copy);
      // only a body, which outlives the next read, is copied out of it.
      views: true,
    };
    this.#decoder = options.partialFrames
      ? new BudgetedFrameDecoder(options.partialFrames, decoding)
      : new FrameDecoder(decoding);
    this.#out = new OutboundQueue(channel, {
      maxQueueBytes: options.maxQueueBytes ?? DEFAULT_MAX_QUEUE_BYTES,
      onWriteFailed: this,
    });
    this.#readBufferSize = options.readBufferSize ?? 64 * 1024;
  }

  /** Called by its outbound queue when a write fails: the connection ends. */
  writeFailed(err: unknown): void {
    this.abort(
      this.#closed ? undefined : new ConnectionClosedError("write failed", { cause: err }),
    );
  }

  /** The underlying channel (for its addresses). */
  get channel(): ByteChannel {
    return this.#channel;
  }

  /** The largest incoming payload accepted; may be changed at any time. */
  get maxFrameSize(): number {
    return this.#decoder.maxFrameSize;
  }

  set maxFrameSize(value: number) {
    this.#decoder.maxFrameSize = value;
  }

  /** Bytes received so far. */
  get bytesIn(): number {
    return this.#bytesIn;
  }

  /**
   * Milliseconds since the incoming frame under way started to arrive; 0 when none is
   * (every frame received so far is complete).
   */
  get partialFrameMs(): number {
    return this.#partialSince === 0 ? 0 : performance.now() - this.#partialSince;
  }

  /** Bytes queued and not yet written. */
  get queuedBytes(): number {
    return this.#out.queuedBytes;
  }

  /** Milliseconds the current write has been waiting on the peer; 0 when not writing. */
  get writeStalledMs(): number {
    return this.#out.writeStalledMs;
  }

  /**
   * The write deadline, for a periodic sweep: see {@linkcode OutboundQueue.stalledPast}.
   */
  writeStalledPast(intervalMs: number, timeoutMs: number): boolean {
    return this.#out.stalledPast(intervalMs, timeoutMs);
  }

  /** Whether the connection is closed or closing. */
  get closed(): boolean {
    return this.#closed || this.#closing;
  }

  /** Resolves once the connection is fully closed, whichever way. */
  get done(): Promise<void> {
    if (this.#closedPromise === null) {
      this.#closedPromise = this.#closed
        ? Promise.resolve()
        : new Promise((resolve) => this.#resolveClosed = resolve);
    }
    return this.#closedPromise;
  }

  /** Why the connection ended abnormally, if it did. */
  get error(): unknown {
    return this.#error;
  }

  /** Counters: frames and bytes received, bytes written. */
  get stats(): { framesIn: number; bytesIn: number; bytesOut: number } {
    return { framesIn: this.#framesIn, bytesIn: this.#bytesIn, bytesOut: this.#out.bytesOut };
  }

  /**
   * Queues one frame.
   *
   * @throws {QueueOverflowError} when the queue would pass its bound (nothing queued).
   * @throws {ConnectionClosedError} when the connection is closed or closing.
   */
  send(header: object, body?: Uint8Array): void {
    if (body !== undefined && body.length > 0) {
      this.sendEncoded(encodeFrame(header, body));
      return;
    }
    if (this.#closed || this.#closing) throw new ConnectionClosedError();
    // Encoded in the codec's scratch and copied into the queue's pending bytes: a reply
    // gets no array of its own (a server answers every message it is sent).
    this.#out.pushCopy(encodeFrameTransient(header));
  }

  /**
   * Queues already-encoded frame bytes (one or more whole frames). A fan-out encodes
   * once and queues the same bytes on every receiver.
   *
   * @throws {QueueOverflowError} when the queue would pass its bound (nothing queued).
   * @throws {ConnectionClosedError} when the connection is closed or closing.
   */
  sendEncoded(bytes: Uint8Array): void {
    if (this.#closed || this.#closing) throw new ConnectionClosedError();
    this.#out.push(bytes);
  }

  /** Resolves once everything queued so far has been written (or the connection ended). */
  flush(): Promise<void> {
    return this.#out.flush();
  }

  /**
   * Resolves to true once the first `offset` bytes of the outbound stream (counted as
   * in {@linkcode stats}`.bytesOut`) are written, or to false if the connection closes
   * first. With `offset` taken as `bytesOut + queuedBytes` just after queuing a frame,
   * it says when that frame has left.
   *
   * @example
   * ```ts ignore
   * conn.send({ type: "dm", text: "hi" });
   * const end = conn.stats.bytesOut + conn.queuedBytes;
   * if (await conn.whenWritten(end)) console.log("written to the socket");
   * ```
   */
  whenWritten(offset: number): Promise<boolean> {
    return this.#out.whenWritten(offset);
  }

  /**
   * Closes gracefully: stops accepting frames, writes what is queued (waiting at
   * most `timeoutMs`), then closes the channel.
   */
  close(timeoutMs = 5000): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closing = true;
    this.#releasePartial();
    this.#interruptRead?.(CLOSING);
    this.#endReceive(undefined);
    this.#closePromise ??= this.#closeGracefully(timeoutMs);
    return this.#closePromise;
  }

  /**
   * Flushes, half-closes, and resolves; the channel itself is closed in the background
   * once the peer has ended its side or {@linkcode LINGER_MS} have passed
   * ({@linkcode done} resolves then).
   */
  async #closeGracefully(timeoutMs: number): Promise<void> {
    await withTimeout(this.flush(), timeoutMs);
    const closeWrite = this.#channel.closeWrite;
    if (this.#closed || this.#out.queuedBytes > 0 || closeWrite === undefined) {
      this.abort();
      return;
    }
    try {
      await closeWrite.call(this.#channel);
    } catch {
      this.abort(); // the peer is gone already
      return;
    }
    withTimeout(this.#readToEnd(), LINGER_MS).then(() => this.abort());
  }

  /**
   * Reads and discards until the peer's end of stream. A read the iterator has in
   * flight is awaited, not doubled; the iterator stops reading once closing.
   */
  async #readToEnd(): Promise<void> {
    const scratch = new Uint8Array(MIN_READ_BUFFER);
    try {
      while (!this.#closed) {
        const inFlight = this.#readInFlight;
        this.#readInFlight = null;
        const n = inFlight !== null ? await inFlight : await this.#channel.read(scratch);
        if (n === null) return;
      }
    } catch {
      // reset or closed: the end either way
    }
  }

  /**
   * Closes with a last word: drops every frame not yet handed to the channel, queues
   * `header` as the final frame (past the bound), and closes once it is written or
   * `timeoutMs` has passed. For cutting off a slow consumer with a reason.
   */
  closeWith(header: object, timeoutMs = 1000): Promise<void> {
    if (this.#closed || this.#closing) return this.close(timeoutMs);
    const frame = encodeFrame(header);
    this.#out.replaceWith(frame);
    return this.close(timeoutMs);
  }

  /** Closes at once, discarding what is queued. `reason` is kept as {@linkcode error}. */
  abort(reason?: unknown): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#releasePartial();
    if (reason !== undefined && this.#error === undefined) this.#error = reason;
    this.#out.stop();
    try {
      this.#channel.close();
    } catch {
      // already closed by the other side or by the runtime
    }
    this.#endReceive(undefined);
    this.#resolveClosed?.();
    this.#resolveClosed = null;
  }

  /** Closes gracefully; for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /**
   * Reads and decodes frames until the stream ends. Ends quietly when the
   * connection is closed locally or reset by the peer.
   *
   * @throws {ProtocolError} on a malformed or oversized frame, or a stream ending inside one.
   */
  async *[Symbol.asyncIterator](): AsyncIterator<Frame> {
    for await (const frames of this.batches()) {
      for (const frame of frames) {
        yield frame;
        if (this.#closed || this.#closing) return;
      }
    }
  }

  /**
   * Reads and decodes frames until the stream ends, yielding every frame completed by
   * one read together. A server that dispatches a whole batch before it awaits lets the
   * deliveries of all its frames join one write per receiver (the writers start on a
   * microtask, after the batch's work). Ends quietly when the connection is closed
   * locally or reset by the peer; frames before a malformed one are yielded first.
   *
   * @throws {ProtocolError} on a malformed or oversized frame, or a stream ending inside one.
   */
  async *batches(): AsyncGenerator<Frame[]> {
    try {
      // Once closing, the graceful close reads to the end itself; frames are no longer delivered.
      while (!this.#closed && !this.#closing) {
        let n: number | null | typeof CLOSING;
        let direct = false;
        try {
          const started = this.#startRead();
          const read = started.read;
          direct = started.direct;
          // A local close ends the iteration at once; the close reads on to the end. (A
          // fresh promise per read: racing one long-lived promise would pile up reactions.)
          n = await new Promise<number | null | typeof CLOSING>((resolve, reject) => {
            this.#interruptRead = resolve;
            read.then(resolve, reject);
          });
        } catch (err) {
          this.#readInFlight = null;
          if (this.#closed || this.#closing || isBenign(err)) return;
          throw err;
        } finally {
          this.#interruptRead = null;
        }
        // An interrupted read is still in flight: the graceful close awaits it.
        if (n === CLOSING) return;
        this.#readInFlight = null;
        if (n === null) {
          this.#decoder.end();
          return;
        }
        const { frames, malformed } = this.#decodeRead(n, direct);
        if (frames.length > 0) yield frames;
        if (malformed !== undefined) throw malformed;
      }
    } catch (err) {
      if (this.#error === undefined) this.#error = err;
      throw err;
    }
  }

  /**
   * Reads and decodes frames until the stream ends, as {@linkcode batches} does, handing
   * each read's frames to `receiver` and its end to `receiver.receiveEnd`. Nothing waits
   * in an async function meanwhile: an idle connection holds its pending read and little
   * else (a server holds thousands).
   *
   * @example
   * ```ts ignore
   * conn.receive({
   *   receiveFrames(frames) {
   *     for (const frame of frames) console.log(frame.header);
   *     return undefined;
   *   },
   *   receiveEnd(error) {
   *     if (error !== undefined) console.error(error);
   *   },
   * });
   * ```
   */
  receive(receiver: FrameReceiver): void {
    if (this.#receiveCalled) throw new Error("this connection is already being read");
    this.#receiveCalled = true;
    this.#receiver = receiver;
    this.#readNext();
  }

  /** Starts the next read for {@linkcode receive}, unless the reading is over. */
  #readNext(): void {
    if (this.#receiver === null) return;
    if (this.#closed || this.#closing) {
      this.#endReceive(undefined);
      return;
    }
    let started: { read: Promise<number | null>; direct: boolean };
    try {
      started = this.#startRead();
    } catch (err) {
      this.#readFailed(err);
      return;
    }
    const { read, direct } = started;
    // One function for both outcomes (a read resolves to a count or null, and rejects
    // with an error): each pending read of thousands of idle connections holds one.
    const settled = (outcome: number | null | unknown) => {
      if (typeof outcome === "number" || outcome === null) {
        // Closed meanwhile: the reading has ended, and a graceful close reads on itself.
        if (this.#receiver === null || this.#readInFlight !== read) return;
        this.#readInFlight = null;
        this.#received(outcome, direct);
        return;
      }
      if (this.#readInFlight === read) this.#readInFlight = null;
      if (this.#receiver !== null) this.#readFailed(outcome);
    };
    read.then(settled, settled);
  }

  /** Decodes a read for {@linkcode receive} and hands its frames on. */
  #received(n: number | null, direct: boolean): void {
    let pending: Promise<void> | undefined;
    try {
      if (n === null) {
        this.#decoder.end();
        this.#endReceive(undefined);
        return;
      }
      const { frames, malformed } = this.#decodeRead(n, direct);
      if (frames.length > 0) pending = this.#receiver!.receiveFrames(frames);
      if (malformed !== undefined) {
        // The frames before a malformed one are handled first.
        if (pending === undefined) throw malformed;
        pending = pending.then(() => {
          throw malformed;
        });
      }
    } catch (err) {
      this.#readFailed(err);
      return;
    }
    if (pending === undefined) this.#readNext();
    else pending.then(() => this.#readNext(), (err) => this.#readFailed(err));
  }

  /** Ends the reading of {@linkcode receive} on a failed read or handler. */
  #readFailed(err: unknown): void {
    if (this.#receiver === null) return;
    if (this.#closed || this.#closing || isBenign(err)) {
      this.#endReceive(undefined);
      return;
    }
    if (this.#error === undefined) this.#error = err;
    this.#endReceive(err);
  }

  /** Tells the receiver, once, that reading is over (after the current job, as an await would). */
  #endReceive(error: unknown): void {
    const receiver = this.#receiver;
    if (receiver === null) return;
    this.#receiver = null;
    queueMicrotask(() => receiver.receiveEnd(error));
  }

  /**
   * Starts a read: the rest of a large frame (file data) straight into its payload, not
   * copied; smaller frames through the read buffer, many at a time.
   */
  #startRead(): { read: Promise<number | null>; direct: boolean } {
    const buffer = this.#readBuffer ??= new Uint8Array(
      Math.min(MIN_READ_BUFFER, this.#readBufferSize),
    );
    const direct = this.#decoder.payloadSpace(Math.max(buffer.length, DIRECT_READ_BYTES));
    const read = this.#channel.read(direct ?? buffer);
    this.#readInFlight = read;
    return { read, direct: direct !== null };
  }

  /**
   * Decodes the `n` bytes a read brought: the frames they complete, and the error of a
   * malformed one (the frames before it come first). Grows the read buffer while reads
   * fill it and shrinks it back after many small reads.
   */
  #decodeRead(n: number, direct: boolean): { frames: Frame[]; malformed: unknown } {
    let buffer = this.#readBuffer!;
    this.#bytesIn += n;
    const payloads = direct ? this.#decoder.filled(n) : this.#decoder.push(buffer.subarray(0, n));
    // A frame left unfinished by this read started in it when another completed.
    if (this.#decoder.pendingBytes === 0) this.#partialSince = 0;
    else if (this.#partialSince === 0 || payloads.length > 0) {
      this.#partialSince = performance.now() || 1;
      this.#receiver?.receivePartial?.();
    }
    // A replaced buffer is not read into again: frames may keep views of it.
    if (!direct && n === buffer.length && buffer.length < this.#readBufferSize) {
      buffer = this.#readBuffer = new Uint8Array(
        Math.min(buffer.length * 2, this.#readBufferSize),
      );
      this.#quietReads = 0;
    } else if (
      !direct && n <= MIN_READ_BUFFER && buffer.length > MIN_READ_BUFFER &&
      ++this.#quietReads > 64
    ) {
      buffer = this.#readBuffer = new Uint8Array(MIN_READ_BUFFER);
      this.#quietReads = 0;
    }
    const frames: Frame[] = [];
    let malformed: unknown = undefined;
    if (payloads.length === 0) return { frames, malformed };
    for (const payload of payloads) {
      try {
        const frame = decodePayload(payload);
        frames.push(
          frame.body.length > 0 && frame.body.buffer === buffer.buffer ? ownBody(frame) : frame,
        );
      } catch (err) {
        malformed = err;
        break;
      }
    }
    this.#framesIn += frames.length;
    return { frames, malformed };
  }

  /** Gives back what the payload under way holds of the partial-frame budget, if any. */
  #releasePartial(): void {
    if (this.#decoder instanceof BudgetedFrameDecoder) this.#decoder.release();
  }
}

function isBenign(err: unknown): boolean {
  return err instanceof Error && BENIGN_READ_ERRORS.includes(err.name);
}
