/**
 * The local log of `chat connect --log-dir DIR`: every room message and direct message
 * shown (received, and your own once the server stored them) appended as one text line
 * to one file per room (`#lobby.log`) or conversation (`@bob.log`), as IRC clients keep
 * their logs. History asked for with `/join` or `/history` is not logged again.
 *
 * @module
 */

import { nameKey } from "../protocol/names.ts";
import type { ChatMessage } from "../protocol/messages.ts";
import { type DisplayItem, sanitize } from "./render.ts";

/** How many message ids are remembered to log each message once (a resend, a replay). */
const REMEMBERED_IDS = 10_000;

/**
 * Appends what {@linkcode LocalLog.record} is given to the files of a folder.
 *
 * @example
 * ```ts ignore
 * import { LocalLog } from "./local_log.ts";
 * await LocalLog.prepare("/home/ada/chat-logs");
 * const log = new LocalLog("/home/ada/chat-logs", "ada", console.error);
 * log.record({ type: "msg", id: 1, ts: Date.now(), from: "bob", room: "lobby", text: "hi" });
 * // appends "2026-12-05 09:05:00 <bob> hi" to /home/ada/chat-logs/#lobby.log
 * ```
 */
export class LocalLog {
  readonly #dir: string;
  readonly #self: string;
  readonly #onError: (text: string) => void;
  readonly #logged = new Set<number>();
  #failed = false;

  /**
   * Logs into `dir` (see {@linkcode LocalLog.prepare}) for the user `self`. `onError`
   * hears of the first file that could not be written (once: a full disk is not worth a
   * line per message).
   */
  constructor(dir: string, self: string, onError: (text: string) => void) {
    this.#dir = dir;
    this.#self = nameKey(self);
    this.#onError = onError;
  }

  /**
   * Creates the folder (`0700`: direct messages are private) if need be, before the
   * client connects: a folder that cannot be made is an error at once.
   */
  static async prepare(dir: string): Promise<void> {
    try {
      await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
    } catch (err) {
      throw new Error(`cannot create the log folder ${dir}: ${reason(err)}`, { cause: err });
    }
  }

  /** Appends the message `item` carries, if any, to its room's or conversation's file. */
  record(item: DisplayItem): void {
    const message = messageOf(item);
    if (message === null || this.#logged.has(message.id)) return;
    this.#logged.add(message.id);
    if (this.#logged.size > REMEMBERED_IDS) {
      this.#logged.delete(this.#logged.values().next().value!);
    }
    const path = `${this.#dir}/${this.fileName(message)}`;
    const line = `${stamp(message.ts)} <${sanitize(message.from)}> ${sanitize(message.text)}\n`;
    try {
      Deno.writeTextFileSync(path, line, { append: true, mode: 0o600 });
    } catch (err) {
      if (this.#failed) return;
      this.#failed = true;
      this.#onError(`local log: cannot write ${path}: ${reason(err)}`);
    }
  }

  /**
   * The file of a message: `#ROOM.log`, or `@NICK.log` for a conversation with NICK
   * (names in lower case; a name has no `/`, see `NAME_PATTERN`).
   */
  fileName(message: ChatMessage): string {
    if (message.type === "msg") return `#${nameKey(message.room)}.log`;
    const other = nameKey(message.from) === this.#self ? message.to : message.from;
    return `@${nameKey(other)}.log`;
  }
}

/** The message an item shows: one received, or one of ours the server stored. */
function messageOf(item: DisplayItem): ChatMessage | null {
  if (item.type === "msg" || item.type === "dm") return item;
  if (item.type === "reply" && (item.request === "say" || item.request === "dm")) {
    return item.data.msg;
  }
  return null;
}

/** `YYYY-MM-DD HH:MM:SS` in local time. */
function stamp(ts: number): string {
  const d = new Date(ts);
  const two = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ` +
    `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}

function reason(err: unknown): string {
  if (err instanceof Deno.errors.PermissionDenied) return "permission denied";
  if (err instanceof Deno.errors.NotFound) return "no such folder";
  return err instanceof Error ? err.message : String(err);
}
