/**
 * `chat serve` that kills itself at a chosen point of an upload, for cluster tests:
 * `deno run <the serve task's permissions> tests/helpers/killable_serve.ts serve
 * --test-kill-at=WHEN ARGS...` (see `kill_switch.ts` for WHEN); the other arguments are
 * `chat serve`'s. Started by `cluster_nodes.ts` with `startNode(args, { main })`.
 *
 * @module
 */

import { serveCommand } from "../../cli/serve.ts";
import { runCli } from "../../cli/program.ts";
import { installKillSwitch } from "./kill_switch.ts";

const FLAG = "--test-kill-at=";
const args = Deno.args.filter((arg) => !arg.startsWith(FLAG));
const when = Deno.args.find((arg) => arg.startsWith(FLAG));
if (when !== undefined) installKillSwitch(when.slice(FLAG.length));
Deno.exit(await runCli(args, [serveCommand()]));
