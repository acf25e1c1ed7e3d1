/**
 * `deno task soak`: runs the soak (see soak.ts) and prints its figures; exits 0 only
 * when nothing acknowledged was lost or duplicated and the server kept serving.
 *
 * ```sh
 * deno task soak            # 2 minutes, 100 well-behaved clients, 3000 abusive connections
 * deno task soak --quick    # 20 seconds, 500 abusive connections
 * ```
 *
 * @module
 */

import { parseSoakArgs, SOAK_USAGE, type SoakOptions, SoakUsageError } from "./options.ts";
import { formatReport, soakFailures } from "./report.ts";
import { runSoak } from "./soak.ts";

if (import.meta.main) {
  let options: SoakOptions | null;
  try {
    options = parseSoakArgs(Deno.args);
  } catch (err) {
    if (!(err instanceof SoakUsageError)) throw err;
    console.error(`soak: ${err.message}\n\n${SOAK_USAGE}`);
    Deno.exit(2);
  }
  if (options === null) {
    console.log(SOAK_USAGE);
    Deno.exit(0);
  }
  console.log(
    `soak: ${options.durationSec} s, ${options.goodClients} well-behaved clients, ` +
      `${options.abusiveConnections} abusive connections, seed ${options.seed}`,
  );
  const report = await runSoak(options, (line) => console.log(line));
  console.log(formatReport(report).join("\n"));
  Deno.exit(soakFailures(report).length === 0 ? 0 : 1);
}
