/**
 * The encrypted record layer of a peer session: a {@linkcode ByteChannel} whose bytes
 * travel as ChaCha20-Poly1305 records over another byte channel (the TCP connection).
 *
 * ```text
 * record = length:u32be ciphertext[length]    ; 16 <= length <= 1048576 + 16
 * nonce  = iv XOR (0x00000000 || counter:u64be)  ; 12 bytes; counter = record number, from 0
 * aad    = the record's 4 length bytes
 * ciphertext = ChaCha20-Poly1305(key, nonce, aad, plaintext) ; the 16-byte tag last
 * ```
 *
 * Each direction has its own key, IV and counter (peer protocol version 3), so a nonce
 * is never used twice under one key. The receiver decrypts record number n with nonce n:
 * a modified, replayed, dropped or reordered record fails authentication and the channel
 * fails for good with `decrypt_failed`. Nothing is returned from a record before it
 * authenticates. A counter reaching its limit ends the channel with `limit` rather than
 * wrap.
 *
 * Records are sealed and opened synchronously by the process's {@linkcode recordAead}:
 * the system's OpenSSL through FFI when allowed and present (3.7-3.9 GB/s each way on the
 * machine measured), else `node:crypto` (about 1.3 GB/s; WebCrypto's AES-256-GCM of
 * version 2 did 0.26 GB/s and cost 100-150 µs a call on its threads): nothing waits
 * between the bytes arriving and their plaintext, and a record needs no read ahead.
 *
 * @module
 */

import type { ByteChannel } from "../transport/framed_connection.ts";
import { ByteReader } from "./byte_reader.ts";
import { KEY_BYTES } from "./key_schedule.ts";
import { PeerError } from "./errors.ts";
import type { RecordAead, RecordOpener, RecordSealer } from "./record_aead.ts";
import { recordAead } from "./record_aead_choice.ts";

/** Largest plaintext carried by one record: 1 MiB (since peer protocol version 2; 64 KiB in 1). */
export const MAX_RECORD_PLAINTEXT: number = 1024 * 1024;
/** Bytes of the Poly1305 authentication tag at the end of every ciphertext. */
export const TAG_BYTES = 16;
/** Largest ciphertext (the length field's bound), checked before anything is allocated. */
export const MAX_RECORD_CIPHERTEXT: number = MAX_RECORD_PLAINTEXT + TAG_BYTES;
/** Bytes of a ChaCha20-Poly1305 nonce (and of a direction's IV). */
export const NONCE_BYTES = 12;
/** Records up to this size are laid out in a buffer of their own, not the kept one. */
const SMALL_RECORD_BYTES = 64 * 1024;
/**
 * Room before a large record in the kept buffer: a small record sealed just before it
 * (a file chunk's frame header) is copied there and both go out in one write.
 */
const SMALL_RECORD_ROOM = 4 + SMALL_RECORD_BYTES + TAG_BYTES;
/** Bytes of the buffer large records are sealed in: the room, a length, a ciphertext. */
const SEALED_BYTES = SMALL_RECORD_ROOM + 4 + MAX_RECORD_CIPHERTEXT;
/**
 * A written piece of at least this many bytes (a file chunk's body) is sealed in records
 * of its own, never sharing one with the pieces around it: the receiver, reading that
 * body straight into its destination, then gets records it decrypts there, not into a
 * buffer it would copy them out of.
 */
export const OWN_RECORD_BYTES: number = 64 * 1024;
/**
 * Bytes before the bytes of a {@linkcode SecureChannel.sealable} buffer that are the
 * channel's: where a record sealed in place at the buffer's start lays its length out,
 * with a small record sealed just before it (a frame header's) that goes in the same write.
 */
export const SEALABLE_ROOM = 1024;
/** Default number of records per direction: the whole 64-bit counter space. */
export const DEFAULT_MAX_RECORDS: bigint = 2n ** 64n - 1n;

/**
 * The nonce of record number `counter` under a direction's `iv`: the IV XOR four zero
 * bytes and the counter as u64be (as TLS 1.3 builds its nonces).
 *
 * @example
 * ```ts
 * import { recordNonce } from "./secure_channel.ts";
 * recordNonce(new Uint8Array(12), 1n); // Uint8Array [0,0,0,0, 0,0,0,0, 0,0,0,1]
 * ```
 */
export function recordNonce(iv: Uint8Array, counter: bigint): Uint8Array<ArrayBuffer> {
  if (iv.length !== NONCE_BYTES) throw new RangeError(`an IV is ${NONCE_BYTES} bytes`);
  const nonce = new Uint8Array(NONCE_BYTES);
  new DataView(nonce.buffer).setBigUint64(4, counter);
  for (let i = 0; i < NONCE_BYTES; i++) nonce[i] ^= iv[i];
  return nonce;
}

/** The secrets of one direction of a channel. */
export interface RecordKeys {
  /** The ChaCha20-Poly1305 key ({@linkcode KEY_BYTES}). */
  key: Uint8Array;
  /** The IV the record counter is XORed into ({@linkcode NONCE_BYTES}). */
  iv: Uint8Array;
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
  /**
   * The ChaCha20-Poly1305 implementation. Default: the process's ({@linkcode recordAead}:
   * OpenSSL through FFI when allowed and present, else `node:crypto`).
   */
  aead?: RecordAead;
}

/**
 * A ChaCha20-Poly1305 record channel over a byte channel.
 *
 * @example
 * ```ts ignore
 * import { SecureChannel } from "./secure_channel.ts";
 * const channel = SecureChannel.create(conn, { key, iv }, { key: otherKey, iv: otherIv });
 * await channel.writeRecord(new TextEncoder().encode("hi"));
 * const record = await channel.readRecord(); // null at a clean end of stream
 * ```
 */
export class SecureChannel implements ByteChannel {
  readonly #transport: ByteChannel;
  readonly #reader: ByteReader;
  readonly #sealer: RecordSealer;
  readonly #sendIv: Uint8Array;
  readonly #opener: RecordOpener;
  readonly #receiveIv: Uint8Array;
  readonly #maxRecords: bigint;
  #sendCounter = 0n;
  #receiveCounter = 0n;
  #readFailure: PeerError | null = null;
  #current: Uint8Array = new Uint8Array(0);
  #bytesReadCopied = 0;
  #writeChain: Promise<unknown> = Promise.resolve();
  /** Where a record's tag is read when its text is read into its destination. */
  readonly #tag = new Uint8Array(TAG_BYTES);
  /**
   * Where a large record's ciphertext is read when it is not whole in the read buffer and
   * no destination was given for it.
   */
  #ciphertext: Uint8Array | null = null;
  /** Where a large record is decrypted (its plaintext is read from there). */
  #plaintext: Uint8Array | null = null;
  /**
   * Where a large record is sealed and written from, after room for a small record that
   * goes out with it.
   */
  #sealed: Uint8Array | null = null;
  /** The buffers of {@linkcode sealable}: their pieces may be sealed where they lie. */
  readonly #sealable = new WeakSet<ArrayBufferLike>();

  private constructor(
    transport: ByteChannel,
    reader: ByteReader,
    send: RecordKeys,
    receive: RecordKeys,
    maxRecords: bigint,
    aead: RecordAead,
  ) {
    this.#transport = transport;
    this.#reader = reader;
    this.#sealer = aead.sealer(send.key);
    this.#sendIv = send.iv;
    this.#opener = aead.opener(receive.key);
    this.#receiveIv = receive.iv;
    this.#maxRecords = maxRecords;
  }

  /**
   * Creates a channel over `transport` with each direction's 32-byte key and 12-byte IV.
   * The channel keeps copies; the given bytes are zeroed.
   */
  static create(
    transport: ByteChannel,
    send: RecordKeys,
    receive: RecordKeys,
    options: SecureChannelOptions = {},
  ): SecureChannel {
    const maxRecords = options.maxRecords ?? DEFAULT_MAX_RECORDS;
    if (maxRecords < 1n || maxRecords > DEFAULT_MAX_RECORDS) {
      throw new RangeError(`maxRecords must be from 1 to ${DEFAULT_MAX_RECORDS}`);
    }
    for (const { key, iv } of [send, receive]) {
      if (key.length !== KEY_BYTES) throw new RangeError("ChaCha20-Poly1305 keys are 32 bytes");
      if (iv.length !== NONCE_BYTES) throw new RangeError(`record IVs are ${NONCE_BYTES} bytes`);
    }
    const own = ({ key, iv }: RecordKeys): RecordKeys => ({
      key: new Uint8Array(key),
      iv: new Uint8Array(iv),
    });
    const channel = new SecureChannel(
      transport,
      options.reader ?? new ByteReader(transport),
      own(send),
      own(receive),
      maxRecords,
      options.aead ?? recordAead(),
    );
    for (const { key, iv } of [send, receive]) {
      key.fill(0);
      iv.fill(0);
    }
    return channel;
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
   * Bytes read from the transport so far (handshake, record lengths, ciphertexts and
   * tags), counted as they arrive: a large record's bytes count before it is whole.
   */
  get bytesReceived(): number {
    return this.#reader.bytesRead;
  }

  /**
   * Bytes {@linkcode read} handed out from records too large for the read that came for
   * them: decrypted aside, then copied into the reader's buffer (the rest went straight
   * there).
   */
  get bytesReadCopied(): number {
    return this.#bytesReadCopied;
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
      if (this.#sendCounter >= this.#maxRecords) throw this.#limitError();
      await this.#writeAll(this.#seal([plaintext], 0, 0, plaintext.length));
    });
  }

  /**
   * Reads, authenticates and decrypts the next record.
   *
   * @returns the plaintext, or `null` when the stream ended cleanly between records.
   * @throws {PeerError} `decrypt_failed`, `bad_record`, `limit` or `connection_lost`.
   */
  async readRecord(): Promise<Uint8Array | null> {
    const record = await this.#nextRecord(null);
    // A large record's plaintext is a view of a buffer the next record reuses.
    return record !== null && record.buffer === this.#plaintext?.buffer ? record.slice() : record;
  }

  /**
   * The next record's plaintext, possibly a view valid until the next record is read;
   * decrypted into the start of `into` when it fits there.
   */
  async #nextRecord(into: Uint8Array | null): Promise<Uint8Array | null> {
    if (this.#readFailure) throw this.#readFailure;
    try {
      return await this.#readRecord(into);
    } catch (err) {
      if (err instanceof PeerError) this.#readFailure = err;
      throw err;
    }
  }

  async #readRecord(into: Uint8Array | null): Promise<Uint8Array | null> {
    const prefix = this.#reader.takeBuffered(4) ?? await this.#reader.readExact(4);
    if (prefix === null) return null;
    const length = ((prefix[0] << 24) | (prefix[1] << 16) | (prefix[2] << 8) | prefix[3]) >>> 0;
    if (length < TAG_BYTES || length > MAX_RECORD_CIPHERTEXT) {
      throw new PeerError(
        "bad_record",
        `encrypted record ${this.#receiveCounter} announces ${length} bytes; ` +
          `records are ${TAG_BYTES} to ${MAX_RECORD_CIPHERTEXT} bytes`,
      );
    }
    if (this.#receiveCounter >= this.#maxRecords) {
      throw new PeerError("limit", "the receive counter is exhausted; the session must end");
    }
    // The prefix is a view of the read buffer: copied before the reader reads again.
    const aad = Uint8Array.of(prefix[0], prefix[1], prefix[2], prefix[3]);
    const split = length - TAG_BYTES;
    // A record already whole in the read buffer is decrypted from there.
    const buffered = this.#reader.takeBuffered(length);
    if (buffered === null && length > SMALL_RECORD_BYTES && into !== null && into.length >= split) {
      // A large record whose plaintext goes to `into` (a file chunk's payload): its
      // ciphertext is read there and decrypted in place, its tag aside. No buffer between
      // the socket and the payload: one memory pass less, and no megabyte more to fault in.
      const text = await this.#reader.readExact(split, into);
      if (text === null) {
        throw new PeerError("connection_lost", "the stream ended after a record's length");
      }
      const tag = await this.#reader.readExact(TAG_BYTES, this.#tag);
      if (tag === null) {
        throw new PeerError("connection_lost", "the stream ended before a record's tag");
      }
      const plaintext = this.#open(aad, text, tag, into);
      this.#receiveCounter++;
      return plaintext;
    }
    const ciphertext = buffered ??
      await this.#reader.readExact(
        length,
        length > SMALL_RECORD_BYTES
          ? this.#ciphertext ??= new Uint8Array(MAX_RECORD_CIPHERTEXT)
          : undefined,
      );
    if (ciphertext === null) {
      throw new PeerError("connection_lost", "the stream ended after a record's length");
    }
    const plaintext = this.#open(
      aad,
      ciphertext.subarray(0, split),
      ciphertext.subarray(split),
      into,
    );
    this.#receiveCounter++;
    return plaintext;
  }

  /**
   * Decrypts and authenticates one record (synchronously, from where its ciphertext
   * `text` and its `tag` lie), into the start of `into` when it fits there (`text` may
   * be that very place: in place); its plaintext is returned only once the tag has
   * verified (what a failed record left in `into` is never returned: the channel has
   * failed for good).
   */
  #open(
    aad: Uint8Array,
    text: Uint8Array,
    tag: Uint8Array,
    into: Uint8Array | null,
  ): Uint8Array {
    const counter = this.#receiveCounter;
    const split = text.length;
    const plaintext = into !== null && into.length >= split
      ? into.subarray(0, split)
      : split > SMALL_RECORD_BYTES
      ? (this.#plaintext ??= new Uint8Array(MAX_RECORD_PLAINTEXT)).subarray(0, split)
      : new Uint8Array(split);
    let verified: boolean;
    try {
      this.#opener.begin(recordNonce(this.#receiveIv, counter), aad, split);
      this.#opener.update(text, plaintext);
      verified = this.#opener.finish(tag);
    } catch (cause) {
      throw this.#decryptFailed(counter, cause);
    }
    if (!verified) throw this.#decryptFailed(counter);
    return plaintext;
  }

  #decryptFailed(counter: bigint, cause?: unknown): PeerError {
    return new PeerError(
      "decrypt_failed",
      `encrypted record ${counter} failed authentication ` +
        `(modified, replayed, dropped or reordered on the way)`,
      cause === undefined ? undefined : { cause },
    );
  }

  /**
   * Reads decrypted bytes into `p` ({@linkcode ByteChannel} contract). A record that fits
   * in `p` is decrypted there (a frame's body read straight into its payload gets its
   * records so); a larger one is decrypted aside and handed out over several reads.
   */
  async read(p: Uint8Array): Promise<number | null> {
    while (this.#current.length === 0) {
      const record = await this.#nextRecord(p);
      if (record === null) return null;
      if (record.buffer === p.buffer && record.byteOffset === p.byteOffset) {
        if (record.length > 0) return record.length;
        continue;
      }
      this.#current = record;
    }
    const n = Math.min(p.length, this.#current.length);
    this.#bytesReadCopied += n;
    p.set(n === this.#current.length ? this.#current : this.#current.subarray(0, n));
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
    return this.#serialised(async () => {
      await this.#writeStream([p]);
      return p.length;
    });
  }

  /**
   * Encrypts and writes `pieces` as one stream of bytes, as {@linkcode write} would their
   * concatenation: records of up to {@linkcode MAX_RECORD_PLAINTEXT} are sealed across
   * the pieces where they lie, never copied into one buffer first.
   *
   * @throws {PeerError} `limit` when the send counter is exhausted.
   */
  writeMany(pieces: Uint8Array[]): Promise<void> {
    return this.#serialised(() => this.#writeStream(pieces));
  }

  /**
   * A buffer of `length` bytes whose pieces this channel seals where they lie, for bytes
   * laid out only to be written once (a file chunk's frame): no buffer of the channel's
   * to seal them into, no second pass over them. Lay a run of bytes out in it from its
   * start and write it ({@linkcode write}, {@linkcode writeMany}), in one write or in
   * pieces in order. Writing a piece gives up that piece and every byte of the buffer
   * before it. A piece of more than 64 KiB, up to {@linkcode MAX_RECORD_PLAINTEXT}, that
   * is the last of its buffer in its write is encrypted in place: its record's length
   * written over the 4 bytes before it (room kept before the buffer's start,
   * {@linkcode SEALABLE_ROOM}, or bytes of pieces written already), its tag over the 16
   * after it (room kept past the buffer's end: such a piece must end the bytes laid
   * out, as a frame's body does), and a small record sealed just before it copied in
   * front of them (one write for both). Other pieces are sealed as anywhere else. The
   * bytes hold ciphertext once written: lay them out anew before writing them again.
   *
   * @example
   * ```ts ignore
   * const frame = channel.sealable(1024 * 1024);
   * frame.set(header);
   * await file.read(frame.subarray(header.length)); // the file straight into the frame
   * await channel.writeMany([frame.subarray(0, header.length), frame.subarray(header.length)]);
   * ```
   */
  sealable(length: number): Uint8Array<ArrayBuffer> {
    if (!Number.isInteger(length) || length < 0) {
      throw new RangeError("a sealable buffer's length is a non-negative integer");
    }
    const buffer = new ArrayBuffer(SEALABLE_ROOM + length + TAG_BYTES);
    this.#sealable.add(buffer);
    return new Uint8Array(buffer, SEALABLE_ROOM, length);
  }

  /**
   * Bytes of the buffers kept for large records, each allocated at the first record that
   * needs it: none for records read into their destination.
   */
  get keptBytes(): number {
    return (this.#sealed?.length ?? 0) + (this.#ciphertext?.length ?? 0) +
      (this.#plaintext?.length ?? 0);
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
   * Seals `pieces` into records one after another, each written (its pieces sealed
   * synchronously, so the caller may reuse them once this resolves) before the next is
   * sealed: memory stays bounded by one record whatever the write's size. A piece of
   * {@linkcode OWN_RECORD_BYTES} or more gets records of its own; the pieces between
   * such ones share records.
   */
  async #writeStream(pieces: Uint8Array[]): Promise<void> {
    let index = 0;
    let at = 0;
    /** A small record sealed and not yet written. */
    let pending: Uint8Array | null = null;
    while (index < pieces.length) {
      if (pieces[index].length === 0) {
        index++;
        continue;
      }
      if (this.#sendCounter >= this.#maxRecords) throw this.#limitError();
      // A large piece (the rest of it) alone, else the small pieces up to the next large
      // one, as far as a record takes them.
      let length = 0;
      let end = index;
      if (pieces[index].length >= OWN_RECORD_BYTES) {
        length = Math.min(pieces[index].length - at, MAX_RECORD_PLAINTEXT);
      } else {
        while (
          end < pieces.length && pieces[end].length < OWN_RECORD_BYTES &&
          length + pieces[end].length - (end === index ? at : 0) <= MAX_RECORD_PLAINTEXT
        ) {
          length += pieces[end].length - (end === index ? at : 0);
          end++;
        }
      }
      // A large piece of a sealable buffer, whole in one record and the last of its
      // buffer in this write (the bytes after it are the channel's): sealed in place.
      const piece = pieces[index];
      const inPlace = at === 0 && length === piece.length && length > SMALL_RECORD_BYTES &&
        this.#sealable.has(piece.buffer) && piece.byteOffset >= 4 &&
        piece.byteOffset + length + TAG_BYTES <= piece.buffer.byteLength &&
        pieces[index + 1]?.buffer !== piece.buffer;
      let record = inPlace ? this.#sealInPlace(piece) : this.#seal(pieces, index, at, length);
      // Where the record ended in the pieces.
      for (let need = length; need > 0;) {
        const take = Math.min(need, pieces[index].length - at);
        at += take;
        need -= take;
        if (at === pieces[index].length) {
          index++;
          at = 0;
        }
      }
      if (length <= SMALL_RECORD_BYTES) {
        // Held back a moment: a large record after it takes it along in its write.
        if (pending !== null) await this.#writeAll(pending);
        pending = record;
        continue;
      }
      if (pending !== null) {
        // Copied in front of the record (into room kept for it), so both go in one write.
        if (pending.length <= record.byteOffset) {
          const start = record.byteOffset - pending.length;
          record = new Uint8Array(record.buffer, start, pending.length + record.length);
          record.set(pending);
        } else await this.#writeAll(pending);
        pending = null;
      }
      await this.#writeAll(record);
    }
    if (pending !== null) await this.#writeAll(pending);
  }

  /**
   * Seals the record of the `length` bytes of `pieces` from `pieces[index]` at `at` (the
   * send counter's next number), each piece sealed straight into its place, and lays it
   * out whole: length prefix, ciphertext, tag. A large record is laid out in the buffer kept
   * for them: write it before sealing the next.
   */
  #seal(pieces: Uint8Array[], index: number, at: number, length: number): Uint8Array {
    const counter = this.#sendCounter++;
    const total = 4 + length + TAG_BYTES;
    const record = length > SMALL_RECORD_BYTES
      ? (this.#sealed ??= new Uint8Array(SEALED_BYTES))
        .subarray(SMALL_RECORD_ROOM, SMALL_RECORD_ROOM + total)
      : new Uint8Array(total);
    new DataView(record.buffer, record.byteOffset, 4).setUint32(0, length + TAG_BYTES);
    const sealer = this.#sealer;
    sealer.begin(recordNonce(this.#sendIv, counter), record.subarray(0, 4), length);
    let out = 4;
    for (let need = length; need > 0;) {
      const piece = pieces[index];
      const take = Math.min(need, piece.length - at);
      if (take > 0) {
        sealer.update(piece.subarray(at, at + take), record.subarray(out, out + take));
        out += take;
        at += take;
        need -= take;
      }
      if (at === piece.length) {
        index++;
        at = 0;
      }
    }
    sealer.finish(record.subarray(out, out + TAG_BYTES));
    return record;
  }

  /**
   * Seals `piece` (of a {@linkcode sealable} buffer, with room around it) as the next
   * record where it lies: its length written over the 4 bytes before it, its text
   * encrypted in place, its tag written over the 16 bytes after it.
   */
  #sealInPlace(piece: Uint8Array): Uint8Array {
    const counter = this.#sendCounter++;
    const length = piece.length;
    const record = new Uint8Array(piece.buffer, piece.byteOffset - 4, 4 + length + TAG_BYTES);
    new DataView(record.buffer, record.byteOffset, 4).setUint32(0, length + TAG_BYTES);
    const sealer = this.#sealer;
    sealer.begin(recordNonce(this.#sendIv, counter), record.subarray(0, 4), length);
    sealer.update(piece, piece);
    sealer.finish(record.subarray(4 + length));
    return record;
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
