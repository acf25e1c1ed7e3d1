/**
 * SASL for IRC clients (IRCv3 `sasl` 3.1/3.2): the `AUTHENTICATE` command, mechanism
 * `PLAIN`, onto the chat accounts. The password is checked at once, with the same
 * lockout, throttles, `--auth` mode and failure counters as a chat login
 * ({@linkcode ChatHub.authenticate}); the client then registers as that account.
 *
 * Numerics: 900 RPL_LOGGEDIN and 903 RPL_SASLSUCCESS, 904 ERR_SASLFAIL, 905
 * ERR_SASLTOOLONG, 906 ERR_SASLABORTED, 907 ERR_SASLALREADY, 908 RPL_SASLMECHS.
 *
 * @module
 */

import { CommandError } from "./errors.ts";
import type { IrcClient, IrcCommandSpec } from "./irc_commands.ts";
import { IrcNumericError } from "./irc_errors.ts";
import { userSource } from "./irc_events.ts";

/** The mechanisms offered (`sasl=PLAIN` under `CAP LS 302`). */
export const SASL_MECHANISMS: readonly string[] = ["PLAIN"];

/** Bytes of base64 per `AUTHENTICATE` line; a line this long means more follows. */
export const SASL_CHUNK = 400;

/** Most base64 bytes of one response (a 1024-byte password and two nicks fit). */
export const SASL_MAX_BYTES = 4 * SASL_CHUNK;

/** One connection's SASL exchange. */
export interface SaslState {
  /** The mechanism being used, between `AUTHENTICATE PLAIN` and the end of the exchange. */
  mechanism: string | null;
  /** The base64 response received so far. */
  response: string;
  /** The account authenticated as, once done. */
  account: string | null;
}

/** A fresh exchange. */
export function newSaslState(): SaslState {
  return { mechanism: null, response: "", account: null };
}

/**
 * Decodes a PLAIN response (`authzid NUL authcid NUL password`, base64).
 *
 * @returns the account and password, or null when malformed or `authzid` names another
 * account.
 * @example
 * ```ts
 * import { decodePlain } from "./irc_sasl.ts";
 * decodePlain(btoa("\0alice\0password123")); // { account: "alice", password: "password123" }
 * ```
 */
export function decodePlain(base64: string): { account: string; password: string } | null {
  let text: string;
  try {
    const binary = atob(base64);
    text = new TextDecoder("utf-8", { fatal: true }).decode(
      Uint8Array.from(binary, (c) => c.charCodeAt(0)),
    );
  } catch {
    return null;
  }
  const parts = text.split("\0");
  if (parts.length !== 3) return null;
  const [authzid, account, password] = parts;
  if (account === "" || password === "") return null;
  if (authzid !== "" && authzid.toLowerCase() !== account.toLowerCase()) return null;
  return { account, password };
}

function fail(client: IrcClient, message: string): never {
  client.sasl.mechanism = null;
  client.sasl.response = "";
  throw new IrcNumericError("904", `SASL authentication failed: ${message}`);
}

/** The `AUTHENTICATE` command. */
export const authenticateCommand: IrcCommandSpec = {
  minParams: 1,
  beforeRegistration: true,
  async run(client, { params }) {
    const sasl = client.sasl;
    const arg = params[0];
    if (!client.caps.has("sasl")) {
      throw new IrcNumericError("904", "Request the sasl capability first");
    }
    if (sasl.account !== null || client.session !== null) {
      throw new IrcNumericError("907", "You have already authenticated");
    }
    if (arg === "*") {
      if (sasl.mechanism === null) fail(client, "no exchange to abort");
      sasl.mechanism = null;
      sasl.response = "";
      throw new IrcNumericError("906", "SASL authentication aborted");
    }
    if (sasl.mechanism === null) {
      const mechanism = arg.toUpperCase();
      if (!SASL_MECHANISMS.includes(mechanism)) {
        client.reply("908", SASL_MECHANISMS.join(","), "are available SASL mechanisms");
        fail(client, `unknown mechanism ${arg.slice(0, 20)}`);
      }
      sasl.mechanism = mechanism;
      sasl.response = "";
      client.sendLines([`AUTHENTICATE +`]);
      return;
    }
    if (arg.length > SASL_CHUNK) fail(client, `a line carries at most ${SASL_CHUNK} bytes`);
    if (arg !== "+") sasl.response += arg;
    if (sasl.response.length > SASL_MAX_BYTES) {
      sasl.mechanism = null;
      sasl.response = "";
      throw new IrcNumericError("905", "SASL message too long");
    }
    if (arg.length === SASL_CHUNK) return; // more follows
    const response = sasl.response;
    sasl.mechanism = null;
    sasl.response = "";
    const credentials = decodePlain(response);
    if (credentials === null) fail(client, "malformed PLAIN response");
    const wait = client.admitLogin();
    if (wait > 0) fail(client, `too many attempts: retry in ${wait} s`);
    try {
      const account = await client.hub.authenticate(
        client.ip,
        credentials.account,
        credentials.password,
      );
      sasl.account = account;
      client.reply(
        "900",
        userSource(account),
        account,
        `You are now logged in as ${account}`,
      );
      client.reply("903", "SASL authentication successful");
    } catch (err) {
      if (!(err instanceof CommandError)) throw err;
      fail(client, err.message);
    }
  },
};

/** The `sasl` capability as `CAP LS` shows it: with its mechanisms from version 302. */
export function saslCapability(version: number): string {
  return version >= 302 ? `sasl=${SASL_MECHANISMS.join(",")}` : "sasl";
}
