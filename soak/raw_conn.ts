/**
 * A raw TCP connection for the soak's abusive clients: writes arbitrary bytes, and
 * (once asked to) reads and decodes whatever frames the server sends back, tolerating
 * anything, so that an abuser can tell how the server answered its garbage.
 *
 * @module
 */

import net from "node:net";
import { decodePayload, FrameDecoder } from "../protocol/frame.ts";

/** A frame header received, as parsed JSON. */
export type Header = Record<string, unknown>;

/** Largest frame accepted from the server (history replies can be large). */
const MAX_INCOMING_FRAME = 16 * 1024 * 1024;

/**
 * One raw connection.
 *
 * @example
 * ```ts ignore
 * import { RawConn } from "./raw_conn.ts";
 * const conn = await RawConn.open(44444);
 * conn.startReading();
 * await conn.write(new Uint8Array([0xff, 0xff, 0xff, 0xff]));
 * const error = await conn.waitFor((h) => h.type === "error", 3000);
 * await conn.waitClosed(3000);
 * ```
 */
export class RawConn {
  /** Headers received so far, in order. */
  readonly received: Header[] = [];
  /** Milliseconds from opening to the server's end of the stream; null while open. */
  closedAfterMs: number | null = null;
  /** Bytes received. */
  bytesIn = 0;
  /** The largest frame payload received, in bytes. */
  largestFrame = 0;
  readonly #conn: Transport;
  readonly #openedAt = performance.now();
  readonly #decoder = new FrameDecoder({ maxFrameSize: MAX_INCOMING_FRAME });
  #decodeFailed = false;
  #reading: Promise<void> | null = null;
  #closedByUs = false;
  #notify = new Set<() => void>();

  private constructor(conn: Transport) {
    this.#conn = conn;
  }

  /**
   * Dials 127.0.0.1:`port`, from the local address `from` when given (another
   * loopback address such as 127.0.0.2, so that the server sees another client
   * address). Throws when the server does not accept.
   */
  static async open(port: number, from?: string): Promise<RawConn> {
    if (from !== undefined && from !== "127.0.0.1") {
      return new RawConn(await NodeTransport.open(port, from));
    }
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    try {
      conn.setNoDelay(true);
    } catch {
      // not important
    }
    return new RawConn(conn);
  }

  /** Whether the server ended the stream (or the connection failed). */
  get closed(): boolean {
    return this.closedAfterMs !== null;
  }

  /** Whether this side closed the connection (with close()). */
  get closedByUs(): boolean {
    return this.#closedByUs;
  }

  /** Whether frames are being read. */
  get reading(): boolean {
    return this.#reading !== null;
  }

  /** Writes all of `bytes`; false when the connection is gone. */
  async write(bytes: Uint8Array): Promise<boolean> {
    try {
      let offset = 0;
      while (offset < bytes.length) offset += await this.#conn.write(bytes.subarray(offset));
      return true;
    } catch {
      return false;
    }
  }

  /** Ends our side of the stream (the server reads an end of file). */
  async closeWrite(): Promise<void> {
    try {
      await this.#conn.closeWrite();
    } catch {
      // already gone
    }
  }

  /** Starts reading frames in the background (never throws). */
  startReading(): void {
    this.#reading ??= this.#readLoop();
  }

  /** The first received header matching `match` (searching those already received too), or null after `timeoutMs`. */
  waitFor(match: (header: Header) => boolean, timeoutMs: number): Promise<Header | null> {
    this.startReading();
    const found = (): Header | undefined => this.received.find(match);
    return this.#waitUntil(() => found() !== undefined || this.closed, timeoutMs).then(() =>
      found() ?? null
    );
  }

  /** Resolves true once the server has ended the stream, false after `timeoutMs`. */
  async waitClosed(timeoutMs: number): Promise<boolean> {
    this.startReading();
    await this.#waitUntil(() => this.closed, timeoutMs);
    return this.closed;
  }

  /** Closes the connection (idempotent). */
  close(): void {
    if (this.#closedByUs) return;
    this.#closedByUs = true;
    try {
      this.#conn.close();
    } catch {
      // already closed
    }
  }

  async #readLoop(): Promise<void> {
    const buffer = new Uint8Array(64 * 1024);
    try {
      while (true) {
        const n = await this.#conn.read(buffer);
        if (n === null) break;
        this.bytesIn += n;
        if (this.#decodeFailed) continue;
        try {
          for (const payload of this.#decoder.push(buffer.subarray(0, n))) {
            this.largestFrame = Math.max(this.largestFrame, payload.length);
            try {
              this.received.push(decodePayload(payload).header);
            } catch {
              this.received.push({ type: "__undecodable__" });
            }
          }
        } catch {
          this.#decodeFailed = true;
        }
        this.#wake();
      }
    } catch {
      // reset, or closed by us
    }
    this.closedAfterMs = performance.now() - this.#openedAt;
    this.#wake();
  }

  #wake(): void {
    for (const notify of [...this.#notify]) notify();
  }

  #waitUntil(done: () => boolean, timeoutMs: number): Promise<void> {
    if (done()) return Promise.resolve();
    return new Promise((resolve) => {
      const finish = (): void => {
        clearTimeout(timer);
        this.#notify.delete(check);
        resolve();
      };
      const check = (): void => {
        if (done()) finish();
      };
      const timer = setTimeout(finish, timeoutMs);
      this.#notify.add(check);
    });
  }
}

/** What RawConn needs of a connection: a Deno.TcpConn, or a node:net socket. */
interface Transport {
  write(bytes: Uint8Array): Promise<number>;
  read(buffer: Uint8Array): Promise<number | null>;
  closeWrite(): Promise<void>;
  close(): void;
}

/**
 * A node:net socket seen as a Transport: Deno.connect cannot choose the local
 * address, node:net can (`localAddress`).
 */
class NodeTransport implements Transport {
  readonly #socket: net.Socket;
  readonly #chunks: Uint8Array[] = [];
  #ended = false;
  #wake: (() => void) | null = null;

  private constructor(socket: net.Socket) {
    this.#socket = socket;
    socket.on("data", (chunk: Uint8Array) => {
      this.#chunks.push(new Uint8Array(chunk));
      this.#notify();
    });
    const end = (): void => {
      this.#ended = true;
      this.#notify();
    };
    socket.on("end", end);
    socket.on("close", end);
    socket.on("error", end);
  }

  static open(port: number, from: string): Promise<NodeTransport> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: "127.0.0.1", port, localAddress: from });
      socket.setNoDelay(true);
      socket.once("error", reject);
      socket.once("connect", () => {
        socket.off("error", reject);
        resolve(new NodeTransport(socket));
      });
    });
  }

  write(bytes: Uint8Array): Promise<number> {
    return new Promise((resolve, reject) => {
      if (this.#socket.destroyed) {
        reject(new Error("closed"));
        return;
      }
      this.#socket.write(bytes, (err) => err ? reject(err) : resolve(bytes.length));
    });
  }

  async read(buffer: Uint8Array): Promise<number | null> {
    while (this.#chunks.length === 0) {
      if (this.#ended) return null;
      await new Promise<void>((resolve) => this.#wake = resolve);
    }
    const chunk = this.#chunks[0]!;
    const n = Math.min(chunk.length, buffer.length);
    buffer.set(chunk.subarray(0, n));
    if (n === chunk.length) this.#chunks.shift();
    else this.#chunks[0] = chunk.subarray(n);
    return n;
  }

  closeWrite(): Promise<void> {
    return new Promise((resolve) => this.#socket.end(resolve));
  }

  close(): void {
    this.#socket.destroy();
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }
}
