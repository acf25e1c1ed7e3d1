/**
 * `chat`: the command-line entry point. It only parses the command line and dispatches to
 * the mode's module: `chat serve` (cli/serve.ts), `chat connect` (cli/connect.ts) and
 * `chat peer` (cli/peer.ts). See `chat --help`.
 *
 * @module
 */

import { runCli } from "./cli/program.ts";
import { serveCommand } from "./cli/serve.ts";
import { connectCommand } from "./cli/connect.ts";
import { peerCommand } from "./cli/peer.ts";

if (import.meta.main) {
  Deno.exit(await runCli(Deno.args, [serveCommand(), connectCommand(), peerCommand()]));
}
