/**
 * In-memory byte channels for the transport's unit tests.
 *
 * @module
 */

import type { ByteChannel } from "../../transport/outbound_queue.ts";

/**
 * An in-memory channel whose writes wait for `release()`; reads never complete.
 * Records every byte written and whether it was closed.
 */
export function gatedChannel(): ByteChannel & {
  written: Uint8Array[];
  pending: number;
  release(): void;
  closes: number;
} {
  let waiting: (() => void)[] = [];
  const channel = {
    written: [] as Uint8Array[],
    closes: 0,
    get pending() {
      return waiting.length;
    },
    release() {
      const wake = waiting;
      waiting = [];
      for (const w of wake) w();
    },
    read: (_p: Uint8Array) => new Promise<number | null>(() => {}),
    write: (p: Uint8Array) =>
      new Promise<number>((resolve) => {
        waiting.push(() => {
          channel.written.push(p.slice());
          resolve(p.length);
        });
      }),
    close: () => {
      channel.closes++;
    },
  };
  return channel;
}
