/**
 * Dialing the test server from another loopback address (127.0.0.2, 127.0.0.3...), so a
 * test can play clients on different IP addresses: `Deno.connect` cannot choose the
 * local address, `node:net` can.
 *
 * @module
 */

import net from "node:net";
import { FramedConnection } from "../../transport/framed_connection.ts";
import type { ByteChannel } from "../../transport/framed_connection.ts";
import type { ChatServer } from "../../server/server.ts";
import { Probe } from "./harness.ts";

/** A `node:net` socket as a {@linkcode ByteChannel}. */
class SocketChannel implements ByteChannel {
  readonly #socket: net.Socket;
  readonly #chunks: Uint8Array[] = [];
  #ended = false;
  #wake: (() => void) | null = null;

  constructor(socket: net.Socket) {
    this.#socket = socket;
    socket.on("data", (chunk: Uint8Array) => {
      this.#chunks.push(new Uint8Array(chunk));
      this.#notify();
    });
    const end = () => {
      this.#ended = true;
      this.#notify();
    };
    socket.on("end", end);
    socket.on("close", end);
    socket.on("error", end);
  }

  async read(p: Uint8Array): Promise<number | null> {
    while (this.#chunks.length === 0) {
      if (this.#ended) return null;
      await new Promise<void>((resolve) => this.#wake = resolve);
    }
    const chunk = this.#chunks[0];
    const n = Math.min(p.length, chunk.length);
    p.set(chunk.subarray(0, n));
    if (n === chunk.length) this.#chunks.shift();
    else this.#chunks[0] = chunk.subarray(n);
    return n;
  }

  write(p: Uint8Array): Promise<number> {
    if (this.#ended) return Promise.reject(new Error("socket closed"));
    const copy = p.slice();
    return new Promise((resolve, reject) =>
      this.#socket.write(copy, (err) => err ? reject(err) : resolve(copy.length))
    );
  }

  close(): void {
    this.#ended = true;
    this.#socket.destroy();
    this.#notify();
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }
}

/** Dials `server` from `localAddress` (a 127.x.y.z address) without saying anything. */
export function dialFrom(server: ChatServer, localAddress: string): Promise<Probe> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: "127.0.0.1", port: server.addr.port, localAddress });
    socket.once("error", reject);
    socket.once("connect", () => {
      socket.off("error", reject);
      resolve(new Probe(new FramedConnection(new SocketChannel(socket))));
    });
  });
}

/** Dials from `localAddress` and says hello. */
export async function helloFrom(server: ChatServer, localAddress: string): Promise<Probe> {
  const probe = await dialFrom(server, localAddress);
  await probe.hello();
  return probe;
}
