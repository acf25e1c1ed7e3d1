/**
 * A one-line progress bar for file transfers on a terminal:
 *
 * ```text
 * report.pdf -> bob [██████████░░░░░░░░░░]  48%  31.0/64.0 MiB  12.3 MiB/s  0:03 left
 * ```
 *
 * Pure: it returns text; the caller draws it (on a terminal only). The offered name is
 * sanitized and shortened to fit.
 *
 * @module
 */

import {
  type FileHashingEvent,
  type FileProgressEvent,
  formatBytes,
} from "../transport/file_transfer_events.ts";
import { sanitize } from "./render.ts";
import { displayWidth } from "./terminal_ui.ts";

/**
 * A duration in seconds as `M:SS` or `H:MM:SS`; `--:--` when unknown.
 *
 * @example
 * ```ts
 * import { formatDuration } from "./progress_bar.ts";
 * formatDuration(75); // "1:15"
 * formatDuration(null); // "--:--"
 * ```
 */
export function formatDuration(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds) || seconds < 0) return "--:--";
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${r}` : `${m}:${r}`;
}

/**
 * The bar for a progress event, at most `columns` wide.
 *
 * @example
 * ```ts
 * import { formatProgressBar } from "./progress_bar.ts";
 * formatProgressBar({
 *   type: "file_progress", file: 1, direction: "send", nick: "bob", name: "a.bin",
 *   bytes: 512, size: 1024, rate: 256, eta: 2,
 * }, 80);
 * // "a.bin -> bob [██████████░░░░░░░░░░]  50%  512 B/1.0 KiB  256 B/s  0:02 left"
 * ```
 *
 * A file being hashed before its offer shows `hashing` in place of the arrow.
 */
export function formatProgressBar(
  event: FileProgressEvent | FileHashingEvent,
  columns: number,
): string {
  const fraction = event.size === 0 ? 1 : Math.min(1, event.bytes / event.size);
  const percent = `${Math.floor(fraction * 100)}%`.padStart(4);
  const numbers = `${formatBytes(event.bytes)}/${formatBytes(event.size)}  ` +
    `${formatBytes(Math.round(event.rate))}/s  ${formatDuration(event.eta)} left`;
  const arrow = event.type === "file_hashing"
    ? `hashing for ${sanitize(event.to)}`
    : event.direction === "send"
    ? `-> ${sanitize(event.nick)}`
    : `<- ${sanitize(event.nick)}`;
  const cells = 20;
  const filled = Math.round(fraction * cells);
  const bar = `[${"█".repeat(filled)}${"░".repeat(cells - filled)}]`;
  const tail = ` ${arrow} ${bar} ${percent}  ${numbers}`;
  const room = Math.max(8, columns - 1 - displayWidth(tail));
  return `${clipToWidth(sanitize(event.name), room)}${tail}`;
}

function clipToWidth(text: string, width: number): string {
  if (displayWidth(text) <= width) return text;
  let out = "";
  for (const char of text) {
    if (displayWidth(out + char) > width - 1) break;
    out += char;
  }
  return `${out}…`;
}

/**
 * A progress bar kept on the last line of a terminal (stderr, say): redrawn in place
 * on every progress event, erased before other output and when the transfer ends.
 * Draws nothing unless `enabled` (give `stream.isTerminal()`).
 *
 * @example
 * ```ts ignore
 * import { ProgressLine } from "./progress_bar.ts";
 * const line = new ProgressLine((s) => Deno.stderr.writeSync(new TextEncoder().encode(s)), true);
 * line.update(progressEvent);
 * line.clear(); // before printing anything else
 * ```
 */
export class ProgressLine {
  readonly #write: (text: string) => void;
  readonly #enabled: boolean;
  readonly #columns: () => number;
  #shown: FileProgressEvent | FileHashingEvent | null = null;

  /** Draws through `write` when `enabled`, fitting `columns()` (default 80). */
  constructor(write: (text: string) => void, enabled: boolean, columns: () => number = () => 80) {
    this.#write = write;
    this.#enabled = enabled;
    this.#columns = columns;
  }

  /** Draws the bar of `event` in place of the one shown. */
  update(event: FileProgressEvent | FileHashingEvent): void {
    if (!this.#enabled) return;
    this.#shown = event;
    this.#write(`\r\x1b[K${formatProgressBar(event, this.#columns())}`);
    if (event.type === "file_hashing" ? event.done : event.bytes >= event.size) this.clear();
  }

  /** Erases the bar (call before other output on the same terminal). */
  clear(): void {
    if (!this.#enabled || this.#shown === null) return;
    this.#shown = null;
    this.#write("\r\x1b[K");
  }

  /** Erases the bar, lets `print` write, and draws the bar again. */
  around(print: () => void): void {
    const shown = this.#shown;
    this.clear();
    print();
    if (shown !== null && shown.bytes < shown.size) this.update(shown);
  }
}

/**
 * A short progress bar for a prompt: `[report.pdf ████░░░░░░ 45% 12.0 MiB/27.0 MiB 8.1 MiB/s 0:03]`.
 *
 * @example
 * ```ts
 * import { formatProgressShort } from "./progress_bar.ts";
 * formatProgressShort({
 *   type: "file_progress", file: 1, direction: "receive", nick: "bob", name: "a.bin",
 *   bytes: 512, size: 1024, rate: 256, eta: 2,
 * }); // "[a.bin █████░░░░░ 50% 512 B/1.0 KiB 256 B/s 0:02]"
 * ```
 */
export function formatProgressShort(event: FileProgressEvent | FileHashingEvent): string {
  const fraction = event.size === 0 ? 1 : Math.min(1, event.bytes / event.size);
  const filled = Math.round(fraction * 10);
  const label = event.type === "file_hashing" ? "hashing " : "";
  return `[${label}${clipToWidth(sanitize(event.name), 16)} ${"█".repeat(filled)}${
    "░".repeat(10 - filled)
  } ` +
    `${Math.floor(fraction * 100)}% ${formatBytes(event.bytes)}/${formatBytes(event.size)} ` +
    `${formatBytes(Math.round(event.rate))}/s ${formatDuration(event.eta)}]`;
}
