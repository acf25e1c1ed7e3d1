/**
 * A line-oriented connection (IRC): reads a byte stream into bounded lines through
 * {@linkcode IrcLineSplitter}, and writes through the same {@linkcode OutboundQueue} as
 * `FramedConnection` does for frames (bound, coalesced writes, cut-off, deadline).
 *
 * @module
 */

import { IrcLineSplitter, type SplitLine } from "../protocol/irc_line.ts";
import { ConnectionClosedError } from "./errors.ts";
import { LINGER_MS } from "./framed_connection.ts";
import { type ByteChannel, OutboundQueue, withTimeout } from "./outbound_queue.ts";

/** Options of {@linkcode LineConnection}. */
export interface LineConnectionOptions {
  /** Bound of the outbound queue in bytes. Default 4 MiB. */
  maxQueueBytes?: number;
  /** Longest line read, in bytes without its end (see {@linkcode IrcLineSplitter}). */
  maxLineBytes?: number;
}

/** The lines one read completed, and the bytes that read took. */
export interface LineBatch {
  /** Lines (or line errors) in order. */
  lines: SplitLine[];
  /** Bytes of the read. */
  bytes: number;
}

const READ_BUFFER_BYTES = 16 * 1024;

/** A byte channel carrying lines. */
export class LineConnection {
  readonly #channel: ByteChannel;
  readonly #splitter: IrcLineSplitter;
  readonly #out: OutboundQueue;
  #closing = false;
  #closed = false;
  #bytesIn = 0;
  #closePromise: Promise<void> | null = null;
  #interruptRead: (() => void) | null = null;
  /** A read the iterator left in flight when interrupted: the lingering close awaits it. */
  #readInFlight: Promise<number | null> | null = null;

  /** Wraps `channel`; the connection owns it from now on. */
  constructor(channel: ByteChannel, options: LineConnectionOptions = {}) {
    this.#channel = channel;
    this.#splitter = new IrcLineSplitter(options.maxLineBytes);
    this.#out = new OutboundQueue(channel, {
      ...(options.maxQueueBytes !== undefined ? { maxQueueBytes: options.maxQueueBytes } : {}),
      onWriteFailed: () => this.abort(),
    });
  }

  /** Whether it is closed or closing. */
  get closed(): boolean {
    return this.#closed || this.#closing;
  }

  /** Bytes queued and not yet written. */
  get queuedBytes(): number {
    return this.#out.queuedBytes;
  }

  /** Milliseconds the current write has taken so far; 0 when none is under way. */
  get writeStalledMs(): number {
    return this.#out.writeStalledMs;
  }

  /** The write deadline, for a periodic sweep: see {@linkcode OutboundQueue.stalledPast}. */
  writeStalledPast(intervalMs: number, timeoutMs: number): boolean {
    return this.#out.stalledPast(intervalMs, timeoutMs);
  }

  /** Bytes received and written. */
  get stats(): { bytesIn: number; bytesOut: number } {
    return { bytesIn: this.#bytesIn, bytesOut: this.#out.bytesOut };
  }

  /**
   * Reads until the stream ends or the connection closes, yielding each read's lines.
   * Ends quietly on a reset.
   */
  async *batches(): AsyncGenerator<LineBatch> {
    const buffer = new Uint8Array(READ_BUFFER_BYTES);
    while (!this.closed) {
      let n: number | null;
      try {
        const read = this.#channel.read(buffer);
        this.#readInFlight = read;
        n = await new Promise<number | null>((resolve, reject) => {
          this.#interruptRead = () => resolve(null);
          read.then(resolve, reject);
        });
      } catch {
        return; // reset or closed
      } finally {
        this.#interruptRead = null;
      }
      if (n === null || this.closed) return;
      this.#readInFlight = null;
      this.#bytesIn += n;
      const lines = this.#splitter.push(buffer.subarray(0, n));
      if (lines.length > 0) yield { lines, bytes: n };
    }
  }

  /**
   * Queues bytes (whole lines with their CR LF).
   *
   * @throws {QueueOverflowError} when the queue would pass its bound (nothing queued).
   * @throws {ConnectionClosedError} when the connection is closed or closing.
   */
  send(bytes: Uint8Array): void {
    if (this.closed) throw new ConnectionClosedError();
    this.#out.push(bytes);
  }

  /** Resolves true once the first `offset` bytes are written, false if they never will be. */
  whenWritten(offset: number): Promise<boolean> {
    return this.#out.whenWritten(offset);
  }

  /**
   * Closes with a last line, past the bound, dropping what is not written yet (a slow
   * consumer's cut-off), then closes.
   */
  closeWith(last: Uint8Array, timeoutMs: number): Promise<void> {
    if (!this.closed) this.#out.replaceWith(last);
    return this.close(timeoutMs);
  }

  /**
   * Closes gracefully: stops reading, writes what is queued (at most `timeoutMs`),
   * half-closes, and lingers for the peer's end before closing the channel.
   */
  close(timeoutMs = 5000): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closing = true;
    this.#interruptRead?.();
    this.#closePromise ??= this.#closeGracefully(timeoutMs);
    return this.#closePromise;
  }

  /** Closes at once, discarding what is queued. */
  abort(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#out.stop();
    try {
      this.#channel.close();
    } catch {
      // already closed
    }
  }

  async #closeGracefully(timeoutMs: number): Promise<void> {
    await withTimeout(this.#out.flush(), timeoutMs);
    if (this.#closed || this.#out.queuedBytes > 0 || this.#channel.closeWrite === undefined) {
      this.abort();
      return;
    }
    try {
      await this.#channel.closeWrite();
    } catch {
      this.abort();
      return;
    }
    withTimeout(this.#readToEnd(), LINGER_MS).then(() => this.abort());
  }

  async #readToEnd(): Promise<void> {
    const scratch = new Uint8Array(512);
    try {
      while (!this.#closed) {
        // Not a second read beside the one the iterator left in flight.
        const inFlight = this.#readInFlight;
        this.#readInFlight = null;
        if ((inFlight !== null ? await inFlight : await this.#channel.read(scratch)) === null) {
          return;
        }
      }
    } catch {
      // reset: the end either way
    }
  }
}
