/**
 * A 64 MiB pseudo-random file through the server and peer to peer, each end in its own
 * process: the hashes are equal, and each process's resident memory grows far less than
 * the file's size while it streams from disk to disk. Memory is sampled every 50 ms
 * right after a forced garbage collection (see `helpers/file_endpoint.ts`: V8 collects
 * dead buffers only once about 64 MiB of them have piled up), so the figure is what the
 * transfer holds; the bound asserted is 48 MiB of growth.
 */

import assert from "node:assert/strict";
import { textLines } from "../tools/lines.ts";
import { join } from "node:path";
import { testServer } from "./helpers/harness.ts";
import { sha256Of, writeRandomFile } from "./helpers/files.ts";

const ENDPOINT = new URL("./helpers/file_endpoint.ts", import.meta.url).pathname;
const ROOT = new URL("..", import.meta.url).pathname;
const SIZE = 64 * 1024 * 1024;
const MAX_GROWTH = 48 * 1024 * 1024;
/**
 * An endpoint that prints nothing (progress included) for this long has stalled; a slow
 * machine still moves (the endpoints print progress every second while the file moves).
 */
const STALL_MS = 30_000;
/** The most a whole transfer may take, however slowly it moves. */
const LIMIT_MS = 300_000;

type Line = Record<string, unknown>;

/** A file endpoint process and its JSON lines. */
class Endpoint {
  readonly child: Deno.ChildProcess;
  readonly lines: Line[] = [];
  readonly #waiters: { match: (l: Line) => boolean; resolve: (l: Line) => void }[] = [];
  readonly reading: Promise<void>;
  /** When the endpoint last printed a line. */
  lastLineAt = Date.now();

  constructor(args: string[]) {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--v8-flags=--expose-gc", ENDPOINT, ...args],
      cwd: ROOT,
      stdin: "null",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    this.child = child;
    this.reading = (async () => {
      for await (const text of textLines(child.stdout)) {
        const line = JSON.parse(text) as Line;
        this.lastLineAt = Date.now();
        this.lines.push(line);
        for (const w of [...this.#waiters]) {
          if (w.match(line)) {
            this.#waiters.splice(this.#waiters.indexOf(w), 1);
            w.resolve(line);
          }
        }
      }
    })();
  }

  /**
   * The first line with `key` (an `error` line fails the test), failing when neither this
   * endpoint nor `others` printed anything for {@linkcode STALL_MS}.
   */
  wait(key: string, others: Endpoint[] = []): Promise<Line> {
    const match = (l: Line) => key in l || "error" in l;
    const found = this.lines.find(match);
    const line = found !== undefined
      ? Promise.resolve(found)
      : new Promise<Line>((resolve) => this.#waiters.push({ match, resolve }));
    const started = Date.now();
    let timer: ReturnType<typeof setInterval> | undefined;
    const timeout = new Promise<never>((_, reject) =>
      timer = setInterval(() => {
        const now = Date.now();
        const last = Math.max(this.lastLineAt, ...others.map((o) => o.lastLineAt));
        if (now - last > STALL_MS) {
          reject(new Error(`no "${key}" line, and nothing printed for ${STALL_MS} ms`));
        } else if (now - started > LIMIT_MS) {
          reject(new Error(`no "${key}" line within ${LIMIT_MS} ms`));
        }
      }, 500)
    );
    return Promise.race([line, timeout]).finally(() => clearInterval(timer)).then((l) => {
      if ("error" in l) throw new Error(`endpoint failed: ${l.error}`);
      return l;
    });
  }

  async close(): Promise<void> {
    try {
      this.child.kill("SIGKILL");
    } catch {
      // already gone
    }
    await this.child.status;
    await this.reading.catch(() => {});
  }
}

function assertBounded(line: Line, who: string): void {
  const growth = (line.peak as number) - (line.baseline as number);
  if (Deno.env.get("CHAT_TEST_VERBOSE")) console.log(who, (growth / 1048576).toFixed(1), "MiB");
  assert.ok(
    growth < MAX_GROWTH,
    `${who} grew by ${(growth / 1048576).toFixed(1)} MiB for a ${SIZE / 1048576} MiB file`,
  );
}

Deno.test("64 MiB through the server: equal hashes, bounded memory at both ends", async () => {
  const tmp = await Deno.makeTempDir();
  const server = await testServer();
  const ends: Endpoint[] = [];
  try {
    const path = join(tmp, "random.bin");
    const sha = await writeRandomFile(path, SIZE, 64);
    const receiver = new Endpoint(["relay-receive", String(server.addr.port), join(tmp, "dl")]);
    ends.push(receiver);
    await receiver.wait("ready");
    const sender = new Endpoint(["relay-send", String(server.addr.port), path, "bob"]);
    ends.push(sender);
    const sent = await sender.wait("done", [receiver]);
    const saved = await receiver.wait("done", [sender]);
    assert.equal(saved.path, join(tmp, "dl", "random.bin"));
    assert.equal(await sha256Of(saved.path as string), sha);
    assertBounded(sent, "the sending process");
    assertBounded(saved, "the receiving process");
  } finally {
    for (const end of ends) await end.close();
    await server.shutdown();
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("64 MiB peer to peer: equal hashes, bounded memory at both ends", async () => {
  const tmp = await Deno.makeTempDir();
  const ends: Endpoint[] = [];
  try {
    const path = join(tmp, "random.bin");
    const sha = await writeRandomFile(path, SIZE, 65);
    const receiver = new Endpoint(["peer-receive", join(tmp, "dl")]);
    ends.push(receiver);
    const ready = await receiver.wait("ready");
    const sender = new Endpoint(["peer-send", String(ready.port), path]);
    ends.push(sender);
    const sent = await sender.wait("done", [receiver]);
    const saved = await receiver.wait("done", [sender]);
    assert.equal(saved.path, join(tmp, "dl", "random.bin"));
    assert.equal(await sha256Of(saved.path as string), sha);
    assertBounded(sent, "the sending process");
    assertBounded(saved, "the receiving process");
  } finally {
    for (const end of ends) await end.close();
    await Deno.remove(tmp, { recursive: true });
  }
});
