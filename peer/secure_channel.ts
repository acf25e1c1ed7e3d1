/**
 * The encrypted record layer of a peer session: a {@linkcode ByteChannel} whose bytes
 * travel as AES-256-GCM records over another byte channel (the TCP connection).
 *
 * ```text
 * record = length:u32be ciphertext[length]    ; 16 <= length <= 1048576 + 16
 * nonce  = 0x00000000 || counter:u64be        ; 12 bytes; counter = record number, from 0
 * aad    = the record's 4 length bytes
 * ```
 *
 * Each direction has its own key and its own counter, so a nonce is never used twice
 * under one key. The receiver decrypts record number n with nonce n: a modified,
 * replayed, dropped or reordered record fails authentication and the channel fails for
 * good with `decrypt_failed`. Nothing is returned from a record before it authenticates.
 * A counter reaching its limit ends the channel with `limit` rather than wrap.
 *
 * Records are large (up to 1 MiB of plaintext) and several are encrypted or decrypted at
 * once: each WebCrypto call costs about 100-150 µs whatever its size on the machines
 * measured (Deno 2.9), so 64 KiB records spent more on calls than on AES, and one call
 * at a time left the connection waiting for every hand-over to WebCrypto's threads.
 *
 * @module
 */

import type { ByteChannel } from "../transport/framed_connection.ts";
import { ByteReader } from "./byte_reader.ts";
import { PeerError } from "./errors.ts";

/** Largest plaintext carried by one record: 1 MiB (peer protocol version 2; 64 KiB in 1). */
export const MAX_RECORD_PLAINTEXT: number = 1024 * 1024;
/** Bytes of the AES-GCM authentication tag at the end of every ciphertext. */
export const TAG_BYTES = 16;
/** Largest ciphertext (the length field's bound), checked before anything is allocated. */
export const MAX_RECORD_CIPHERTEXT: number = MAX_RECORD_PLAINTEXT + TAG_BYTES;
/** Bytes of an AES-GCM nonce. */
export const NONCE_BYTES = 12;
/** Records sealed and written together by one transport write, at most. */
const RECORDS_PER_WRITE = 4;
/**
 * Records decrypting at once, at most: WebCrypto runs each on a thread of its own, and
 * one at a time would leave the reader waiting for every hand-over.
 */
const MAX_RECORDS_AHEAD = 4;
/** Default number of records per direction: the whole 64-bit counter space. */
export const DEFAULT_MAX_RECORDS: bigint = 2n ** 64n - 1n;

/**
 * The nonce of record number `counter`: four zero bytes and the counter as u64be.
 *
 * @example
 * ```ts
 * import { recordNonce } from "./secure_channel.ts";
 * recordNonce(1n); // Uint8Array [0,0,0,0, 0,0,0,0, 0,0,0,1]
 * ```
 */
export function recordNonce(counter: bigint): Uint8Array<ArrayBuffer> {
  const nonce = new Uint8Array(NONCE_BYTES);
  new DataView(nonce.buffer).setBigUint64(4, counter);
  return nonce;
}

/** Options of {@linkcode SecureChannel}. */
export interface SecureChannelOptions {
  /**
   * Records allowed per direction; the counter reaching it ends the channel with `limit`.
   * Default {@linkcode DEFAULT_MAX_RECORDS}; lower it only to test the limit.
   */
  maxRecords?: bigint;
  /**
   * The reader already used on `transport` (by the handshake), so bytes it read ahead
   * are not lost. Default: a new reader.
   */
  reader?: ByteReader;
}

/**
 * An AES-256-GCM record channel over a byte channel.
 *
 * @example
 * ```ts ignore
 * import { SecureChannel } from "./secure_channel.ts";
 * const channel = await SecureChannel.create(conn, sendKey, receiveKey);
 * await channel.writeRecord(new TextEncoder().encode("hi"));
 * const record = await channel.readRecord(); // null at a clean end of stream
 * ```
 */
export class SecureChannel implements ByteChannel {
  readonly #transport: ByteChannel;
  readonly #reader: ByteReader;
  readonly #sendKey: CryptoKey;
  readonly #receiveKey: CryptoKey;
  readonly #maxRecords: bigint;
  #sendCounter = 0n;
  #receiveCounter = 0n;
  /** The counter of the next record to start decrypting (ahead of `#receiveCounter`). */
  #openCounter = 0n;
  /** Records being decrypted, in counter order, not yet returned. */
  #ahead: Promise<ArrayBuffer>[] = [];
  /** The next record being read from the transport (read ahead), or null. */
  #next: Promise<boolean> | null = null;
  #readFailure: PeerError | null = null;
  #current: Uint8Array = new Uint8Array(0);
  #writeChain: Promise<unknown> = Promise.resolve();
  /** Where each record's ciphertext is read before it is decrypted. */
  readonly #ciphertext: Uint8Array = new Uint8Array(MAX_RECORD_CIPHERTEXT);
  /** Where records are laid out for a write (at most {@linkcode RECORDS_PER_WRITE}). */
  #scratch: Uint8Array = new Uint8Array(0);

  private constructor(
    transport: ByteChannel,
    reader: ByteReader,
    sendKey: CryptoKey,
    receiveKey: CryptoKey,
    maxRecords: bigint,
  ) {
    this.#transport = transport;
    this.#reader = reader;
    this.#sendKey = sendKey;
    this.#receiveKey = receiveKey;
    this.#maxRecords = maxRecords;
  }

  /**
   * Creates a channel over `transport` with raw 32-byte AES keys for each direction.
   * The keys are imported as non-extractable and the given bytes are zeroed.
   */
  static async create(
    transport: ByteChannel,
    sendKey: Uint8Array,
    receiveKey: Uint8Array,
    options: SecureChannelOptions = {},
  ): Promise<SecureChannel> {
    const maxRecords = options.maxRecords ?? DEFAULT_MAX_RECORDS;
    if (maxRecords < 1n || maxRecords > DEFAULT_MAX_RECORDS) {
      throw new RangeError(`maxRecords must be from 1 to ${DEFAULT_MAX_RECORDS}`);
    }
    const [send, receive] = await Promise.all([importAesKey(sendKey), importAesKey(receiveKey)]);
    sendKey.fill(0);
    receiveKey.fill(0);
    return new SecureChannel(
      transport,
      options.reader ?? new ByteReader(transport),
      send,
      receive,
      maxRecords,
    );
  }

  /** Records sent so far (the next send counter). */
  get recordsSent(): bigint {
    return this.#sendCounter;
  }

  /** Records received and authenticated so far (the next receive counter). */
  get recordsReceived(): bigint {
    return this.#receiveCounter;
  }

  /**
   * Encrypts and writes one record of at most {@linkcode MAX_RECORD_PLAINTEXT} bytes.
   *
   * @throws {PeerError} `limit` when the send counter is exhausted.
   */
  writeRecord(plaintext: Uint8Array): Promise<void> {
    if (plaintext.length > MAX_RECORD_PLAINTEXT) {
      throw new RangeError(`a record carries at most ${MAX_RECORD_PLAINTEXT} bytes`);
    }
    return this.#serialised(async () => {
      const sealed = this.#seal([plaintext]);
      if (sealed.length === 0) throw this.#limitError();
      await this.#writeRecords(sealed);
    });
  }

  /**
   * Reads, authenticates and decrypts the next record.
   *
   * @returns the plaintext, or `null` when the stream ended cleanly between records.
   * @throws {PeerError} `decrypt_failed`, `bad_record`, `limit` or `connection_lost`.
   */
  async readRecord(): Promise<Uint8Array | null> {
    if (this.#readFailure) throw this.#readFailure;
    try {
      return await this.#readRecord();
    } catch (err) {
      if (err instanceof PeerError) this.#readFailure = err;
      throw err;
    }
  }

  async #readRecord(): Promise<Uint8Array | null> {
    if (this.#ahead.length === 0) {
      // The next record may already be on its way in (read ahead by the last call).
      const next = this.#next ?? this.#readNext();
      this.#next = null;
      if (!await next) return null;
    }
    // While this record is decrypted and used, the next ones are read and decrypted:
    // those whole in the read buffer at once, the one after from the transport. (Only
    // one reads at a time: a read ahead still going, or one that ended the stream or
    // failed, is waited for, or reported, once the records before it are returned.)
    if (this.#next === null) {
      this.#openBuffered();
      if (this.#ahead.length < MAX_RECORDS_AHEAD && this.#openCounter < this.#maxRecords) {
        const next = this.#readNext();
        this.#next = next;
        next.then((more) => {
          if (more && this.#next === next) this.#next = null;
        }, () => {});
      }
    }
    const plaintext = await this.#ahead.shift()!;
    this.#receiveCounter++;
    return new Uint8Array(plaintext);
  }

  /**
   * Reads the next record from the transport and starts decrypting it; false at a clean
   * end of stream. Only one runs at a time, and nothing else reads meanwhile.
   *
   * @throws {PeerError} `bad_record`, `limit` or `connection_lost`.
   */
  async #readNext(): Promise<boolean> {
    const prefix = await this.#reader.readExact(4);
    if (prefix === null) return false;
    const length = new DataView(prefix.buffer).getUint32(0);
    if (length < TAG_BYTES || length > MAX_RECORD_CIPHERTEXT) {
      throw new PeerError(
        "bad_record",
        `encrypted record ${this.#openCounter} announces ${length} bytes; ` +
          `records are ${TAG_BYTES} to ${MAX_RECORD_CIPHERTEXT} bytes`,
      );
    }
    if (this.#openCounter >= this.#maxRecords) {
      throw new PeerError("limit", "the receive counter is exhausted; the session must end");
    }
    // A record already whole in the read buffer is decrypted from there.
    const ciphertext = this.#reader.takeBuffered(length) ??
      await this.#reader.readExact(length, this.#ciphertext);
    if (ciphertext === null) {
      throw new PeerError("connection_lost", "the stream ended after a record's length");
    }
    this.#open(prefix, ciphertext);
    return true;
  }

  /**
   * Starts decrypting the records already whole in the read buffer (up to
   * {@linkcode MAX_RECORDS_AHEAD} in all). A record not whole yet, or a bad one, is left
   * for {@linkcode SecureChannel.#readNext} to read or report.
   */
  #openBuffered(): void {
    while (this.#ahead.length < MAX_RECORDS_AHEAD && this.#openCounter < this.#maxRecords) {
      const length = this.#reader.peekUint32();
      if (length === null || length < TAG_BYTES || length > MAX_RECORD_CIPHERTEXT) return;
      if (this.#reader.bufferedBytes < 4 + length) return;
      const prefix = this.#reader.takeBuffered(4)!;
      this.#open(prefix, this.#reader.takeBuffered(length)!);
    }
  }

  /**
   * Starts decrypting the next record (WebCrypto copies its input at the call: one
   * ciphertext buffer serves every record). Its result is returned only once it has
   * authenticated; a failure fails the channel at that record.
   */
  #open(prefix: Uint8Array, ciphertext: Uint8Array): void {
    const counter = this.#openCounter++;
    const plaintext = crypto.subtle.decrypt(
      {
        name: "AES-GCM",
        iv: recordNonce(counter),
        additionalData: prefix as Uint8Array<ArrayBuffer>,
      },
      this.#receiveKey,
      ciphertext as Uint8Array<ArrayBuffer>,
    ).catch((cause) => {
      throw new PeerError(
        "decrypt_failed",
        `encrypted record ${counter} failed authentication ` +
          `(modified, replayed, dropped or reordered on the way)`,
        { cause },
      );
    });
    plaintext.catch(() => {}); // reported when its turn comes, not before
    this.#ahead.push(plaintext);
  }

  /** Reads decrypted bytes into `p` ({@linkcode ByteChannel} contract). */
  async read(p: Uint8Array): Promise<number | null> {
    while (this.#current.length === 0) {
      const record = await this.readRecord();
      if (record === null) return null;
      this.#current = record;
    }
    const n = Math.min(p.length, this.#current.length);
    p.set(this.#current.subarray(0, n));
    this.#current = this.#current.subarray(n);
    return n;
  }

  /**
   * Encrypts all of `p` (split into records of at most {@linkcode MAX_RECORD_PLAINTEXT})
   * and writes it; resolves to `p.length` ({@linkcode ByteChannel} contract).
   *
   * @throws {PeerError} `limit` when the send counter is exhausted.
   */
  write(p: Uint8Array): Promise<number> {
    const pieces: Uint8Array[] = [];
    for (let offset = 0; offset < p.length; offset += MAX_RECORD_PLAINTEXT) {
      pieces.push(p.subarray(offset, offset + MAX_RECORD_PLAINTEXT));
    }
    return this.#serialised(async () => {
      // Every record of the write starts encrypting at once (WebCrypto runs each on a
      // thread of its own); they are written in order as they are ready.
      const sealed = this.#seal(pieces);
      for (let i = 0; i < sealed.length; i += RECORDS_PER_WRITE) {
        await this.#writeRecords(sealed.slice(i, i + RECORDS_PER_WRITE));
      }
      if (sealed.length < pieces.length) throw this.#limitError();
      return p.length;
    });
  }

  /** Closes the underlying transport. */
  close(): void {
    try {
      this.#transport.close();
    } catch {
      // already closed
    }
  }

  /** Runs writes one after another, so records reach the wire in counter order. */
  #serialised<T>(task: () => Promise<T>): Promise<T> {
    const run = this.#writeChain.then(task, task);
    this.#writeChain = run.catch(() => {});
    return run;
  }

  /**
   * Starts encrypting `pieces`, one record each, as far as the send counter allows
   * (fewer records than pieces: the counter is exhausted). WebCrypto copies its input
   * at the call: the caller may reuse the pieces' memory at once.
   */
  #seal(pieces: Uint8Array[]): { prefix: Uint8Array; ciphertext: Promise<ArrayBuffer> }[] {
    const sealed: { prefix: Uint8Array; ciphertext: Promise<ArrayBuffer> }[] = [];
    for (const piece of pieces) {
      if (this.#sendCounter >= this.#maxRecords) break;
      const counter = this.#sendCounter++;
      const prefix = new Uint8Array(4);
      new DataView(prefix.buffer).setUint32(0, piece.length + TAG_BYTES);
      const ciphertext = crypto.subtle.encrypt(
        { name: "AES-GCM", iv: recordNonce(counter), additionalData: prefix },
        this.#sendKey,
        piece as Uint8Array<ArrayBuffer>,
      );
      ciphertext.catch(() => {}); // reported by the write that awaits it
      sealed.push({ prefix, ciphertext });
    }
    return sealed;
  }

  /**
   * Writes sealed records with one write, through a scratch buffer kept from one write
   * to the next: the transport has taken the bytes once its write resolves, and a new
   * buffer for every write would cost the memory system more than the copy.
   */
  async #writeRecords(
    sealed: { prefix: Uint8Array; ciphertext: Promise<ArrayBuffer> }[],
  ): Promise<void> {
    const records: Uint8Array[] = [];
    let total = 0;
    for (const { prefix, ciphertext } of sealed) {
      const bytes = new Uint8Array(await ciphertext);
      records.push(prefix, bytes);
      total += prefix.length + bytes.length;
    }
    if (this.#scratch.length < total) this.#scratch = new Uint8Array(total);
    const out = this.#scratch.subarray(0, total);
    let offset = 0;
    for (const part of records) {
      out.set(part, offset);
      offset += part.length;
    }
    await this.#writeAll(out);
  }

  #limitError(): PeerError {
    return new PeerError("limit", "the send counter is exhausted; the session must end");
  }

  async #writeAll(bytes: Uint8Array): Promise<void> {
    let offset = 0;
    while (offset < bytes.length) {
      offset += await this.#transport.write(bytes.subarray(offset));
    }
  }
}

async function importAesKey(raw: Uint8Array): Promise<CryptoKey> {
  if (raw.length !== 32) throw new RangeError("AES-256-GCM keys are 32 bytes");
  return await crypto.subtle.importKey(
    "raw",
    new Uint8Array(raw),
    { name: "AES-GCM" },
    false,
    ["encrypt", "decrypt"],
  );
}
