/**
 * Lines of a byte stream (a child's stdout, stdin): the JSON-line protocols of the bench,
 * the soak test and the tests' child processes all read through this.
 *
 * @module
 */

/**
 * Splits text into lines, without their `\n` (nor a `\r` before it). A last line
 * without a `\n` is kept.
 *
 * @example
 * ```ts
 * import { LineSplitter } from "./lines.ts";
 * const lines = ReadableStream.from(["a\nb", "c\n", "d"]).pipeThrough(new LineSplitter());
 * await Array.fromAsync(lines); // ["a", "bc", "d"]
 * ```
 */
export class LineSplitter extends TransformStream<string, string> {
  /** A splitter with nothing buffered. */
  constructor() {
    let buffered = "";
    super({
      transform(chunk, controller) {
        buffered += chunk;
        let newline: number;
        while ((newline = buffered.indexOf("\n")) >= 0) {
          const end = newline > 0 && buffered[newline - 1] === "\r" ? newline - 1 : newline;
          controller.enqueue(buffered.slice(0, end));
          buffered = buffered.slice(newline + 1);
        }
      },
      flush(controller) {
        if (buffered !== "") controller.enqueue(buffered);
      },
    });
  }
}

/**
 * The lines of a UTF-8 byte stream.
 *
 * @example
 * ```ts ignore
 * import { textLines } from "./lines.ts";
 * for await (const line of textLines(child.stdout)) console.log(JSON.parse(line));
 * ```
 */
export function textLines(bytes: ReadableStream<Uint8Array>): ReadableStream<string> {
  return bytes.pipeThrough(new TextDecoderStream()).pipeThrough(new LineSplitter());
}

/**
 * A function that returns the next line of `bytes` each call, `null` at the end.
 *
 * @example
 * ```ts ignore
 * import { lineReader } from "./lines.ts";
 * const next = lineReader(child.stdout);
 * const first = await next(); // null once the stream ends
 * ```
 */
export function lineReader(bytes: ReadableStream<Uint8Array>): () => Promise<string | null> {
  const reader = textLines(bytes).getReader();
  return async () => {
    const { value, done } = await reader.read();
    return done ? null : value;
  };
}
