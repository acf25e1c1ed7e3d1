/**
 * What file transfers report, through the server (`client/file_transfer.ts`) or peer to
 * peer (`peer/file_transfer.ts`), and the progress meter behind `file_progress`.
 *
 * Names (`name`) are as the sender offered them: sanitize before printing. Local paths
 * (`path`) are where this side reads or writes.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";

const log = getLogger(["chat", "files"]);

/** A transfer's id: the server's number (`#12`), or the peer session's. */
export type TransferId = number;

/** Which way the bytes go, from this side's point of view. */
export type TransferDirection = "send" | "receive";

/** How far a transfer is: at most a few per second per transfer. */
export interface FileProgressEvent {
  /** Event type. */
  type: "file_progress";
  /** The transfer. */
  file: TransferId;
  /** Sending or receiving. */
  direction: TransferDirection;
  /** The other side. */
  nick: string;
  /** The offered name. */
  name: string;
  /** Bytes done. */
  bytes: number;
  /** Bytes in all. */
  size: number;
  /** Recent rate, bytes per second. */
  rate: number;
  /** Seconds left at that rate; null while unknown. */
  eta: number | null;
}

/**
 * The bytes of a file to send before the offset a transfer resumes at are being hashed
 * (senders hash as they send: the SHA-256 follows the last byte): reported only once hashing has lasted a progress interval, at most a few per second,
 * the last with `done` (when hashing failed, `bytes` is then below `size`: the error is
 * reported apart).
 */
export interface FileHashingEvent {
  /** Event type. */
  type: "file_hashing";
  /** Who it is for: the recipient through the server, or the peer. */
  to: string;
  /** The name to be offered (the last part of the path). */
  name: string;
  /** Bytes hashed. */
  bytes: number;
  /** Bytes in all. */
  size: number;
  /** Recent rate, bytes per second. */
  rate: number;
  /** Seconds left at that rate; null while unknown. */
  eta: number | null;
  /** Whether hashing is over (the last event). */
  done: boolean;
}

/** A file was offered to us (live, or held by the server since we were away). */
export interface FileOfferedEvent {
  /** Event type. */
  type: "file_offered";
  /** The transfer: `/accept #file` or `/decline #file`. */
  file: TransferId;
  /** Who offers it. */
  from: string;
  /** The offered name (unsafe: shown sanitized, saved under a safe name). */
  name: string;
  /** Bytes. */
  size: number;
  /**
   * SHA-256, lowercase hex; absent when the sender hashes while sending (peer to peer):
   * the receiver checks the one sent after the last byte.
   */
  sha256?: string;
  /** Whether it is being accepted automatically (`--accept-files`). */
  auto: boolean;
}

/** We offered a file (sending starts, or resumes at `offset`). */
export interface FileSendingEvent {
  /** Event type. */
  type: "file_sending";
  /** The transfer. */
  file: TransferId;
  /** The recipient. */
  to: string;
  /** The name offered (the last part of the path). */
  name: string;
  /** Bytes. */
  size: number;
  /** SHA-256, lowercase hex; absent when hashed while sending (peer to peer). */
  sha256?: string;
  /** Bytes the other end had already (resuming). */
  offset: number;
}

/** All bytes of a file we send are with the server (or the peer). */
export interface FileSentEvent {
  /** Event type. */
  type: "file_sent";
  /** The transfer. */
  file: TransferId;
  /** The recipient. */
  to: string;
  /** The name offered. */
  name: string;
  /** Bytes. */
  size: number;
  /** Whether the recipient was online (through the server: else it waits for them). */
  online: boolean;
}

/** We accepted a file and are receiving it (possibly resuming at `offset`). */
export interface FileReceivingEvent {
  /** Event type. */
  type: "file_receiving";
  /** The transfer. */
  file: TransferId;
  /** The sender. */
  from: string;
  /** The offered name. */
  name: string;
  /** Bytes. */
  size: number;
  /** The `.part` file written until the SHA-256 is checked. */
  path: string;
  /** Bytes already there from an interrupted transfer. */
  offset: number;
}

/**
 * A received file is saved under `path`: its SHA-256 matched, or (peer to peer, no
 * `sha256`) every byte came authenticated by the session and a resumed prefix matched.
 */
export interface FileSavedEvent {
  /** Event type. */
  type: "file_saved";
  /** The transfer. */
  file: TransferId;
  /** The sender. */
  from: string;
  /** The offered name. */
  name: string;
  /** Bytes. */
  size: number;
  /**
   * SHA-256, checked; absent from a peer session (protocol version 5 on), whose records'
   * AEAD authenticates every byte instead: no whole-file hash was computed.
   */
  sha256?: string;
  /** Where it is saved (inside the download folder). */
  path: string;
}

/** The other side accepted, declined or completed (peer sessions; the server says so itself). */
export interface FilePeerAnswerEvent {
  /** Event type. */
  type: "file_answer";
  /** The transfer. */
  file: TransferId;
  /** The other side. */
  by: string;
  /** The offered name. */
  name: string;
  /**
   * What happened: `accepted`, `declined` or `completed` (saved by the receiver, every
   * byte authenticated by the session on the way).
   */
  answer: "accepted" | "declined" | "completed";
}

/** A transfer failed or was given up; a `.part` file may remain to resume later. */
export interface FileFailedEvent {
  /** Event type. */
  type: "file_failed";
  /** The transfer. */
  file: TransferId;
  /** Sending or receiving. */
  direction: TransferDirection;
  /** The other side. */
  nick: string;
  /** The offered name. */
  name: string;
  /** A stable code (`corrupt`, `file_too_large`, `connection_lost`, `cancelled`...). */
  code: string;
  /** Why, in words. */
  reason: string;
}

/** Everything file transfers report. */
export type FileTransferEvent =
  | FileHashingEvent
  | FileProgressEvent
  | FileOfferedEvent
  | FileSendingEvent
  | FileSentEvent
  | FileReceivingEvent
  | FileSavedEvent
  | FilePeerAnswerEvent
  | FileFailedEvent;

/**
 * A byte count for people, in binary units: `512 B`, `1.5 KiB`, `64.0 MiB`.
 *
 * @example
 * ```ts
 * import { formatBytes } from "./file_transfer_events.ts";
 * formatBytes(1536); // "1.5 KiB"
 * ```
 */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}

/** Default time between two progress events of one transfer: 4 per second at most. */
export const PROGRESS_INTERVAL_MS = 250;

/**
 * Measures a transfer's rate (over a sliding few seconds) and decides when a progress
 * event is due: at most one per `intervalMs`, plus the last one.
 *
 * @example
 * ```ts
 * import { ProgressMeter } from "./file_transfer_events.ts";
 * const meter = new ProgressMeter(1000, 0, 250, 0);
 * meter.update(500, 1000); // { bytes: 500, size: 1000, rate: 500, eta: 1 }
 * meter.update(600, 1100); // null: too soon
 * ```
 */
export class ProgressMeter {
  readonly #size: number;
  readonly #intervalMs: number;
  readonly #samples: { t: number; bytes: number }[] = [];
  #lastEmit = -Infinity;
  #lastBytes = -1;

  /** Starts measuring a transfer of `size` bytes with `start` bytes already done at `now` (ms). */
  constructor(size: number, start: number, intervalMs = PROGRESS_INTERVAL_MS, now = Date.now()) {
    this.#size = size;
    this.#intervalMs = intervalMs;
    this.#samples.push({ t: now, bytes: start });
  }

  /**
   * Records `bytes` done at `now` (ms); returns the progress to report, or null when the
   * last report is too recent (the final byte is always reported).
   */
  update(
    bytes: number,
    now = Date.now(),
  ): { bytes: number; size: number; rate: number; eta: number | null } | null {
    const samples = this.#samples;
    samples.push({ t: now, bytes });
    while (samples.length > 2 && now - samples[1].t > 5000) samples.shift();
    const done = bytes >= this.#size;
    if (!done && now - this.#lastEmit < this.#intervalMs) return null;
    if (bytes === this.#lastBytes) return null;
    this.#lastEmit = now;
    this.#lastBytes = bytes;
    const first = samples[0];
    const seconds = (now - first.t) / 1000;
    const rate = seconds > 0 ? Math.max(0, (bytes - first.bytes) / seconds) : 0;
    const eta = done ? 0 : rate > 0 ? (this.#size - bytes) / rate : null;
    return { bytes, size: this.#size, rate, eta };
  }
}

/**
 * Turns the progress of hashing a file to send into {@linkcode FileHashingEvent}s for
 * `emit`: none while hashing has lasted less than `intervalMs` (most files), then at most
 * one per `intervalMs`, and a last one (`done`) once any was reported: give
 * {@linkcode HashingReporter.progress} to `FileSource.open`, and call
 * {@linkcode HashingReporter.end} when it returns or fails.
 *
 * @example
 * ```ts
 * import { HashingReporter } from "./file_transfer_events.ts";
 * const events: unknown[] = [];
 * const hashing = new HashingReporter("bob", "big.iso", (e) => events.push(e), 250, () => 0);
 * hashing.progress(1024, 4096); // nothing: hashing has not lasted 250 ms yet
 * hashing.end(); // still nothing: nothing was reported
 * ```
 */
export class HashingReporter {
  readonly #to: string;
  readonly #name: string;
  readonly #emit: (event: FileHashingEvent) => void;
  readonly #intervalMs: number;
  readonly #now: () => number;
  readonly #start: number;
  #meter: ProgressMeter | null = null;
  #last: FileHashingEvent | null = null;

  /** Reports the hashing of `name`, to be sent to `to`, through `emit`. */
  constructor(
    to: string,
    name: string,
    emit: (event: FileHashingEvent) => void,
    intervalMs: number = PROGRESS_INTERVAL_MS,
    now: () => number = Date.now,
  ) {
    this.#to = to;
    this.#name = name;
    this.#emit = emit;
    this.#intervalMs = intervalMs;
    this.#now = now;
    this.#start = now();
  }

  /** Bytes hashed so far of `size` (a callback for `FileSource.open`). */
  readonly progress = (bytes: number, size: number): void => {
    if (this.#last?.done) return;
    const t = this.#now();
    if (this.#meter === null) {
      if (t - this.#start < this.#intervalMs) return;
      this.#meter = new ProgressMeter(size, 0, this.#intervalMs, this.#start);
    }
    const progress = this.#meter.update(bytes, t);
    if (progress === null) return;
    this.#report({ ...progress, done: bytes >= size });
  };

  /** Hashing is over, done or failed: the last event, unless none was reported. */
  end(): void {
    const last = this.#last;
    if (last === null || last.done) return;
    this.#report({ bytes: last.bytes, size: last.size, rate: last.rate, eta: null, done: true });
  }

  #report(fields: Omit<FileHashingEvent, "type" | "to" | "name">): void {
    const event: FileHashingEvent = {
      type: "file_hashing",
      to: this.#to,
      name: this.#name,
      ...fields,
    };
    this.#last = event;
    this.#emit(event);
  }
}

/**
 * Where the file transfers of a chat client or a peer session report: their listener,
 * which may throw without breaking a transfer (it is logged), and the progress
 * interval of the meters and hashing reports they make.
 *
 * @example
 * ```ts ignore
 * import { FileEvents } from "./file_transfer_events.ts";
 * const events = new FileEvents((e) => console.log(e));
 * const meter = events.meter(4096, 0);
 * events.progress(meter, 1, "send", "bob", "big.iso", 1024);
 * ```
 */
export class FileEvents {
  readonly #onEvent: (event: FileTransferEvent) => void;
  readonly #intervalMs: number | undefined;

  /** Reports to `onEvent`, progress at most once per `intervalMs` (default 250). */
  constructor(onEvent: (event: FileTransferEvent) => void, intervalMs?: number) {
    this.#onEvent = onEvent;
    this.#intervalMs = intervalMs;
  }

  /** Reports `event`; a listener that throws is logged. */
  emit(event: FileTransferEvent): void {
    try {
      this.#onEvent(event);
    } catch (err) {
      log.error("a file event listener threw: {err}", {
        err: err instanceof Error ? err.message : String(err),
      });
    }
  }

  /** A meter for a transfer of `size` bytes with `start` of them done already. */
  meter(size: number, start: number): ProgressMeter {
    return new ProgressMeter(size, start, this.#intervalMs);
  }

  /** Reports `bytes` done of a transfer, when its meter says a report is due. */
  progress(
    meter: ProgressMeter,
    file: TransferId,
    direction: TransferDirection,
    nick: string,
    name: string,
    bytes: number,
  ): void {
    const progress = meter.update(bytes);
    if (progress !== null) {
      this.emit({ type: "file_progress", file, direction, nick, name, ...progress });
    }
  }

  /** A reporter of the hashing of `name`, to be sent to `to` (see {@linkcode HashingReporter}). */
  hashing(to: string, name: string): HashingReporter {
    return new HashingReporter(to, name, (e) => this.emit(e), this.#intervalMs);
  }
}
