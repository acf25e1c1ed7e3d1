/**
 * A line-oriented connection (IRC): reads a byte stream into bounded lines through
 * {@linkcode IrcLineSplitter}, and writes through a bounded outbound queue, the way
 * {@linkcode FramedConnection} does for frames.
 *
 * @module
 */

import { concatBytes } from "../protocol/bytes.ts";
import { IrcLineSplitter, type SplitLine } from "../protocol/irc_line.ts";
import { ConnectionClosedError, QueueOverflowError } from "./errors.ts";
import { type ByteChannel, DEFAULT_MAX_QUEUE_BYTES, LINGER_MS } from "./framed_connection.ts";

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
  readonly #maxQueueBytes: number;
  #queue: Uint8Array[] = [];
  #queuedBytes = 0;
  #writing = false;
  #writeStartedAt = 0;
  #closing = false;
  #closed = false;
  #bytesIn = 0;
  #bytesOut = 0;
  #idleWaiters: (() => void)[] = [];
  #writtenWaiters: { offset: number; resolve: (written: boolean) => void }[] = [];
  #closePromise: Promise<void> | null = null;
  #interruptRead: (() => void) | null = null;

  /** Wraps `channel`; the connection owns it from now on. */
  constructor(channel: ByteChannel, options: LineConnectionOptions = {}) {
    this.#channel = channel;
    this.#splitter = new IrcLineSplitter(options.maxLineBytes);
    this.#maxQueueBytes = options.maxQueueBytes ?? DEFAULT_MAX_QUEUE_BYTES;
  }

  /** Whether it is closed or closing. */
  get closed(): boolean {
    return this.#closed || this.#closing;
  }

  /** Bytes queued and not yet written. */
  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  /** Milliseconds the current write has taken so far; 0 when none is under way. */
  get writeStalledMs(): number {
    return this.#writeStartedAt === 0 ? 0 : performance.now() - this.#writeStartedAt;
  }

  /** Bytes received and written. */
  get stats(): { bytesIn: number; bytesOut: number } {
    return { bytesIn: this.#bytesIn, bytesOut: this.#bytesOut };
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
    if (this.#queuedBytes + bytes.length > this.#maxQueueBytes) {
      throw new QueueOverflowError(this.#queuedBytes, bytes.length, this.#maxQueueBytes);
    }
    this.#enqueue(bytes);
  }

  /** Resolves true once the first `offset` bytes are written, false if they never will be. */
  whenWritten(offset: number): Promise<boolean> {
    if (this.#bytesOut >= offset) return Promise.resolve(true);
    if (this.#closed) return Promise.resolve(false);
    return new Promise((resolve) => {
      const waiters = this.#writtenWaiters;
      let at = waiters.length;
      while (at > 0 && waiters[at - 1].offset > offset) at--;
      waiters.splice(at, 0, { offset, resolve });
    });
  }

  /**
   * Closes with a last line, past the bound, dropping what is not written yet (a slow
   * consumer's cut-off), then closes.
   */
  closeWith(last: Uint8Array, timeoutMs: number): Promise<void> {
    if (!this.closed) {
      for (const dropped of this.#queue) this.#queuedBytes -= dropped.length;
      this.#queue = [];
      this.#enqueue(last);
    }
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
    this.#queue = [];
    this.#queuedBytes = 0;
    try {
      this.#channel.close();
    } catch {
      // already closed
    }
    this.#wake();
  }

  #enqueue(bytes: Uint8Array): void {
    this.#queue.push(bytes);
    this.#queuedBytes += bytes.length;
    if (!this.#writing) {
      this.#writing = true;
      // After the current job, so that the lines it queues share one write.
      queueMicrotask(() => this.#writeLoop());
    }
  }

  async #closeGracefully(timeoutMs: number): Promise<void> {
    if (this.#writing) {
      await withTimeout(new Promise<void>((resolve) => this.#idleWaiters.push(resolve)), timeoutMs);
    }
    if (this.#closed || this.#queuedBytes > 0 || this.#channel.closeWrite === undefined) {
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
        if (await this.#channel.read(scratch) === null) return;
      }
    } catch {
      // reset: the end either way
    }
  }

  async #writeLoop(): Promise<void> {
    try {
      while (this.#queue.length > 0 && !this.#closed) {
        const pieces = this.#queue;
        this.#queue = [];
        const batch = pieces.length === 1 ? pieces[0] : concatBytes(pieces);
        this.#writeStartedAt = performance.now() || 1;
        let offset = 0;
        while (offset < batch.length) {
          offset += await this.#channel.write(offset === 0 ? batch : batch.subarray(offset));
        }
        this.#bytesOut += batch.length;
        this.#queuedBytes -= batch.length;
        this.#writeStartedAt = 0;
        this.#wakeWritten();
      }
    } catch {
      this.abort();
    } finally {
      this.#writing = false;
      this.#writeStartedAt = 0;
      const waiters = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const wake of waiters) wake();
    }
  }

  #wakeWritten(): void {
    const waiters = this.#writtenWaiters;
    let n = 0;
    while (n < waiters.length && waiters[n].offset <= this.#bytesOut) waiters[n++].resolve(true);
    if (n > 0) waiters.splice(0, n);
  }

  #wake(): void {
    this.#wakeWritten();
    for (const waiter of this.#writtenWaiters) waiter.resolve(false);
    this.#writtenWaiters = [];
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const wake of waiters) wake();
  }
}

async function withTimeout(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([
      promise.then(() => {}, () => {}),
      new Promise<void>((resolve) => timer = setTimeout(resolve, ms)),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
