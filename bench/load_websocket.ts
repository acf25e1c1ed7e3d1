/**
 * The bench load client's WebSocket: the socket a browser opens (`GET /ws` upgraded from
 * the page's origin, binary messages carrying the protocol's frames), spoken over a
 * plain TCP connection so that it receives as cheaply as the TCP load client does.
 *
 * Deno's `WebSocket` costs about 3.5 µs of the load process's CPU per message received
 * (an op per message, a `MessageEvent`, its dispatch), whatever the message holds;
 * a server that writes a few frames per message then measures its load client. Here one
 * TCP read (64 KiB) carries many messages: {@linkcode WsFrameDecoder} walks their
 * headers and hands the payloads of binary messages to `onData` as views into the read
 * buffer, where the load client counts its frames and reads the probes' stamps with
 * `frame_scan.ts` exactly as on TCP. Message boundaries do not matter to it (the
 * payloads together are the byte stream a TCP client would read), so a protocol frame
 * split over two messages, or a message over two reads, is carried over by the caller.
 *
 * Sent messages are masked as RFC 6455 requires of a client (a random key per message).
 * No extension is asked for (no compression). A ping is answered with its pong, a close
 * with a close, and a text message, which the protocol does not use, closes the socket.
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

const encoder = new TextEncoder();
const decoder = new TextDecoder();
/** The GUID of RFC 6455's handshake. */
const WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/** Most bytes of a handshake response. */
const MAX_RESPONSE_HEAD = 16 * 1024;
/** Most bytes of a control frame's payload (RFC 6455: 125). */
const MAX_CONTROL = 125;

/** Opcodes of RFC 6455. */
const Op = { Continuation: 0, Text: 1, Binary: 2, Close: 8, Ping: 9, Pong: 10 } as const;

/** The socket was refused, closed, or broke the protocol. */
export class LoadWebSocketError extends Error {
  /** `refused` (no upgrade), `closed`, or `protocol` (a frame the client cannot take). */
  readonly code: "refused" | "closed" | "protocol";
  constructor(code: "refused" | "closed" | "protocol", message: string) {
    super(message);
    this.name = "LoadWebSocketError";
    this.code = code;
  }
}

/** What {@linkcode WsFrameDecoder} reports besides binary data. */
export interface WsControl {
  /** A ping's payload: answer with a pong carrying it. */
  ping(payload: Uint8Array): void;
  /** A close frame (its payload), or a text message (`text`), which ends the socket. */
  close(reason: "close" | "text"): void;
}

/**
 * Walks the frames of a WebSocket's server-to-client stream (unmasked), read after read:
 * payloads of binary messages (and their continuations) go to `onData` as views into the
 * read's bytes, as they come (a payload split over reads comes in pieces); control frames
 * to `control`.
 *
 * @example
 * ```ts
 * import { WsFrameDecoder } from "./load_websocket.ts";
 * const got: number[] = [];
 * const d = new WsFrameDecoder((b) => got.push(...b), { ping() {}, close() {} });
 * d.push(new Uint8Array([0x82, 2, 7, 8])); // one binary message of 2 bytes
 * got; // [7, 8]
 * ```
 */
export class WsFrameDecoder {
  readonly #onData: (bytes: Uint8Array) => void;
  readonly #control: WsControl;
  /** Bytes of an unfinished frame header (or control payload) carried to the next read. */
  #head: Uint8Array | null = null;
  /** Payload bytes of the current binary frame still to come. */
  #remaining = 0;
  /** The opcode of the message being received (continuations inherit it). */
  #messageOp = -1;

  constructor(onData: (bytes: Uint8Array) => void, control: WsControl) {
    this.#onData = onData;
    this.#control = control;
  }

  /**
   * Takes the next bytes of the stream.
   *
   * @throws {LoadWebSocketError} `protocol` for a masked or oversized control frame.
   */
  push(bytes: Uint8Array): void {
    let data = bytes;
    if (this.#head !== null) {
      const joined = new Uint8Array(this.#head.length + bytes.length);
      joined.set(this.#head);
      joined.set(bytes, this.#head.length);
      data = joined;
      this.#head = null;
    }
    let o = 0;
    const len = data.length;
    while (o < len) {
      if (this.#remaining > 0) {
        const take = Math.min(this.#remaining, len - o);
        this.#onData(data.subarray(o, o + take));
        this.#remaining -= take;
        o += take;
        continue;
      }
      // A frame header: 2 bytes, then 0, 2 or 8 of length (servers do not mask).
      if (len - o < 2) break;
      const b0 = data[o];
      const b1 = data[o + 1];
      if ((b1 & 0x80) !== 0) throw new LoadWebSocketError("protocol", "a masked server frame");
      const op = b0 & 0x0f;
      let size = b1 & 0x7f;
      let h = 2;
      if (size === 126) {
        if (len - o < 4) break;
        size = (data[o + 2] << 8) | data[o + 3];
        h = 4;
      } else if (size === 127) {
        if (len - o < 10) break;
        size = 0;
        for (let i = 2; i < 10; i++) size = size * 256 + data[o + i];
        h = 10;
      }
      if (op >= Op.Close) {
        if (size > MAX_CONTROL) {
          throw new LoadWebSocketError("protocol", `a control frame of ${size} bytes`);
        }
        if (len - o < h + size) break; // kept whole in #head
        const payload = data.slice(o + h, o + h + size);
        o += h + size;
        if (op === Op.Ping) this.#control.ping(payload);
        else if (op === Op.Close) this.#control.close("close");
        continue;
      }
      o += h;
      if (op !== Op.Continuation) this.#messageOp = op;
      if (this.#messageOp === Op.Text) {
        this.#control.close("text");
        return;
      }
      this.#remaining = size;
    }
    if (o < len) this.#head = data.slice(o);
  }
}

/** One client-to-server frame: FIN, `op`, masked with a random key. */
export function clientFrame(op: number, payload: Uint8Array): Uint8Array {
  const n = payload.length;
  const h = n < 126 ? 2 : n < 65536 ? 4 : 10;
  const out = new Uint8Array(h + 4 + n);
  out[0] = 0x80 | op;
  if (n < 126) out[1] = 0x80 | n;
  else if (n < 65536) {
    out[1] = 0x80 | 126;
    out[2] = n >>> 8;
    out[3] = n & 0xff;
  } else {
    out[1] = 0x80 | 127;
    let rest = n;
    for (let i = 9; i >= 2; i--) {
      out[i] = rest % 256;
      rest = Math.floor(rest / 256);
    }
  }
  const key = out.subarray(h, h + 4);
  crypto.getRandomValues(key);
  for (let i = 0; i < n; i++) out[h + 4 + i] = payload[i] ^ key[i & 3];
  return out;
}

async function acceptFor(key: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-1", encoder.encode(key + WS_GUID));
  return btoa(String.fromCharCode(...new Uint8Array(digest)));
}

/** A client WebSocket over TCP: binary messages' payloads to a callback, writes as binary messages. */
export class LoadWebSocket {
  readonly #conn: Deno.TcpConn;
  #closed = false;
  /** Resolves once the connection has ended (closed by either side, or broken). */
  readonly ended: Promise<void>;
  /** The local address of the TCP connection. */
  readonly localAddr: Deno.Addr;

  private constructor(
    conn: Deno.TcpConn,
    rest: Uint8Array,
    onData: (bytes: Uint8Array) => void,
    bufferSize: number,
  ) {
    this.#conn = conn;
    this.localAddr = conn.localAddr;
    const decoder = new WsFrameDecoder((bytes) => {
      if (!this.#closed) onData(bytes);
    }, {
      ping: (payload) => this.#send(clientFrame(Op.Pong, payload)),
      close: () => this.close(),
    });
    this.ended = this.#readLoop(decoder, rest, bufferSize);
  }

  /**
   * Opens `ws://host:port/ws` from the page's own origin, as a browser would; `onData`
   * gets the payload of every binary message from the first on (the server speaks
   * first: `hello`), as views valid during the call only (the read buffer is reused).
   *
   * @throws {LoadWebSocketError} `refused` when the server does not upgrade.
   */
  static async open(
    host: string,
    port: number,
    onData: (bytes: Uint8Array) => void,
    bufferSize = 64 * 1024,
  ): Promise<LoadWebSocket> {
    const conn = await Deno.connect({ hostname: host, port });
    conn.setNoDelay(true);
    try {
      const nonce = crypto.getRandomValues(new Uint8Array(16));
      const key = btoa(String.fromCharCode(...nonce));
      await writeAll(
        conn,
        encoder.encode(
          `GET /ws HTTP/1.1\r\nHost: ${host}:${port}\r\nUpgrade: websocket\r\n` +
            `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n` +
            `Origin: http://${host}:${port}\r\n\r\n`,
        ),
      );
      const { head, rest } = await readHead(conn);
      const lines = head.split("\r\n");
      if (!/^HTTP\/1\.1 101\b/.test(lines[0])) {
        throw new LoadWebSocketError("refused", `the WebSocket was refused: ${lines[0]}`);
      }
      const accept = lines.find((l) => /^sec-websocket-accept:/i.test(l))?.split(":")[1]?.trim();
      if (accept !== await acceptFor(key)) {
        throw new LoadWebSocketError("refused", "the upgrade's Sec-WebSocket-Accept is wrong");
      }
      return new LoadWebSocket(conn, rest, onData, bufferSize);
    } catch (err) {
      try {
        conn.close();
      } catch {
        // already closed
      }
      throw err;
    }
  }

  async #readLoop(decoder: WsFrameDecoder, rest: Uint8Array, bufferSize: number): Promise<void> {
    try {
      if (rest.length > 0) decoder.push(rest);
      const buffer = new Uint8Array(bufferSize);
      while (!this.#closed) {
        const n = await this.#conn.read(buffer);
        if (n === null) break;
        decoder.push(buffer.subarray(0, n));
      }
    } catch {
      // reset, closed locally, or a frame the client cannot take: the socket is over
    } finally {
      this.close();
    }
  }

  #send(frame: Uint8Array): void {
    writeAll(this.#conn, frame).catch(() => this.close());
  }

  /**
   * Sends `p` as one binary message; resolves once the kernel took it all.
   *
   * @throws {LoadWebSocketError} when the socket is closed.
   */
  async write(p: Uint8Array): Promise<number> {
    if (this.#closed) throw new LoadWebSocketError("closed", "the WebSocket is closed");
    try {
      await writeAll(this.#conn, clientFrame(Op.Binary, p));
    } catch {
      throw new LoadWebSocketError("closed", "the WebSocket is closed");
    }
    return p.length;
  }

  /** Closes the socket (a close frame, then the connection); no more data is handed on. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const conn = this.#conn;
    // The close frame (status 1000) is best effort: the connection goes right after.
    conn.write(clientFrame(Op.Close, new Uint8Array([0x03, 0xe8]))).catch(() => {}).finally(
      () => {
        try {
          conn.close();
        } catch {
          // already closed
        }
      },
    );
  }
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let o = 0;
  while (o < bytes.length) o += await conn.write(bytes.subarray(o));
}

/** Reads the response head (up to the blank line); the bytes after it are the stream's. */
async function readHead(conn: Deno.Conn): Promise<{ head: string; rest: Uint8Array }> {
  let got = new Uint8Array(0);
  const buffer = new Uint8Array(4096);
  while (got.length < MAX_RESPONSE_HEAD) {
    const n = await conn.read(buffer);
    if (n === null) throw new LoadWebSocketError("refused", "the connection closed in the upgrade");
    const joined = new Uint8Array(got.length + n);
    joined.set(got);
    joined.set(buffer.subarray(0, n), got.length);
    got = joined;
    for (let i = 3; i < got.length; i++) {
      if (got[i] === 0x0a && got[i - 1] === 0x0d && got[i - 2] === 0x0a && got[i - 3] === 0x0d) {
        return { head: decoder.decode(got.subarray(0, i - 3)), rest: got.slice(i + 1) };
      }
    }
  }
  throw new LoadWebSocketError("refused", "the upgrade's response head is too long");
}
