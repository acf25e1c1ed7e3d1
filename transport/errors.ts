/**
 * Errors of the framed connection layer, each with a stable `code`.
 *
 * @module
 */

/** Stable codes of {@linkcode TransportError}. */
export type TransportErrorCode = "queue_overflow" | "closed" | "write_stalled";

/** A failure of a framed connection, with a stable {@linkcode TransportErrorCode}. */
export class TransportError extends Error {
  /** The stable, machine-readable reason. */
  readonly code: TransportErrorCode;

  /** Creates an error with a stable code. */
  constructor(code: TransportErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "TransportError";
    this.code = code;
  }
}

/**
 * The outbound queue would pass its byte bound: the peer reads slower than we write.
 * The frame was not queued; the caller decides (the server disconnects the consumer).
 */
export class QueueOverflowError extends TransportError {
  /** Bytes queued when the frame was refused. */
  readonly queuedBytes: number;

  /** Creates the error. */
  constructor(queuedBytes: number, frameBytes: number, maxQueueBytes: number) {
    super(
      "queue_overflow",
      `outbound queue full: ${queuedBytes} bytes queued, ${frameBytes} more would pass the ${maxQueueBytes}-byte bound`,
    );
    this.name = "QueueOverflowError";
    this.queuedBytes = queuedBytes;
  }
}

/** The connection is closed (or closing): nothing more can be sent. */
export class ConnectionClosedError extends TransportError {
  /** Creates the error. */
  constructor(message = "connection is closed", options?: ErrorOptions) {
    super("closed", message, options);
    this.name = "ConnectionClosedError";
  }
}
