/**
 * Parsing the accounts file given to `chat serve --credentials FILE`.
 *
 * One account per line: `username password`, separated by spaces or tabs. Blank lines and
 * lines starting with `#` are ignored. Usernames follow the nick rules and must be unique
 * (case-insensitively).
 *
 * @module
 */

import { nameKey, nameProblem } from "../protocol/names.ts";

/** One account from the credentials file. */
export interface Credential {
  /** The nick, as written. */
  nick: string;
  /** The password, as written. */
  password: string;
}

/** A line of the credentials file that cannot be used. */
export class CredentialsError extends Error {
  /** Stable error code. */
  readonly code = "bad_credentials";
  /** 1-based number of the offending line. */
  readonly line: number;

  /** Creates the error for line `line` of `source`. */
  constructor(source: string, line: number, reason: string) {
    super(`${source} line ${line}: ${reason}`);
    this.name = "CredentialsError";
    this.line = line;
  }
}

/**
 * Parses the text of a credentials file. `source` names the file in error messages.
 *
 * @example
 * ```ts
 * import { parseCredentials } from "./credentials.ts";
 * parseCredentials("# accounts\nalice s3cret-pw\n\nbob hunter2hunter2\n");
 * // [{ nick: "alice", password: "s3cret-pw" }, { nick: "bob", password: "hunter2hunter2" }]
 * ```
 *
 * @throws {CredentialsError} naming the first bad line.
 */
export function parseCredentials(text: string, source = "credentials"): Credential[] {
  const accounts: Credential[] = [];
  const seen = new Map<string, number>();
  const lines = text.replace(/^\uFEFF/, "").split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const line = lines[i]!.trim();
    if (line === "" || line.startsWith("#")) continue;
    const fields = line.split(/[ \t]+/);
    if (fields.length !== 2) {
      throw new CredentialsError(
        source,
        lineNo,
        `expected "username password", found ${fields.length} field${
          fields.length === 1 ? "" : "s"
        }`,
      );
    }
    const [nick, password] = fields as [string, string];
    const problem = nameProblem(nick);
    if (problem !== null) {
      throw new CredentialsError(source, lineNo, `username "${nick}" ${problem}`);
    }
    const earlier = seen.get(nameKey(nick));
    if (earlier !== undefined) {
      throw new CredentialsError(
        source,
        lineNo,
        `username "${nick}" is already defined on line ${earlier}`,
      );
    }
    seen.set(nameKey(nick), lineNo);
    accounts.push({ nick, password });
  }
  return accounts;
}
