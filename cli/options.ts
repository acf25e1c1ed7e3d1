/**
 * Value parsers for command-line options, shared by every mode. Each one is a commander
 * argument parser: it returns the parsed value or throws `InvalidArgumentError`, which
 * `chat` reports as a usage error (exit code 2).
 *
 * @module
 */

import { InvalidArgumentError } from "commander";

const DIGITS = /^[0-9]+$/;

/**
 * Returns a parser accepting whole decimal numbers from `min` to `max`.
 *
 * @example
 * ```ts
 * import { Command } from "commander";
 * import { integerIn } from "./options.ts";
 * new Command("x").option("--retries <n>", "how often to retry", integerIn(0, 10), 3);
 * ```
 */
export function integerIn(min: number, max: number): (value: string) => number {
  return (value: string): number => {
    const text = value.trim();
    const n = DIGITS.test(text) ? Number(text) : NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`Expected a whole number from ${min} to ${max}.`);
    }
    return n;
  };
}

/** Parses a TCP port, 0 to 65535 (0 picks a free port when listening). */
export const parsePort: (value: string) => number = integerIn(0, 65535);

/**
 * Parses `HOST:PORT` (IPv6 hosts in brackets: `[::1]:44444`).
 *
 * @example
 * ```ts
 * import { parseHostPort } from "./options.ts";
 * parseHostPort("example.org:44444"); // { host: "example.org", port: 44444 }
 * parseHostPort("[::1]:9000"); // { host: "::1", port: 9000 }
 * ```
 */
export function parseHostPort(value: string): { host: string; port: number } {
  const text = value.trim();
  const match = /^\[([^\]]+)\]:([^:]+)$/.exec(text) ?? /^([^:\[\]]+):([^:]+)$/.exec(text);
  if (match === null) {
    throw new InvalidArgumentError("Expected HOST:PORT, e.g. 192.168.1.5:44444 or [::1]:44444.");
  }
  const port = /^[0-9]+$/.test(match[2]!) ? Number(match[2]) : NaN;
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new InvalidArgumentError("Expected HOST:PORT with a port from 1 to 65535.");
  }
  return { host: match[1]!, port };
}
