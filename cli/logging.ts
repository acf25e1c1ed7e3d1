/**
 * Logging setup for the command line, done once per process with LogTape.
 *
 * Library modules log under categories starting with `"chat"` (e.g. `["chat", "server"]`).
 * Records go to stderr, or appended to a file with `--log-file`, as text or as JSON lines
 * with `--log-json`. Nothing is ever written to stdout, which carries data in `--json` modes.
 *
 * @module
 */

import {
  configure,
  getAnsiColorFormatter,
  getTextFormatter,
  jsonLinesFormatter,
  type LogRecord,
  reset,
  type Sink,
  type TextFormatter,
} from "@logtape/logtape";

/** The levels accepted by `--log-level`. */
export const LOG_LEVELS = ["debug", "info", "warning", "error"] as const;

/** One of {@linkcode LOG_LEVELS}. */
export type CliLogLevel = typeof LOG_LEVELS[number];

/** What `--log-level`, `--log-file` and `--log-json` asked for. */
export interface LoggingOptions {
  /** Lowest level written. */
  level: CliLogLevel;
  /** Append records to this file instead of writing them to stderr. */
  file?: string;
  /** Write JSON lines instead of text. */
  json?: boolean;
}

/** Raised when the log file cannot be opened. */
export class LogFileError extends Error {
  /** Stable error code. */
  readonly code = "log_file";

  /** Creates the error for `path`, with the reason from the operating system. */
  constructor(path: string, reason: string) {
    super(`cannot open log file ${path}: ${reason}`);
    this.name = "LogFileError";
  }
}

let openFile: Deno.FsFile | null = null;
let current: LoggingOptions | null = null;

/**
 * Configures LogTape for the whole process. Calling it again replaces the earlier setup.
 *
 * @example
 * ```ts ignore
 * import { setupLogging } from "./logging.ts";
 * await setupLogging({ level: "debug", json: true });
 * ```
 */
export async function setupLogging(options: LoggingOptions): Promise<void> {
  await resetLogging();
  current = options;
  let target: { writeSync(p: Uint8Array): number };
  let colors = false;
  if (options.file !== undefined) {
    try {
      openFile = await Deno.open(options.file, { append: true, create: true, write: true });
    } catch (err) {
      throw new LogFileError(options.file, openFailure(err));
    }
    target = openFile;
  } else {
    target = Deno.stderr;
    colors = !Deno.noColor && Deno.stderr.isTerminal();
  }
  // "bare" prints string values without quotes, control characters escaped.
  const formatter: TextFormatter = options.json
    ? jsonLinesFormatter
    : colors
    ? getAnsiColorFormatter({ value: "bare" })
    : getTextFormatter({ value: "bare" });
  await configure({
    reset: true,
    sinks: { out: writerSink(target, formatter) },
    loggers: [
      { category: ["chat"], lowestLevel: options.level, sinks: ["out"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["out"] },
    ],
  });
}

/**
 * Sets logging up again as it was, reopening the log file: after a log rotation moved
 * the file away (SIGHUP), new records go to a new file at the same path.
 */
export async function reopenLogging(): Promise<void> {
  if (current !== null) await setupLogging(current);
}

/** Undoes {@linkcode setupLogging}: drops the configuration and closes the log file. */
export async function resetLogging(): Promise<void> {
  await reset();
  if (openFile !== null) {
    try {
      openFile.close();
    } catch {
      // already closed
    }
    openFile = null;
  }
}

function openFailure(err: unknown): string {
  if (err instanceof Deno.errors.NotFound) return "its folder does not exist";
  if (err instanceof Deno.errors.PermissionDenied) return "permission denied";
  if (err instanceof Deno.errors.IsADirectory) return "it is a folder";
  return err instanceof Error ? err.message : String(err);
}

/**
 * A sink writing each formatted record synchronously, so records are never lost when the
 * process exits right after logging and lines from concurrent tasks never interleave.
 */
function writerSink(
  target: { writeSync(p: Uint8Array): number },
  formatter: TextFormatter,
): Sink {
  const encoder = new TextEncoder();
  return (record: LogRecord): void => {
    let bytes = encoder.encode(formatter(record));
    while (bytes.length > 0) {
      const n = target.writeSync(bytes);
      bytes = bytes.subarray(n);
    }
  };
}
