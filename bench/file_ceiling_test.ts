import assert from "node:assert/strict";
import { sha256Of, withTempDir, writeRandomFile } from "../tests/helpers/files.ts";
import { textLines } from "../tools/lines.ts";

const CEILING = new URL("./file_ceiling.ts", import.meta.url).pathname;
const MiB = 1024 * 1024;

/** One of the ceiling's programs: its JSON lines, in order. */
function start(
  args: string[],
): { lines: AsyncIterator<Record<string, unknown>>; end: () => Promise<void> } {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--no-prompt", CEILING, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const lines = (async function* () {
    for await (const line of textLines(child.stdout)) yield JSON.parse(line);
  })();
  return {
    lines,
    end: async () => {
      try {
        child.kill("SIGKILL");
      } catch {
        // already gone
      }
      await child.status;
      await child.stdout.cancel().catch(() => {});
    },
  };
}

/** The next line of `program`, which must have `key` true. */
async function next(
  program: { lines: AsyncIterator<Record<string, unknown>> },
  key: string,
): Promise<Record<string, unknown>> {
  const r = await program.lines.next();
  assert.ok(!r.done, `ended before "${key}"`);
  assert.equal(r.value[key], true, JSON.stringify(r.value));
  return r.value;
}

Deno.test("file ceiling: the store-and-forward hop syncs its copy as it goes, as the server does", async () => {
  await withTempDir(async (dir) => {
    const size = 40 * MiB;
    const hash = await writeRandomFile(`${dir}/source.bin`, size, 3);
    const receiver = start(["relay-receive", `${dir}/out.bin`]);
    const hop = start([
      "relay-hop",
      `${dir}/hop.bin`,
      String((await next(receiver, "ready")).port),
    ]);
    const sender = start([
      "relay-send",
      String((await next(hop, "ready")).port),
      `${dir}/source.bin`,
    ]);
    try {
      await next(sender, "ready");
      assert.equal((await next(receiver, "done")).sha256, hash);
      const stored = await next(hop, "done");
      // 40 MiB: a sync starts once 16 MiB are stored (the next once 16 more are and that
      // one is over), the rest is synced at the end.
      assert.ok(
        typeof stored.backgroundSyncs === "number" && stored.backgroundSyncs >= 1,
        `background syncs: ${stored.backgroundSyncs}`,
      );
      assert.equal(await sha256Of(`${dir}/hop.bin`), hash);
      assert.equal((await next(sender, "done")).sha256, hash);
    } finally {
      await Promise.all([sender.end(), hop.end(), receiver.end()]);
    }
  });
});
