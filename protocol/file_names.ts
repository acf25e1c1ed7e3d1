/**
 * Safe local names for received files.
 *
 * A file's name comes from its sender, who may be hostile: `../../.bashrc`,
 * `/etc/passwd`, `C:\Windows\x.dll`, names with terminal escape sequences, NUL bytes,
 * or ten thousand characters. {@linkcode safeFileName} turns any offered name into a
 * plain name for one file inside the download folder: the last path component only,
 * without `..`, drive letters, control characters, escape sequences, bidirectional
 * controls, characters that Windows refuses, leading dots (no hidden files) or
 * trailing dots and spaces; not a Windows device name; at most
 * {@linkcode MAX_SAFE_NAME_BYTES} bytes of UTF-8, keeping the extension. Never empty.
 *
 * Pure: no I/O. The receiving side joins the result to its download folder, writes a
 * `.part` file ({@linkcode partFileName}) and picks a free final name with
 * {@linkcode numberedFileName} so that nothing is overwritten.
 *
 * @module
 */

/**
 * Longest name the protocol carries, in UTF-16 code units (longer frames are refused).
 * Kept for names stored before {@linkcode MAX_OFFERED_NAME_BYTES}.
 */
export const MAX_OFFERED_NAME_LENGTH = 16 * 1024;
/**
 * Most bytes an offered name may take in JSON (UTF-8, escapes counted: a control
 * character takes 6): a server refuses longer offers, so that every list of offers
 * stays small. File systems keep 255 bytes at most anyway.
 */
export const MAX_OFFERED_NAME_BYTES = 1024;
/** Longest safe name, in bytes of UTF-8 (file systems allow 255). */
export const MAX_SAFE_NAME_BYTES = 200;
/** The name used when nothing usable is left of the offered one. */
export const FALLBACK_FILE_NAME = "file";
/** Longest extension kept apart when a name is shortened, in bytes (with the dot). */
const MAX_EXTENSION_BYTES = 17;

// OSC, DCS, SOS, PM and APC strings (7-bit or 8-bit introducer) up to their terminator.
// deno-lint-ignore no-control-regex
const STRING_SEQUENCE = /(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[\s\S]*?(?:\x07|\x1b\\|\x9c|$)/g;
// CSI: parameters, intermediates, final byte (possibly cut off).
// deno-lint-ignore no-control-regex
const CSI_SEQUENCE = /(?:\x1b\[|\x9b)[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]?/g;
// Any other escape: intermediates and a final byte (possibly cut off).
// deno-lint-ignore no-control-regex
const OTHER_ESCAPE = /\x1b[\x20-\x2f]*[\x30-\x7e]?/g;
// Controls (C0, DEL, C1), format characters (bidirectional controls, zero-width
// characters, BOM), line and paragraph separators, unpaired surrogates.
const INVISIBLE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/gu;
// Characters Windows refuses in names (the separators are handled before).
const WINDOWS_RESERVED_CHARS = /[<>:"|?*]/g;
// Device names Windows maps to devices whatever the extension, and however many spaces
// or dots follow the device's name before it (Windows drops them: `CON .txt` is CON).
const WINDOWS_DEVICE =
  /^(?:con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³]|conin\$|conout\$|clock\$)[ .]*(?:\.|$)/i;

const encoder = new TextEncoder();

/**
 * The safe local name of an offered file name (see the module documentation).
 *
 * @example
 * ```ts
 * import { safeFileName } from "./file_names.ts";
 * safeFileName("../../etc/passwd"); // "passwd"
 * safeFileName("C:\\Users\\x\\report.pdf"); // "report.pdf"
 * safeFileName("\x1b[31mred\x1b[0m.txt"); // "red.txt"
 * safeFileName(".."); // "file"
 * ```
 */
export function safeFileName(offered: string, maxBytes: number = MAX_SAFE_NAME_BYTES): string {
  if (!Number.isInteger(maxBytes) || maxBytes < 16) {
    throw new RangeError("maxBytes must be an integer of at least 16");
  }
  if (isPlainFileName(offered, maxBytes)) return offered;
  // Escape sequences first: their parameters may contain separators or dots.
  let name = offered
    .replace(STRING_SEQUENCE, "")
    .replace(CSI_SEQUENCE, "")
    .replace(OTHER_ESCAPE, "")
    .replace(INVISIBLE, "");
  // Only the last path component, whichever separator the sender's system uses.
  const parts = name.split(/[/\\]+/).filter((part) => part !== "");
  name = parts[parts.length - 1] ?? "";
  // A drive letter (`C:x` is relative to drive C's current folder on Windows).
  name = name.replace(/^[A-Za-z]:/, "");
  name = name.normalize("NFC").replace(WINDOWS_RESERVED_CHARS, "_");
  name = trimName(name);
  if (name === "." || name === "..") name = "";
  if (WINDOWS_DEVICE.test(name)) name = `_${name}`;
  name = fitBytes(name, maxBytes);
  return name === "" ? FALLBACK_FILE_NAME : name;
}

/** Lowercase starts of Windows device names (`con`, `conin$`, `com1`, `lpt1`...). */
const DEVICE_STARTS = ["con", "prn", "aux", "nul", "com", "lpt", "clock"];

/**
 * Whether {@linkcode safeFileName} keeps `name` as it is, told without a regular
 * expression: printable ASCII other than separators and the characters Windows refuses,
 * neither starting nor ending with a dot or a space, not starting like a Windows device
 * name (`con`, `com1`... whatever follows), at most `maxBytes` long. Most offered names
 * are such; the first run of each of `safeFileName`'s regular expressions in a process
 * compiles it (1.5 ms for all of them, between a peer's offer and its accept).
 *
 * @example
 * ```ts
 * import { isPlainFileName } from "./file_names.ts";
 * isPlainFileName("report 2024 (final).pdf"); // true
 * isPlainFileName(".bashrc"); // false: safeFileName drops the leading dot
 * ```
 */
export function isPlainFileName(name: string, maxBytes: number = MAX_SAFE_NAME_BYTES): boolean {
  const last = name.length - 1;
  if (last < 0 || name.length > maxBytes) return false;
  for (let i = 0; i <= last; i++) {
    const c = name.charCodeAt(i);
    if (c < 0x20 || c > 0x7e) return false; // controls, and anything not ASCII
    switch (c) {
      case 0x2f: // /
      case 0x5c: // \
      case 0x3c: // <
      case 0x3e: // >
      case 0x3a: // :
      case 0x22: // "
      case 0x7c: // |
      case 0x3f: // ?
      case 0x2a: // *
        return false;
      case 0x20: // space
      case 0x2e: // .
        if (i === 0 || i === last) return false;
    }
  }
  const lower = name.slice(0, 5).toLowerCase();
  return !DEVICE_STARTS.some((start) => lower.startsWith(start));
}

/**
 * A name's base and extension: `report.tar.gz` → `report.tar` and `.gz`. A name
 * without a dot after its first character, or whose extension is long or holds spaces,
 * has no extension.
 *
 * @example
 * ```ts
 * import { splitExtension } from "./file_names.ts";
 * splitExtension("notes.txt"); // { base: "notes", extension: ".txt" }
 * splitExtension("README"); // { base: "README", extension: "" }
 * ```
 */
export function splitExtension(name: string): { base: string; extension: string } {
  const match = /^(.+?)(\.[^.\s]+)$/.exec(name);
  if (match === null || byteLength(match[2]) > MAX_EXTENSION_BYTES) {
    return { base: name, extension: "" };
  }
  return { base: match[1], extension: match[2] };
}

/**
 * The `n`th alternative of a safe name, for when the name is taken:
 * `report (1).pdf`, `report (2).pdf`, ... still at most `maxBytes` bytes.
 *
 * @example
 * ```ts
 * import { numberedFileName } from "./file_names.ts";
 * numberedFileName("report.pdf", 1); // "report (1).pdf"
 * numberedFileName("README", 2); // "README (2)"
 * ```
 */
export function numberedFileName(
  name: string,
  n: number,
  maxBytes: number = MAX_SAFE_NAME_BYTES,
): string {
  if (n === 0) return name;
  const { base, extension } = splitExtension(name);
  const suffix = ` (${n})${extension}`;
  const room = maxBytes - byteLength(suffix);
  return `${trimName(cutToBytes(base, Math.max(1, room)))}${suffix}`;
}

/**
 * The name of the partial file that a download of `sha256` (hex) to `safeName` writes
 * before the hash is checked: `report.pdf.3f2a9c0d1e2b4f56.part`. The same content
 * offered again finds it and resumes.
 *
 * @example
 * ```ts
 * import { partFileName } from "./file_names.ts";
 * partFileName("a.txt", "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff");
 * // "a.txt.0011223344556677.part"
 * ```
 */
export function partFileName(safeName: string, sha256: string): string {
  return `${safeName}.${sha256.slice(0, 16).toLowerCase()}.part`;
}

/** Bytes of `text` in UTF-8. */
export function byteLength(text: string): number {
  return encoder.encode(text).length;
}

function trimName(name: string): string {
  return name.replace(/^[\s.]+/u, "").replace(/[\s.]+$/u, "");
}

/** Shortens `name` to `maxBytes` of UTF-8, keeping its extension when there is one. */
function fitBytes(name: string, maxBytes: number): string {
  if (byteLength(name) <= maxBytes) return name;
  const { base, extension } = splitExtension(name);
  const room = maxBytes - byteLength(extension);
  const cut = trimName(cutToBytes(base, room));
  return cut === "" ? trimName(cutToBytes(name, maxBytes)) : cut + extension;
}

/** The longest prefix of `text` (whole code points) that fits in `maxBytes` of UTF-8. */
function cutToBytes(text: string, maxBytes: number): string {
  let used = 0;
  let out = "";
  for (const char of text) {
    const cp = char.codePointAt(0)!;
    const size = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    if (used + size > maxBytes) break;
    used += size;
    out += char;
  }
  return out;
}
