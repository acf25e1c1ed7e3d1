/**
 * Builds the `chat` binary for this machine with scripts/compile.ts and runs it.
 *
 * `deno compile` downloads the `denort` runtime on first use. Where that download is
 * impossible (no internet), the test says so and stops there; any other compile failure
 * fails the test.
 */

import assert from "node:assert/strict";
import { stripVTControlCharacters } from "node:util";
import denoJson from "../deno.json" with { type: "json" };
import { binaryName } from "../scripts/compile.ts";

const ROOT = new URL("../", import.meta.url);
const COMPILE_TIMEOUT_MS = 120_000;

/** Whether `deno compile` output shows that fetching the denort runtime failed or hung. */
function isDenortDownloadFailure(stderr: string, timedOut: boolean): boolean {
  const text = stripVTControlCharacters(stderr);
  const downloading = /Download\s+\S*denort/.test(text) || /Setting up base binary/.test(text);
  if (!downloading) return false;
  if (timedOut) return true;
  return /error sending request|dns error|failed to lookup address|Connection refused|connection reset|timed out|Network is unreachable|tcp connect error|certificate/i
    .test(text);
}

Deno.test("isDenortDownloadFailure tells download failures from other failures", () => {
  const dns = "Download https://dl.deno.land/release/v2.9.6/denort-x86_64-unknown-linux-gnu.zip\n" +
    "error: Writing deno compile executable to temporary file\nCaused by:\n" +
    "    0: Setting up base binary.\n    1: error sending request for url: dns error";
  assert.ok(isDenortDownloadFailure(dns, false));
  assert.ok(isDenortDownloadFailure("Download https://x/denort-a.zip\n", true));
  assert.ok(!isDenortDownloadFailure("Check main.ts\nTS2345 [ERROR]: Argument of type", false));
  assert.ok(!isDenortDownloadFailure("error: Module not found", true));
});

Deno.test("deno task compile --host-only builds a binary that runs", async (t) => {
  const outDir = await Deno.makeTempDir({ prefix: "chat_compile_test_" });
  try {
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, COMPILE_TIMEOUT_MS);
    const result = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "scripts/compile.ts", "--host-only", "--out-dir", outDir],
      cwd: ROOT,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
      signal: controller.signal,
    }).output().finally(() => clearTimeout(timer));
    const stderr = new TextDecoder().decode(result.stderr);
    if (!result.success) {
      if (isDenortDownloadFailure(stderr, timedOut)) {
        const errorLines = stripVTControlCharacters(stderr).split("\n")
          .map((line) => line.trim().replace(/^\d+: /, ""));
        const reason = errorLines.find((line) => /error sending request/i.test(line)) ??
          errorLines.findLast((line) => /dns|timed out|unreachable|refused/i.test(line)) ??
          (timedOut ? "timed out" : "download failed");
        console.log(`skipped: deno compile could not download denort: ${reason}`);
        return;
      }
      assert.fail(
        `compile failed${timedOut ? " (timed out)" : ""} with code ${result.code}:\n${stderr}`,
      );
    }

    const binary = `${outDir}/${binaryName(Deno.build.target)}`;
    await t.step("--version prints the version from deno.json", async () => {
      const out = await new Deno.Command(binary, { args: ["--version"], stdin: "null" }).output();
      assert.equal(out.code, 0);
      assert.equal(new TextDecoder().decode(out.stdout), `${denoJson.version}\n`);
    });
    await t.step("an unknown mode exits 2", async () => {
      const out = await new Deno.Command(binary, { args: ["bogus"], stdin: "null" }).output();
      assert.equal(out.code, 2);
      assert.match(new TextDecoder().decode(out.stderr), /^chat: error: unknown command 'bogus'/);
    });
  } finally {
    await Deno.remove(outDir, { recursive: true });
  }
});
