/**
 * Driving a program in a real pseudo-terminal with tmux: a tmux server of the test's own,
 * `send-keys` to type, `capture-pane` to read the screen, `pipe-pane` files for every byte
 * written. Tests skip themselves when tmux is not installed ({@linkcode TMUX}).
 *
 * @module
 */

import { CONTINUATION_INDENT, displayWidth } from "../../client/terminal_ui.ts";

/** How long each wait for the screen or a file lasts before the test fails. */
export const WAIT_MS = 10_000;

function hasTmux(): boolean {
  try {
    return new Deno.Command("tmux", { args: ["-V"], stdout: "null", stderr: "null" }).outputSync()
      .success;
  } catch {
    return false;
  }
}

/** Whether tmux can run here. */
export const TMUX = Deno.build.os !== "windows" && hasTmux();
if (!TMUX) {
  console.warn(
    "tmux is not installed, so the pseudo-terminal tests are skipped " +
      "(install it, e.g. `apt-get install -y tmux`, to run it)",
  );
}

/** Quotes a word for `sh`. */
export function q(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/** One tmux server of our own (its own socket), driven from the test. */
export class Tmux {
  readonly socket = `chat-tty-${crypto.randomUUID().slice(0, 8)}`;

  async run(...args: string[]): Promise<string> {
    const out = await new Deno.Command("tmux", {
      args: ["-L", this.socket, "-f", "/dev/null", ...args],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    if (!out.success) {
      throw new Error(`tmux ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
    }
    return text;
  }

  /**
   * Starts the test's tmux session with one window `window` of `columns` × `rows` running
   * `command` (a shell command line); `keepPane` keeps the window when the command ends, so
   * that what it printed last can still be read.
   */
  async start(
    window: string,
    command: string,
    size: { columns: number; rows: number; keepPane?: boolean },
  ): Promise<void> {
    const keep = size.keepPane ? [";", "set-option", "-g", "remain-on-exit", "on"] : [];
    await this.run(
      "new-session",
      "-d",
      "-s",
      "t",
      "-n",
      window,
      "-x",
      String(size.columns),
      "-y",
      String(size.rows),
      command,
      ...keep,
    );
  }

  /**
   * The visible screen of a window, one string per row. With `join`, a line broken over
   * several rows is one string again: wrapped by the terminal, or by the client itself
   * (a full row followed by one that starts with {@linkcode CONTINUATION_INDENT}).
   */
  async screen(window: string, join = false): Promise<string[]> {
    // With `join`, trailing spaces are kept (-N) until the rows are joined: a line may
    // have been broken right after a space.
    const flags = join ? ["-J", "-N"] : [];
    const text = await this.run("capture-pane", "-p", ...flags, "-t", `t:${window}`);
    let rows = text.replace(/\n$/, "").split("\n");
    if (join) {
      const width = Number(
        (await this.run("display-message", "-p", "-t", `t:${window}`, "#{pane_width}")).trim(),
      );
      rows = joinContinuations(rows, width);
    }
    rows = rows.map((row) => row.trimEnd());
    while (rows.length > 0 && rows.at(-1) === "") rows.pop();
    return rows;
  }

  /** Waits until the screen satisfies `test`, at most `timeoutMs`; returns it. */
  async waitScreen(
    window: string,
    test: (rows: string[]) => boolean,
    what: string,
    join = true,
    timeoutMs = WAIT_MS,
  ): Promise<string[]> {
    const deadline = Date.now() + timeoutMs;
    let rows: string[] = [];
    while (Date.now() < deadline) {
      rows = await this.screen(window, join);
      if (test(rows)) return rows;
      await new Promise((resolve) => setTimeout(resolve, 40));
    }
    throw new Error(`timed out waiting for ${what} in ${window}'s window:\n${rows.join("\n")}`);
  }

  /** Types `text` literally. */
  async type(window: string, text: string): Promise<void> {
    await this.run("send-keys", "-t", `t:${window}`, "-l", text);
  }

  /** Presses keys by name (`Enter`, `Tab`, `Up`, `C-u`, ...). */
  async press(window: string, ...keys: string[]): Promise<void> {
    await this.run("send-keys", "-t", `t:${window}`, ...keys);
  }

  async kill(): Promise<void> {
    await this.run("kill-server").catch(() => {});
  }
}

/**
 * Joins the rows the client broke a long line into (see `wrapLine` in
 * client/terminal_ui.ts): a row as wide as the screen, then rows that start with the
 * continuation indent.
 */
export function joinContinuations(rows: string[], width: number): string[] {
  const joined: string[] = [];
  let previousFull = false;
  for (const row of rows) {
    if (previousFull && row.startsWith(CONTINUATION_INDENT)) {
      joined[joined.length - 1] += row.slice(CONTINUATION_INDENT.length);
    } else {
      joined.push(row);
    }
    previousFull = displayWidth(row.trimEnd()) >= width - 1 || displayWidth(row) >= width;
  }
  return joined;
}

/** Waits until `file` (the bytes a pane printed) satisfies `test`. */
export async function waitFile(file: string, test: (text: string) => boolean, what: string) {
  const deadline = Date.now() + WAIT_MS;
  let text = "";
  while (Date.now() < deadline) {
    text = await Deno.readTextFile(file).catch(() => "");
    if (test(text)) return text;
    await new Promise((resolve) => setTimeout(resolve, 40));
  }
  throw new Error(`timed out waiting for ${what}; output: ${JSON.stringify(text)}`);
}
