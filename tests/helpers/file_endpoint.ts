/**
 * One end of a file transfer in its own process, for tests that measure its memory:
 *
 * ```text
 * deno run -A --v8-flags=--expose-gc tests/helpers/file_endpoint.ts MODE ...
 *   relay-send PORT PATH TO       log in as alice, send PATH to TO through the server
 *   relay-receive PORT DIR        log in as bob, accept every file into DIR
 *   peer-send PORT PATH           dial a peer listener on 127.0.0.1:PORT as alice, send PATH
 *   peer-receive DIR              listen on 127.0.0.1 as bob, accept every file into DIR
 * ```
 *
 * It prints one JSON line when ready (`{"ready": true, "port": N}`), and one when the
 * file is sent or saved: `{"done": true, "path": ..., "baseline": B, "peak": P}`, where
 * `B` is the resident set size when the transfer starts and `P` the largest resident
 * set size seen during it, both in bytes. Memory is sampled every 50 ms right after a
 * forced garbage collection: V8 collects dead buffers only once about 64 MiB of them
 * have piled up, so without it the figure would measure V8's laziness, not what the
 * transfer holds. While the file moves it prints `{"progress": BYTES}` at most once a
 * second, so that a test can tell a slow machine from a stalled transfer. On failure it
 * prints `{"error": ...}` and exits 1.
 *
 * @module
 */

import { ChatClient } from "../../client/chat_client.ts";
import { FileTransfers } from "../../client/file_transfer.ts";
import { connectPeer } from "../../peer/connect.ts";
import { PeerFileTransfers } from "../../peer/file_transfer.ts";
import { listenPeer } from "../../peer/listen.ts";
import type { PeerSession } from "../../peer/session.ts";

const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});

let baseline = 0;
let peak = 0;
let sampler: ReturnType<typeof setInterval> | undefined;

function startMeasuring(): void {
  gc();
  baseline = Deno.memoryUsage().rss;
  peak = baseline;
  sampler = setInterval(() => {
    gc();
    peak = Math.max(peak, Deno.memoryUsage().rss);
  }, 50);
}

/** Prints the done line. */
function report(extra: Record<string, unknown>): void {
  clearInterval(sampler);
  gc();
  peak = Math.max(peak, Deno.memoryUsage().rss);
  console.log(JSON.stringify({ done: true, baseline, peak, ...extra }));
}

/** Prints the done line and ends the process. */
function finish(extra: Record<string, unknown>): never {
  report(extra);
  Deno.exit(0);
}

let lastProgress = 0;

/** Prints a progress line, at most once a second. */
function progress(event: { type: string; bytes?: number }): void {
  if (event.type !== "file_progress") return;
  const now = Date.now();
  if (now - lastProgress < 1000) return;
  lastProgress = now;
  console.log(JSON.stringify({ progress: event.bytes ?? 0 }));
}

function fail(err: unknown): never {
  console.log(JSON.stringify({ error: err instanceof Error ? err.message : String(err) }));
  Deno.exit(1);
}

async function login(port: number, nick: string): Promise<ChatClient> {
  return await ChatClient.connect({ port, nick, password: "password123", reconnect: false });
}

async function follow(session: PeerSession, files: PeerFileTransfers): Promise<void> {
  try {
    for await (const event of session) {
      if (event.type === "file") await files.handle(event);
    }
  } catch (err) {
    fail(err);
  }
}

const [mode, ...args] = Deno.args;
try {
  switch (mode) {
    case "relay-send": {
      const [port, path, to] = args;
      const client = await login(Number(port), "alice");
      const files = new FileTransfers(client, { onEvent: progress });
      // Measuring starts before the ready line: its first reading is not the transfer's.
      startMeasuring();
      console.log(JSON.stringify({ ready: true }));
      await files.send(to, path);
      finish({ path });
      break;
    }
    case "relay-receive": {
      const [port, dir] = args;
      const client = await login(Number(port), "bob");
      startMeasuring();
      new FileTransfers(client, {
        acceptDir: dir,
        onEvent: (event) => {
          progress(event);
          if (event.type === "file_saved") finish({ path: event.path });
          if (event.type === "file_failed") fail(event.reason);
        },
      });
      console.log(JSON.stringify({ ready: true }));
      break;
    }
    case "peer-send": {
      const [port, path] = args;
      const session = await connectPeer({ host: "127.0.0.1", port: Number(port), nick: "alice" });
      const files = new PeerFileTransfers(session, { onEvent: progress });
      // Measuring starts before the ready line: its first reading is not the transfer's.
      startMeasuring();
      console.log(JSON.stringify({ ready: true }));
      void follow(session, files);
      await files.send(path);
      await session.close();
      finish({ path });
      break;
    }
    case "peer-receive": {
      const [dir] = args;
      const session = await listenPeer({
        host: "127.0.0.1",
        port: 0,
        nick: "bob",
        onListening: (addr) => console.log(JSON.stringify({ ready: true, port: addr.port })),
      });
      startMeasuring();
      const files = new PeerFileTransfers(session, {
        acceptDir: dir,
        onEvent: (event) => {
          progress(event);
          // Saved: the done line at once, as the relay's receiver prints it. The goodbye
          // goes after the "done" that tells the sender the hash matched; then it ends.
          if (event.type === "file_saved") {
            report({ path: event.path });
            session.close().then(() => Deno.exit(0));
          }
          if (event.type === "file_failed") fail(event.reason);
        },
      });
      await follow(session, files);
      break;
    }
    default:
      fail(`unknown mode ${mode}`);
  }
} catch (err) {
  fail(err);
}
