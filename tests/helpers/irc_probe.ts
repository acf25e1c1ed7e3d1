/**
 * A raw IRC client for tests: sends lines, buffers every line received (parsed), and
 * lets a test expect the next line matching a pattern, with a deadline.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { ChatServer } from "../../server/server.ts";
import { testServer } from "./harness.ts";
import { IrcLineSplitter, type IrcMessage, parseIrcLine } from "../../protocol/irc_line.ts";

/** The port of `server`'s IRC listener (asserting it is on). */
export function ircPort(server: ChatServer): number {
  assert.ok(server.ircAddr !== null, "the IRC listener is off");
  return server.ircAddr.port;
}

/** A test server with the IRC listener on (an ephemeral port), with `overrides`. */
export function ircServer(overrides: Parameters<typeof testServer>[0] = {}): Promise<ChatServer> {
  return testServer({ ircPort: 0, ...overrides });
}

/** How long a test waits for one expected line. */
export const IRC_WAIT_MS = 10_000;

/** A raw IRC connection. */
export class IrcProbe implements AsyncDisposable {
  readonly conn: Deno.Conn;
  /** Lines received and not yet taken by {@linkcode expect}. */
  readonly pending: IrcMessage[] = [];
  /** Every line received, raw. */
  readonly raw: string[] = [];
  #waiter: (() => void) | null = null;
  #ended = false;
  readonly reader: Promise<void>;

  private constructor(conn: Deno.Conn) {
    this.conn = conn;
    this.reader = this.#read();
  }

  /** Connects to `port` on 127.0.0.1. */
  static async dial(port: number): Promise<IrcProbe> {
    return new IrcProbe(await Deno.connect({ hostname: "127.0.0.1", port }));
  }

  /** Connects over TLS to `port` on 127.0.0.1, trusting `caCerts`. */
  static async dialTls(port: number, caCerts: string[]): Promise<IrcProbe> {
    return new IrcProbe(await Deno.connectTls({ hostname: "127.0.0.1", port, caCerts }));
  }

  /** Dials and registers (PASS, NICK, USER); waits for 001. */
  static async register(port: number, nick: string, password = "password123"): Promise<IrcProbe> {
    const probe = await IrcProbe.dial(port);
    const pass = password === "" ? [] : [`PASS ${password}`];
    await probe.send(...pass, `NICK ${nick}`, `USER ${nick} 0 * :${nick}`);
    await probe.expect((m) => m.command === "001");
    return probe;
  }

  /** Whether the server closed the connection. */
  get ended(): boolean {
    return this.#ended;
  }

  /** Sends lines, each with CR LF. */
  async send(...lines: string[]): Promise<void> {
    await this.sendRaw(new TextEncoder().encode(lines.map((l) => l + "\r\n").join("")));
  }

  /** Sends bytes as they are. */
  async sendRaw(bytes: Uint8Array): Promise<void> {
    let at = 0;
    while (at < bytes.length) at += await this.conn.write(bytes.subarray(at));
  }

  /**
   * Takes and returns the first line received (now or within `ms`) that matches;
   * lines before it stay pending.
   */
  async expect(match: (m: IrcMessage) => boolean, ms = IRC_WAIT_MS): Promise<IrcMessage> {
    const deadline = Date.now() + ms;
    while (true) {
      const at = this.pending.findIndex(match);
      if (at >= 0) return this.pending.splice(at, 1)[0];
      if (this.#ended) throw new Error(`connection ended; received:\n${this.raw.join("\n")}`);
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(`no matching line in ${ms} ms; received:\n${this.raw.join("\n")}`);
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#waiter = resolve;
        timer = setTimeout(resolve, left);
      });
      clearTimeout(timer);
    }
  }

  /** Expects a line with `command` (and params starting with `params`, when given). */
  expectCommand(command: string, ...params: string[]): Promise<IrcMessage> {
    return this.expect((m) => m.command === command && params.every((p, i) => m.params[i] === p));
  }

  /** Resolves once the server has closed the connection (within `ms`). */
  async closed(ms = IRC_WAIT_MS): Promise<void> {
    const deadline = Date.now() + ms;
    while (!this.#ended) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error("the server did not close the connection");
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#waiter = resolve;
        timer = setTimeout(resolve, left);
      });
      clearTimeout(timer);
    }
  }

  async #read(): Promise<void> {
    const splitter = new IrcLineSplitter();
    const buffer = new Uint8Array(16 * 1024);
    try {
      while (true) {
        const n = await this.conn.read(buffer);
        if (n === null) break;
        for (const line of splitter.push(buffer.subarray(0, n))) {
          if (!line.ok) throw new Error(`bad line from the server: ${line.message}`);
          this.raw.push(line.line);
          this.pending.push(parseIrcLine(line.line));
        }
        this.#wake();
      }
    } catch {
      // reset or closed
    } finally {
      this.#ended = true;
      this.#wake();
    }
  }

  #wake(): void {
    const waiter = this.#waiter;
    this.#waiter = null;
    waiter?.();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    try {
      this.conn.close();
    } catch {
      // already closed
    }
    await this.reader;
  }
}
