/**
 * The interactive terminal of the chat modes: a `node:readline` line editor (history,
 * Tab completion, cursor keys) under a prompt, with incoming lines printed above what is
 * being typed ({@linkcode printAbove}), the bell, and file transfers under way shown in
 * the prompt (`[report.pdf 45% 8.1 MiB/s 0:03] @bob> `).
 *
 * `chat connect` (interactive) and `chat peer` (in a terminal) both draw their session
 * with it, so that they behave the same.
 *
 * @module
 */

import * as readline from "node:readline";
import process from "node:process";
import type { FileHashingEvent, FileProgressEvent } from "../transport/file_transfer_events.ts";
import { BELL } from "./bell.ts";
import { formatProgressShort } from "./progress_bar.ts";
import { displayPosition, printAbove } from "./terminal_ui.ts";

/** Options of {@linkcode InteractivePrompt}. */
export interface InteractivePromptOptions {
  /** The prompt's label, without the `> ` (a room, `@bob`); asked again on each redraw. */
  label: () => string;
  /** Bold label (ANSI). Default false. */
  color?: boolean;
  /** Text shown between the transfers and the label (`[2 pending] `); asked on each redraw. */
  status?: () => string;
  /** Each line entered (Enter). */
  onLine: (line: string) => void;
  /** Ctrl-C, or the end of input (Ctrl-D on an empty line). Called once. */
  onClose: () => void;
  /** Tab completion, as `node:readline` takes it: the candidates and the word completed. */
  completer?: (line: string) => [string[], string];
  /** Alt+1..9 pressed (the digit); nothing is typed then. */
  onAltDigit?: (digit: number) => void;
  /** Lines kept for Up and Down. Default 500. */
  historySize?: number;
  /** Writes bytes to the terminal. Default: to stdout. */
  write?: (text: string) => void;
}

/** A progress event of a file being sent, received or hashed. */
export type ProgressEvent = FileProgressEvent | FileHashingEvent;

/**
 * The prompt and line editor of an interactive session.
 *
 * @example
 * ```ts ignore
 * import { InteractivePrompt } from "./interactive_prompt.ts";
 * const prompt = new InteractivePrompt({
 *   label: () => "@bob",
 *   onLine: (line) => prompt.print(`you typed ${line}`),
 *   onClose: () => prompt.close(),
 * });
 * prompt.start();
 * prompt.print("12:00 <bob> hi"); // above the line being typed
 * ```
 */
export class InteractivePrompt {
  readonly #options: InteractivePromptOptions;
  readonly #rl: readline.Interface;
  readonly #write: (text: string) => void;
  readonly #transfers = new Map<string, ProgressEvent>();
  #closed = false;

  /** Takes over stdin (raw mode) and stdout; call {@linkcode start} to show the prompt. */
  constructor(options: InteractivePromptOptions) {
    this.#options = options;
    this.#write = options.write ?? writeStdout;
    this.#rl = readline.createInterface({
      input: process.stdin,
      output: process.stdout,
      terminal: true,
      historySize: options.historySize ?? 500,
      prompt: this.#promptText(),
      ...(options.completer ? { completer: options.completer } : {}),
    });
    this.#rl.on("line", (line: string) => {
      if (this.#closed) return;
      options.onLine(line);
      if (this.#closed) return; // the line closed the session (/quit)
      this.#rl.setPrompt(this.#promptText());
      this.#rl.prompt();
    });
    if (options.onAltDigit) {
      const onAltDigit = options.onAltDigit;
      const onKey = (_text: string | undefined, key: { meta?: boolean; name?: string }) => {
        if (this.#closed || !key?.meta || !/^[1-9]$/.test(key.name ?? "")) return;
        onAltDigit(Number(key.name));
        this.refresh();
      };
      process.stdin.on("keypress", onKey);
      this.#rl.on("close", () => process.stdin.off("keypress", onKey));
    }
    this.#rl.on("SIGINT", () => this.#end());
    this.#rl.on("close", () => this.#end());
  }

  /** Whether {@linkcode close} ran (or Ctrl-C / end of input closed it). */
  get closed(): boolean {
    return this.#closed;
  }

  /** Shows the prompt. */
  start(): void {
    this.#rl.prompt();
  }

  /**
   * Prints `text` (one or more lines) above the input, which stays as it was; once
   * closed, just prints it.
   */
  print(text: string): void {
    if (this.#closed) {
      this.#write(text.split("\n").join("\r\n") + "\r\n");
      return;
    }
    const editing = this.#rl as unknown as { line: string; cursor: number };
    this.#write(printAbove(text, {
      prompt: this.#rl.getPrompt(),
      line: editing.line,
      cursor: editing.cursor,
      columns: this.#columns(),
    }));
  }

  /**
   * Removes `line`, just entered, from the screen (it is still on the rows above the new
   * prompt), so that it can be shown again formatted (with its time and nick).
   */
  eraseEntered(line: string): void {
    const rows = displayPosition(this.#rl.getPrompt() + line, this.#columns()).rows + 1;
    this.#write(`\x1b[${rows}A\r\x1b[J`);
  }

  /** Rings the terminal's bell. */
  bell(): void {
    this.#write(BELL);
  }

  /** Redraws the prompt if its text changed (the label, transfers under way). */
  refresh(): void {
    const next = this.#promptText();
    if (next !== this.#rl.getPrompt() && !this.#closed) {
      this.#rl.setPrompt(next);
      this.#rl.prompt(true);
    }
  }

  /**
   * Shows a transfer's progress in the prompt, until it is over (or {@linkcode done}).
   * `key` names the transfer (its file number, or the name being hashed).
   */
  progress(key: string, event: ProgressEvent): void {
    const over = event.type === "file_hashing" ? event.done : event.bytes >= event.size;
    if (over) this.#transfers.delete(key);
    else this.#transfers.set(key, event);
    this.refresh();
  }

  /** Removes a transfer from the prompt (it ended). */
  done(key: string): void {
    if (this.#transfers.delete(key)) this.refresh();
  }

  /** Gives the terminal back: the prompt goes, what follows starts on a clean line. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#rl.close();
    this.#write("\r\x1b[K");
  }

  #end(): void {
    if (this.#closed) return;
    this.close();
    this.#options.onClose();
  }

  #promptText(): string {
    const label = this.#options.label();
    const progress = [...this.#transfers.values()].map(formatProgressShort).join(" ");
    return (progress ? `${progress} ` : "") + (this.#options.status?.() ?? "") +
      (this.#options.color ? `\x1b[1m${label}\x1b[22m> ` : `${label}> `);
  }

  #columns(): number {
    return process.stdout.columns || 80;
  }
}

const encoder = new TextEncoder();

function writeStdout(text: string): void {
  let bytes = encoder.encode(text);
  try {
    while (bytes.length > 0) bytes = bytes.subarray(Deno.stdout.writeSync(bytes));
  } catch (err) {
    if (!(err instanceof Deno.errors.BrokenPipe)) throw err;
  }
}
