/**
 * A WebSocket as a {@linkcode ByteChannel}: the browser client's way in.
 *
 * The binary messages of the WebSocket carry the frames of the TCP protocol, byte for
 * byte (protocol/frame.ts): the browser sends one frame per message, the server sends
 * one or more whole frames per message (what its writer coalesced into one write). Read
 * as a byte stream, the messages are exactly what a TCP client would receive, so a
 * {@linkcode FramedConnection} runs over this channel unchanged, with its frame size
 * bound, its partial-frame budget and its outbound queue, and the server's connection
 * layer (flood control, deadlines, the hub) serves it like any other client.
 *
 * Backpressure: a WebSocket cannot pause its sender, so unread incoming bytes are
 * bounded ({@linkcode WebSocketChannelOptions.maxUnreadBytes}: past it the socket is
 * closed with 1009, "message too big"); a write resolves only once the socket's own
 * buffer is back under {@linkcode WRITE_HIGH_WATER}, so a slow reader stalls the writer
 * and is cut off by the server's write deadline, as over TCP.
 *
 * Messages: the outbound queue hands {@linkcode WebSocketChannel.writeMany} everything
 * queued since the last write (a fan-out's deliveries of one incoming read, or all that
 * piled up while the socket's buffer was full). Whole frames are packed, in order, into
 * messages of at most {@linkcode MAX_MESSAGE_BYTES} (a frame larger than that goes alone),
 * built in one buffer shared by every channel: the runtime's `send` copies its bytes at
 * once (Deno's `op_ws_send_binary` takes a copy and writes it later), so nothing is
 * allocated per message here. Why bounded: a reader that fell behind used to get what
 * piled up as one message of megabytes, copied three times into fresh allocations of
 * that size (the queue's concatenation, a copy of it, the runtime's), which cost the
 * server 6-7 times TCP's CPU per delivery in a fixed-work fan-out (bench/fanout_cpu.ts).
 *
 * Known limit: Deno's `WebSocket.close` sends its close frame behind the writes in
 * progress, so after a slow reader is cut off the runtime keeps its TCP connection (and
 * at most about {@linkcode WRITE_HIGH_WATER} of unsent bytes) until the peer reads or
 * goes; there is no public way to drop it sooner. {@linkcode WebSocketChannel.gone} says
 * when it is gone: a server keeps counting it against its address until then, so a
 * stranger's stalled sockets stay bounded by the per-address cap.
 *
 * @module
 */

import { setImmediate } from "node:timers";
import type { ByteChannel } from "./framed_connection.ts";

/** A write waits until the socket's buffered bytes fall under this. */
export const WRITE_HIGH_WATER = 256 * 1024;
/**
 * Most bytes of one message that {@linkcode WebSocketChannel.writeMany} packs (whole
 * frames); a single frame larger than this is sent as a message of its own.
 */
export const MAX_MESSAGE_BYTES = 64 * 1024;
/**
 * Where messages are packed: one for every channel, since `send` copies what it is
 * given before it returns.
 */
const packing = new Uint8Array(MAX_MESSAGE_BYTES);
/** Milliseconds between two looks at a full socket's buffer. */
const DRAIN_POLL_MS = 10;

/** Writes waiting for the event loop's next turn, woken together by one `setImmediate`. */
let turnWaiters: (() => void)[] = [];

function wakeTurnWaiters(): void {
  const waiters = turnWaiters;
  turnWaiters = [];
  for (const wake of waiters) wake();
}

/**
 * Resolves after the event loop's next turn: after the I/O it polls (the messages sent
 * meanwhile are written then, and the messages that arrived are read) and the callbacks
 * that I/O runs. `setImmediate`, unlike `setTimeout(0)`, is not clamped when chained.
 */
function nextTurn(): Promise<void> {
  return new Promise((resolve) => {
    if (turnWaiters.length === 0) setImmediate(wakeTurnWaiters);
    turnWaiters.push(resolve);
  });
}

/** Options of {@linkcode WebSocketChannel}. */
export interface WebSocketChannelOptions {
  /** Incoming bytes received and not read yet before the socket is closed. Default 4 MiB. */
  maxUnreadBytes?: number;
}

/**
 * Byte-stream reads and writes over a WebSocket's binary messages.
 *
 * @example
 * ```ts ignore
 * import { WebSocketChannel } from "./websocket_channel.ts";
 * const { socket, response } = Deno.upgradeWebSocket(request);
 * const channel = new WebSocketChannel(socket);
 * ```
 */
export class WebSocketChannel implements ByteChannel {
  readonly #socket: WebSocket;
  readonly #maxUnread: number;
  #chunks: Uint8Array[] = [];
  #unread = 0;
  #ended = false;
  #reader: (() => void) | null = null;
  /** A read returned bytes and the event loop has not turned since (as far as known). */
  #readSinceTurn = false;
  readonly #opened: Promise<boolean>;
  /** Resolves once the socket has closed (its TCP connection released). */
  readonly gone: Promise<void>;

  /** Wraps `socket` (open or still opening); the channel owns it from now on. */
  constructor(socket: WebSocket, options: WebSocketChannelOptions = {}) {
    this.#socket = socket;
    this.#maxUnread = options.maxUnreadBytes ?? 4 * 1024 * 1024;
    socket.binaryType = "arraybuffer";
    this.#opened = socket.readyState === WebSocket.OPEN
      ? Promise.resolve(true)
      : new Promise((resolve) => {
        socket.addEventListener("open", () => resolve(true), { once: true });
        socket.addEventListener("close", () => resolve(false), { once: true });
      });
    this.gone = socket.readyState === WebSocket.CLOSED
      ? Promise.resolve()
      : new Promise((resolve) => socket.addEventListener("close", () => resolve(), { once: true }));
    socket.addEventListener("message", (event) => this.#onMessage(event));
    socket.addEventListener("close", () => this.#end());
    socket.addEventListener("error", () => this.#end());
  }

  #onMessage(event: MessageEvent): void {
    if (this.#ended) return;
    if (!(event.data instanceof ArrayBuffer)) {
      // Text messages are not part of the protocol.
      this.#socket.close(1003, "binary frames only");
      this.#end();
      return;
    }
    const chunk = new Uint8Array(event.data);
    if (chunk.length === 0) return;
    this.#unread += chunk.length;
    if (this.#unread > this.#maxUnread) {
      this.#socket.close(1009, "too much unread data");
      this.#end();
      return;
    }
    this.#chunks.push(chunk);
    this.#wake();
  }

  #end(): void {
    this.#ended = true;
    this.#wake();
  }

  #wake(): void {
    const reader = this.#reader;
    this.#reader = null;
    reader?.();
  }

  /**
   * Reads received bytes into `p`; null once the socket has closed and all was read.
   *
   * A read of bytes already received, right after a read, first lets the event loop turn
   * (as a socket's read, an operation of the runtime, does): a message of megabytes is
   * read in many reads, and without a turn between them the reader would decode and
   * handle all of it in one job, while the writes it causes (the runtime's `send` writes
   * on the event loop), the other connections' reads and the timers wait. The bench's
   * load client sends its backlog as one message of megabytes.
   */
  async read(p: Uint8Array): Promise<number | null> {
    if (this.#readSinceTurn && this.#chunks.length > 0) await nextTurn();
    this.#readSinceTurn = false;
    while (this.#chunks.length === 0) {
      if (this.#ended) return null;
      await new Promise<void>((resolve) => this.#reader = resolve);
    }
    this.#readSinceTurn = true;
    let n = 0;
    while (n < p.length && this.#chunks.length > 0) {
      const chunk = this.#chunks[0];
      const take = Math.min(chunk.length, p.length - n);
      p.set(chunk.subarray(0, take), n);
      n += take;
      if (take === chunk.length) this.#chunks.shift();
      else this.#chunks[0] = chunk.subarray(take);
    }
    this.#unread -= n;
    return n;
  }

  /**
   * Sends `p` as one binary message and resolves once the socket's buffer is under
   * {@linkcode WRITE_HIGH_WATER}. The caller may reuse `p` at once: `send` copies it.
   *
   * @throws {Deno.errors.BrokenPipe} when the socket is closed.
   */
  async write(p: Uint8Array): Promise<number> {
    await this.#whenOpen();
    this.#socket.send(p);
    await this.#drained();
    return p.length;
  }

  /**
   * Sends `pieces` (whole frames), in order, as few binary messages as
   * {@linkcode MAX_MESSAGE_BYTES} allows, and resolves once the socket's buffer is under
   * {@linkcode WRITE_HIGH_WATER}. The caller may reuse the pieces at once.
   *
   * @example
   * ```ts ignore
   * // two frames, one message
   * await channel.writeMany([encodeFrame({ type: "ping" }), encodeFrame({ type: "ping" })]);
   * ```
   *
   * @throws {Deno.errors.BrokenPipe} when the socket is closed.
   */
  async writeMany(pieces: Uint8Array[]): Promise<void> {
    await this.#whenOpen();
    const socket = this.#socket;
    let packed = 0;
    for (const piece of pieces) {
      if (packed + piece.length > MAX_MESSAGE_BYTES && packed > 0) {
        socket.send(packing.subarray(0, packed));
        packed = 0;
      }
      if (piece.length >= MAX_MESSAGE_BYTES) socket.send(piece);
      else {
        packing.set(piece, packed);
        packed += piece.length;
      }
    }
    if (packed > 0) socket.send(packing.subarray(0, packed));
    await this.#drained();
  }

  async #whenOpen(): Promise<void> {
    if (!await this.#opened || this.#socket.readyState !== WebSocket.OPEN) {
      throw new Deno.errors.BrokenPipe("the WebSocket is closed");
    }
  }

  /**
   * Resolves after the event loop's next turn, once the socket's buffer is under
   * {@linkcode WRITE_HIGH_WATER}. Like a socket's write, which resolves once the runtime
   * has written: meanwhile the frames that turn's events queue wait in the outbound
   * queue, and the next write carries them all in one message (resolving at once made a
   * message per event: a tenth of a message per delivery against a hundredth, and twice
   * the server's CPU per delivery, in bench/fanout_cpu.ts --ws).
   *
   * This wait (and sending without a copy of our own) was once dropped for stalls of the
   * bench's 10-member WebSocket fan-out. Such stalls came with the code before it too:
   * they were the bench's (a level ended after 300 ms without a byte, while the server
   * still had megabytes queued, and the next level measured that backlog; now a level
   * waits for its deliveries: bench/README.md). A fixed-work run that looked like a
   * stall was its senders being closed past `--max-queue` unread bytes
   * (bench/fanout_cpu.ts).
   */
  async #drained(): Promise<void> {
    await nextTurn();
    while (this.#socket.bufferedAmount > WRITE_HIGH_WATER) {
      if (this.#socket.readyState !== WebSocket.OPEN) {
        throw new Deno.errors.BrokenPipe("the WebSocket is closed");
      }
      await new Promise((resolve) => setTimeout(resolve, DRAIN_POLL_MS));
    }
  }

  /** Closes the WebSocket (normal closure); what was sent before is delivered first. */
  close(): void {
    this.#end();
    try {
      this.#socket.close(1000);
    } catch {
      // already closed
    }
  }
}
