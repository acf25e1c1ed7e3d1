import assert from "node:assert/strict";
import {
  byteLength,
  FALLBACK_FILE_NAME,
  isPlainFileName,
  MAX_SAFE_NAME_BYTES,
  numberedFileName,
  partFileName,
  safeFileName,
  splitExtension,
} from "./file_names.ts";

/** What every safe name satisfies, whatever it was made from. */
function assertSafe(name: string): void {
  assert.ok(name.length > 0, "never empty");
  assert.ok(byteLength(name) <= MAX_SAFE_NAME_BYTES, `at most ${MAX_SAFE_NAME_BYTES} bytes`);
  assert.doesNotMatch(name, /[/\\]/, "no separator");
  assert.doesNotMatch(name, /[\p{Cc}\p{Cf}]/u, "no control or format character");
  assert.doesNotMatch(name, /[<>:"|?*]/, "nothing Windows refuses");
  assert.doesNotMatch(name, /^[.\s]|[.\s]$/, "no leading dot, no trailing dot or space");
  assert.notEqual(name, "..");
}

Deno.test("safeFileName keeps ordinary names", () => {
  assert.equal(safeFileName("report.pdf"), "report.pdf");
  assert.equal(safeFileName("notes 2024 (final).tar.gz"), "notes 2024 (final).tar.gz");
  assert.equal(safeFileName("日本語の資料.txt"), "日本語の資料.txt");
  assert.equal(safeFileName("café.txt".normalize("NFD")), "café.txt".normalize("NFC"));
});

Deno.test("safeFileName drops directory parts, .. and absolute paths", () => {
  assert.equal(safeFileName("../../x"), "x");
  assert.equal(safeFileName("/etc/passwd"), "passwd");
  assert.equal(safeFileName("a/b/../../../c.txt"), "c.txt");
  assert.equal(safeFileName("..\\..\\boot.ini"), "boot.ini");
  assert.equal(safeFileName("dir/"), "dir");
  assert.equal(safeFileName(".."), FALLBACK_FILE_NAME);
  assert.equal(safeFileName("../.."), FALLBACK_FILE_NAME);
  assert.equal(safeFileName("."), FALLBACK_FILE_NAME);
  assert.equal(safeFileName("/"), FALLBACK_FILE_NAME);
  assert.equal(safeFileName(""), FALLBACK_FILE_NAME);
  assert.equal(safeFileName(".bashrc"), "bashrc");
  assert.equal(safeFileName("x/..."), FALLBACK_FILE_NAME);
});

Deno.test("safeFileName drops drive letters and what Windows refuses", () => {
  assert.equal(safeFileName("C:\\x"), "x");
  assert.equal(safeFileName("C:x"), "x");
  assert.equal(safeFileName("c:/Windows/system32/evil.dll"), "evil.dll");
  assert.equal(safeFileName("\\\\server\\share\\f.txt"), "f.txt");
  assert.equal(safeFileName('a<b>c:d"e|f?g*h'), "a_b_c_d_e_f_g_h");
  assert.equal(safeFileName("CON"), "_CON");
  assert.equal(safeFileName("nul.txt"), "_nul.txt");
  assert.equal(safeFileName("console.txt"), "console.txt");
  assert.equal(safeFileName("trailing. . "), "trailing");
});

Deno.test("safeFileName removes control characters and escape sequences", () => {
  assert.equal(safeFileName("\x1b[31mred\x1b[0m.txt"), "red.txt");
  assert.equal(safeFileName("\x1b]0;pwned\x07title.txt"), "title.txt");
  assert.equal(safeFileName("\x1b]8;;http://evil/\x1b\\link.txt"), "link.txt");
  assert.equal(safeFileName("a\x00b.txt"), "ab.txt");
  assert.equal(safeFileName("a\nb\rc\td.txt"), "abcd.txt");
  assert.equal(safeFileName("x\u202egpj.exe"), "xgpj.exe");
  assert.equal(safeFileName("\x9b2Jclear.txt"), "clear.txt");
  assert.equal(safeFileName("a\u2028b"), "ab");
  assert.equal(safeFileName("lone\ud800surrogate"), "lonesurrogate");
  assertSafe(safeFileName("\x1b[2J\x1b[H/../\x00\x07"));
});

Deno.test("safeFileName caps the length in UTF-8 bytes and keeps the extension", () => {
  const long = safeFileName("a".repeat(10_000) + ".txt");
  assert.equal(byteLength(long), MAX_SAFE_NAME_BYTES);
  assert.ok(long.endsWith(".txt"));
  const wide = safeFileName("é".repeat(5000) + ".pdf");
  assert.ok(byteLength(wide) <= MAX_SAFE_NAME_BYTES);
  assert.ok(wide.endsWith(".pdf"));
  const emoji = safeFileName("😀".repeat(100));
  assert.ok(byteLength(emoji) <= MAX_SAFE_NAME_BYTES);
  assert.equal([...emoji].every((c) => c === "😀"), true, "no code point cut in half");
  const noExtension = safeFileName("b".repeat(300));
  assert.equal(noExtension, "b".repeat(MAX_SAFE_NAME_BYTES));
  assert.equal(byteLength(safeFileName("x." + "y".repeat(300))), MAX_SAFE_NAME_BYTES);
});

Deno.test("safeFileName makes anything safe", () => {
  const hostile = [
    "../../x",
    "/etc/passwd",
    "C:\\x",
    "\x1b[1;31m\x1b]2;owned\x07evil\x1b[0m",
    "nul\x00byte",
    "z".repeat(10_000),
    "\\\\?\\C:\\x",
    " . .. ... ",
    "\u200b\u200b",
    "a/b\\c:d",
  ];
  for (const name of hostile) assertSafe(safeFileName(name));
  // Every single character, alone and between letters.
  for (let c = 0; c < 0x3000; c++) {
    const ch = String.fromCharCode(c);
    assertSafe(safeFileName(ch));
    assertSafe(safeFileName(`a${ch}b.${ch}x`));
  }
});

Deno.test("splitExtension and numberedFileName", () => {
  assert.deepEqual(splitExtension("a.tar.gz"), { base: "a.tar", extension: ".gz" });
  assert.deepEqual(splitExtension("a"), { base: "a", extension: "" });
  assert.deepEqual(splitExtension("a.b c"), { base: "a.b c", extension: "" });
  assert.equal(numberedFileName("report.pdf", 0), "report.pdf");
  assert.equal(numberedFileName("report.pdf", 1), "report (1).pdf");
  assert.equal(numberedFileName("README", 12), "README (12)");
  const long = safeFileName("q".repeat(500) + ".txt");
  const numbered = numberedFileName(long, 3);
  assert.ok(byteLength(numbered) <= MAX_SAFE_NAME_BYTES);
  assert.ok(numbered.endsWith(" (3).txt"));
});

Deno.test("partFileName names the partial file after the content", () => {
  const sha = "ABCDEF0123456789".repeat(4);
  assert.equal(partFileName("x.bin", sha), "x.bin.abcdef0123456789.part");
  assert.ok(byteLength(partFileName(safeFileName("w".repeat(999)), sha)) <= 255);
});

Deno.test("safeFileName never gives a Windows device name, with spaces or $ devices", () => {
  for (
    const name of [
      "CON .txt",
      "con  .tar.gz",
      "NUL . .txt",
      "conin$",
      "CONOUT$.log",
      "clock$",
      "COM1 .txt",
      "lpt¹.txt",
    ]
  ) {
    const safe = safeFileName(name);
    assert.ok(safe.startsWith("_"), `${name} -> ${safe}`);
    assertSafe(safe);
  }
  assert.equal(safeFileName("CON .txt"), "_CON .txt");
  assert.equal(safeFileName("conin$"), "_conin$");
  assert.equal(safeFileName("console .txt"), "console .txt");
  assert.equal(safeFileName("coin$.txt"), "coin$.txt");
});

Deno.test("isPlainFileName: ordinary names are plain, and safeFileName keeps them as the full cleaning would", () => {
  for (const name of ["report.pdf", "notes 2024 (final).tar.gz", "IMG_0001 [2]~'#$%&+,;=@!.jpg"]) {
    assert.ok(isPlainFileName(name), name);
  }
  for (
    const name of [
      "",
      ".bashrc",
      "x.",
      " x",
      "x ",
      "a/b",
      "a\\b",
      "C:x",
      "a?b",
      "café.txt",
      "a\tb",
      "con.txt",
      "COM1",
      "Clock$",
      "x".repeat(MAX_SAFE_NAME_BYTES + 1),
    ]
  ) {
    assert.ok(!isPlainFileName(name), JSON.stringify(name));
  }
  assert.ok(isPlainFileName("x".repeat(MAX_SAFE_NAME_BYTES)));
  assert.ok(!isPlainFileName("x".repeat(17), 16));
  // A CSI sequence in front is removed before anything else: safeFileName of it runs
  // the full cleaning of the rest, which must give what the plain path gives.
  const full = (name: string, maxBytes?: number) => safeFileName(`\x1b[0m${name}`, maxBytes);
  const alphabet = 'ab.. //\\:<>"|?*conCOMlpt1$-_()\t\u00e9\u200bK';
  let seed = 1;
  const random = () => (seed = (seed * 48271) % 0x7fffffff) / 0x7fffffff;
  let plain = 0;
  for (let i = 0; i < 20_000; i++) {
    const length = Math.floor(random() * 24);
    let name = "";
    for (let j = 0; j < length; j++) name += alphabet[Math.floor(random() * alphabet.length)];
    const maxBytes = random() < 0.5 ? 16 : MAX_SAFE_NAME_BYTES;
    assert.equal(safeFileName(name, maxBytes), full(name, maxBytes), JSON.stringify(name));
    if (isPlainFileName(name, maxBytes)) {
      plain++;
      assert.equal(full(name, maxBytes), name, JSON.stringify(name));
    }
  }
  assert.ok(plain > 100, `${plain} plain names among the random ones`);
});
