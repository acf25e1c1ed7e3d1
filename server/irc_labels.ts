/**
 * IRCv3 `labeled-response`: the replies to a command that carried a `label` tag, given
 * back with that label. No reply: an `ACK`; one line: the line with the label; several:
 * a `labeled-response` batch whose start carries the label (a client without `batch`
 * gets the lines unlabelled, as the specification says). Lines already inside a batch
 * of their own (a `chathistory` batch) stay in it, nested in the labelled one.
 *
 * @module
 */

import { addIrcTags, formatIrcMessage, ircTagOf } from "../protocol/irc_line.ts";
import { IRC_SERVER_NAME } from "./irc_events.ts";

/** Most bytes of a label taken (longer ones are ignored, as if none was given). */
export const MAX_LABEL_BYTES = 64;

/**
 * The lines answering a labelled command.
 *
 * @example
 * ```ts
 * import { labeledLines } from "./irc_labels.ts";
 * labeledLines("a1", [], true, "b1"); // ["@label=a1 :chat.server ACK"]
 * ```
 */
export function labeledLines(
  label: string,
  lines: readonly string[],
  batchCap: boolean,
  batchId: string,
): string[] {
  if (lines.length === 0) {
    return [formatIrcMessage({ tags: { label }, source: IRC_SERVER_NAME, command: "ACK" })];
  }
  if (lines.length === 1) return [addIrcTags(lines[0], { label })];
  if (!batchCap) return [...lines];
  return [
    formatIrcMessage({
      tags: { label },
      source: IRC_SERVER_NAME,
      command: "BATCH",
      params: [`+${batchId}`, "labeled-response"],
    }),
    // A line of a nested batch keeps its own batch tag; the nested BATCH lines get ours.
    ...lines.map((line) =>
      ircTagOf(line, "batch") === undefined ? addIrcTags(line, { batch: batchId }) : line
    ),
    `:${IRC_SERVER_NAME} BATCH -${batchId}`,
  ];
}
