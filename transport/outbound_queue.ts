/**
 * The outbound side of a connection, whatever it carries (frames, IRC lines): a queue
 * bounded in bytes, one writer that coalesces everything queued into one write per
 * wake-up (large pieces, file data, are written where they lie), progress waits
 * ({@linkcode OutboundQueue.whenWritten}), the slow consumer's
 * cut-off (drop what is not written, queue a last word past the bound), and the write
 * deadline a server's sweep enforces ({@linkcode OutboundQueue.stalledPast}).
 *
 * @example
 * ```ts ignore
 * import { OutboundQueue } from "./outbound_queue.ts";
 * const conn = await Deno.connect({ port: 6667 });
 * const out = new OutboundQueue(conn, { onWriteFailed: () => conn.close() });
 * out.push(new TextEncoder().encode("PING :x\r\n"));
 * await out.flush();
 * ```
 *
 * @module
 */

import { roundStages } from "./round_stages.ts";
import { QueueOverflowError } from "./errors.ts";
import { MAX_WRITE_BUFFER, writeBuffers } from "./write_buffers.ts";

/** The least a byte stream must offer to carry frames or lines. `Deno.Conn` is one. */
export interface ByteChannel {
  /** Reads into `p`; resolves to the byte count, or `null` at the end of the stream. */
  read(p: Uint8Array): Promise<number | null>;
  /**
   * Writes from `p`; resolves to the byte count written (possibly fewer than all). The
   * channel is done with `p` once the promise settles (it copies what it keeps): the
   * caller may then reuse it ({@linkcode OutboundQueue} lays the next write out in it).
   */
  write(p: Uint8Array): Promise<number>;
  /** Closes both directions and releases the resource. */
  close(): void;
  /** Closes the write direction only (TCP FIN), if the channel can. */
  closeWrite?(): Promise<void>;
  /**
   * Writes all of `pieces`, in order, as a write of their concatenation would, if the
   * channel can take them apart (an encrypting channel seals them where they are):
   * several queued frames then go without being copied into one buffer first.
   */
  writeMany?(pieces: Uint8Array[]): Promise<void>;
  /**
   * Resolves once the channel's resource is released, when that can come after
   * {@linkcode close} (a WebSocket's TCP connection, which the runtime keeps until its
   * close frame is written); absent: released by `close()` at once.
   */
  readonly gone?: Promise<void>;
}

/**
 * A queued piece of at least this many bytes is written on its own, not copied into one
 * buffer with the others (a channel without `writeMany`).
 */
export const LARGE_PIECE_BYTES: number = 64 * 1024;

/**
 * Whether `pieces` go in one pooled buffer: none is a {@linkcode LARGE_PIECE_BYTES} one and
 * all fit in {@linkcode MAX_WRITE_BUFFER}.
 */
function fitsOneBuffer(pieces: readonly Uint8Array[]): boolean {
  let total = 0;
  for (const piece of pieces) {
    if (piece.length >= LARGE_PIECE_BYTES) return false;
    total += piece.length;
  }
  return total <= MAX_WRITE_BUFFER;
}

/**
 * Writes started at most per lap (a turn of the event loop, or until the writes settle),
 * for every queue of the process together. Deno completes at most 128 socket operations
 * per iteration of its event loop (`bench/write_budget.ts`); with more writes than that
 * under way and new ones started every turn, some waited 0.3-1.6 s while the kernel held
 * nothing for their sockets (a fan-out to 1,000 receivers, issue #16): the runtime served
 * the new ones first. Below that budget (reads take some of it, a room of 100 fits in one
 * lap), the queues' own line decides the order: first come, first written, and a writer
 * whose turn has not come keeps gathering what is queued for its next write.
 */
export const WRITE_SLOTS = 120;

/** Default bound of the outbound queue: 4 MiB. */
export const DEFAULT_MAX_QUEUE_BYTES: number = 4 * 1024 * 1024;

/**
 * Who hears of a failed write as an object: a connection passes itself, where a closure
 * would cost each of thousands of connections a function and its context.
 */
export interface WriteFailureListener {
  /** A write failed (the peer is gone): the owner aborts its connection. */
  writeFailed(err: unknown): void;
}

/** Options of {@linkcode OutboundQueue}. */
export interface OutboundQueueOptions {
  /** Bound of the queue in bytes. Default {@linkcode DEFAULT_MAX_QUEUE_BYTES}. */
  maxQueueBytes?: number;
  /**
   * Called once when a write fails (the peer is gone): the owner aborts its connection.
   * A function, or a {@linkcode WriteFailureListener}.
   */
  onWriteFailed: ((err: unknown) => void) | WriteFailureListener;
}

/** `#writeSeenAt` when no write is under way. */
const WRITE_IDLE = 0;
/** `#writeSeenAt` while a write is under way and nobody has asked how long it waits. */
const WRITE_UNSEEN = -1;

/** A {@linkcode OutboundQueue.whenWritten} call waiting for its offset. */
interface WrittenWaiter {
  offset: number;
  resolve: (written: boolean) => void;
}

/**
 * The bounded, coalescing outbound queue of one connection. Exactly one writer runs;
 * it starts on a microtask after the first push, so everything the current job queues
 * (a fan-out's deliveries, a command's reply lines) leaves in one write. The writers of
 * all queues take turns in one line: at most {@linkcode WRITE_SLOTS} writes start per
 * turn of the event loop, first come first served, and a writer whose turn has not come
 * keeps gathering what is queued for its next write. An idle queue
 * holds no array: the queue and the waits are made when used and dropped once empty
 * (a server holds thousands of idle ones).
 */
export class OutboundQueue {
  readonly #channel: ByteChannel;
  readonly #maxQueueBytes: number;
  readonly #onWriteFailed: ((err: unknown) => void) | WriteFailureListener;
  /** What waits to be written; null when nothing does and the writer is not running. */
  #queue: Uint8Array[] | null = null;
  #queuedBytes = 0;
  /**
   * The pooled buffer that {@linkcode pushCopy} appends to while it is the queue's last
   * piece (there as the whole buffer until sealed: no view made per frame); null when
   * none is open. Its bytes up to `#tailEnd` are queued.
   */
  #tail: Uint8Array<ArrayBuffer> | null = null;
  #tailEnd = 0;
  /** Sealed tails whose bytes are queued, given back to the pool once written (or dropped). */
  #tails: Uint8Array[] | null = null;
  #writing = false;
  /**
   * {@linkcode WRITE_IDLE} when no write is under way, {@linkcode WRITE_UNSEEN} while one
   * is and nobody asked how long it waits, else when it was first seen waiting (the clock
   * is read by {@linkcode writeStalledMs}, not at every write: a fan-out writes to every
   * receiver at every turn).
   */
  #writeSeenAt = WRITE_IDLE;
  #stopped = false;
  #bytesOut = 0;
  /**
   * Stream offsets past this were dropped by {@linkcode replaceWith}: never written; -1
   * while nothing was (a small integer: no number box per queue, as Infinity would be).
   */
  #droppedAfter = -1;
  /** {@linkcode flush} calls waiting; null when none. */
  #idleWaiters: (() => void)[] | null = null;
  /** {@linkcode whenWritten} calls waiting, in offset order; null when none. */
  #writtenWaiters: WrittenWaiter[] | null = null;
  #bytesOutAtSweep = 0;
  #stalledSweeps = 0;

  /** Writes to `channel`; the owner keeps the channel (reads, closes it). */
  constructor(channel: ByteChannel, options: OutboundQueueOptions) {
    this.#channel = channel;
    this.#maxQueueBytes = options.maxQueueBytes ?? DEFAULT_MAX_QUEUE_BYTES;
    this.#onWriteFailed = options.onWriteFailed;
  }

  /** Bytes queued and not yet written. */
  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  /** Bytes written so far. */
  get bytesOut(): number {
    return this.#bytesOut;
  }

  /**
   * Milliseconds the current write has been waiting on the peer, counted from the first
   * time this was asked during it (a tiny positive number then); 0 when not writing.
   */
  get writeStalledMs(): number {
    if (this.#writeSeenAt === WRITE_IDLE) return 0;
    const now = performance.now();
    if (this.#writeSeenAt === WRITE_UNSEEN) {
      this.#writeSeenAt = now;
      return Number.MIN_VALUE;
    }
    return Math.max(now - this.#writeSeenAt, Number.MIN_VALUE);
  }

  /**
   * Queues bytes (whole frames or lines).
   *
   * @throws {QueueOverflowError} when the queue would pass its bound (nothing queued).
   */
  push(bytes: Uint8Array): void {
    if (this.#queuedBytes + bytes.length > this.#maxQueueBytes) {
      throw new QueueOverflowError(this.#queuedBytes, bytes.length, this.#maxQueueBytes);
    }
    this.#sealTail();
    // Made with its first piece (one slot; a push on an empty array makes room for 17).
    if (this.#queue === null) this.#queue = [bytes];
    else this.#queue.push(bytes);
    this.#queuedBytes += bytes.length;
    if (!this.#writing) this.#startWriter();
  }

  /**
   * Queues a copy of `bytes` (whole frames or lines), which the caller may then reuse: a
   * frame encoded in a scratch buffer (a reply) is appended to a pooled buffer that later
   * copies join, instead of getting an array of its own that the garbage collector must
   * sweep.
   *
   * @throws {QueueOverflowError} when the queue would pass its bound (nothing queued).
   */
  pushCopy(bytes: Uint8Array): void {
    if (bytes.length > MAX_WRITE_BUFFER) {
      this.push(bytes.slice());
      return;
    }
    if (this.#queuedBytes + bytes.length > this.#maxQueueBytes) {
      throw new QueueOverflowError(this.#queuedBytes, bytes.length, this.#maxQueueBytes);
    }
    const tail = this.#tail;
    if (tail !== null && this.#tailEnd + bytes.length <= tail.length) {
      tail.set(bytes, this.#tailEnd);
      this.#tailEnd += bytes.length;
    } else {
      this.#sealTail();
      const fresh = writeBuffers.take(bytes.length);
      fresh.set(bytes);
      this.#tail = fresh;
      this.#tailEnd = bytes.length;
      if (this.#queue === null) this.#queue = [fresh];
      else this.#queue.push(fresh);
    }
    this.#queuedBytes += bytes.length;
    if (!this.#writing) this.#startWriter();
  }

  /** Closes the open tail: the queue's last piece becomes the view of its bytes. */
  #sealTail(): void {
    const tail = this.#tail;
    if (tail === null) return;
    this.#tail = null;
    const queue = this.#queue!;
    queue[queue.length - 1] = tail.subarray(0, this.#tailEnd);
    (this.#tails ??= []).push(tail);
  }

  /** Gives the sealed tails back to the pool (written, or dropped unwritten). */
  #giveTails(tails: Uint8Array[] | null): void {
    if (tails === null) return;
    for (const tail of tails) writeBuffers.give(tail);
  }

  /**
   * The slow consumer's cut-off: drops everything not yet handed to the channel and
   * queues `last` alone, past the bound. What was dropped is never counted written
   * ({@linkcode whenWritten} resolves false for it).
   */
  replaceWith(last: Uint8Array): void {
    if (this.#stopped) return;
    this.#sealTail();
    for (const dropped of this.#queue ?? []) this.#queuedBytes -= dropped.length;
    // Dropped unwritten: nothing reads them (a write under way took its own).
    this.#giveTails(this.#tails);
    this.#tails = null;
    const keptEnd = this.#bytesOut + this.#queuedBytes;
    this.#droppedAfter = keptEnd;
    const kept = this.#writtenWaiters?.filter((waiter) => {
      if (waiter.offset <= keptEnd) return true;
      waiter.resolve(false);
      return false;
    });
    this.#writtenWaiters = kept !== undefined && kept.length > 0 ? kept : null;
    this.#queue = [last];
    this.#queuedBytes += last.length;
    if (!this.#writing) this.#startWriter();
  }

  /** Resolves once everything queued so far has been written (or the queue stopped). */
  flush(): Promise<void> {
    if (!this.#writing || this.#stopped) return Promise.resolve();
    return new Promise((resolve) => (this.#idleWaiters ??= []).push(resolve));
  }

  /**
   * Resolves to true once the first `offset` bytes of the outbound stream (counted as
   * {@linkcode bytesOut}) are written, or to false if that can no longer happen. With
   * `offset` taken as `bytesOut + queuedBytes` just after a push, it says when that
   * push has left.
   */
  whenWritten(offset: number): Promise<boolean> {
    if (this.#droppedAfter >= 0 && offset > this.#droppedAfter) return Promise.resolve(false);
    if (this.#bytesOut >= offset) return Promise.resolve(true);
    if (this.#stopped) return Promise.resolve(false);
    return new Promise((resolve) => {
      // Kept in offset order: a write looks at the first only.
      const waiters = this.#writtenWaiters ??= [];
      let at = waiters.length;
      while (at > 0 && waiters[at - 1].offset > offset) at--;
      waiters.splice(at, 0, { offset, resolve });
    });
  }

  /**
   * The write deadline, called from a periodic sweep every `intervalMs`: true once the
   * current write has made no progress for more than `timeoutMs`. Each sweep without
   * progress counts for `intervalMs` however late it ran: when the server's own event
   * loop is what stalls, the peer is not blamed for it.
   */
  stalledPast(intervalMs: number, timeoutMs: number): boolean {
    const bytesOut = this.#bytesOut;
    if (this.#writeSeenAt !== WRITE_IDLE && bytesOut === this.#bytesOutAtSweep) {
      this.#stalledSweeps++;
    } else this.#stalledSweeps = 0;
    this.#bytesOutAtSweep = bytesOut;
    return this.#stalledSweeps * intervalMs > timeoutMs;
  }

  /**
   * Discards what is queued and settles every wait (the connection is closing at once).
   * Nothing more is written.
   */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#sealTail();
    this.#giveTails(this.#tails);
    this.#tails = null;
    this.#queue = null;
    this.#queuedBytes = 0;
    this.#wakeIdle();
    this.#wakeWritten();
  }

  /**
   * The writers waiting for a write slot, in the order they asked (from `#lineHead` on):
   * the line of every queue of the process.
   */
  static #line: (OutboundQueue | null)[] = [];
  static #lineHead = 0;
  /** Whether a microtask will start writers from the line. */
  static #lineKicked = false;
  /** Writes started in the current lap and not settled. */
  static #inFlight = 0;
  /** The current lap (see {@linkcode WRITE_SLOTS}); a write remembers the lap it started in. */
  static #lap = 0;
  static #lapTimerSet = false;
  static #writesStarted = 0;

  /**
   * Writes started from the line so far, by every queue of the process (a counter: what
   * came before a moment, e.g. a WAL sync's start, is told by comparing it).
   */
  static get writesStarted(): number {
    return OutboundQueue.#writesStarted;
  }

  /**
   * Puts the writer in line; writers start after the current job (one microtask for all
   * of them, not a closure each), so that everything the job queues joins the first write.
   */
  #startWriter(): void {
    this.#writing = true;
    OutboundQueue.#enterLine(this);
  }

  static #enterLine(queue: OutboundQueue): void {
    OutboundQueue.#line.push(queue);
    OutboundQueue.#kick();
  }

  /** Has a microtask start writers from the line, unless one will already. */
  static #kick(): void {
    if (OutboundQueue.#lineKicked) return;
    OutboundQueue.#lineKicked = true;
    queueMicrotask(OutboundQueue.#startFromLine);
  }

  /** Starts writers from the head of the line while write slots are free. */
  static #startFromLine(): void {
    OutboundQueue.#lineKicked = false;
    const line = OutboundQueue.#line;
    while (OutboundQueue.#inFlight < WRITE_SLOTS && OutboundQueue.#lineHead < line.length) {
      const queue = line[OutboundQueue.#lineHead]!;
      line[OutboundQueue.#lineHead++] = null; // not held once out of line
      OutboundQueue.#inFlight++;
      OutboundQueue.#writesStarted++;
      if (!OutboundQueue.#lapTimerSet) {
        OutboundQueue.#lapTimerSet = true;
        // Unref'd: a lap never keeps a process alive.
        Deno.unrefTimer(setTimeout(OutboundQueue.#nextLap, 0));
      }
      if (roundStages.on) roundStages.writeStart();
      queue.#writeOnce(OutboundQueue.#lap);
    }
    const head = OutboundQueue.#lineHead;
    if (head === line.length) {
      line.length = 0;
      OutboundQueue.#lineHead = 0;
    } else if (head >= 1024 && head * 2 >= line.length) {
      line.splice(0, head);
      OutboundQueue.#lineHead = 0;
    }
  }

  /**
   * A new lap: the writes of the last one still unsettled wait on their peers (a full
   * socket buffer), not on the runtime, and no longer hold a slot.
   */
  static #nextLap(): void {
    OutboundQueue.#lapTimerSet = false;
    OutboundQueue.#lap++;
    OutboundQueue.#inFlight = 0;
    if (OutboundQueue.#lineHead < OutboundQueue.#line.length) OutboundQueue.#kick();
  }

  /**
   * One write of what is queued, in a slot started in lap `lap`; then back in line if
   * more was queued meanwhile, else the writer stops.
   */
  async #writeOnce(lap: number): Promise<void> {
    let failed = false;
    try {
      const pieces = this.#queue;
      if (pieces !== null && pieces.length > 0 && !this.#stopped) await this.#writeBatch(pieces);
    } catch (err) {
      failed = true;
      if (!this.#stopped) {
        const listener = this.#onWriteFailed;
        if (typeof listener === "function") listener(err);
        else listener.writeFailed(err);
      }
    } finally {
      if (roundStages.on) roundStages.writeSettled();
      if (lap === OutboundQueue.#lap) OutboundQueue.#inFlight--;
      const more = !failed && !this.#stopped && this.#queue !== null && this.#queue.length > 0;
      if (more) OutboundQueue.#enterLine(this);
      else {
        // Nothing left to write: an idle queue holds no array.
        if (this.#queue !== null && this.#queue.length === 0) this.#queue = null;
        this.#writing = false;
        this.#writeSeenAt = WRITE_IDLE;
        this.#wakeIdle();
      }
      if (OutboundQueue.#lineHead < OutboundQueue.#line.length) OutboundQueue.#kick();
    }
  }

  /** Writes `pieces` (the queue's array) and accounts for them. */
  async #writeBatch(pieces: Uint8Array[]): Promise<void> {
    this.#writeSeenAt = WRITE_UNSEEN;
    this.#sealTail();
    // The pooled tails among these pieces: back to the pool once written.
    let tails = this.#tails;
    this.#tails = null;
    let length = 0;
    try {
      if (pieces.length > 1 && this.#channel.writeMany !== undefined) {
        this.#queue = null;
        for (const piece of pieces) length += piece.length;
        await this.#channel.writeMany(pieces);
      } else if (pieces.length === 1 || fitsOneBuffer(pieces)) {
        // Several pieces are laid out in a pooled buffer, given back once written (the
        // channel is done with it then): not a new array per receiver per turn.
        const pooled = pieces.length > 1;
        const batch = pooled ? writeBuffers.concat(pieces) : pieces[0];
        // Taken: the same array queues what comes next (no new one per write).
        pieces.length = 0;
        if (pooled) {
          // Copied: the tails can carry other writes already.
          this.#giveTails(tails);
          tails = null;
        }
        length = batch.length;
        try {
          await this.#writeAll(batch);
        } finally {
          if (pooled) writeBuffers.give(batch);
        }
      } else {
        // Large pieces (file data) are written where they lie: copying megabytes into
        // a new buffer (fresh memory to fault in, then garbage) would cost more than
        // a system call per piece. Runs of small pieces between them still join, in
        // pooled buffers of at most MAX_WRITE_BUFFER each: a backlog of small frames
        // joined into one new array faulted in every byte it carried (a receiver that
        // fell behind stayed behind: bench/write_cost.ts, 8 KiB frames).
        const taken = pieces.splice(0);
        let from = 0;
        for (let i = 0; i <= taken.length; i++) {
          if (i < taken.length && taken[i].length < LARGE_PIECE_BYTES) continue;
          if (i - from === 1) await this.#writeAll(taken[from]);
          else if (i - from > 1) await this.#writeJoined(taken.slice(from, i));
          if (i < taken.length) await this.#writeAll(taken[i]);
          from = i + 1;
        }
        for (const piece of taken) length += piece.length;
      }
    } finally {
      this.#giveTails(tails);
    }
    this.#bytesOut += length;
    this.#queuedBytes -= length;
    this.#writeSeenAt = WRITE_IDLE;
    const waiters = this.#writtenWaiters;
    if (waiters !== null && waiters[0].offset <= this.#bytesOut) this.#wakeWritten();
  }

  /** Writes all of `bytes` to the channel (a write may take fewer). */
  async #writeAll(bytes: Uint8Array): Promise<void> {
    let offset = 0;
    while (offset < bytes.length) {
      offset += await this.#channel.write(offset === 0 ? bytes : bytes.subarray(offset));
    }
  }

  /**
   * Writes `pieces` (each shorter than {@linkcode LARGE_PIECE_BYTES}) laid out in pooled
   * buffers of at most {@linkcode MAX_WRITE_BUFFER}, each given back once written.
   */
  async #writeJoined(pieces: readonly Uint8Array[]): Promise<void> {
    let from = 0;
    while (from < pieces.length) {
      let to = from + 1;
      let bytes = pieces[from].length;
      while (to < pieces.length && bytes + pieces[to].length <= MAX_WRITE_BUFFER) {
        bytes += pieces[to++].length;
      }
      if (to - from === 1) await this.#writeAll(pieces[from]);
      else {
        const batch = writeBuffers.concat(
          from === 0 && to === pieces.length ? pieces : pieces.slice(from, to),
        );
        try {
          await this.#writeAll(batch);
        } finally {
          writeBuffers.give(batch);
        }
      }
      from = to;
    }
  }

  /** Settles the waits that are over: written, or never to be (stopped). */
  #wakeWritten(): void {
    const waiters = this.#writtenWaiters;
    if (waiters === null) return;
    let n = 0;
    while (n < waiters.length && waiters[n].offset <= this.#bytesOut) waiters[n++].resolve(true);
    if (n > 0) waiters.splice(0, n);
    if (this.#stopped) {
      for (const waiter of waiters) waiter.resolve(false);
      waiters.length = 0;
    }
    if (waiters.length === 0) this.#writtenWaiters = null;
  }

  #wakeIdle(): void {
    const waiters = this.#idleWaiters;
    if (waiters === null) return;
    this.#idleWaiters = null;
    for (const wake of waiters) wake();
  }
}

/** Resolves when `promise` settles or `ms` have passed, whichever comes first. */
export async function withTimeout(promise: Promise<unknown>, ms: number): Promise<void> {
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
