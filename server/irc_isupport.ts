/**
 * The IRC listener's `005` (RPL_ISUPPORT) tokens: each one what the server really does,
 * so that a client sizes its lines, names and history requests to what is accepted.
 *
 * @module
 */

import { MAX_LINE_BYTES } from "../protocol/irc_line.ts";
import { MAX_AWAY_LENGTH, MAX_NAME_LENGTH, MAX_TOPIC_LENGTH } from "../protocol/names.ts";

/** Most messages one `CHATHISTORY` request returns (advertised as `CHATHISTORY=`). */
export const IRC_CHATHISTORY_MAX = 100;

/** Most characters of an away message (`AWAYLEN=`; longer ones are cut). */
export const IRC_AWAY_LENGTH: number = MAX_AWAY_LENGTH;

/** Most tokens per `005` line (modern IRC servers send at most 13). */
const TOKENS_PER_LINE = 13;

/**
 * The ISUPPORT tokens, in order:
 * - `CASEMAPPING=ascii`: nicks and room names compare without case, ASCII only.
 * - `CHANTYPES=#`, `CHANNELLEN`, `NICKLEN`: a room is `#name`, names of 1 to 32 characters.
 * - `TOPICLEN`: a topic of this many bytes is always taken (the limit is in characters).
 * - `LINELEN`: bytes of a line without its tags, CR LF included; a longer one gets 417.
 * - `UTF8ONLY`: a line that is not UTF-8 gets 400.
 * - `CHATHISTORY`, `MSGREFTYPES`: `CHATHISTORY` takes `msgid=` and `timestamp=` and
 *   returns at most so many messages.
 * - `AWAYLEN`: away messages are cut to this many characters.
 * - `TARGMAX`: one target per message.
 */
export function isupportTokens(): string[] {
  return [
    "CASEMAPPING=ascii",
    "CHANTYPES=#",
    `CHANNELLEN=${MAX_NAME_LENGTH + 1}`,
    `NICKLEN=${MAX_NAME_LENGTH}`,
    `TOPICLEN=${MAX_TOPIC_LENGTH}`,
    `LINELEN=${MAX_LINE_BYTES}`,
    "UTF8ONLY",
    `CHATHISTORY=${IRC_CHATHISTORY_MAX}`,
    "MSGREFTYPES=msgid,timestamp",
    `AWAYLEN=${IRC_AWAY_LENGTH}`,
    "TARGMAX=PRIVMSG:1,NOTICE:1",
    "NETWORK=chat",
  ];
}

/**
 * The tokens in groups of at most 13, one `005` line each.
 *
 * @example
 * ```ts
 * import { isupportGroups } from "./irc_isupport.ts";
 * for (const tokens of isupportGroups()) console.log(tokens.join(" "));
 * ```
 */
export function isupportGroups(): string[][] {
  const tokens = isupportTokens();
  const groups: string[][] = [];
  for (let i = 0; i < tokens.length; i += TOKENS_PER_LINE) {
    groups.push(tokens.slice(i, i + TOKENS_PER_LINE));
  }
  return groups;
}
