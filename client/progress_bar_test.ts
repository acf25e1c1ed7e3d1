import assert from "node:assert/strict";
import { type FileProgressEvent, formatBytes } from "../transport/file_transfer_events.ts";
import {
  formatDuration,
  formatProgressBar,
  formatProgressShort,
  ProgressLine,
} from "./progress_bar.ts";
import { displayWidth } from "./terminal_ui.ts";

function progress(overrides: Partial<FileProgressEvent> = {}): FileProgressEvent {
  return {
    type: "file_progress",
    file: 3,
    direction: "receive",
    nick: "alice",
    name: "holiday.jpg",
    bytes: 32 * 1024 * 1024,
    size: 64 * 1024 * 1024,
    rate: 8 * 1024 * 1024,
    eta: 4,
    ...overrides,
  };
}

Deno.test("sizes and durations for people", () => {
  assert.equal(formatBytes(0), "0 B");
  assert.equal(formatBytes(1023), "1023 B");
  assert.equal(formatBytes(1536), "1.5 KiB");
  assert.equal(formatBytes(64 * 1024 * 1024), "64.0 MiB");
  assert.equal(formatBytes(3 * 1024 ** 4), "3.0 TiB");
  assert.equal(formatDuration(0), "0:00");
  assert.equal(formatDuration(75.4), "1:15");
  assert.equal(formatDuration(3725), "1:02:05");
  assert.equal(formatDuration(null), "--:--");
  assert.equal(formatDuration(Infinity), "--:--");
});

Deno.test("the bar shows bytes, rate and time left, and fits the width", () => {
  const bar = formatProgressBar(progress(), 100);
  assert.equal(
    bar,
    "holiday.jpg <- alice [██████████░░░░░░░░░░]  50%  32.0 MiB/64.0 MiB  8.0 MiB/s  0:04 left",
  );
  const narrow = formatProgressBar(progress({ name: "x".repeat(200) }), 90);
  assert.ok(displayWidth(narrow) < 90, narrow);
  assert.match(narrow, /^x+… /);
  const hostile = formatProgressBar(
    progress({ name: "\x1b]0;owned\x07a\nb", nick: "m\x1bX" }),
    100,
  );
  assert.ok(!hostile.includes("\x1b") && !hostile.includes("\n"), hostile);
  assert.match(formatProgressBar(progress({ direction: "send", nick: "bob" }), 100), /-> bob/);
  assert.equal(
    formatProgressShort(progress()),
    "[holiday.jpg █████░░░░░ 50% 32.0 MiB/64.0 MiB 8.0 MiB/s 0:04]",
  );
  const hashing = {
    type: "file_hashing",
    to: "bob",
    name: "big.iso",
    bytes: 1024 ** 3,
    size: 4 * 1024 ** 3,
    rate: 512 * 1024 ** 2,
    eta: 6,
    done: false,
  } as const;
  assert.equal(
    formatProgressBar(hashing, 100),
    "big.iso hashing for bob [█████░░░░░░░░░░░░░░░]  25%  1.0 GiB/4.0 GiB  512.0 MiB/s  0:06 left",
  );
  assert.equal(
    formatProgressShort(hashing),
    "[hashing big.iso ███░░░░░░░ 25% 1.0 GiB/4.0 GiB 512.0 MiB/s 0:06]",
  );
});

Deno.test("ProgressLine draws in place, clears, and draws nothing when off", () => {
  const written: string[] = [];
  const line = new ProgressLine((text) => written.push(text), true, () => 100);
  line.update(progress());
  assert.equal(written.length, 1);
  assert.ok(written[0].startsWith("\r\x1b[K holiday.jpg".replace(" ", "")));
  line.around(() => written.push("other output\n"));
  assert.deepEqual(written.slice(1, 3), ["\r\x1b[K", "other output\n"]);
  assert.equal(written.length, 4, "redrawn after the other output");
  line.update(progress({ bytes: 64 * 1024 * 1024, eta: 0 }));
  assert.equal(written.at(-1), "\r\x1b[K", "erased at the end");
  const off: string[] = [];
  const quiet = new ProgressLine((text) => off.push(text), false);
  quiet.update(progress());
  quiet.clear();
  assert.deepEqual(off, []);
});
