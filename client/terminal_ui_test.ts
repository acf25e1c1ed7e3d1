import assert from "node:assert/strict";
import {
  CONTINUATION_INDENT,
  displayPosition,
  displayWidth,
  printAbove,
  wrapLine,
} from "./terminal_ui.ts";

Deno.test("displayWidth ignores colour sequences and counts wide and zero-width characters", () => {
  assert.equal(displayWidth("hello"), 5);
  assert.equal(displayWidth("\x1b[1m#lobby\x1b[22m> "), 8);
  assert.equal(displayWidth("日本"), 4);
  assert.equal(displayWidth("e\u0301"), 1);
  assert.equal(displayWidth("😀"), 2);
  assert.equal(displayWidth(""), 0);
});

Deno.test("displayPosition wraps at the terminal width like node:readline", () => {
  assert.deepEqual(displayPosition("abc", 10), { rows: 0, cols: 3 });
  assert.deepEqual(displayPosition("a".repeat(10), 10), { rows: 1, cols: 0 });
  assert.deepEqual(displayPosition("a".repeat(25), 10), { rows: 2, cols: 5 });
  // A wide character never straddles the edge.
  assert.deepEqual(displayPosition("a".repeat(9) + "日", 10), { rows: 1, cols: 2 });
});

Deno.test("printAbove: a short input line", () => {
  const out = printAbove("12:00 <bob> hi", { prompt: "> ", line: "hel", cursor: 3, columns: 80 });
  assert.equal(out, "\r\x1b[J12:00 <bob> hi\r\n> hel\r\x1b[5C");
});

Deno.test("printAbove: the cursor in the middle of an input wrapped over three rows", () => {
  // prompt (2) + 25 characters in 10 columns: rows 0..2; cursor after 12 characters
  // sits on row 1, column 4.
  const line = "abcdefghijklmnopqrstuvwxy";
  const out = printAbove("news\nmore news", { prompt: "> ", line, cursor: 12, columns: 10 });
  assert.equal(
    out,
    "\x1b[1A" + // up from the cursor's row to the prompt's row
      "\r\x1b[J" + // column 0, clear everything below
      "news\r\nmore news\r\n" + // the text, line by line
      "> " + line + // prompt and input again (ends on row 2, column 7)
      "\r\x1b[1A" + // back to row 1
      "\x1b[4C", // column 4
  );
});

Deno.test("printAbove: an input that exactly fills its rows forces the wrap", () => {
  const line = "a".repeat(8);
  const out = printAbove("x", { prompt: "> ", line, cursor: 8, columns: 10 });
  // The cursor is at row 1, column 0 (after the full first row).
  assert.equal(out, "\x1b[1A\r\x1b[Jx\r\n> aaaaaaaa \r");
  const atStart = printAbove("x", { prompt: "> ", line, cursor: 0, columns: 10 });
  assert.equal(atStart, "\r\x1b[Jx\r\n> aaaaaaaa \r\x1b[1A\x1b[2C");
});

Deno.test("printAbove with an empty prompt and input", () => {
  assert.equal(
    printAbove("x", { prompt: "", line: "", cursor: 0, columns: 80 }),
    "\r\x1b[Jx\r\n\r",
  );
});

Deno.test("wrapLine continues long lines indented, never at the left edge", () => {
  assert.deepEqual(wrapLine("short", 20), ["short"]);
  const rows = wrapLine("12:00 <eve> " + " ".repeat(8) + "12:00 ! server: x", 20);
  assert.deepEqual(rows, ["12:00 <eve>         ", "      12:00 ! server", "      : x"]);
  for (const row of rows) assert.ok(displayWidth(row) <= 20);
  // Colour sequences take no width; wide characters are not split.
  const coloured = wrapLine("\x1b[31mbob\x1b[39m " + "日".repeat(10), 16);
  assert.deepEqual(coloured.map(displayWidth), [16, 14]);
  assert.ok(coloured[1].startsWith(CONTINUATION_INDENT));
});
