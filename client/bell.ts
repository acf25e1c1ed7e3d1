/**
 * When the terminal client rings the bell: a direct message, a private-session
 * message, or a room message or broadcast that mentions your nick — from someone
 * else, never for what you sent yourself.
 *
 * @module
 */

import { nameKey } from "../protocol/names.ts";
import { type DisplayItem, isMention } from "./render.ts";

/** The bell character (BEL), written to the terminal on its own. */
export const BELL = "\x07";

/**
 * Whether showing `item` to `self` should ring the bell.
 *
 * @example
 * ```ts
 * import { ringsBell } from "./bell.ts";
 * ringsBell({ type: "dm", id: 1, ts: 0, from: "bob", to: "alice", text: "hi" }, "alice"); // true
 * ringsBell({ type: "msg", id: 2, ts: 0, from: "bob", room: "lobby", text: "hi all" }, "alice"); // false
 * ringsBell({ type: "msg", id: 3, ts: 0, from: "bob", room: "lobby", text: "alice: lunch?" }, "alice"); // true
 * ```
 */
export function ringsBell(item: DisplayItem, self: string): boolean {
  const fromOther = (from: string) => nameKey(from) !== nameKey(self);
  switch (item.type) {
    case "dm":
    case "private_text":
      return fromOther(item.from);
    case "msg":
    case "broadcast":
      return fromOther(item.from) && isMention(item.text, self);
    default:
      return false;
  }
}
