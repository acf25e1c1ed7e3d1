/**
 * A {@linkcode ByteChannel} through the chat server: what one client writes reaches the
 * other client of a private session as the bodies of `relay` frames, which the server
 * forwards without reading. The peer handshake and the encrypted record layer run over
 * it unchanged, so the server only ever carries ciphertext (and the plaintext hellos,
 * which hold public keys and nonces).
 *
 * @module
 */

import { ByteQueue } from "../transport/byte_queue.ts";
import type { ByteChannel } from "../transport/framed_connection.ts";
import type { ChatClient } from "./chat_client.ts";
import { ChatError } from "./chat_error.ts";

/** Largest body of one `relay` frame this side sends. */
export const RELAY_CHUNK_BYTES: number = 60 * 1024;

/** What a relay channel needs of the chat client (tests may pass a fake). */
export type RelayClient = Pick<ChatClient, "request" | "onRelay">;

/**
 * One private session's relayed byte stream. Incoming bytes arrive through
 * {@linkcode RelayChannel.push}; {@linkcode RelayChannel.end} marks the end of the
 * other side's stream and {@linkcode RelayChannel.fail} breaks it.
 *
 * @example
 * ```ts ignore
 * import { RelayChannel } from "./relay_channel.ts";
 * const channel = new RelayChannel(client, sid);
 * const result = await performHandshake(channel, { role: "initiator", nick: "bob" });
 * ```
 */
export class RelayChannel implements ByteChannel {
  readonly #client: RelayClient;
  readonly #sid: string;
  readonly #unsubscribe: () => void;
  readonly #incoming = new ByteQueue();
  #failure: Error | null = null;

  /** Starts collecting the `relay` frames of session `sid` at once. */
  constructor(client: RelayClient, sid: string) {
    this.#client = client;
    this.#sid = sid;
    this.#unsubscribe = client.onRelay((from, body) => {
      if (from === sid) this.push(body);
    });
  }

  /** The private session's id. */
  get sid(): string {
    return this.#sid;
  }

  /** Delivers bytes that arrived from the other side. */
  push(bytes: Uint8Array): void {
    this.#incoming.push(bytes);
  }

  /** The other side's stream ended: reads return `null` once the buffered bytes are read. */
  end(): void {
    this.#incoming.end();
  }

  /** The relay broke (the connection to the server was lost): reads and writes fail. */
  fail(error: Error): void {
    if (this.#failure === null) this.#failure = error;
    this.#incoming.fail(error);
  }

  read(p: Uint8Array): Promise<number | null> {
    return this.#incoming.read(p);
  }

  /** Sends all of `p` in `relay` frames, each acknowledged by the server before the next. */
  async write(p: Uint8Array): Promise<number> {
    for (let offset = 0; offset < p.length; offset += RELAY_CHUNK_BYTES) {
      if (this.#incoming.closed) {
        throw new Deno.errors.BadResource("the relay channel is closed");
      }
      if (this.#failure !== null) throw this.#failure;
      try {
        await this.#client.request("relay", { sid: this.#sid }, {
          body: p.slice(offset, offset + RELAY_CHUNK_BYTES),
        });
      } catch (err) {
        const error = err instanceof ChatError
          ? new Deno.errors.BrokenPipe(`the relay through the server failed: ${err.message}`, {
            cause: err,
          })
          : err;
        this.fail(error as Error);
        throw error;
      }
    }
    return p.length;
  }

  close(): void {
    if (this.#incoming.closed) return;
    this.#incoming.close();
    this.#unsubscribe();
  }
}
