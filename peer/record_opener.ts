/**
 * Opens the large records of a {@linkcode SecureChannel}'s receiving direction on another
 * thread (`record_opener_worker.ts`), so that a file's receiver reads the next record
 * from the socket and writes the last one to disk while one is decrypted: on two cores
 * the decryption, most of a receiver's work, no longer waits for its I/O nor the I/O for
 * it.
 *
 * Both the ciphertext and its destination are views of `SharedArrayBuffer`s: nothing is
 * copied or transferred between the threads, only the record's number and four length
 * bytes. One record at a time; the channel keeps them in order.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";

const log = getLogger(["chat", "peer"]);

/** A failure of the worker itself (not of a record): the channel opens records itself. */
export class RecordOpenerError extends Error {
  /** Stable code. */
  readonly code = "opener_failed";

  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "RecordOpenerError";
  }
}

/** A record that did not authenticate on the worker (the message is the cause's). */
export class RecordAuthError extends Error {
  /** Stable code. */
  readonly code = "decrypt_failed";

  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "RecordAuthError";
  }
}

/**
 * The worker thread opening one direction's records. It starts at once and is
 * {@linkcode ready} once it has the keys (until then the channel opens records itself).
 *
 * @example
 * ```ts ignore
 * import { RecordOpener } from "./record_opener.ts";
 * const opener = new RecordOpener(key, iv);
 * await opener.whenReady();
 * await opener.open(0n, aad, sharedCiphertext, sharedPayload); // rejects unless it authenticates
 * opener.close();
 * ```
 */
export class RecordOpener {
  #worker: Worker | null;
  #ready = false;
  readonly #readiness = Promise.withResolvers<boolean>();
  #reply: PromiseWithResolvers<void> | null = null;
  #opened = 0;

  /** Starts the thread for the direction of `key` and `iv` (copied to it). */
  constructor(key: Uint8Array, iv: Uint8Array) {
    const worker = new Worker(new URL("./record_opener_worker.ts", import.meta.url), {
      type: "module",
    });
    worker.onmessage = (event: MessageEvent) => {
      const data = event.data as { ready?: boolean; ok?: boolean; error?: string };
      if (data.ready) {
        this.#ready = true;
        this.#readiness.resolve(true);
        return;
      }
      const reply = this.#reply;
      this.#reply = null;
      if (data.ok) {
        this.#opened++;
        reply?.resolve();
      } else reply?.reject(new RecordAuthError(data.error ?? "did not authenticate"));
    };
    worker.onerror = (event: ErrorEvent) => {
      event.preventDefault();
      log.warn("the record opening thread failed: {error}", { error: event.message });
      this.#fail(new RecordOpenerError(`the record opening thread failed: ${event.message}`));
    };
    worker.postMessage({ key: new Uint8Array(key), iv: new Uint8Array(iv) });
    this.#worker = worker;
  }

  /** Whether records can be given to it: the thread has the keys and has not failed. */
  get ready(): boolean {
    return this.#ready && this.#worker !== null;
  }

  /** Records it opened (authenticated). */
  get opened(): number {
    return this.#opened;
  }

  /** Resolves once the thread is ready (true), or ended first (false). */
  whenReady(): Promise<boolean> {
    return this.#readiness.promise;
  }

  /**
   * Opens record `counter` (`aad` its length bytes) from `ciphertext` into the start of
   * `into`, both views of SharedArrayBuffers; resolves once it authenticated.
   *
   * @throws {RecordAuthError} when it does not authenticate.
   * @throws {RecordOpenerError} when the thread is gone or fails meanwhile.
   */
  open(counter: bigint, aad: Uint8Array, ciphertext: Uint8Array, into: Uint8Array): Promise<void> {
    if (!this.ready) return Promise.reject(new RecordOpenerError("the record opener is not ready"));
    if (this.#reply !== null) {
      return Promise.reject(new RecordOpenerError("the record opener opens one record at a time"));
    }
    this.#reply = Promise.withResolvers<void>();
    this.#worker!.postMessage({ counter, aad, ciphertext, into });
    return this.#reply.promise;
  }

  /** Ends the thread; a record being opened fails with {@linkcode RecordOpenerError}. */
  close(): void {
    this.#fail(new RecordOpenerError("the record opener is closed"));
  }

  #fail(error: RecordOpenerError): void {
    this.#worker?.terminate();
    this.#worker = null;
    this.#readiness.resolve(false);
    const reply = this.#reply;
    this.#reply = null;
    reply?.reject(error);
  }
}
