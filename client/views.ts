/**
 * Views of the interactive client, as in IRC clients: one per joined room (`#dev`) and
 * one per direct conversation opened with `/query` or `/window @nick` (`@bob`). Lines of
 * the current view are printed; lines of another view are kept (the last
 * {@linkcode VIEW_LINES_KEPT}) and counted as unread, shown in the prompt
 * (`[#dev 3 @bob 1!] #lobby> `, `!` marking a mention or a direct message), until
 * `/window` switches to that view and shows them.
 *
 * A direct message from someone with no view open is printed where the user is (so is
 * everything that belongs to no room or conversation: replies, presence, files).
 *
 * @module
 */

import { nameKey } from "../protocol/names.ts";
import { ChatError } from "./chat_error.ts";
import { type DisplayItem, isMention } from "./render.ts";
import type { SessionState } from "./session_state.ts";

/** How many lines each view keeps. */
export const VIEW_LINES_KEPT = 500;

interface View {
  label: string;
  lines: string[];
  unread: number;
  marked: boolean;
  /** Ids of the direct messages counted unread (marked read when shown). */
  dmIds: number[];
}

/** What {@linkcode Views.switchTo} gives: the view now current and its kept lines. */
export interface SwitchedView {
  /** `#room` or `@nick`. */
  readonly label: string;
  /** Its kept lines (the last `limit`), oldest first. */
  readonly lines: readonly string[];
  /** How many of them were unread. */
  readonly unread: number;
  /** The ids of the direct messages among them that were unread: now read. */
  readonly dmIds: readonly number[];
}

/**
 * The label of the view an item belongs to (`#room`, `@nick`), or null when it
 * belongs to whichever view is current.
 */
export function viewOf(item: DisplayItem, self: string): string | null {
  switch (item.type) {
    case "msg":
    case "member":
    case "topic":
      return `#${item.room}`;
    case "dm":
      return `@${nameKey(item.from) === nameKey(self) ? item.to : item.from}`;
    default:
      return null;
  }
}

/** Who caused an item that belongs to a view. */
function byWhom(item: DisplayItem): string {
  switch (item.type) {
    case "msg":
    case "dm":
      return item.from;
    case "member":
      return item.nick;
    case "topic":
      return item.by;
    default:
      return "";
  }
}

/**
 * The views of one session; the current view is the session's target
 * ({@linkcode SessionState.label}).
 *
 * @example
 * ```ts
 * import { SessionState } from "./session_state.ts";
 * import { Views } from "./views.ts";
 * const state = new SessionState("alice", "lobby", ["dev"]);
 * const views = new Views(state);
 * const item = { type: "msg", id: 1, room: "dev", from: "bob", text: "hi", ts: 0 } as const;
 * views.accept(item, ["12:00 [dev] <bob> hi"]); // false: kept, not printed
 * views.status(); // "[#dev 1] "
 * views.switchTo("dev").lines; // ["12:00 [dev] <bob> hi"]
 * ```
 */
export class Views {
  readonly #state: SessionState;
  readonly #views = new Map<string, View>();
  readonly #limit: number;

  /** Views of `state`'s session, keeping `limit` lines each. */
  constructor(state: SessionState, limit = VIEW_LINES_KEPT) {
    this.#state = state;
    this.#limit = limit;
  }

  /**
   * Keeps `lines` (the item formatted) in the item's view; true when they are to be
   * printed now (the item's view is current, it has none, or it is from us), false when
   * they were only kept and counted.
   */
  accept(item: DisplayItem, lines: readonly string[]): boolean {
    const label = viewOf(item, this.#state.self);
    this.#openCurrent();
    if (label === null || !this.#isView(label)) return true;
    const view = this.#view(label);
    view.lines.push(...lines);
    if (view.lines.length > this.#limit) view.lines.splice(0, view.lines.length - this.#limit);
    if (nameKey(label) === nameKey(this.#state.label)) return true;
    if (nameKey(byWhom(item)) === nameKey(this.#state.self)) return true; // ours: shown
    if (item.type !== "msg" && item.type !== "dm") return false; // joins, topics: kept only
    if (lines.length === 0) return false;
    view.unread++;
    if (item.type === "dm") view.dmIds.push(item.id);
    if (item.type === "dm" || isMention(item.text, this.#state.self)) view.marked = true;
    return false;
  }

  /**
   * The unread counts for the prompt, `[#dev 3 @bob 1!] `, or empty when nothing is
   * unread. The current view's count is cleared (it is on screen).
   */
  status(): string {
    this.#openCurrent();
    const current = this.#views.get(nameKey(this.#state.label));
    if (current !== undefined) {
      current.unread = 0;
      current.marked = false;
      current.dmIds = [];
    }
    const parts = [...this.#views.values()]
      .filter((v) => v.unread > 0)
      .map((v) => `${v.label} ${v.unread}${v.marked ? "!" : ""}`);
    return parts.length > 0 ? `[${parts.join(" ")}] ` : "";
  }

  /** Every view, numbered, the current one marked with `*`, with its unread count. */
  list(): string[] {
    return this.#labels().map((label, i) => {
      const view = this.#views.get(nameKey(label));
      const unread = view?.unread ?? 0;
      const current = nameKey(label) === nameKey(this.#state.label) ? " *" : "";
      return `${i + 1}. ${label}${current}${
        unread > 0 ? ` (${unread} unread${view?.marked ? ", for you" : ""})` : ""
      }`;
    });
  }

  /**
   * Makes `name` (`#room`, `@nick`, a bare name or a number from {@linkcode list}) the
   * current view, and gives its last `limit` kept lines; its unread count is cleared.
   * Throws {@linkcode ChatError} `usage` when there is no such view.
   */
  switchTo(name: string, limit = this.#limit): SwitchedView {
    const label = this.#resolve(name);
    if (label === null) {
      throw new ChatError(
        "usage",
        `no view ${name}: the views are ${this.#labels().join(", ") || "none"}`,
      );
    }
    if (label.startsWith("@")) {
      this.#state.query = label.slice(1);
    } else {
      this.#state.query = null;
      this.#state.room = label.slice(1);
    }
    const view = this.#view(label);
    const { unread, dmIds } = view;
    view.unread = 0;
    view.marked = false;
    view.dmIds = [];
    return { label: view.label, lines: view.lines.slice(-limit), unread, dmIds };
  }

  #resolve(name: string): string | null {
    const labels = this.#labels();
    if (/^[1-9][0-9]*$/.test(name)) return labels[Number(name) - 1] ?? null;
    const exact = labels.find((l) => nameKey(l) === nameKey(name));
    if (exact !== undefined) return exact;
    const bare = labels.filter((l) => nameKey(l.slice(1)) === nameKey(name));
    // A bare name that is both a room and a nick: the room (`@` names the nick).
    return bare.find((l) => l.startsWith("#")) ?? bare[0] ?? null;
  }

  /** The views: joined rooms, then the conversations opened, in the order first seen. */
  #labels(): string[] {
    this.#openCurrent();
    const labels = new Map<string, string>();
    for (const room of this.#state.joinedRooms) labels.set(nameKey(`#${room}`), `#${room}`);
    for (const [key, view] of this.#views) {
      if (view.label.startsWith("@")) labels.set(key, view.label);
    }
    return [...labels.values()];
  }

  #isView(label: string): boolean {
    if (label.startsWith("#")) return this.#state.isJoined(label.slice(1));
    return this.#views.has(nameKey(label));
  }

  /** The current conversation (`/query`) is a view from then on. */
  #openCurrent(): void {
    const label = this.#state.label;
    if (label.startsWith("@")) this.#view(label);
  }

  #view(label: string): View {
    const key = nameKey(label);
    let view = this.#views.get(key);
    if (view === undefined) {
      view = { label, lines: [], unread: 0, marked: false, dmIds: [] };
      this.#views.set(key, view);
    }
    return view;
  }
}
