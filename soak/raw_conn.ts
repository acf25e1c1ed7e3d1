/**
 * A raw TCP connection for the soak's abusive clients: writes arbitrary bytes, and
 * (once asked to) reads and decodes whatever frames the server sends back, tolerating
 * anything, so that an abuser can tell how the server answered its garbage.
 *
 * @module
 */

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
  readonly #conn: Deno.TcpConn;
  readonly #openedAt = performance.now();
  readonly #decoder = new FrameDecoder({ maxFrameSize: MAX_INCOMING_FRAME });
  #decodeFailed = false;
  #reading: Promise<void> | null = null;
  #closedByUs = false;
  #notify = new Set<() => void>();

  private constructor(conn: Deno.TcpConn) {
    this.#conn = conn;
  }

  /** Dials 127.0.0.1:`port`. Throws when the server does not accept. */
  static async open(port: number): Promise<RawConn> {
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
