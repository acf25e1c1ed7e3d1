/**
 * Waiting for a chat client's events in tests.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { ChatEvent } from "../../client/chat_client.ts";

/**
 * The next event of `events` that matches, within `ms` (the others are consumed).
 *
 * @example
 * ```ts ignore
 * const events = bob.events[Symbol.asyncIterator]();
 * await nextEvent(events, (e) => e.type === "msg" && e.from === "alice");
 * ```
 */
export async function nextEvent(
  events: AsyncIterator<ChatEvent>,
  match: (event: ChatEvent) => boolean,
  ms = 20_000,
): Promise<ChatEvent> {
  const deadline = Date.now() + ms;
  while (true) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const next = await Promise.race([
      events.next(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error("timed out waiting for an event")),
          Math.max(0, deadline - Date.now()),
        );
      }),
    ]).finally(() => clearTimeout(timer));
    assert.ok(!next.done, "events ended");
    if (match(next.value)) return next.value;
  }
}
