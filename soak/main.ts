/**
 * `deno task soak`: runs the soak (see soak.ts and phases.ts) and prints its figures;
 * exits 0 only when nothing acknowledged was lost or duplicated, the server kept
 * serving, and every attack phase kept the well-behaved clients' p99 within 2× of the
 * quiet phase's (see phases.ts).
 *
 * ```sh
 * deno task soak            # ~5 min: 10 s per attack, then 2 min mixed with 3000 connections
 * deno task soak --quick    # ~1 min: 2 s per attack, then 12 s mixed with 500
 * deno task soak --quick --attacks ping_flood,dm_backlog --no-mixed
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
    `soak: ${options.goodClients} well-behaved clients; quiet ${options.quietSec} s, ` +
      `${options.attacks.length} attack phases (${options.attacks.join(", ") || "none"}), ` +
      (options.mixed
        ? `then ${options.durationSec} s mixed with ${options.abusiveConnections} abusive connections`
        : "no mixed phase") +
      `; seed ${options.seed}`,
  );
  const report = await runSoak(options, (line) => console.log(line));
  console.log(formatReport(report).join("\n"));
  Deno.exit(soakFailures(report).length === 0 ? 0 : 1);
}
