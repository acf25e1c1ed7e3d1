/**
 * The bench load client's WebSocket: the socket a browser opens (binary messages carrying
 * the protocol's frames), read the cheap way. Each binary message is handed as it comes
 * to the `onData` given to {@linkcode LoadWebSocket.open}, a view of the message's own bytes (no copy, no
 * byte-stream adapter, no promise per message), where the load client counts its frames
 * and reads the probes' stamps with `frame_scan.ts`, as it does with a TCP read.
 *
 * Reading through `transport/websocket_channel.ts` (the server's adapter: each message
 * queued, a reader woken, the bytes copied into the reader's buffer) took the load
 * process's CPU where the server was meant to be measured.
 *
 * @example
 * ```ts ignore
 * import { LoadWebSocket } from "./load_websocket.ts";
 * const socket = await LoadWebSocket.open("127.0.0.1", 8080, (b) => console.log(b.length));
 * await socket.write(new Uint8Array([0, 0, 0, 4, 0, 0, 0, 0]));
 * ```
 *
 * @module
 */

/** A write resolves once the socket's buffered bytes are under this (as the server's channel). */
const WRITE_HIGH_WATER = 256 * 1024;
/** Milliseconds between two looks at a full socket's buffer. */
const DRAIN_POLL_MS = 10;

/** The socket was refused, closed, or sent a text message. */
export class LoadWebSocketError extends Error {
  /** `refused` or `closed`. */
  readonly code: "refused" | "closed";
  constructor(code: "refused" | "closed", message: string) {
    super(message);
    this.name = "LoadWebSocketError";
    this.code = code;
  }
}

/** A client WebSocket whose binary messages go to a callback, and writes as binary messages. */
export class LoadWebSocket {
  readonly #socket: WebSocket;
  /** Resolves once the socket has closed (or failed). */
  readonly ended: Promise<void>;
  /** Called with each binary message's bytes (a view that stays valid: the message's own). */
  #onData: (bytes: Uint8Array) => void;

  private constructor(socket: WebSocket, onData: (bytes: Uint8Array) => void) {
    this.#socket = socket;
    this.#onData = onData;
    this.ended = new Promise((resolve) => {
      socket.addEventListener("close", () => resolve(), { once: true });
    });
    socket.onmessage = (event: MessageEvent) => {
      const data = event.data;
      if (data instanceof ArrayBuffer) {
        if (data.byteLength > 0) this.#onData(new Uint8Array(data));
      } else {
        // Text messages are not part of the protocol.
        this.close();
      }
    };
  }

  /**
   * Opens `ws://host:port/ws` from the page's own origin, as a browser would; `onData`
   * gets every binary message from the first on (the server speaks first: `hello`).
   */
  static async open(
    host: string,
    port: number,
    onData: (bytes: Uint8Array) => void,
  ): Promise<LoadWebSocket> {
    // Deno's WebSocket takes headers; a browser sets Origin itself.
    const socket = new (WebSocket as unknown as new (url: string, init: object) => WebSocket)(
      `ws://${host}:${port}/ws`,
      { headers: { origin: `http://${host}:${port}` } },
    );
    socket.binaryType = "arraybuffer";
    // Listening before the open: no message can come before its listener.
    const result = new LoadWebSocket(socket, onData);
    await new Promise<void>((resolve, reject) => {
      socket.onopen = () => resolve();
      socket.onerror = () => reject(new LoadWebSocketError("refused", "the WebSocket was refused"));
    });
    socket.onopen = null;
    socket.onerror = null;
    return result;
  }

  /**
   * Sends `p` as one binary message and resolves once the socket's buffer is under
   * {@linkcode WRITE_HIGH_WATER}, so a backlog shows in the caller's queue.
   *
   * @throws {LoadWebSocketError} when the socket is closed.
   */
  async write(p: Uint8Array): Promise<number> {
    if (this.#socket.readyState !== WebSocket.OPEN) {
      throw new LoadWebSocketError("closed", "the WebSocket is closed");
    }
    this.#socket.send(p);
    while (this.#socket.bufferedAmount > WRITE_HIGH_WATER) {
      if (this.#socket.readyState !== WebSocket.OPEN) {
        throw new LoadWebSocketError("closed", "the WebSocket is closed");
      }
      await new Promise((resolve) => setTimeout(resolve, DRAIN_POLL_MS));
    }
    return p.length;
  }

  /** Closes the socket (normal closure); no more data is handed on. */
  close(): void {
    this.#onData = () => {};
    try {
      this.#socket.close(1000);
    } catch {
      // already closed
    }
  }
}
